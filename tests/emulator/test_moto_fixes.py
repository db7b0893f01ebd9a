"""Where moto's own CloudFormation models depart from AWS and the emulator fixes them: each
resource read back through its service's API after a create, an update and a removal."""

from __future__ import annotations

import json
from typing import Any

from tests.emulator.stacks import apply, status


def test_fn_cidr_gives_the_subnets_cloudformation_gives(aws: Any) -> None:
    # moto has no Fn::Cidr: Select over it failed the subnet with the reason "0".
    subnet = {
        "Type": "AWS::EC2::Subnet",
        "Properties": {
            "VpcId": {"Ref": "Vpc"},
            "AvailabilityZone": {"Fn::Select": [1, {"Fn::GetAZs": ""}]},
            "CidrBlock": {
                "Fn::Select": [1, {"Fn::Cidr": [{"Fn::GetAtt": ["Vpc", "CidrBlock"]}, 2, 6]}]
            },
        },
    }
    resources = {
        "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.0.0.0/24"}},
        "Subnet": subnet,
    }
    ids = apply(aws, "cidr", resources)
    assert status(aws, "cidr") == "CREATE_COMPLETE"
    (got,) = aws("ec2").describe_subnets(SubnetIds=[ids["Subnet"]])["Subnets"]
    assert (got["CidrBlock"], got["AvailabilityZone"]) == ("10.0.0.64/26", "us-east-1b")


def test_a_resource_whose_condition_is_false_is_not_listed(aws: Any) -> None:
    # moto listed it as a resource with an empty logical and physical id.
    cfn = aws("cloudformation")
    template = {
        "Conditions": {"Never": {"Fn::Equals": ["a", "b"]}},
        "Resources": {
            "Topic": {"Type": "AWS::SNS::Topic"},
            "Skipped": {"Type": "AWS::SNS::Topic", "Condition": "Never"},
        },
    }
    cfn.create_stack(StackName="conditional", TemplateBody=json.dumps(template))
    listed = cfn.list_stack_resources(StackName="conditional")["StackResourceSummaries"]
    described = cfn.describe_stack_resources(StackName="conditional")["StackResources"]
    assert [r["LogicalResourceId"] for r in listed] == ["Topic"]
    assert [r["LogicalResourceId"] for r in described] == ["Topic"]
