"""The platform template is console-ready: parameters, groups, outputs; names within limits."""

from __future__ import annotations

import pytest

from templates.naming import Naming, NamingError
from templates.payment_platform import build_payment_platform
from tests.templates.cfn import refs_to


@pytest.fixture(scope="module")
def platform(all_templates) -> dict:
    return all_templates["payment-platform"]


def test_every_parameter_is_described_and_constrained(platform):
    for name, parameter in platform["Parameters"].items():
        assert len(parameter["Description"]) >= 20, name
        if parameter["Type"] == "Number":
            assert {"MinValue", "MaxValue", "ConstraintDescription"} <= set(parameter), name
        elif "AllowedValues" not in parameter:
            assert parameter["AllowedPattern"].startswith("^"), name
            assert parameter["ConstraintDescription"], name


def test_every_parameter_is_grouped_and_labelled_once(platform):
    interface = platform["Metadata"]["AWS::CloudFormation::Interface"]
    grouped = [name for group in interface["ParameterGroups"] for name in group["Parameters"]]
    assert sorted(grouped) == sorted(platform["Parameters"])
    assert set(interface["ParameterLabels"]) == set(platform["Parameters"])


def test_only_the_code_location_must_be_typed_in(platform):
    """Everything else has a default, so the console form needs two answers."""
    required = {name for name, p in platform["Parameters"].items() if "Default" not in p}
    assert required == {"CodeBucket", "CodeKey"}


@pytest.mark.parametrize(
    ("output", "refers_to"),
    [
        ("InvokeUrl", "RestApi"),
        ("HealthUrl", "RestApi"),
        ("TransactionsTableName", "TransactionsTable"),
        ("FailedTransactionsQueueUrl", "FailedTransactionsQueue"),
        ("FailedTransactionsQueueDlqUrl", "FailedTransactionsQueueDlq"),
        ("AlarmTopicArn", "AlarmTopic"),
        ("DashboardUrl", "Dashboard"),
        ("ProcessorFunctionName", "ProcessingFunction"),
    ],
)
def test_outputs(platform, output, refers_to):
    assert refs_to(platform["Outputs"][output]["Value"], refers_to)
    assert platform["Outputs"][output]["Description"]


def test_urls_are_built_from_the_region(platform):
    for output in ("InvokeUrl", "DashboardUrl"):
        value = platform["Outputs"][output]["Value"]["Fn::Sub"]
        text = value[0] if isinstance(value, list) else value
        assert text.startswith("https://") and "${AWS::Region}" in text, output
    assert platform["Outputs"]["InvokeUrl"]["Value"]["Fn::Sub"][0].endswith("/prod/process-payment")


def test_a_suffix_too_long_for_a_role_name_is_refused():
    with pytest.raises(NamingError, match="IAM role"):
        build_payment_platform(Naming("a" * 40))


def test_two_suffixes_differ_only_in_names_and_tags():
    qa, prod = (build_payment_platform(Naming(s)).to_dict() for s in ("qa", "prod"))
    assert set(qa["Resources"]) == set(prod["Resources"])
    assert set(qa["Parameters"]) == set(prod["Parameters"])
    assert set(qa["Outputs"]) == set(prod["Outputs"])
