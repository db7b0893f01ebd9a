"""What we want a stack to be, and whether it already is: template, parameters, tags."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from templates.common import to_json
from templates.naming import PROJECT

# CreateChangeSet's TemplateBody limit; larger bodies go through S3 (limit 1 MB).
MAX_TEMPLATE_BODY = 51_200
# A custom name on any of these needs CAPABILITY_NAMED_IAM (an inline policy's
# PolicyName does not: it is not a standalone IAM entity).
IAM_NAME_PROPERTIES = {
    "AWS::IAM::Role": "RoleName",
    "AWS::IAM::User": "UserName",
    "AWS::IAM::Group": "GroupName",
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::IAM::InstanceProfile": "InstanceProfileName",
}


def stack_tags(suffix: str) -> dict[str, str]:
    """The stack-level tags that mark a stack as this project's (see templates/naming.py)."""
    return {"Project": PROJECT, "Environment": suffix}


def capabilities(template: Mapping[str, Any]) -> tuple[str, ...]:
    """The capabilities the template needs, computed from its resources."""
    needed: set[str] = set()
    for resource in template.get("Resources", {}).values():
        kind = resource.get("Type", "")
        if kind.startswith("AWS::IAM::"):
            needed.add("CAPABILITY_IAM")
            name_property = IAM_NAME_PROPERTIES.get(kind)
            if name_property and (name_property in resource.get("Properties", {})):
                needed.add("CAPABILITY_NAMED_IAM")
        if kind == "AWS::CloudFormation::Stack":
            needed.add("CAPABILITY_IAM")  # nested stacks may hold IAM resources
    if template.get("Transform"):
        needed.add("CAPABILITY_AUTO_EXPAND")
    if "CAPABILITY_NAMED_IAM" in needed:
        needed.discard("CAPABILITY_IAM")  # NAMED_IAM implies it
    return tuple(sorted(needed))


def is_no_echo(declaration: Mapping[str, Any]) -> bool:
    """True for a parameter whose value CloudFormation never shows (reported as ****)."""
    return declaration.get("NoEcho") in (True, "true", "True")


def deployed_parameters(stack: Mapping[str, Any] | None) -> dict[str, str | None]:
    """The parameter values a described stack was deployed with."""
    return {p["ParameterKey"]: p.get("ParameterValue") for p in (stack or {}).get("Parameters", [])}


MASK = "****"


def _is_default(declaration: Mapping[str, Any], value: str | None) -> bool:
    """True when leaving the parameter out gives it this (deployed) value: its default.

    Such a parameter is not sent at all rather than as UsePreviousValue: the same value,
    fewer parameters (and moto counts a parameter first sent on an update as changed).
    """
    return (
        (not is_no_echo(declaration))
        and ("Default" in declaration)
        and (str(declaration["Default"]) == value)
    )


@dataclass(frozen=True)
class ParameterChange:
    """One parameter whose value the change would change (None: absent on that side)."""

    key: str
    old: str | None
    new: str | None

    def line(self) -> str:
        """`key: old -> new`, with (none) for a side where the parameter is absent."""
        old = "(none)" if self.old is None else repr(self.old)
        new = "(none)" if self.new is None else repr(self.new)
        return f"{self.key}: {old} -> {new}"


