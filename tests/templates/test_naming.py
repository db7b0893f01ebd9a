"""Naming: suffix validation, length limits, and every physical name carrying the suffix."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from templates.naming import Kind, Naming, NamingError
from tests.templates.cfn import NAME_PROPERTIES, props, resources


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


@pytest.mark.requirement("S001-NAMING")
def test_every_literal_physical_name_ends_with_the_suffix(stack, naming):
    _, template = stack
    for logical_id, resource in resources(template).items():
        prop = NAME_PROPERTIES.get(resource["Type"])
        if prop is None or prop not in props(resource):
            continue
        name = props(resource)[prop]
        if isinstance(name, str):
            assert name.endswith(f"-{naming.suffix}"), f"{logical_id}: {name}"
        else:  # a Join with the stack token after the suffix
            assert f"-{naming.suffix}" in str(name), f"{logical_id}: {name}"
