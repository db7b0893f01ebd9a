"""Small helpers every builder shares: parameters, outputs, console groups, checkov skips."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from troposphere import Equals, Export, Output, Parameter, Ref, Sub, Template

CFN_VERSION = "2010-09-09"


def new_template(description: str) -> Template:
    """An empty template with the format version and a description."""
    t = Template(Description=description)
    t.set_version(CFN_VERSION)
    return t


def add_parameter(
    t: Template,
    name: str,
    *,
    description: str,
    default: str | None = None,
    allowed_pattern: str | None = None,
    constraint: str | None = None,
    allowed_values: list[str] | None = None,
    param_type: str = "String",
    min_value: int | None = None,
    max_value: int | None = None,
    label: str | None = None,
) -> Parameter:
    """Add a parameter fit for the console: description, constraint, label."""
    kwargs: dict[str, Any] = {"Type": param_type, "Description": description}
    if min_value is not None:
        kwargs["MinValue"] = min_value
    if max_value is not None:
        kwargs["MaxValue"] = max_value
    if default is not None:
        kwargs["Default"] = default
    if allowed_pattern is not None:
        kwargs["AllowedPattern"] = allowed_pattern
    if allowed_values is not None:
        kwargs["AllowedValues"] = allowed_values
    if constraint is not None:
        kwargs["ConstraintDescription"] = constraint
    param = t.add_parameter(Parameter(name, **kwargs))
    if label:
        t.set_parameter_label(param, label)
    return param


def add_output(
    t: Template, name: str, value: Any, description: str, export: str | None = None
) -> Output:
    """Add an output, exported under `export` when given."""
    kwargs: dict[str, Any] = {"Description": description, "Value": value}
    if export:
        kwargs["Export"] = Export(export)
    return t.add_output(Output(name, **kwargs))


def group_parameters(t: Template, groups: Iterable[tuple[str, list[Parameter]]]) -> None:
    """Order the parameters in the console (AWS::CloudFormation::Interface)."""
    for label, params in groups:
        for param in params:
            t.add_parameter_to_group(param, label)


# Placeholder marks for json_sub: characters json.dumps always escapes, so no literal
# text in a body can be mistaken for a variable.
_VAR_OPEN, _VAR_CLOSE = "\x00", "\x01"


def var(name: str) -> str:
    """A `${name}` placeholder inside a body given to `json_sub`."""
    return f"{_VAR_OPEN}{name}{_VAR_CLOSE}"


def json_sub(body: Mapping[str, Any], variables: Mapping[str, Any] | None = None) -> Sub:
    """A JSON document as `Fn::Sub`: every `var(name)` becomes `${name}`, any literal
    `${` is escaped as `${!`; `variables` maps the non-pseudo names to values."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":")).replace("${", "${!")
    for mark, literal in ((_VAR_OPEN, "${"), (_VAR_CLOSE, "}")):
        text = text.replace(json.dumps(mark)[1:-1], literal)
    return Sub(text, **dict(variables or {}))


def require_region(t: Template, region: str, why: str) -> None:
    """A Rules assertion: creating the stack in any other region fails before any resource."""
    t.add_rule(
        "DeployOnlyTo" + region.title().replace("-", ""),
        {
            "Assertions": [
                {
                    "Assert": Equals(Ref("AWS::Region"), region),
                    "AssertDescription": f"This stack deploys only to {region} ({why}); "
                    f"switch the console or --region to {region}.",
                }
            ]
        },
    )


def to_json(template: Template | Mapping[str, Any]) -> str:
    """Deterministic JSON: sorted keys, two-space indent, trailing newline."""
    body = template.to_dict() if isinstance(template, Template) else template
    return json.dumps(body, indent=2, sort_keys=True) + "\n"
