"""The change set as a reviewer reads it: what changes, down to each property.

Like `cdk diff`, property-level changes come from comparing the deployed template with the
new one (so they also show on moto, whose change sets carry no details), completed by the
change set's own details for what a parameter or another resource changes. Permission
changes (IAM statements anywhere in a resource, Lambda permissions, security-group rules)
are listed again apart, statement by statement, marked `!!`, because they are the changes
a reviewer must not miss.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from deployer.changeset import resource_change
from deployer.output import table

ABSENT = object()
MAX_VALUE = 100
MAX_DIFFS = 20
# Resource attributes that are not part of what gets deployed (linter suppressions, ...).
IGNORED_ATTRIBUTES = {"Metadata"}
SECURITY_GROUP_RULES = ("SecurityGroupIngress", "SecurityGroupEgress")
RULE_TYPES = {"AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"}


def show(value: Any) -> str:
    """A template value as compact JSON, cut to MAX_VALUE characters."""
    if value is ABSENT:
        return "(none)"
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return text if len(text) <= MAX_VALUE else text[: MAX_VALUE - 3] + "..."


def differences(old: Any, new: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """Every leaf that differs between two template values, as (path, old, new)."""
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(set(old) | set(new)):
            child = f"{path}.{key}" if path else str(key)
            found += differences(old.get(key, ABSENT), new.get(key, ABSENT), child)
        return found
    if isinstance(old, list) and isinstance(new, list) and (len(old) == len(new)):
        found = []
        for index, (before, after) in enumerate(zip(old, new, strict=True)):
            found += differences(before, after, f"{path}[{index}]")
        return found
    return [(path, old, new)]


def resource_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """`path: old -> new` for each changed property (or attribute) of one resource."""
    strip = {k: v for k, v in old.items() if k not in IGNORED_ATTRIBUTES}
    keep = {k: v for k, v in new.items() if k not in IGNORED_ATTRIBUTES}
    return [f"{path}: {show(a)} -> {show(b)}" for path, a, b in differences(strip, keep)]


def detail_lines(rc: Mapping[str, Any], covered: Iterable[str]) -> list[str]:
    """Changes the template diff cannot show: caused by a parameter or another resource."""
    covered = list(covered)
    lines = []
    for detail in rc.get("Details", []) or []:
        target = detail.get("Target", {})
        path = ".".join(part for part in (target.get("Attribute"), target.get("Name")) if part)
        if any(line.startswith(path) for line in covered):
            continue
        source, cause = detail.get("ChangeSource", ""), detail.get("CausingEntity", "")
        via = {
            "ParameterReference": f"parameter {cause}",
            "ResourceReference": f"resource {cause}",
            "ResourceAttribute": f"attribute {cause}",
        }.get(source, source or "CloudFormation")
        recreate = " (requires replacement)" if target.get("RequiresRecreation") == "Always" else ""
        lines.append(f"{path}: changes with {via}{recreate}")
    return sorted(set(lines))


def statements(value: Any) -> list[Any]:
    """Every IAM policy statement anywhere inside a resource's properties."""
    found: list[Any] = []
    if isinstance(value, dict):
        inner = value.get("Statement")
        if isinstance(inner, list):
            return list(inner)
        if isinstance(inner, dict):
            return [inner]
        for child in value.values():
            found += statements(child)
    elif isinstance(value, list):
        for child in value:
            found += statements(child)
    return found


def grants(resource: Mapping[str, Any]) -> set[str]:
    """What a resource allows or denies, one canonical line per statement, grant or rule."""
    if not resource:
        return set()
    kind, properties = resource.get("Type", ""), resource.get("Properties", {})
    found = {f"statement {show(item)}" for item in statements(properties)}
    if kind == "AWS::Lambda::Permission":
        found.add(f"lambda permission {show(properties)}")
    for key in SECURITY_GROUP_RULES:
        found |= {f"{key} {show(rule)}" for rule in properties.get(key, []) or []}
    if kind in RULE_TYPES:
        found.add(f"{kind.rsplit('::', 1)[-1]} {show(properties)}")
    return found


def security_lines(
    logical: str, old: Mapping[str, Any] | None, new: Mapping[str, Any] | None
) -> list[str]:
    """`!! + ...` / `!! - ...` for each permission the change adds or removes."""
    before, after = grants(old or {}), grants(new or {})
    return [f"!! {logical} + {line}" for line in sorted(after - before)] + [
        f"!! {logical} - {line}" for line in sorted(before - after)
    ]


def render(
    changes: list[dict[str, Any]],
    change_set_type: str,
    old_template: Mapping[str, Any] | None,
    new_template: Mapping[str, Any],
) -> list[str]:
    """The preview lines: summary table, property changes, then permission changes."""
    if not changes:
        # CloudFormation lists no resource changes when only stack-level settings change
        # (moto also lists none for parameter-only updates); the execution still applies them.
        return [f"{change_set_type}: no resource changes listed"]
    old_resources = (old_template or {}).get("Resources", {}) if old_template else {}
    new_resources = new_template.get("Resources", {})
    rows, details, security = [], [], []
    for change in changes:
        rc = resource_change(change)
        logical, action = rc.get("LogicalResourceId", ""), rc.get("Action", "")
        replacement = rc.get("Replacement", "")
        mark = {"True": "REPLACE !!", "Conditional": "MAY REPLACE !"}.get(replacement, "-")
        rows.append([action, logical, rc.get("ResourceType", ""), mark])
        old, new = old_resources.get(logical), new_resources.get(logical)
        if action == "Modify":
            lines = resource_differences(old or {}, new or {}) if (old and new) else []
            lines += detail_lines(rc, lines)
            if len(lines) > MAX_DIFFS:
                lines = [*lines[:MAX_DIFFS], f"... and {len(lines) - MAX_DIFFS} more"]
            details += [f"~ {logical}"] + [f"    {line}" for line in lines]
        security += security_lines(
            logical, old if action != "Add" else None, new if action != "Remove" else None
        )
    rows.sort(key=lambda row: (row[0], row[1]))
    said = [f"{change_set_type}: {len(rows)} resource change(s)"]
    said += [f"  {line}" for line in table(rows, ["Action", "LogicalId", "Type", "Replacement"])]
    if details:
        said += ["property changes:"] + [f"  {line}" for line in details]
    if security:
        said += ["IAM and security-group changes (review these):"]
        said += [f"  {line}" for line in security]
    return said
