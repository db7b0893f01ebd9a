"""Read-only helpers for asserting on template dicts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import cfnlint

from templates import cfnread

# Properties that hold a physical name, by resource type (one table for tests and reports).
NAME_PROPERTIES = cfnread.NAME_PROPERTIES


def resources(template: dict, type_name: str | None = None) -> dict[str, dict]:
    """Logical id -> resource, optionally only of one type."""
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if type_name is None or resource["Type"] == type_name
    }


def one(template: dict, type_name: str) -> tuple[str, dict]:
    """The single resource of a type (fails when there are none or several)."""
    found = resources(template, type_name)
    assert len(found) == 1, f"expected one {type_name}, found {sorted(found)}"
    return next(iter(found.items()))


def props(resource: dict) -> dict:
    """A resource's Properties (empty when it has none)."""
    return resource.get("Properties", {})


def walk(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """Every (path, value) pair in a nested structure, leaves and containers."""
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk(item, (*path, index))


def strings(value: Any) -> Iterator[tuple[tuple, str]]:
    """Every string leaf (and dict key) with its path."""
    for path, item in walk(value):
        if isinstance(item, str):
            yield path, item
        if isinstance(item, dict):
            for key in item:
                yield (*path, key), key


def refs_to(value: Any, logical_id: str) -> bool:
    """Whether `value` refers to `logical_id` by Ref, GetAtt or inside a Sub."""
    for _, item in walk(value):
        if isinstance(item, dict):
            if item.get("Ref") == logical_id:
                return True
            get_att = item.get("Fn::GetAtt")
            if isinstance(get_att, list) and get_att[0] == logical_id:
                return True
            sub = item.get("Fn::Sub")
            text = sub[0] if isinstance(sub, list) else sub
            if isinstance(text, str) and (
                "${" + logical_id + "}" in text or "${" + logical_id + "." in text
            ):
                return True
    return False


def policy_documents(template: dict) -> Iterator[tuple[str, dict]]:
    """Every IAM-language document in the template: role policies, trust, key, queue, topic."""
    for logical_id, resource in resources(template).items():
        p = props(resource)
        for key in ("AssumeRolePolicyDocument", "KeyPolicy", "PolicyDocument"):
            if key in p:
                yield logical_id, p[key]
        for policy in p.get("Policies", []):
            yield logical_id, policy["PolicyDocument"]


def role_policies(template: dict, role_id: str) -> list[dict]:
    """Every policy document that applies to a role: its inline policies, and the
    customer-managed policies of this template attached to it (through its
    ManagedPolicyArns, conditional ones included, or the policy's own Roles)."""
    role = template["Resources"][role_id]
    documents = [policy["PolicyDocument"] for policy in props(role).get("Policies", [])]
    managed = resources(template, "AWS::IAM::ManagedPolicy")
    attached = {
        item["Ref"]
        for _, item in walk(props(role).get("ManagedPolicyArns", []))
        if isinstance(item, dict) and item.get("Ref") in managed
    }
    attached |= {
        policy_id
        for policy_id, policy in managed.items()
        if {"Ref": role_id} in props(policy).get("Roles", [])
    }
    documents += [props(managed[policy_id])["PolicyDocument"] for policy_id in sorted(attached)]
    return documents


def role_statements(template: dict, role_id: str) -> list[dict]:
    """The statements of every policy that applies to a role."""
    return [s for document in role_policies(template, role_id) for s in statements(document)]


def statements(document: dict) -> list[dict]:
    """The statements of a policy document as a list."""
    found = document["Statement"]
    return found if isinstance(found, list) else [found]


def as_list(value: Any) -> list:
    """A scalar or a list, as a list."""
    return value if isinstance(value, list) else [value]


def tag_value(resource: dict, key: str) -> Any:
    """The value of tag `key` whatever shape the resource's Tags take."""
    tags = props(resource).get("Tags")
    if isinstance(tags, dict):
        return tags.get(key)
    for tag in tags or []:
        if tag.get("Key") == key:
            return tag.get("Value")
    return None


@cache
def _schemas() -> dict[str, dict]:
    """CloudFormation resource schemas as shipped with cfn-lint, by type name."""
    found: dict[str, dict] = {}
    root = Path(cfnlint.__file__).parent / "data" / "schemas" / "resources"
    for path in root.rglob("*.json"):
        schema = json.loads(path.read_text())
        if isinstance(schema, dict) and "typeName" in schema:
            found.setdefault(schema["typeName"], schema)
    return found


def supports_tags(type_name: str) -> bool:
    """Whether CloudFormation lets this resource type carry Tags."""
    schema = _schemas().get(type_name)
    return bool(schema) and "Tags" in schema.get("properties", {})


def table_named_by_arn(template: dict, text) -> str | None:
    """The logical id of this template's table whose ARN `text` (a plain Fn::Sub string)
    builds from its declared TableName (a grant that must be valid whether or not a
    conditional table exists)."""
    prefix = "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/"
    if not isinstance(text, str) or not text.startswith(prefix):
        return None
    for logical_id, table in resources(template, "AWS::DynamoDB::Table").items():
        if props(table).get("TableName") == text.removeprefix(prefix):
            return logical_id
    return None
