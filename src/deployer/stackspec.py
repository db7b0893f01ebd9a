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


def carries_tags(stack: Mapping[str, Any], tags: Mapping[str, str]) -> bool:
    """True when the deployed stack has every one of `tags` with the same value."""
    deployed = {tag["Key"]: tag["Value"] for tag in stack.get("Tags", [])}
    return all(deployed.get(key) == value for key, value in tags.items())


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


@dataclass(frozen=True)
class StackSpec:
    """One stack as we want it: name, template, explicit parameters, tags."""

    name: str
    base: str
    template: dict[str, Any]
    parameters: dict[str, str]
    tags: dict[str, str]
    # Parameters a deployed stack keeps; for a new stack the callable decides the value.
    sticky: Mapping[str, Callable[[], str]] = field(default_factory=dict)

    def settled(self, stack: Mapping[str, Any] | None) -> StackSpec:
        """This spec with every sticky parameter decided: as deployed, else freshly."""
        if not self.sticky:
            return self
        deployed = {
            p["ParameterKey"]: p.get("ParameterValue") for p in (stack or {}).get("Parameters", [])
        }
        decided = {
            key: deployed[key] if deployed.get(key) is not None else decide()
            for key, decide in self.sticky.items()
            if key in self.declared()
        }
        return replace(self, parameters={**self.parameters, **decided}, sticky={})

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
        """Every declared parameter's value once deployed: ours, else the template default."""
        values: dict[str, str | None] = {}
        for key, declaration in self.declared().items():
            if key in self.parameters:
                values[key] = self.parameters[key]
            elif "Default" in declaration:
                values[key] = str(declaration["Default"])
            else:
                values[key] = None
        return values

    def missing_parameters(self) -> list[str]:
        """Declared parameters with neither a value nor a default."""
        return [key for key, value in self.effective_parameters().items() if value is None]

    def difference(self, stack: Mapping[str, Any], deployed_template: Any) -> str | None:
        """Why the deployed stack differs from this spec, or None when it is up to date."""
        if not carries_tags(stack, self.tags) or (len(stack.get("Tags", [])) != len(self.tags)):
            return "tags differ"
        deployed_params = {
            p["ParameterKey"]: p.get("ParameterValue") for p in stack.get("Parameters", [])
        }
        for key, declaration in self.declared().items():
            if declaration.get("NoEcho") in (True, "true", "True"):
                return f"parameter {key} is NoEcho and cannot be compared"
        if deployed_params != self.effective_parameters():
            changed = sorted(
                key
                for key in set(deployed_params) | set(self.effective_parameters())
                if deployed_params.get(key) != self.effective_parameters().get(key)
            )
            return f"parameters differ: {', '.join(changed)}"
        if isinstance(deployed_template, str):
            try:
                deployed_template = json.loads(deployed_template)
            except ValueError:
                return "deployed template is not JSON"
        # Compare parsed JSON: whitespace and key order are not changes.
        if deployed_template != json.loads(self.body):
            return "template differs"
        return None
