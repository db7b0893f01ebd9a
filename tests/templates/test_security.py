"""Security and destroyability rules, asserted over every resource of every stack."""

from __future__ import annotations

import re

import pytest

from templates.naming import Naming
from templates.registry import build_templates
from tests.templates.cfn import (
    as_list,
    policy_documents,
    props,
    resources,
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
}
REGION = re.compile(r"\b(?:us|eu|ap|sa|ca|me|af|il|mx|cn)-(?:gov-)?[a-z]+-\d\b")
ACCOUNT = re.compile(r"(?<!\d)\d{12}(?!\d)")


@pytest.mark.requirement(
    "S001-LEAST-PRIVILEGE",
    "PCI.DSS.321-IAMPolicyNoStatementsWithAdminAccess",
    "PCI.DSS.321-IAMPolicyNoStatementsWithFullAccess",
)
def test_no_wildcard_actions(stack):
    _, template = stack
    for logical_id, document in policy_documents(template):
        for statement in statements(document):
            for action in as_list(statement.get("Action", [])):
                assert action != "*", f"{logical_id}: Action *"
                assert not re.fullmatch(r"[a-z0-9-]+:\*", action), f"{logical_id}: {action}"


@pytest.mark.requirement("S001-LEAST-PRIVILEGE")
def test_star_resource_only_where_aws_allows_nothing_narrower(stack):
    _, template = stack
    for logical_id, resource in resources(template).items():
        is_key_policy = resource["Type"] == "AWS::KMS::Key"
        for _, document in policy_documents({"Resources": {logical_id: resource}}):
            for statement in statements(document):
                if "*" not in as_list(statement.get("Resource", [])):
                    continue
                # In a key policy, "*" means the key itself.
                if is_key_policy:
                    continue
                actions = set(as_list(statement["Action"]))
                assert actions <= STAR_RESOURCE_ACTIONS, f"{logical_id}: {actions} on *"


@pytest.mark.requirement("S001-FUNCTION-LOGS")
def test_no_role_may_create_log_groups(stack):
    """Every log group is pre-created with a retention; none may reappear after delete."""
    _, template = stack
    for logical_id, document in policy_documents(template):
        for statement in statements(document):
            assert "logs:CreateLogGroup" not in as_list(statement.get("Action", [])), logical_id


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


def test_logical_ids_never_carry_the_suffix():
    """qa and prod templates differ only in names and tags, never in logical IDs."""
    one, other = build_templates(Naming("zq1")), build_templates(Naming("zq2"))
    for (name_one, t_one), (name_other, t_other) in zip(one.items(), other.items(), strict=True):
        assert name_one.replace("zq1", "zq2") == name_other
        assert set(t_one["Resources"]) == set(t_other["Resources"])
        assert not any("zq1" in logical_id.lower() for logical_id in t_one["Resources"])
