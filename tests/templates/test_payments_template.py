"""What issue 8 adds to the platform template: the simulated acquirer's durable ledger (only
while the provider parameter selects it, least privilege, encrypted), the sweeper's narrow
write, the review and rejected-message alarms, and a DescribeAlarms grant that fits the call."""

from __future__ import annotations

import pytest

from handlers.config import PROCESSING_SERVICE, PROVIDERS
from handlers.payments.store import PENDING_SORT_ATTRIBUTE
from tests.templates.cfn import (
    as_list,
    policy_documents,
    props,
    refs_to,
    resources,
    role_statements,
    statements,
    table_named_by_arn,
)


@pytest.fixture(scope="module")
def platform(all_templates) -> dict:
    return all_templates["payment-platform"]


def test_the_provider_parameter_offers_exactly_the_providers_the_code_has(platform):
    parameter = platform["Parameters"]["PaymentProvider"]
    assert parameter["AllowedValues"] == list(PROVIDERS)
    assert parameter["Default"] == "simulated"
    assert platform["Conditions"]["UseSimulatedAcquirer"] == {
        "Fn::Equals": [{"Ref": "PaymentProvider"}, "simulated"]
    }


def test_the_ledger_exists_only_for_the_simulated_acquirer_and_is_protected(platform, naming):
    ledger = platform["Resources"]["AcquirerLedgerTable"]
    assert ledger["Condition"] == "UseSimulatedAcquirer"
    p = props(ledger)
    assert p["TableName"] == f"acquirer-ledger-{naming.suffix}"
    assert p["BillingMode"] == "PAY_PER_REQUEST"
    assert p["KeySchema"] == [{"AttributeName": "idempotencyKey", "KeyType": "HASH"}]
    assert p["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    sse = p["SSESpecification"]
    assert sse["SSEEnabled"] is True and sse["SSEType"] == "KMS"
    assert refs_to(sse["KMSMasterKeyId"], "StackKey")
    assert ledger["DeletionPolicy"] == "Delete"
    assert platform["Outputs"]["AcquirerLedgerTableName"]["Condition"] == "UseSimulatedAcquirer"


def ledger_resources(document: dict, platform: dict) -> list:
    """The statements' resources that name the acquirer's ledger (by reference or by name)."""
    return [
        resource
        for statement in statements(document)
        for resource in as_list(statement.get("Resource", []))
        if refs_to(resource, "AcquirerLedgerTable")
        or (
            isinstance(resource, dict)
            and table_named_by_arn(platform, resource.get("Fn::Sub", "")) == "AcquirerLedgerTable"
        )
    ]


def test_only_the_processing_role_may_touch_the_ledger_and_only_read_and_update_it(platform):
    identity_policies = {
        name
        for name, document in policy_documents(platform)
        if platform["Resources"][name]["Type"] in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Role")
        and ledger_resources(document, platform)
    }
    assert identity_policies == {"AcquirerLedgerPolicy"}
    policy = platform["Resources"]["AcquirerLedgerPolicy"]
    assert policy["Type"] == "AWS::IAM::ManagedPolicy"
    assert policy["Condition"] == "UseSimulatedAcquirer"
    assert props(policy)["Roles"] == [{"Ref": "ProcessingRole"}]
    (statement,) = statements(props(policy)["PolicyDocument"])
    assert statement["Effect"] == "Allow"
    assert sorted(as_list(statement["Action"])) == ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    assert ledger_resources(props(policy)["PolicyDocument"], platform) == statement["Resource"]


def test_the_vpc_endpoint_lets_the_processor_reach_the_ledger(platform):
    """Functions in the VPC reach DynamoDB through the gateway endpoint, whose policy allows
    only what the roles grant: the ledger grant must be in it too."""
    endpoint = props(platform["Resources"]["DynamodbEndpoint"])
    assert ledger_resources(endpoint["PolicyDocument"], platform)


def test_the_sweeper_may_update_only_the_requeue_attributes_of_transactions(platform):
    (statement,) = [
        s for s in role_statements(platform, "HealthRole") if s.get("Sid") == "RequeueStuckPayments"
    ]
    assert as_list(statement["Action"]) == ["dynamodb:UpdateItem"]
    assert statement["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["txn_*"]},
        "ForAllValues:StringEquals": {
            "dynamodb:Attributes": ["id", "status", "updatedAt", PENDING_SORT_ATTRIBUTE]
        },
        "StringEquals": {"dynamodb:ReturnValues": ["NONE"]},
    }


@pytest.mark.parametrize(
    ("logical_id", "metric"),
    [("PaymentNeedsReviewAlarm", "PaymentNeedsReview"),
     ("RetryMessageRejectedAlarm", "RetryMessageRejected")],
)  # fmt: skip
def test_review_and_rejected_messages_page_the_alarm_topic(platform, naming, logical_id, metric):
    alarm = props(platform["Resources"][logical_id])
    assert alarm["Namespace"] == f"PaymentPlatform/{naming.suffix}"
    assert alarm["MetricName"] == metric
    assert alarm["Dimensions"] == [{"Name": "service", "Value": PROCESSING_SERVICE}]
    assert alarm["Statistic"] == "Sum" and alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_the_processing_function_is_the_service_the_gate_reads(platform):
    processing = props(platform["Resources"]["ProcessingFunction"])
    assert processing["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == PROCESSING_SERVICE


def test_no_composite_alarm_so_describe_alarms_asks_for_metric_alarms_only(platform):
    """The health monitor calls DescribeAlarms with AlarmTypes=["MetricAlarm"] because its
    grant is on the alarms' ARNs (composite alarms need `*`): that misses nothing only while
    the stack has no composite alarm."""
    assert resources(platform, "AWS::CloudWatch::CompositeAlarm") == {}
