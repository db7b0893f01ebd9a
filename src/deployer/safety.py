"""What a change set would destroy, and the stack policy that protects the tables.

A change set that replaces or removes a resource holding data deletes that data (unless
the deployed template keeps the old resource with DeletionPolicy/UpdateReplacePolicy
Retain or Snapshot). The deployer stops such a change set even with --yes unless the
operator names each resource with --allow-replacement. The stack policy is the second,
server-side line: CloudFormation itself refuses to replace or remove the tables, whoever
runs the update (console, CLI, another tool); deleting the whole stack is not an update,
so the stack stays destroyable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from deployer.changeset import resource_change

# What is lost with each stateful resource type.
STATEFUL = {
    "AWS::DynamoDB::Table": "every item in the table",
    "AWS::SQS::Queue": "every message waiting in the queue",
    "AWS::KMS::Key": "the key, and with it everything encrypted under it "
    "(unreadable once the key's deletion completes)",
    "AWS::Logs::LogGroup": "every log event in the group",
    "AWS::S3::Bucket": "every object in the bucket",
}
KEPT = {"Retain", "RetainExceptOnCreate", "Snapshot"}
PROTECTED_TYPES = ("AWS::DynamoDB::Table",)
ALLOW_UPDATES: dict[str, Any] = {
    "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "Update:*", "Resource": "*"}]
}


@dataclass(frozen=True)
class Loss:
    """One stateful resource a change set would replace or remove."""

    logical_id: str
    resource_type: str
    physical_id: str
    action: str  # "replace", "may replace" or "remove"

    def line(self) -> str:
        """`replace AWS::DynamoDB::Table TransactionsTable (name): every item ... lost`."""
        where = f" ({self.physical_id})" if self.physical_id else ""
        return (
            f"{self.action} {self.resource_type} {self.logical_id}{where}: "
            f"{STATEFUL[self.resource_type]} would be lost"
        )


def data_losses(
    changes: Iterable[Mapping[str, Any]], deployed_template: Mapping[str, Any] | None
) -> list[Loss]:
    """The stateful resources the change set would delete (replacement or removal)."""
    deployed = (deployed_template or {}).get("Resources", {})
    losses = []
    for change in changes:
        rc = resource_change(change)
        kind, logical = rc.get("ResourceType", ""), rc.get("LogicalResourceId", "")
        if kind not in STATEFUL:
            continue
        old = deployed.get(logical, {})
        if rc.get("Action") == "Remove":
            action, policy = "remove", old.get("DeletionPolicy", "Delete")
        elif (rc.get("Action") == "Modify") and (rc.get("Replacement") in {"True", "Conditional"}):
            action = "replace" if rc["Replacement"] == "True" else "may replace"
            policy = old.get("UpdateReplacePolicy", "Delete")
        else:
            continue
        if policy in KEPT:
            continue  # the old resource and its data are kept
        losses.append(Loss(logical, kind, rc.get("PhysicalResourceId", ""), action))
    return losses


def protected_resources(template: Mapping[str, Any]) -> list[str]:
    """Logical ids the stack policy protects: every DynamoDB table."""
    return sorted(
        logical
        for logical, resource in template.get("Resources", {}).items()
        if resource.get("Type") in PROTECTED_TYPES
    )


def stack_policy(template: Mapping[str, Any], allowed: Iterable[str] = ()) -> dict[str, Any] | None:
    """Deny Update:Replace and Update:Delete on the tables, except those `allowed`; else allow.

    None when the template has no table: such a stack carries no policy.
    """
    protected = protected_resources(template)
    if not protected:
        return None
    statements: list[dict[str, Any]] = list(ALLOW_UPDATES["Statement"])
    denied = [logical for logical in protected if logical not in set(allowed)]
    if denied:
        statements.append(
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": ["Update:Replace", "Update:Delete"],
                "Resource": [f"LogicalResourceId/{logical}" for logical in denied],
            }
        )
    return {"Statement": statements}


DENY_ACTIONS = ["Update:Replace", "Update:Delete"]


def _written_by_us(statement: Mapping[str, Any]) -> bool:
    """True for a statement stack_policy() writes (the allow, or a deny on tables)."""
    if statement in ALLOW_UPDATES["Statement"]:
        return True
    resources = statement.get("Resource")
    return (
        (statement.get("Effect") == "Deny")
        and (statement.get("Principal") == "*")
        and (statement.get("Action") == DENY_ACTIONS)
        and isinstance(resources, list)
        and all(str(item).startswith("LogicalResourceId/") for item in resources)
        and set(statement) == {"Effect", "Principal", "Action", "Resource"}
    )


def with_operator_statements(
    policy: Mapping[str, Any], deployed: Mapping[str, Any] | None
) -> dict[str, Any]:
    """`policy` plus the statements of the deployed policy that we did not write.

    An operator may add statements to the stack policy (deny updates to the key during a
    freeze, say); the deployer keeps them rather than resetting what an operator set.
    """
    own = [dict(s) for s in (deployed or {}).get("Statement", []) if not _written_by_us(s)]
    statements = list(policy["Statement"])
    return {"Statement": statements + [s for s in own if s not in statements]}
