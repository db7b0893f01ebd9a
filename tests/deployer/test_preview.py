"""The preview a reviewer reads: property-level changes, permission changes marked `!!`."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from deployer.preview import differences, grants, render
from templates import registry
from templates.naming import Naming

ROLE = {
    "Type": "AWS::IAM::Role",
    "Properties": {
        "AssumeRolePolicyDocument": {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ]
        },
        "Policies": [
            {
                "PolicyName": "table",
                "PolicyDocument": {
                    "Statement": [
                        {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "arn:t"}
                    ]
                },
            }
        ],
    },
    "Metadata": {"checkov": "suppressions are not deployed"},
}
FUNCTION = {
    "Type": "AWS::Lambda::Function",
    "Properties": {"MemorySize": 256, "Code": {"S3Key": {"Ref": "CodeKey"}}, "Layers": ["a"]},
}


def added(logical: str, kind: str) -> Any:
    return {
        "Type": "Resource",
        "ResourceChange": {"Action": "Add", "LogicalResourceId": logical, "ResourceType": kind},
    }


def modify(logical: str, kind: str, details: list[dict[str, Any]] | None = None) -> Any:
    return {
        "Type": "Resource",
        "ResourceChange": {
            "Action": "Modify",
            "LogicalResourceId": logical,
            "ResourceType": kind,
            "Replacement": "False",
            "Details": details or [],
        },
    }


def test_modified_resources_show_each_changed_property() -> None:
    old = {"Resources": {"Fn": FUNCTION}}
    new = copy.deepcopy(old)
    new["Resources"]["Fn"]["Properties"]["MemorySize"] = 512
    new["Resources"]["Fn"]["Properties"]["Layers"] = ["a", "b"]
    code = {
        "Target": {"Attribute": "Properties", "Name": "Code", "RequiresRecreation": "Never"},
        "ChangeSource": "ParameterReference",
        "CausingEntity": "CodeKey",
    }
    lines = render([modify("Fn", "AWS::Lambda::Function", [code])], "UPDATE", old, new)
    assert "property changes:" in lines
    assert "      Properties.MemorySize: 256 -> 512" in lines
    assert '      Properties.Layers: ["a"] -> ["a","b"]' in lines
    assert "      Properties.Code: changes with parameter CodeKey" in lines
    assert not any(line.lstrip().startswith("!!") for line in lines), "no permission changed"


def test_iam_statement_changes_are_listed_apart_and_marked() -> None:
    old = {"Resources": {"Role": ROLE}}
    new = copy.deepcopy(old)
    statements = new["Resources"]["Role"]["Properties"]["Policies"][0]["PolicyDocument"]
    statements["Statement"][0]["Action"] = "dynamodb:*"
    new["Resources"]["Role"]["Metadata"] = {"checkov": "changed"}
    lines = render([modify("Role", "AWS::IAM::Role")], "UPDATE", old, new)
    start = lines.index("IAM and security-group changes (review these):")
    marked = lines[start + 1 :]
    assert marked == [
        '  !! Role + statement {"Action":"dynamodb:*","Effect":"Allow","Resource":"arn:t"}',
        '  !! Role - statement {"Action":"dynamodb:GetItem","Effect":"Allow","Resource":"arn:t"}',
    ]
    assert not any("Metadata" in line for line in lines), "Metadata is not deployed"


def test_security_group_rules_and_lambda_permissions_are_marked() -> None:
    group = {
        "Type": "AWS::EC2::SecurityGroup",
        "Properties": {"SecurityGroupIngress": [{"IpProtocol": "tcp", "CidrIp": "10.0.0.0/8"}]},
    }
    opened = copy.deepcopy(group)
    opened["Properties"]["SecurityGroupIngress"].append({"IpProtocol": "-1", "CidrIp": "0.0.0.0/0"})
    permission = {"Type": "AWS::Lambda::Permission", "Properties": {"Principal": "*"}}
    add = added("Invoke", "AWS::Lambda::Permission")
    lines = render(
        [modify("Group", "AWS::EC2::SecurityGroup"), add],
        "UPDATE",
        {"Resources": {"Group": group}},
        {"Resources": {"Group": opened, "Invoke": permission}},
    )
    assert '  !! Group + SecurityGroupIngress {"CidrIp":"0.0.0.0/0","IpProtocol":"-1"}' in lines
    assert '  !! Invoke + lambda permission {"Principal":"*"}' in lines


def test_a_first_deploy_of_the_platform_lists_every_iam_statement() -> None:
    naming = Naming("qa")
    platform = registry.build_templates(naming, ["payment-platform"])[
        naming.stack("payment-platform")
    ]
    adds = [added(logical, resource["Type"]) for logical, resource in platform["Resources"].items()]
    lines = render(adds, "CREATE", None, platform)
    marked = [line for line in lines if line.lstrip().startswith("!!")]
    expected = sum(len(grants(resource)) for resource in platform["Resources"].values())
    assert expected > 10 and len(marked) == expected
    roles = [r for r in platform["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
    assert all(grants(role) for role in roles), "every role's statements are shown"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["a", "b", ""]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("xyz"), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(JSON, JSON)
def test_differences_are_empty_exactly_when_the_values_are_equal(old: Any, new: Any) -> None:
    # hypothesis: 300 pairs of small JSON values (about 0.5 s).
    found = differences(old, new)
    assert (found == []) == (old == new)
    assert all(before != after for _, before, after in found)
