"""Reading generated template dicts: values at a path, references between resources, names.

Shared by the evidence report, the runbook and the diagrams, which all describe the
templates from their JSON form (what is deployed), never from the builders' objects.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

ABSENT = object()
# `${Name}` or `${Name.Attribute}` inside Fn::Sub; `${!Literal}` is an escaped dollar.
SUB_VARIABLE = re.compile(r"\$\{([A-Za-z0-9]+)(?:\.[A-Za-z0-9.]+)?\}")
# The property that holds a resource's physical name, by type: the names that carry the
# suffix (tests/templates check each ends with it).
NAME_PROPERTIES = {
    "AWS::Lambda::Function": "FunctionName",
    "AWS::IAM::Role": "RoleName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SNS::Topic": "TopicName",
    "AWS::CloudWatch::Alarm": "AlarmName",
    "AWS::CloudWatch::Dashboard": "DashboardName",
    "AWS::Events::Rule": "Name",
    "AWS::Scheduler::Schedule": "Name",
    "AWS::KMS::Alias": "AliasName",
    "AWS::ApiGateway::RestApi": "Name",
    "AWS::ApiGateway::ApiKey": "Name",
    "AWS::ApiGateway::UsagePlan": "UsagePlanName",
    "AWS::WAFv2::WebACL": "Name",
}
# What the console lists a resource by: its name, or a path or stage name.
LABEL_PROPERTIES = {
    **NAME_PROPERTIES,
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::ApiGateway::Stage": "StageName",
}


def read_path(item: Any, path: str) -> Any:
    """The value at a dotted path (`Properties.Tags.Environment`), or ABSENT.

    A list of `{"Key": ..., "Value": ...}` (CloudFormation's tag shape) is indexed by key;
    any other list by position.
    """
    value = item
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part, ABSENT)
        elif isinstance(value, list) and part.isdigit():
            value = value[int(part)] if int(part) < len(value) else ABSENT
        elif isinstance(value, list) and all(isinstance(v, dict) and "Key" in v for v in value):
            value = next((v.get("Value") for v in value if v["Key"] == part), ABSENT)
        else:
            return ABSENT
        if value is ABSENT:
            return ABSENT
    return value


def references(value: Any) -> Iterator[str]:
    """Every logical id (or parameter) `value` refers to by Ref, Fn::GetAtt or Fn::Sub."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                yield item
            elif key == "Fn::GetAtt":
                target = item[0] if isinstance(item, list) else item.split(".")[0]
                yield target
            elif key == "Fn::Sub":
                text, variables = (item[0], item[1]) if isinstance(item, list) else (item, {})
                yield from (name for name in SUB_VARIABLE.findall(text) if name not in variables)
                yield from references(variables)
            else:
                yield from references(item)
    elif isinstance(value, list):
        for item in value:
            yield from references(item)


def physical_name(template: dict, logical_id: str) -> str | None:
    """The resource's literal physical name, when the template sets one."""
    resource = template.get("Resources", {}).get(logical_id)
    if resource is None:
        return None
    prop = LABEL_PROPERTIES.get(resource["Type"])
    name = resource.get("Properties", {}).get(prop) if prop else None
    return name if isinstance(name, str) else None


def display(template: dict, value: Any) -> str:
    """A value as an operator reads it: a Ref or GetAtt of a named resource becomes its
    name, a Sub its text, anything else compact JSON-ish text."""
    if isinstance(value, dict) and len(value) == 1:
        ((key, item),) = value.items()
        if key == "Ref" and isinstance(item, str):
            return physical_name(template, item) or f"Ref {item}"
        if key == "Fn::GetAtt":
            target, attribute = item if isinstance(item, list) else item.split(".", 1)
            name = physical_name(template, target)
            if name and attribute in ("QueueName", "Name"):
                return name
            return f"{target}.{attribute}"
        if key == "Fn::Sub":
            return item[0] if isinstance(item, list) else item
    if isinstance(value, str):
        return value
    return str(value)


def condition_holds(
    template: Mapping[str, Any], condition: Any, parameters: Mapping[str, str] | None = None
) -> bool:
    """A template condition (a name or an expression), with `parameters` given or at their
    defaults: Fn::Equals over Refs and literals, Fn::Not, Fn::And, Fn::Or, Condition."""
    if isinstance(condition, str):
        return condition_holds(template, template["Conditions"][condition], parameters)
    ((function, argument),) = condition.items()
    if function == "Condition":
        return condition_holds(template, argument, parameters)
    if function == "Fn::Not":
        return not condition_holds(template, argument[0], parameters)
    if function in ("Fn::And", "Fn::Or"):
        found = [condition_holds(template, item, parameters) for item in argument]
        return all(found) if function == "Fn::And" else any(found)
    if function == "Fn::Equals":
        left, right = (_parameter_value(template, side, parameters) for side in argument)
        return left == right
    raise ValueError(f"condition function {function} is not modelled")


def _parameter_value(template: Mapping[str, Any], value: Any, parameters) -> Any:
    if isinstance(value, dict) and set(value) == {"Ref"}:
        name = value["Ref"]
        if parameters and name in parameters:
            return parameters[name]
        return template["Parameters"][name].get("Default")
    return value


def decide_conditions(
    template: Mapping[str, Any], value: Any, parameters: Mapping[str, str] | None = None
) -> Any:
    """`value` with every Fn::If decided as a stack with `parameters` (or the defaults)
    would decide it."""
    if isinstance(value, list):
        return [decide_conditions(template, item, parameters) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Fn::If"}:
        name, when_true, when_false = value["Fn::If"]
        chosen = when_true if condition_holds(template, name, parameters) else when_false
        return decide_conditions(template, chosen, parameters)
    return {key: decide_conditions(template, item, parameters) for key, item in value.items()}
