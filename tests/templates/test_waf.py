"""PCI DSS 6.6: a web application firewall in front of each stack's API stage, logging to an
encrypted 7-day group without the key's value; on the platform, blocked requests on the
dashboard and a spike alarm on the alarm topic."""

from __future__ import annotations

import json

import pytest

from handlers.payments.validation import MAX_BODY_BYTES
from tests.templates.cfn import one, props, refs_to, resources
from tests.templates.platform_rules import target

REQUIRED_MANAGED_GROUPS = {
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
    "AWSManagedRulesAmazonIpReputationList",
}


def web_acl(template: dict) -> tuple[str, dict]:
    return one(template, "AWS::WAFv2::WebACL")


def rules_by_statement(acl: dict, kind: str) -> list[dict]:
    return [rule for rule in props(acl)["Rules"] if kind in rule["Statement"]]


@pytest.mark.requirement("S001-API-SECURITY", "PCI.DSS.321-APIGWAssociatedWithWAF")
def test_a_regional_web_acl_is_associated_with_the_stage(stack):
    _, template = stack
    acl_id, acl = web_acl(template)
    assert props(acl)["Scope"] == "REGIONAL"
    assert props(acl)["DefaultAction"] == {"Allow": {}}
    stage_id, _ = one(template, "AWS::ApiGateway::Stage")
    api_id, _ = one(template, "AWS::ApiGateway::RestApi")
    (association,) = resources(template, "AWS::WAFv2::WebACLAssociation").values()
    assert props(association)["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    arn, variables = props(association)["ResourceArn"]["Fn::Sub"]
    assert arn.endswith("::/restapis/${Api}/stages/${Stage}")
    assert variables == {"Api": {"Ref": api_id}, "Stage": {"Ref": stage_id}}


@pytest.mark.requirement("PCI.DSS.321-APIGWAssociatedWithWAF")
def test_the_aws_managed_rule_groups_are_enforced(stack):
    _, template = stack
    _, acl = web_acl(template)
    managed = {
        rule["Statement"]["ManagedRuleGroupStatement"]["Name"]: rule
        for rule in rules_by_statement(acl, "ManagedRuleGroupStatement")
    }
    assert REQUIRED_MANAGED_GROUPS <= set(managed)
    for name, rule in managed.items():
        assert rule["Statement"]["ManagedRuleGroupStatement"]["VendorName"] == "AWS"
        # None = the group's own block actions apply (Count would only watch).
        assert rule["OverrideAction"] == {"None": {}}, name
        assert "RuleActionOverrides" not in rule["Statement"]["ManagedRuleGroupStatement"], name


def test_each_client_ip_is_rate_limited(stack):
    _, template = stack
    _, acl = web_acl(template)
    (rule,) = rules_by_statement(acl, "RateBasedStatement")
    statement = rule["Statement"]["RateBasedStatement"]
    assert statement["AggregateKeyType"] == "IP"
    assert "ScopeDownStatement" not in statement  # every request counts
    assert "Block" in rule["Action"]
    limit = template["Parameters"][statement["Limit"]["Ref"]]
    assert limit["Type"] == "Number" and limit["MinValue"] >= 10
    assert int(limit["Default"]) >= limit["MinValue"]


def test_bodies_larger_than_the_functions_accept_are_blocked(stack):
    _, template = stack
    _, acl = web_acl(template)
    (rule,) = [
        r
        for r in rules_by_statement(acl, "SizeConstraintStatement")
        if "Body" in r["Statement"]["SizeConstraintStatement"]["FieldToMatch"]
    ]
    size = rule["Statement"]["SizeConstraintStatement"]
    assert (size["ComparisonOperator"], size["Size"]) == ("GT", MAX_BODY_BYTES)
    # A body too large for WAF to inspect is too large.
    assert size["FieldToMatch"]["Body"]["OversizeHandling"] == "MATCH"
    assert "Block" in rule["Action"]


def test_rules_are_ordered_and_metered(stack):
    _, template = stack
    _, acl = web_acl(template)
    priorities = [rule["Priority"] for rule in props(acl)["Rules"]]
    assert len(set(priorities)) == len(priorities)
    for rule in [*props(acl)["Rules"], props(acl)]:
        visibility = rule["VisibilityConfig"]
        assert visibility["CloudWatchMetricsEnabled"] is True
        # Sampled requests keep every header, the API key included, for 3 hours.
        assert visibility["SampledRequestsEnabled"] is False


@pytest.mark.requirement(
    "PCI.DSS.321-WAFv2LoggingEnabled",
    "PCI.DSS.321-CloudWatchLogGroupEncrypted",
)
def test_waf_logs_are_kept_seven_days_encrypted_and_never_hold_the_key(stack):
    _, template = stack
    acl_id, _ = web_acl(template)
    _, logging = one(template, "AWS::WAFv2::LoggingConfiguration")
    assert props(logging)["ResourceArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    (destination,) = props(logging)["LogDestinationConfigs"]
    group_id = target(destination["Fn::Sub"][1]["Name"])
    group = props(template["Resources"][group_id])
    assert group["LogGroupName"].startswith("aws-waf-logs-")
    assert group["RetentionInDays"] == 7
    (key_id,) = resources(template, "AWS::KMS::Key")
    assert group["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    redacted = props(logging)["RedactedFields"]
    # The key's value, and a card number pasted into a URL path or query string.
    assert {"SingleHeader": {"Name": "x-api-key"}} in redacted
    assert {"UriPath": {}} in redacted
    assert {"QueryString": {}} in redacted


@pytest.fixture(scope="module")
def platform(all_templates) -> dict:
    return all_templates["payment-platform"]


@pytest.mark.requirement("S001-DASHBOARD")
def test_the_platform_dashboard_shows_blocked_requests(platform):
    _, acl = web_acl(platform)
    _, dashboard = one(platform, "AWS::CloudWatch::Dashboard")
    body = json.loads(props(dashboard)["DashboardBody"]["Fn::Sub"][0])
    metrics = [m for w in body["widgets"] for m in w["properties"].get("metrics", [])]
    blocked = [m for m in metrics if m[:2] == ["AWS/WAFV2", "BlockedRequests"]]
    assert blocked
    assert (
        dict(zip(blocked[0][2::2], blocked[0][3::2], strict=True))["WebACL"]
        == (props(acl)["VisibilityConfig"]["MetricName"])
    )


@pytest.mark.requirement("S001-ALARMS", "S001-ALARM-NOTIFY")
def test_a_spike_of_blocked_requests_alarms_on_the_alarm_topic(platform):
    _, acl = web_acl(platform)
    (alarm,) = [
        props(a)
        for a in resources(platform, "AWS::CloudWatch::Alarm").values()
        if props(a).get("Namespace") == "AWS/WAFV2"
    ]
    assert alarm["MetricName"] == "BlockedRequests"
    dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    assert dimensions == {
        "WebACL": props(acl)["VisibilityConfig"]["MetricName"],
        "Region": {"Ref": "AWS::Region"},
        "Rule": "ALL",
    }
    (topic_id,) = resources(platform, "AWS::SNS::Topic")
    assert refs_to(alarm["AlarmActions"], topic_id)
    assert alarm["ComparisonOperator"].startswith("GreaterThan")


@pytest.mark.parametrize("stack_name", ["payment-api", "payment-platform"])
def test_the_acls_own_refusals_carry_the_cors_origin(all_templates, stack_name):
    """A browser reads a 429 or 413 only with the origin header the API's own errors carry
    (the gateway responses): without it the app sees a network error and cannot back off."""
    template = all_templates[stack_name]
    origins = {
        props(response)["ResponseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"]
        for response in resources(template, "AWS::ApiGateway::GatewayResponse").values()
    }
    (origin,) = origins
    _, acl = web_acl(template)
    own = [rule for rule in props(acl)["Rules"] if "Action" in rule]
    assert own, "the ACL has blocking rules of its own"
    for rule in own:
        response = rule["Action"]["Block"]["CustomResponse"]
        headers = {h["Name"]: h["Value"] for h in response.get("ResponseHeaders", [])}
        assert headers.get("Access-Control-Allow-Origin") == origin.strip("'"), rule["Name"]
