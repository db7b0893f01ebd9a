"""Security and destroyability rules, asserted over every resource of every stack."""

from __future__ import annotations

import json
import re

import pytest

from templates.naming import Naming, NamingError
from templates.registry import build_templates
from tests.templates.cfn import (
    as_list,
    one,
    policy_documents,
    props,
    resources,
    role_statements,
    statements,
    strings,
    supports_tags,
    tag_value,
)

# Actions AWS authorises only on Resource "*" (no resource-level permissions exist).
STAR_RESOURCE_ACTIONS = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "cloudwatch:GetMetricData",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
}
# The one log group API Gateway creates itself, to verify the account's logging role.
WELCOME_LOG_GROUP = "/aws/apigateway/welcome"
REGION = re.compile(r"\b(?:us|eu|ap|sa|ca|me|af|il|mx|cn)-(?:gov-)?[a-z]+-\d\b")
ACCOUNT = re.compile(r"(?<!\d)\d{12}(?!\d)")


@pytest.mark.requirement(
    "S001-LEAST-PRIVILEGE",
    "PCI.DSS.321-IAMPolicyNoStatementsWithAdminAccess",
    "PCI.DSS.321-IAMPolicyNoStatementsWithFullAccess",
)
def test_no_wildcard_actions_except_in_a_deny(stack):
    """A Deny may name every action (that is what makes a TLS-only policy whole)."""
    _, template = stack
    for logical_id, document in policy_documents(template):
        for statement in statements(document):
            if statement["Effect"] == "Deny":
                continue
            for action in as_list(statement.get("Action", [])):
                assert action != "*", f"{logical_id}: Action *"
                assert not re.fullmatch(r"[a-z0-9-]+:\*", action), f"{logical_id}: {action}"


@pytest.mark.requirement("S001-BEST-PRACTICES")
def test_queue_and_topic_policies_deny_every_action_without_tls(stack):
    """Not a list of some actions: `sqs:*` / `sns:*` whenever aws:SecureTransport is false,
    for every queue and topic of the stack."""
    _, template = stack
    for policy_type, target_key, resource_type, service in (
        ("AWS::SQS::QueuePolicy", "Queues", "AWS::SQS::Queue", "sqs"),
        ("AWS::SNS::TopicPolicy", "Topics", "AWS::SNS::Topic", "sns"),
    ):
        covered = set()
        for logical_id, policy in resources(template, policy_type).items():
            denies = [
                s
                for s in statements(props(policy)["PolicyDocument"])
                if s["Effect"] == "Deny"
                and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
            ]
            assert denies, logical_id
            for deny in denies:
                assert as_list(deny["Action"]) == [f"{service}:*"], (logical_id, deny["Action"])
                assert deny["Principal"] in ({"AWS": "*"}, "*"), logical_id
            # A policy attached to a queue or topic its Deny does not name leaves it open.
            denied = [r for deny in denies for r in as_list(deny["Resource"])]
            for target in props(policy)[target_key]:
                arn = (
                    {"Fn::GetAtt": [target["Ref"], "Arn"]} if service == "sqs" else target
                )
                assert arn in denied or "*" in denied, (logical_id, target["Ref"])
            covered |= {v["Ref"] for v in props(policy)[target_key]}
        assert covered == set(resources(template, resource_type)), policy_type


@pytest.mark.requirement("S001-LEAST-PRIVILEGE", "PCI.DSS.321-IAMNoInlinePolicy")
def test_no_role_has_an_inline_policy(stack):
    """Permissions are customer-managed policies an auditor can list and diff (PCI DSS
    7.1.2, NIST AC-6), one of its own per role."""
    _, template = stack
    managed = resources(template, "AWS::IAM::ManagedPolicy")
    for logical_id, role in resources(template, "AWS::IAM::Role").items():
        assert "Policies" not in props(role), logical_id
        own = [
            arn["Ref"]
            for arn in props(role)["ManagedPolicyArns"]
            if isinstance(arn, dict) and arn.get("Ref") in managed
        ]
        assert len(own) == 1, (logical_id, own)
        assert managed[own[0]].get("Condition") == role.get("Condition"), logical_id


@pytest.mark.requirement("S001-LEAST-PRIVILEGE")
def test_star_resource_only_where_aws_allows_nothing_narrower(stack):
    _, template = stack
    for logical_id, resource in resources(template).items():
        is_key_policy = resource["Type"] == "AWS::KMS::Key"
        for _, document in policy_documents({"Resources": {logical_id: resource}}):
            for statement in statements(document):
                if "*" not in as_list(statement.get("Resource", [])):
                    continue
                # A Deny grants nothing: "*" there only widens what it forbids.
                if statement["Effect"] == "Deny":
                    continue
                # In a key policy, "*" means the key itself.
                if is_key_policy:
                    continue
                actions = set(as_list(statement["Action"]))
                assert actions <= STAR_RESOURCE_ACTIONS, f"{logical_id}: {actions} on *"


@pytest.mark.requirement("S001-FUNCTION-LOGS")
def test_no_role_may_create_any_log_group_but_api_gateways_welcome_group(stack):
    """Every log group is pre-created with a retention; none may reappear after delete. The
    one exception: API Gateway verifies the account's logging role by writing to
    /aws/apigateway/welcome, creating it when missing (a fresh account or region), so the
    account logging role may create that one group (its name, or its streams) and no other."""
    _, template = stack
    welcome_arn = (
        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:" + WELCOME_LOG_GROUP
    )
    account_role = props(one(template, "AWS::ApiGateway::Account")[1])["CloudWatchRoleArn"]
    granted_to = set()
    for role_id in resources(template, "AWS::IAM::Role"):
        for statement in role_statements(template, role_id):
            if "logs:CreateLogGroup" not in as_list(statement["Action"]):
                continue
            granted_to.add(role_id)
            for resource in as_list(statement["Resource"]):
                assert resource in (
                    {"Fn::Sub": welcome_arn},
                    {"Fn::Sub": welcome_arn + ":*"},
                ), (role_id, resource)
    assert granted_to == {account_role["Fn::GetAtt"][0]}


