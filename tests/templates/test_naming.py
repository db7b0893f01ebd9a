"""Naming: suffix validation, length limits, and every physical name carrying the suffix."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from templates.naming import Kind, Naming, NamingError
from tests.templates.cfn import NAME_PROPERTIES, one, props, resources, supports_tags, tag_value


@pytest.mark.parametrize("suffix", ["", "QA", "q a", "qa_1", "-qa", "qa-", "qä", "qa\n"])
def test_bad_suffixes_are_refused(suffix):
    with pytest.raises(NamingError, match="suffix"):
        Naming(suffix)


@pytest.mark.parametrize("suffix", ["qa", "prod", "a", "pr-123", "0x9"])
def test_good_suffixes_are_accepted(suffix):
    assert Naming(suffix).name("transactions", Kind.TABLE) == f"transactions-{suffix}"


def test_a_name_over_its_limit_names_the_kind_and_the_limit():
    naming = Naming("x" * 60)
    with pytest.raises(NamingError, match=r"Lambda function name .* limit is 64"):
        naming.name("payment-processor", Kind.FUNCTION)


@given(st.from_regex(r"[a-z0-9][a-z0-9-]{0,70}[a-z0-9]", fullmatch=True))
@pytest.mark.requirement("S001-NAMING")
def test_names_never_exceed_their_limit(suffix):
    naming = Naming(suffix)
    for kind in Kind:
        try:
            name = naming.name("payment-processor", kind)
        except NamingError:
            assert len(f"payment-processor-{suffix}") > kind.limit
        else:
            assert len(name) <= kind.limit and name.endswith(f"-{suffix}")


# Seed 000's own words: in the payment-api stack the REST API is "payment-api" and the API
# key "mobile-app-key", exactly (AWS allows duplicate names for both).
SEED_NAMES = {
    ("payment-api", "AWS::ApiGateway::RestApi"): "payment-api",
    ("payment-api", "AWS::ApiGateway::ApiKey"): "mobile-app-key",
}


@pytest.mark.requirement("S001-NAMING")
def test_every_physical_name_but_the_seeds_own_carries_the_suffix(stack, naming):
    base, template = stack
    for logical_id, resource in resources(template).items():
        prop = NAME_PROPERTIES.get(resource["Type"])
        if prop is None or prop not in props(resource):
            continue
        name = props(resource)[prop]
        if (base, resource["Type"]) in SEED_NAMES:
            assert name == SEED_NAMES[(base, resource["Type"])], f"{logical_id}: {name}"
        elif isinstance(name, str):
            assert name.endswith(f"-{naming.suffix}"), f"{logical_id}: {name}"
        else:  # a Join with the stack token after the suffix
            assert f"-{naming.suffix}" in str(name), f"{logical_id}: {name}"


def test_the_seed_names_appear_exactly_once_in_the_payment_api_stack(payment_api):
    for (base, type_name), expected in SEED_NAMES.items():
        assert base == "payment-api"
        names = [props(r)["Name"] for r in resources(payment_api, type_name).values()]
        assert names == [expected], type_name


def test_the_suffix_stays_on_everything_else_of_the_payment_api_stack(payment_api, naming):
    """Stack name, description, tags, log groups, roles and usage plan keep the suffix."""
    stack = naming.stack("payment-api")
    assert stack in payment_api["Description"]
    _, plan = one(payment_api, "AWS::ApiGateway::UsagePlan")
    assert props(plan)["UsagePlanName"].endswith(f"-{naming.suffix}")
    for group in resources(payment_api, "AWS::Logs::LogGroup").values():
        name = props(group)["LogGroupName"]
        # The execution log group is named by API Gateway after the API's id.
        assert isinstance(name, dict) or f"-{naming.suffix}" in name, name
    for role in resources(payment_api, "AWS::IAM::Role").values():
        assert f"-{naming.suffix}" in str(props(role)["RoleName"])
    for logical_id, resource in resources(payment_api).items():
        if supports_tags(resource["Type"]):
            assert tag_value(resource, "Environment") == naming.suffix, logical_id
