"""The stacks the end-to-end tests deploy: the real ones from templates.registry.

Until the payment-platform stack is registered, a stand-in with the same
parameters (CodeBucket, CodeKey, ManageApiGatewayAccount) and the same
processor function name takes its place, so the code path is exercised now.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from templates import registry
from templates.naming import Kind, Naming

PLATFORM = "payment-platform"
ORDER = ("payment-platform", "payment-api")
REAL_PLATFORM = PLATFORM in registry.STACKS


def standin_platform(naming: Naming) -> dict[str, Any]:
    """Two functions from the zip, a role, a queue: enough to see what a code change touches."""
    code = {"S3Bucket": {"Ref": "CodeBucket"}, "S3Key": {"Ref": "CodeKey"}}
    tags = [{"Key": k, "Value": v} for k, v in sorted(naming.tag_dict("platform").items())]

    def function(base: str, module: str) -> dict[str, Any]:
        return {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "FunctionName": naming.name(base, Kind.FUNCTION),
                "Code": code,
                "Handler": f"handlers.{module}.handler",
                "Runtime": "python3.12",
                "Architectures": ["arm64"],
                "Role": {"Fn::GetAtt": ["FunctionRole", "Arn"]},
                "Tags": tags,
            },
        }

    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "stand-in payment platform for deployer tests",
        "Parameters": {
            "CodeBucket": {"Type": "String"},
            "CodeKey": {"Type": "String"},
            "ManageApiGatewayAccount": {
                "Type": "String",
                "Default": "true",
                "AllowedValues": ["true", "false"],
            },
        },
        "Resources": {
            "FunctionRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "lambda.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    }
                },
            },
            "ProcessingFunction": function("payment-processor", "processing"),
            "ValidationFunction": function("payment-validator", "validation"),
            "FailedQueue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {"QueueName": naming.name("failed-transactions", Kind.QUEUE)},
            },
        },
    }


def build(naming: Naming, bases: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The real templates, with the stand-in platform while the real one is not registered."""
    built = {}
    for base in bases:
        if base in registry.STACKS:
            built[naming.stack(base)] = registry.STACKS[base](naming).to_dict()
        else:
            built[naming.stack(base)] = standin_platform(naming)
    return built


def select(names: Iterable[str] | None) -> list[str]:
    """Deploy order over the real stacks plus the platform (real or stand-in)."""
    wanted = set(names or ORDER)
    unknown = wanted - set(ORDER)
    if unknown:
        raise registry.UnknownStackError(f"unknown stack {sorted(unknown)}")
    return [base for base in ORDER if base in wanted]
