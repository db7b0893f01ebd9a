"""Where moto's own CloudFormation models depart from AWS and the emulator fixes them: each
resource read back through its service's API after a create, an update and a removal."""

from __future__ import annotations

import json
from typing import Any

from tests.emulator.stacks import apply, gone, rest_api, stack_exists, status


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


def rules(aws: Any, group_id: str, key: str) -> list[tuple[Any, ...]]:
    (group,) = aws("ec2").describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    return sorted(
        (
            p["IpProtocol"],
            p.get("FromPort"),
            tuple(r["CidrIp"] for r in p["IpRanges"]),
            tuple(g["GroupId"] for g in p["UserIdGroupPairs"]),
        )
        for p in group[key]
    )


HTTPS_OUT = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0"}


def test_security_groups_hold_exactly_their_rules(aws: Any) -> None:
    vpc = {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.0.0.0/16"}}
    closed = {
        "Type": "AWS::EC2::SecurityGroup",
        "Properties": {
            "GroupDescription": "https out only",
            "VpcId": {"Ref": "Vpc"},
            "SecurityGroupEgress": [HTTPS_OUT],
            "SecurityGroupIngress": [
                {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "10.0.0.0/16"}
            ],
        },
    }
    default = {
        "Type": "AWS::EC2::SecurityGroup",
        "Properties": {"GroupDescription": "EC2's default egress", "VpcId": {"Ref": "Vpc"}},
    }
    ingress = {
        "Type": "AWS::EC2::SecurityGroupIngress",
        "Properties": {
            "GroupId": {"Ref": "Default"},
            "IpProtocol": "tcp",
            "FromPort": 443,
            "ToPort": 443,
            "SourceSecurityGroupId": {"Ref": "Closed"},
        },
    }
    resources = {"Vpc": vpc, "Closed": closed, "Default": default, "FromClosed": ingress}
    ids = apply(aws, "groups", resources)
    # CloudFormation removes EC2's allow-all egress rule when the template lists egress rules.
    assert rules(aws, ids["Closed"], "IpPermissionsEgress") == [("tcp", 443, ("0.0.0.0/0",), ())]
    assert rules(aws, ids["Closed"], "IpPermissions") == [("tcp", 443, ("10.0.0.0/16",), ())]
    assert rules(aws, ids["Default"], "IpPermissionsEgress") == [("-1", None, ("0.0.0.0/0",), ())]
    assert rules(aws, ids["Default"], "IpPermissions") == [("tcp", 443, (), (ids["Closed"],))]

    # Rules change in place (same group id); a removed standalone rule is revoked.
    narrower = dict(HTTPS_OUT, CidrIp="10.0.0.0/16")
    resources["Closed"] = {
        **closed,
        "Properties": {**closed["Properties"], "SecurityGroupEgress": [narrower]},
    }
    del resources["FromClosed"]
    assert apply(aws, "groups", resources)["Closed"] == ids["Closed"]
    assert rules(aws, ids["Closed"], "IpPermissionsEgress") == [("tcp", 443, ("10.0.0.0/16",), ())]
    assert rules(aws, ids["Default"], "IpPermissions") == []


ROLE = {
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
}


def test_removed_permission_route_and_rule_are_deleted(aws: Any) -> None:
    # moto could not delete these: each stayed after its removal from the template.
    function = {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "FunctionName": "f",
            "Runtime": "python3.12",
            "Handler": "index.handler",
            "Role": {"Fn::GetAtt": ["Role", "Arn"]},
            "Code": {"ZipFile": "def handler(event, context):\n    return None\n"},
        },
    }
    permission = {
        "Type": "AWS::Lambda::Permission",
        "Properties": {
            "FunctionName": {"Ref": "Function"},
            "Action": "lambda:InvokeFunction",
            "Principal": "apigateway.amazonaws.com",
            "SourceArn": "arn:aws:execute-api:us-east-1:123456789012:abc/*",
        },
    }
    route = {
        "Type": "AWS::ApiGateway::Resource",
        "Properties": {
            "RestApiId": {"Ref": "Api"},
            "ParentId": {"Fn::GetAtt": ["Api", "RootResourceId"]},
            "PathPart": "old",
        },
    }
    resources = {
        "Role": ROLE,
        "Function": function,
        "Permission": permission,
        "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "api"}},
        "Route": route,
    }
    ids = apply(aws, "removals", resources)
    policy = json.loads(aws("lambda").get_policy(FunctionName="f")["Policy"])
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"].endswith(":abc/*")
    apply(aws, "removals", {k: v for k, v in resources.items() if k not in {"Permission", "Route"}})
    assert gone(lambda: aws("lambda").get_policy(FunctionName="f"))
    paths = [r["path"] for r in aws("apigateway").get_resources(restApiId=ids["Api"])["items"]]
    assert paths == ["/"]


def test_log_group_keeps_its_key_and_updates_retention(aws: Any) -> None:
    key_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }
    key = {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": key_policy}}
    group = {
        "Type": "AWS::Logs::LogGroup",
        "Properties": {
            "LogGroupName": "/aws/lambda/f",
            "RetentionInDays": 7,
            "KmsKeyId": {"Fn::GetAtt": ["Key", "Arn"]},
        },
    }
    ids = apply(aws, "logs", {"Key": key, "Group": group})
    (got,) = aws("logs").describe_log_groups()["logGroups"]
    assert got["retentionInDays"] == 7 and got["kmsKeyId"].endswith(ids["Key"])
    longer = {**group, "Properties": {**group["Properties"], "RetentionInDays": 365}}
    rotated = {
        "Type": "AWS::KMS::Key",
        "Properties": {"KeyPolicy": key_policy, "EnableKeyRotation": True},
    }
    assert apply(aws, "logs", {"Key": rotated, "Group": longer}) == ids
    (got,) = aws("logs").describe_log_groups()["logGroups"]
    assert got["retentionInDays"] == 365
    assert aws("kms").get_key_rotation_status(KeyId=ids["Key"])["KeyRotationEnabled"] is True


def test_managed_policy_document_and_roles_update_in_place(aws: Any) -> None:
    iam = aws("iam")

    def document(action: str) -> dict[str, Any]:
        statement = {"Effect": "Allow", "Action": action, "Resource": "*"}
        return {"Version": "2012-10-17", "Statement": [statement]}

    policy = {
        "Type": "AWS::IAM::ManagedPolicy",
        "Properties": {"PolicyDocument": document("sqs:SendMessage"), "Roles": [{"Ref": "A"}]},
    }
    ids = apply(aws, "policy", {"A": ROLE, "B": ROLE, "Policy": policy})
    changed = {
        **policy,
        "Properties": {"PolicyDocument": document("sqs:DeleteMessage"), "Roles": [{"Ref": "B"}]},
    }
    assert (
        apply(aws, "policy", {"A": ROLE, "B": ROLE, "Policy": changed})["Policy"] == ids["Policy"]
    )
    default = iam.get_policy(PolicyArn=ids["Policy"])["Policy"]["DefaultVersionId"]
    version = iam.get_policy_version(PolicyArn=ids["Policy"], VersionId=default)["PolicyVersion"]
    assert version["Document"]["Statement"][0]["Action"] == "sqs:DeleteMessage"
    attached = iam.list_entities_for_policy(PolicyArn=ids["Policy"])["PolicyRoles"]
    assert [r["RoleName"] for r in attached] == [ids["B"]]


def test_a_replaced_resource_updates_what_refers_to_it(aws: Any) -> None:
    # A stage renamed (replaced): the usage plan follows it; a route renamed: its method moves.
    plan = {
        "Type": "AWS::ApiGateway::UsagePlan",
        "Properties": {"ApiStages": [{"ApiId": {"Ref": "Api"}, "Stage": {"Ref": "Stage"}}]},
    }
    stage = {
        "Type": "AWS::ApiGateway::Stage",
        "Properties": {
            "RestApiId": {"Ref": "Api"},
            "DeploymentId": {"Ref": "Deployment"},
            "StageName": "prod",
        },
    }
    resources = {**rest_api(), "Stage": stage, "Plan": plan}
    ids = apply(aws, "replace", resources)
    resources["Stage"] = {**stage, "Properties": {**stage["Properties"], "StageName": "live"}}
    resources["Thing"]["Properties"]["PathPart"] = "renamed"
    after = apply(aws, "replace", resources)
    apigw = aws("apigateway")
    assert apigw.get_usage_plan(usagePlanId=ids["Plan"])["apiStages"] == [
        {"apiId": ids["Api"], "stage": "live"}
    ]
    assert [s["stageName"] for s in apigw.get_stages(restApiId=ids["Api"])["item"]] == ["live"]
    routes = {r["path"]: r for r in apigw.get_resources(restApiId=ids["Api"])["items"]}
    assert set(routes) == {"/", "/renamed"} and after["Thing"] != ids["Thing"]
    assert "GET" in routes["/renamed"].get("resourceMethods", {})


def test_vpc_dns_attributes_and_endpoint_policy(aws: Any) -> None:
    ec2 = aws("ec2")
    vpc = {
        "Type": "AWS::EC2::VPC",
        "Properties": {"CidrBlock": "10.0.0.0/24", "EnableDnsHostnames": True},
    }
    subnet = {
        "Type": "AWS::EC2::Subnet",
        "Properties": {"VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.0.0.0/26"},
    }
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "Send",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "sqs:SendMessage",
                "Resource": "*",
            }
        ],
    }
    endpoint = {
        "Type": "AWS::EC2::VPCEndpoint",
        "Properties": {
            "VpcId": {"Ref": "Vpc"},
            "ServiceName": "com.amazonaws.us-east-1.sqs",
            "VpcEndpointType": "Interface",
            "SubnetIds": [{"Ref": "Subnet"}],
            "PrivateDnsEnabled": True,
            "PolicyDocument": policy,
            "Tags": [{"Key": "Component", "Value": "network"}],
        },
    }
    ids = apply(aws, "vpc-dns", {"Vpc": vpc, "Subnet": subnet, "Endpoint": endpoint})
    attribute = ec2.describe_vpc_attribute(VpcId=ids["Vpc"], Attribute="enableDnsHostnames")
    assert attribute["EnableDnsHostnames"]["Value"] is True
    (got,) = ec2.describe_vpc_endpoints(VpcEndpointIds=[ids["Endpoint"]])["VpcEndpoints"]
    assert json.loads(got["PolicyDocument"]) == policy and got["PrivateDnsEnabled"] is True
    assert got["Tags"] == [{"Key": "Component", "Value": "network"}]
    # EC2 refuses private DNS in a VPC without DNS hostnames: so does the emulator.
    plain = {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.0.0.0/24"}}
    apply(aws, "no-dns", {"Vpc": plain, "Subnet": subnet, "Endpoint": endpoint})
    assert status(aws, "no-dns") == "ROLLBACK_COMPLETE"
    events = aws("cloudformation").describe_stack_events(StackName="no-dns")["StackEvents"]
    (failed,) = [e for e in events if e["ResourceStatus"] == "CREATE_FAILED"]
    assert (
        failed["LogicalResourceId"] == "Endpoint"
        and "enableDnsHostnames" in failed["ResourceStatusReason"]
    )


def resource_events(aws: Any, stack: str) -> list[tuple[str, str]]:
    events = aws("cloudformation").describe_stack_events(StackName=stack)["StackEvents"]
    return [(e["LogicalResourceId"], e["ResourceStatus"]) for e in reversed(events)]


def test_deletes_are_reported_retained_resources_kept_failed_deletes_fail(aws: Any) -> None:
    cfn, sqs, s3 = aws("cloudformation"), aws("sqs"), aws("s3")
    resources = {
        "Kept": {
            "Type": "AWS::SQS::Queue",
            "DeletionPolicy": "Retain",
            "Properties": {"QueueName": "kept"},
        },
        "Gone": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "gone"}},
        "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "full-bucket"}},
    }
    apply(aws, "deletes", resources)
    apply(aws, "deletes", {"Bucket": resources["Bucket"]})
    # moto deleted the retained queue too, and reported neither.
    assert [u.rsplit("/", 1)[-1] for u in sqs.list_queues()["QueueUrls"]] == ["kept"]
    assert {("Kept", "DELETE_SKIPPED"), ("Gone", "DELETE_COMPLETE")} <= set(
        resource_events(aws, "deletes")
    )
    # S3 refuses to delete a bucket with objects: the stack stays, DELETE_FAILED, with why.
    s3.put_object(Bucket="full-bucket", Key="k", Body=b"x")
    cfn.delete_stack(StackName="deletes")
    assert status(aws, "deletes") == "DELETE_FAILED"
    events = cfn.describe_stack_events(StackName="deletes")["StackEvents"]
    failed = [
        (e["LogicalResourceId"], e["ResourceStatusReason"])
        for e in events
        if e["ResourceStatus"] == "DELETE_FAILED" and e["ResourceType"] == "AWS::S3::Bucket"
    ]
    assert [logical for logical, _ in failed] == ["Bucket"] and "not empty" in failed[0][1]
    s3.delete_object(Bucket="full-bucket", Key="k")
    cfn.delete_stack(StackName="deletes")
    assert not stack_exists(cfn, "deletes") and s3.list_buckets()["Buckets"] == []
