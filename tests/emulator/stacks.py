"""Deploy a small template to the emulator through a change set, as the deployer does."""

from __future__ import annotations

import json
from typing import Any

import botocore.exceptions

_count = [0]


def apply(
    aws: Any, name: str, resources: dict[str, Any], change: str | None = None
) -> dict[str, str]:
    """Create (or update) stack `name` with these resources; its logical -> physical ids."""
    cfn = aws("cloudformation")
    _count[0] += 1
    kind = change or ("UPDATE" if stack_exists(cfn, name) else "CREATE")
    cfn.create_change_set(
        StackName=name,
        ChangeSetName=f"cs-{_count[0]}",
        ChangeSetType=kind,
        TemplateBody=json.dumps({"Resources": resources}),
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    cfn.execute_change_set(StackName=name, ChangeSetName=f"cs-{_count[0]}")
    return physical_ids(aws, name)


def stack_exists(cfn: Any, name: str) -> bool:
    return any(s["StackName"] == name for s in cfn.describe_stacks()["Stacks"])


def status(aws: Any, name: str) -> str:
    return str(aws("cloudformation").describe_stacks(StackName=name)["Stacks"][0]["StackStatus"])


def physical_ids(aws: Any, name: str) -> dict[str, str]:
    summaries = aws("cloudformation").list_stack_resources(StackName=name)["StackResourceSummaries"]
    return {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in summaries}


def destroy(aws: Any, name: str) -> None:
    aws("cloudformation").delete_stack(StackName=name)


def rest_api() -> dict[str, Any]:
    """A REST API with one resource and a MOCK method, deployed: what API Gateway types need."""
    return {
        "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "api"}},
        "Thing": {
            "Type": "AWS::ApiGateway::Resource",
            "Properties": {
                "RestApiId": {"Ref": "Api"},
                "ParentId": {"Fn::GetAtt": ["Api", "RootResourceId"]},
                "PathPart": "thing",
            },
        },
        "Get": {
            "Type": "AWS::ApiGateway::Method",
            "Properties": {
                "RestApiId": {"Ref": "Api"},
                "ResourceId": {"Ref": "Thing"},
                "HttpMethod": "GET",
                "AuthorizationType": "NONE",
                "ApiKeyRequired": True,
                "Integration": {
                    "Type": "MOCK",
                    "RequestTemplates": {"application/json": '{"statusCode": 200}'},
                    "IntegrationResponses": [
                        {
                            "StatusCode": "200",
                            "ResponseParameters": {
                                "method.response.header.Access-Control-Allow-Origin": "'https://app.example.com'"
                            },
                        }
                    ],
                },
                "MethodResponses": [
                    {
                        "StatusCode": "200",
                        "ResponseParameters": {
                            "method.response.header.Access-Control-Allow-Origin": True
                        },
                    }
                ],
            },
        },
        "Deployment": {
            "Type": "AWS::ApiGateway::Deployment",
            "Properties": {"RestApiId": {"Ref": "Api"}, "Description": {"Ref": "Get"}},
        },
    }


def with_props(resource: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of a template resource with some properties changed."""
    copy = json.loads(json.dumps(resource))
    copy["Properties"].update(changes)
    return copy


def gone(call: Any) -> bool:
    """True when the service answers the call with an error (the thing is not there)."""
    try:
        call()
    except botocore.exceptions.ClientError:
        return True
    return False