@pytest.mark.requirement("S001-DESTROYABLE", "S001-NO-DELETION-PROTECTION")
def test_nothing_is_retained_or_protected(stack):
    _, template = stack
    for logical_id, resource in resources(template).items():
        assert resource.get("DeletionPolicy", "Delete") == "Delete", logical_id
        assert resource.get("UpdateReplacePolicy", "Delete") == "Delete", logical_id
        p = props(resource)
        assert p.get("DeletionProtectionEnabled") in (None, False, "false"), logical_id
        assert p.get("DeletionProtection") in (None, False, "false"), logical_id


@pytest.mark.requirement("S001-ENVIRONMENT-TAG")
def test_every_taggable_resource_carries_the_environment_tag(stack, naming):
    _, template = stack
    for logical_id, resource in resources(template).items():
        if supports_tags(resource["Type"]):
            assert tag_value(resource, "Environment") == naming.suffix, logical_id


def test_no_literal_region_account_or_partition(stack):
    _, template = stack
    body = {k: v for k, v in template.items() if k != "Rules"}
    for path, text in strings(body):
        assert not REGION.search(text), f"literal region at {path}: {text}"
        assert not ACCOUNT.search(text), f"literal account at {path}: {text}"
        assert "arn:aws:" not in text, f"literal partition at {path}: {text}"


@pytest.mark.requirement(
    "S001-FUNCTION-LOGS",
    "S001-CLOUDWATCH",
    "PCI.DSS.321-CloudWatchLogGroupEncrypted",
    "PCI.DSS.321-CloudWatchLogGroupRetentionPeriod",
)
def test_every_log_group_has_a_retention_and_a_key(stack):
    _, template = stack
    for logical_id, resource in resources(template, "AWS::Logs::LogGroup").items():
        assert props(resource)["RetentionInDays"] > 0, logical_id
        assert "KmsKeyId" in props(resource), logical_id


@pytest.mark.requirement("PCI.DSS.321-KMSBackingKeyRotationEnabled")
def test_every_key_rotates(stack):
    _, template = stack
    for logical_id, resource in resources(template, "AWS::KMS::Key").items():
        assert props(resource)["EnableKeyRotation"] is True, logical_id


@pytest.mark.requirement("S001-PITR")
def test_every_key_can_be_recovered_for_as_long_as_kms_allows(stack):
    """A deleted table's PITR backup lives 35 days, encrypted with the stack key: the key's
    deletion window is the longest KMS allows (30 days), the time left to cancel and restore."""
    _, template = stack
    for logical_id, resource in resources(template, "AWS::KMS::Key").items():
        assert props(resource)["PendingWindowInDays"] == 30, logical_id


def test_logical_ids_never_carry_the_suffix():
    """qa and prod templates differ only in names and tags, never in logical IDs."""
    one, other = build_templates(Naming("zq1")), build_templates(Naming("zq2"))
    for (name_one, t_one), (name_other, t_other) in zip(one.items(), other.items(), strict=True):
        assert name_one.replace("zq1", "zq2") == name_other
        assert set(t_one["Resources"]) == set(t_other["Resources"])
        assert not any("zq1" in logical_id.lower() for logical_id in t_one["Resources"])


# The longest suffix every name still fits with (one more character is refused).
LONGEST_SUFFIX = 33
MANAGED_POLICY_LIMIT = 6_144  # IAM: characters of a managed policy, whitespace excluded
PSEUDO = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "1" * 12}
ARN_BOUND = 100  # longer than any ARN of this stack's resources (log group ARNs included)


def _resolved(value):
    """A policy value with pseudo parameters filled in and every reference as a long ARN."""
    if isinstance(value, list):
        return [_resolved(item) for item in value]
    if not isinstance(value, dict):
        return value
    if "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        text, variables = (sub, {}) if isinstance(sub, str) else sub

        def fill(match):
            name = match.group(1)
            if name in variables:
                return str(_resolved(variables[name]))
            return PSEUDO.get(name, "x" * ARN_BOUND)

        return re.sub(r"\$\{([^}!]+)\}", fill, text)
    if "Ref" in value or "Fn::GetAtt" in value:
        return PSEUDO.get(value.get("Ref"), "x" * ARN_BOUND)
    return {key: _resolved(item) for key, item in value.items()}


def test_every_managed_policy_fits_iams_limit_with_the_longest_suffix():
    """Managed policies hold 6,144 characters, not an inline policy's 10,240: the health
    monitor's, which names every alarm it reads, must fit with the longest names."""
    with pytest.raises(NamingError):
        build_templates(Naming("a" * (LONGEST_SUFFIX + 1)))
    for name, template in build_templates(Naming("a" * LONGEST_SUFFIX)).items():
        for logical_id, policy in resources(template, "AWS::IAM::ManagedPolicy").items():
            text = json.dumps(_resolved(props(policy)["PolicyDocument"]), separators=(",", ":"))
            size = len(re.sub(r"\s", "", text))
            assert size < MANAGED_POLICY_LIMIT, (name, logical_id, size)
