"""IAM roles built only from awacs statements, scoped to this stack's own resources."""

from __future__ import annotations

from collections.abc import Sequence

from awacs.aws import Allow, PolicyDocument, Principal, Statement
from awacs.sts import AssumeRole
from troposphere import Template
from troposphere.iam import Policy, Role

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


def trust_policy(service: str) -> PolicyDocument:
    """Who may assume the role: one AWS service principal."""
    return policy(
        [Statement(Effect=Allow, Principal=Principal("Service", [service]), Action=[AssumeRole])]
    )


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
) -> Role:
    """A role for one AWS service with one inline policy of the given statements.

    `role_name` overrides the `{base}-{suffix}` name (e.g. to append the stack token).
    """
    name = role_name if role_name is not None else naming.name(base_name, Kind.ROLE)
    return t.add_resource(
        Role(
            logical_id,
            RoleName=name,
            Description=description,
            AssumeRolePolicyDocument=trust_policy(service),
            Policies=[Policy(PolicyName=f"{base_name}-policy", PolicyDocument=policy(statements))],
            Tags=naming.tags(component),
        )
    )