@dataclass(frozen=True)
class StackSpec:
    """One stack as we want it: name, template, explicit parameters, tags.

    Parameters work as `aws cloudformation deploy` users expect: the explicit ones (those
    the deployer computes and those the operator gives) are sent with their value; on an
    update every other declared parameter the deployed stack has keeps its deployed value
    (UsePreviousValue; left out when that value is the template default), so a value set in
    the console survives; the rest take the template default.
    """

    name: str
    base: str
    template: dict[str, Any]
    parameters: dict[str, str]
    tags: dict[str, str]
    # Parameters a deployed stack keeps; for a new stack the callable decides the value.
    sticky: Mapping[str, Callable[[], str]] = field(default_factory=dict)
    # The tags that make a stack ours (a subset of `tags`); default: all of them.
    owner_tags: Mapping[str, str] | None = None
    role_arn: str | None = None
    notification_arns: tuple[str, ...] | None = None
    # The stack policy the stack should carry (None: the deployer sets none).
    stack_policy: Mapping[str, Any] | None = None
    # Set by settled(): the deployed values, and the keys sent as UsePreviousValue.
    deployed: Mapping[str, str | None] = field(default_factory=dict)
    previous: tuple[str, ...] = ()

    @property
    def ownership(self) -> Mapping[str, str]:
        """The tags a deployed stack must carry before we change it."""
        return self.tags if self.owner_tags is None else self.owner_tags

    def missing_tags(self, stack: Mapping[str, Any]) -> list[str]:
        """Our ownership tags the deployed stack lacks (or carries with another value)."""
        deployed = {tag["Key"]: tag["Value"] for tag in stack.get("Tags", [])}
        return [
            f"{key}={value}"
            for key, value in sorted(self.ownership.items())
            if deployed.get(key) != value
        ]

    def settled(self, stack: Mapping[str, Any] | None) -> StackSpec:
        """This spec against the deployed stack (None: a create): sticky and previous decided."""
        deployed = deployed_parameters(stack)
        declared = self.declared()
        decided = {
            key: value if (value := deployed.get(key)) is not None else decide()
            for key, decide in self.sticky.items()
            if key in declared
        }
        parameters = {**self.parameters, **decided}
        previous = tuple(
            sorted(
                key
                for key in declared
                if (key in deployed)
                and (key not in parameters)
                and not _is_default(declared[key], deployed[key])
            )
        )
        return replace(self, parameters=parameters, sticky={}, deployed=deployed, previous=previous)

    @property
    def body(self) -> str:
        """The template exactly as generate.py writes it to build/."""
        return to_json(self.template)

    @property
    def capabilities(self) -> tuple[str, ...]:
        """Capabilities computed from the template."""
        return capabilities(self.template)

    def declared(self) -> dict[str, Any]:
        """The template's Parameters section."""
        return dict(self.template.get("Parameters", {}))

    def effective_parameters(self) -> dict[str, str | None]:
        """Every declared parameter's value once deployed: ours, the deployed one, the default."""
        values: dict[str, str | None] = {}
        for key, declaration in self.declared().items():
            if key in self.parameters:
                values[key] = self.parameters[key]
            elif key in self.previous:
                values[key] = self.deployed.get(key)
            elif "Default" in declaration:
                values[key] = str(declaration["Default"])
            else:
                values[key] = None
        return values

    def missing_parameters(self) -> list[str]:
        """Declared parameters with neither a value nor a default."""
        return [key for key, value in self.effective_parameters().items() if value is None]

    def parameter_changes(self) -> list[ParameterChange]:
        """Each parameter the change set changes, old -> new; NoEcho values masked."""
        declared, wanted = self.declared(), self.effective_parameters()
        changes = []
        for key in sorted(set(self.deployed) | set(wanted)):
            old, new = self.deployed.get(key), wanted.get(key)
            secret = is_no_echo(declared.get(key, {})) or (old == MASK)
            if key in self.previous or ((old == new) and not secret):
                continue
            if secret:
                old, new = (None if old is None else MASK), (None if new is None else MASK)
            changes.append(ParameterChange(key, old, new))
        return changes

    def difference(
        self,
        stack: Mapping[str, Any],
        deployed_template: Any,
    ) -> str | None:
        """Why the deployed stack differs from this spec, or None when it is up to date."""
        deployed_tags = {tag["Key"]: tag["Value"] for tag in stack.get("Tags", [])}
        if deployed_tags != self.tags:
            return "tags differ"
        for key, declaration in self.declared().items():
            if is_no_echo(declaration) and (key in self.parameters):
                return f"parameter {key} is NoEcho and cannot be compared"
        changed = [change.key for change in self.parameter_changes()]
        if changed:
            return f"parameters differ: {', '.join(changed)}"
        if (self.role_arn is not None) and (stack.get("RoleARN") != self.role_arn):
            return "service role (--role-arn) differs"
        if (self.notification_arns is not None) and (
            sorted(stack.get("NotificationARNs", [])) != sorted(self.notification_arns)
        ):
            return "notification ARNs differ"
        # Compare parsed JSON: whitespace and key order are not changes.
        if deployed_template != json.loads(self.body):
            return "template differs"
        return None
