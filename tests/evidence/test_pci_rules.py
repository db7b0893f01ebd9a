"""PCI DSS rules of the cdk-nag pack that no other test states on its own."""

from __future__ import annotations

import pytest

from templates.cfnread import references


@pytest.mark.requirement("PCI.DSS.321-IAMUserNoPolicies", "PCI.DSS.321-IAMGroupHasUsers")
def test_policies_attach_to_roles_only_never_to_a_user_or_group(built):
    for name, template in built.items():
        for logical_id, resource in template["Resources"].items():
            assert resource["Type"] not in ("AWS::IAM::User", "AWS::IAM::Group"), logical_id
            if resource["Type"] in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
                props = resource["Properties"]
                assert "Users" not in props and "Groups" not in props, (name, logical_id)
                attached = props.get("Roles") or [
                    role
                    for role, r in template["Resources"].items()
                    if r["Type"] == "AWS::IAM::Role"
                    and logical_id in set(references(r["Properties"].get("ManagedPolicyArns", [])))
                ]
                assert attached, f"{name}: {logical_id} is attached to no role"
