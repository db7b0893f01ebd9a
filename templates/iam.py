"""IAM roles built only from awacs statements, scoped to this stack's own resources.

Each role's permissions are a customer-managed policy of its own (PCI DSS 7.1.2 and NIST AC-6
reviewers ask for no inline policies): the policy is a versioned IAM entity an auditor can
list, diff and review apart from the role, and is attached through the role's
`ManagedPolicyArns`, so anything that uses the role waits until the policy is attached.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from awacs.aws import Allow, Condition, PolicyDocument, Principal, Statement
from awacs.sts import AssumeRole
from troposphere import GetAtt, Template
from troposphere.iam import ManagedPolicy, Role

from templates.naming import Kind, Naming

POLICY_VERSION = "2012-10-17"


def policy(statements: Sequence[Statement]) -> PolicyDocument:
    """A policy document of the given statements."""
    return PolicyDocument(Version=POLICY_VERSION, Statement=list(statements))


def allow(actions: Sequence, resources: Sequence, sid: str, condition=None) -> Statement:
    """One Allow statement; `sid` says in words why the grant exists."""
    kwargs = {"Sid": sid, "Effect": Allow, "Action": list(actions), "Resource": list(resources)}
    if condition is not None:
        kwargs["Condition"] = condition
    return Statement(**kwargs)


def trust_policy(service: str, condition: Condition | None = None) -> PolicyDocument:
    """Who may assume the role: one AWS service principal (on conditions, when given)."""
    kwargs = {"Effect": Allow, "Principal": Principal("Service", [service]), "Action": [AssumeRole]}
    if condition is not None:
        kwargs["Condition"] = condition
    return policy([Statement(**kwargs)])


@dataclass(frozen=True)
class ServiceRole:
    """A role and the customer-managed policy that holds its permissions."""

    role: Role
    policy: ManagedPolicy

    @property
    def arn(self) -> GetAtt:
        return self.role.get_att("Arn")

    @property
    def statements(self) -> list[Statement]:
        """The policy's statements (mutable until the template is rendered)."""
        return self.policy.PolicyDocument.Statement


def add_service_role(
    t: Template,
    naming: Naming,
    logical_id: str,
    *,
    base_name: str,
    service: str,
    statements: Sequence[Statement],
    component: str,
    description: str,
    role_name=None,
    trust_condition: Condition | None = None,
    condition: str | None = None,
) -> ServiceRole:
    """A role for one AWS service and its own managed policy of the given statements.

    `role_name` overrides the `{base}-{suffix}` name (e.g. to append the stack token); the
    policy takes CloudFormation's generated name (stack, logical id, random part), unique
    per account as IAM requires. `condition` creates both only when it holds.
    """
    name = role_name if role_name is not None else naming.name(base_name, Kind.ROLE)
    extra = {"Condition": condition} if condition else {}
    managed = t.add_resource(
        ManagedPolicy(
            f"{logical_id}Policy",
            Description=f"What {base_name} may do: {description}"[:1000],
            PolicyDocument=policy(statements),
            **extra,
        )
    )
    role = t.add_resource(
        Role(
            logical_id,
            RoleName=name,
            Description=description,
            AssumeRolePolicyDocument=trust_policy(service, trust_condition),
            ManagedPolicyArns=[managed.ref()],
            Tags=naming.tags(component),
            **extra,
        )
    )
    return ServiceRole(role=role, policy=managed)
