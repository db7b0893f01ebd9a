"""One test per resource type the emulator adds: created, updated and deleted through
CloudFormation, each checked through the service's own API."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.emulator.stacks import (
    apply,
    destroy,
    gone,
    physical_ids,
    rest_api,
    stack_exists,
    status,
    with_props,
)

STAGE = {
    "Type": "AWS::ApiGateway::Stage",
    "Properties": {
        "RestApiId": {"Ref": "Api"},
        "DeploymentId": {"Ref": "Deployment"},
        "StageName": "prod",
        "TracingEnabled": True,
        "MethodSettings": [
            {
                "ResourcePath": "/*",
                "HttpMethod": "*",
                "LoggingLevel": "INFO",
                "DataTraceEnabled": False,
                "ThrottlingRateLimit": 100.0,
                "ThrottlingBurstLimit": 200,
            }
        ],
        "AccessLogSetting": {
            "DestinationArn": "arn:aws:logs:us-east-1:123456789012:log-group:a",
            "Format": "$context.requestId",
        },
        "Tags": [{"Key": "Environment", "Value": "t"}],
    },
}


def test_stage_method_settings_access_log_update_and_delete(aws: Any) -> None:
    apigw = aws("apigateway")
    ids = apply(aws, "stage", {**rest_api(), "Stage": STAGE})
    stage = apigw.get_stage(restApiId=ids["Api"], stageName="prod")
    assert stage["deploymentId"] == ids["Deployment"] and stage["tracingEnabled"] is True
    assert stage["methodSettings"]["*/*"]["loggingLevel"] == "INFO"
    assert stage["methodSettings"]["*/*"]["throttlingBurstLimit"] == 200
    assert stage["accessLogSettings"]["format"] == "$context.requestId"
    assert stage["tags"] == {"Environment": "t"}
    settings = [dict(STAGE["Properties"]["MethodSettings"][0], ThrottlingRateLimit=5.0)]
    apply(
        aws,
        "stage",
        {**rest_api(), "Stage": with_props(STAGE, MethodSettings=settings, TracingEnabled=False)},
    )
    stage = apigw.get_stage(restApiId=ids["Api"], stageName="prod")
    assert stage["methodSettings"]["*/*"]["throttlingRateLimit"] == 5.0
    assert stage["tracingEnabled"] is False
    apply(aws, "stage", rest_api())
    assert gone(lambda: apigw.get_stage(restApiId=ids["Api"], stageName="prod"))


def test_method_keeps_integration_responses_and_deployment_ref(aws: Any) -> None:
    ids = apply(aws, "method", rest_api())
    method = aws("apigateway").get_method(
        restApiId=ids["Api"], resourceId=ids["Thing"], httpMethod="GET"
    )
    assert method["apiKeyRequired"] is True
    integration = method["methodIntegration"]
    assert integration["requestTemplates"] == {"application/json": '{"statusCode": 200}'}
    assert integration["integrationResponses"]["200"]["responseParameters"] == {
        "method.response.header.Access-Control-Allow-Origin": "'https://app.example.com'"
    }
    assert method["methodResponses"]["200"]["responseParameters"] == {
        "method.response.header.Access-Control-Allow-Origin": True
    }
    deployments = aws("apigateway").get_deployments(restApiId=ids["Api"])["items"]
    assert [d["id"] for d in deployments] == [ids["Deployment"]]


def test_api_key_usage_plan_and_key(aws: Any) -> None:
    apigw = aws("apigateway")
    plan = {
        "Type": "AWS::ApiGateway::UsagePlan",
        "Properties": {
            "UsagePlanName": "plan",
            "ApiStages": [{"ApiId": {"Ref": "Api"}, "Stage": {"Ref": "Stage"}}],
            "Throttle": {"BurstLimit": 200, "RateLimit": 100.0},
            "Quota": {"Limit": 10000, "Period": "DAY"},
        },
    }
    resources = {
        **rest_api(),
        "Stage": STAGE,
        "Key": {"Type": "AWS::ApiGateway::ApiKey", "Properties": {"Name": "k", "Enabled": True}},
        "Plan": plan,
        "PlanKey": {
            "Type": "AWS::ApiGateway::UsagePlanKey",
            "Properties": {
                "KeyId": {"Ref": "Key"},
                "KeyType": "API_KEY",
                "UsagePlanId": {"Ref": "Plan"},
            },
        },
    }
    ids = apply(aws, "plan", resources)
    got = apigw.get_usage_plan(usagePlanId=ids["Plan"])
    assert got["throttle"] == {"burstLimit": 200, "rateLimit": 100.0}
    assert got["quota"]["limit"] == 10000 and got["apiStages"] == [
        {"apiId": ids["Api"], "stage": "prod"}
    ]
    assert [k["id"] for k in apigw.get_usage_plan_keys(usagePlanId=ids["Plan"])["items"]] == [
        ids["Key"]
    ]
    assert apigw.get_api_key(apiKey=ids["Key"])["enabled"] is True
    resources["Plan"] = with_props(plan, Throttle={"BurstLimit": 20, "RateLimit": 10.0})
    resources["Key"] = with_props(resources["Key"], Enabled=False)
    assert apply(aws, "plan", resources)["Plan"] == ids["Plan"]
    assert apigw.get_usage_plan(usagePlanId=ids["Plan"])["throttle"] == {
        "burstLimit": 20,
        "rateLimit": 10.0,
    }
    assert apigw.get_api_key(apiKey=ids["Key"])["enabled"] is False
    destroy(aws, "plan")
    assert apigw.get_usage_plans()["items"] == [] and apigw.get_api_keys()["items"] == []


def test_gateway_response_validator_model(aws: Any) -> None:
    apigw = aws("apigateway")
    schema = {"type": "object", "required": ["amount"]}
    resources = {
        **rest_api(),
        "Default4xx": {
            "Type": "AWS::ApiGateway::GatewayResponse",
            "Properties": {
                "RestApiId": {"Ref": "Api"},
                "ResponseType": "DEFAULT_4XX",
                "ResponseParameters": {"gatewayresponse.header.Access-Control-Allow-Origin": "'*'"},
                "ResponseTemplates": {
                    "application/json": '{"error": "$context.error.responseType"}'
                },
            },
        },
        "Validator": {
            "Type": "AWS::ApiGateway::RequestValidator",
            "Properties": {
                "RestApiId": {"Ref": "Api"},
                "Name": "body",
                "ValidateRequestBody": True,
            },
        },
        "Model": {
            "Type": "AWS::ApiGateway::Model",
            "Properties": {
                "RestApiId": {"Ref": "Api"},
                "Name": "Payment",
                "ContentType": "application/json",
                "Schema": schema,
            },
        },
    }
    ids = apply(aws, "defs", resources)
    response = apigw.get_gateway_response(restApiId=ids["Api"], responseType="DEFAULT_4XX")
    assert response["responseParameters"] == {
        "gatewayresponse.header.Access-Control-Allow-Origin": "'*'"
    }
    validator = apigw.get_request_validator(
        restApiId=ids["Api"], requestValidatorId=ids["Validator"]
    )
    assert (
        validator["validateRequestBody"] is True and validator["validateRequestParameters"] is False
    )
    assert (
        json.loads(apigw.get_model(restApiId=ids["Api"], modelName="Payment")["schema"]) == schema
    )
    resources["Validator"] = with_props(resources["Validator"], ValidateRequestParameters=True)
    resources["Model"] = with_props(resources["Model"], Schema={"type": "object"})
    apply(aws, "defs", resources)
    validator = apigw.get_request_validator(
        restApiId=ids["Api"], requestValidatorId=ids["Validator"]
    )
    assert validator["validateRequestParameters"] is True
    assert json.loads(apigw.get_model(restApiId=ids["Api"], modelName="Payment")["schema"]) == {
        "type": "object"
    }
    apply(aws, "defs", rest_api())
    assert apigw.get_models(restApiId=ids["Api"])["items"] == []
    assert apigw.get_request_validators(restApiId=ids["Api"])["items"] == []
    assert gone(
        lambda: apigw.get_gateway_response(restApiId=ids["Api"], responseType="DEFAULT_4XX")
    )


def test_account_role_set_and_kept_on_delete(aws: Any) -> None:
    role = "arn:aws:iam::123456789012:role/apigw-logs"
    apply(
        aws,
        "account",
        {
            "Account": {
                "Type": "AWS::ApiGateway::Account",
                "Properties": {"CloudWatchRoleArn": role},
            }
        },
    )
    assert aws("apigateway").get_account()["cloudwatchRoleArn"] == role
    destroy(aws, "account")
    assert aws("apigateway").get_account()["cloudwatchRoleArn"] == role  # as on AWS


def test_alarm_actions_and_rename_replaces(aws: Any) -> None:
    cloudwatch = aws("cloudwatch")
    alarm = {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": "errors",
            "Namespace": "AWS/Lambda",
            "MetricName": "Errors",
            "Dimensions": [{"Name": "FunctionName", "Value": "f"}],
            "Statistic": "Sum",
            "Period": 60,
            "EvaluationPeriods": 1,
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "AlarmActions": [{"Ref": "Topic"}],
            "OKActions": [{"Ref": "Topic"}],
            "TreatMissingData": "notBreaching",
        },
    }
    topic = {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "alarms"}}
    ids = apply(aws, "alarm", {"Topic": topic, "Alarm": alarm})
    (got,) = cloudwatch.describe_alarms(AlarmNames=["errors"])["MetricAlarms"]
    assert got["AlarmActions"] == [ids["Topic"]] and got["OKActions"] == [ids["Topic"]]
    assert got["Dimensions"] == [{"Name": "FunctionName", "Value": "f"}] and got["Threshold"] == 1.0
    apply(
        aws,
        "alarm",
        {"Topic": topic, "Alarm": with_props(alarm, AlarmName="errors-2", Threshold=3)},
    )
    names = [a["AlarmName"] for a in cloudwatch.describe_alarms()["MetricAlarms"]]
    assert names == ["errors-2"]
    destroy(aws, "alarm")
    assert cloudwatch.describe_alarms()["MetricAlarms"] == []


POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "*",
            "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ],
}


def test_queue_topic_and_bucket_policies(aws: Any) -> None:
    resources = {
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "q"}},
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "t"}},
        "Bucket": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "b-emulator-test"}},
        "QueuePolicy": {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {"Queues": [{"Ref": "Queue"}], "PolicyDocument": POLICY},
        },
        "TopicPolicy": {
            "Type": "AWS::SNS::TopicPolicy",
            "Properties": {"Topics": [{"Ref": "Topic"}], "PolicyDocument": POLICY},
        },
        "BucketPolicy": {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {"Bucket": {"Ref": "Bucket"}, "PolicyDocument": POLICY},
        },
    }
    ids = apply(aws, "policies", resources)
    sqs, sns, s3 = aws("sqs"), aws("sns"), aws("s3")

    def queue_policy() -> Any:
        attributes = sqs.get_queue_attributes(QueueUrl=ids["Queue"], AttributeNames=["All"])[
            "Attributes"
        ]
        return json.loads(attributes["Policy"]) if "Policy" in attributes else None

    def topic_sids() -> list[str]:
        policy = sns.get_topic_attributes(TopicArn=ids["Topic"])["Attributes"]["Policy"]
        return [s["Sid"] for s in json.loads(policy)["Statement"]]

    assert queue_policy() == POLICY
    assert topic_sids() == ["DenyInsecureTransport"]
    assert json.loads(s3.get_bucket_policy(Bucket="b-emulator-test")["Policy"]) == POLICY
    # Stored, not evaluated: the plain-HTTP emulator still serves the bucket.
    s3.put_object(Bucket="b-emulator-test", Key="k", Body=b"x")
    # Another queue attribute leaves the policy alone (moto alone would wipe it).
    sqs.set_queue_attributes(QueueUrl=ids["Queue"], Attributes={"VisibilityTimeout": "40"})
    assert queue_policy() == POLICY
    apply(aws, "policies", {k: v for k, v in resources.items() if not k.endswith("Policy")})
    assert queue_policy() is None
    assert topic_sids() == ["__default_statement_ID"]
    assert gone(lambda: s3.get_bucket_policy(Bucket="b-emulator-test"))


def test_subscription_attributes_and_delete(aws: Any) -> None:
    sns = aws("sns")
    subscription = {
        "Type": "AWS::SNS::Subscription",
        "Properties": {
            "TopicArn": {"Ref": "Topic"},
            "Protocol": "sqs",
            "Endpoint": {"Fn::GetAtt": ["Queue", "Arn"]},
            "RawMessageDelivery": True,
            "FilterPolicy": {"severity": ["critical"]},
        },
    }
    resources = {
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "t"}},
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "q"}},
        "Subscription": subscription,
    }
    ids = apply(aws, "subscription", resources)
    attributes = sns.get_subscription_attributes(SubscriptionArn=ids["Subscription"])["Attributes"]
    assert attributes["RawMessageDelivery"] == "true" and attributes["TopicArn"] == ids["Topic"]
    assert json.loads(attributes["FilterPolicy"]) == {"severity": ["critical"]}
    # Attributes taken out of the template are unset (moto kept them).
    resources["Subscription"] = with_props(subscription)
    for name in ("RawMessageDelivery", "FilterPolicy"):
        del resources["Subscription"]["Properties"][name]
    apply(aws, "subscription", resources)
    attributes = sns.get_subscription_attributes(SubscriptionArn=ids["Subscription"])["Attributes"]
    assert attributes["RawMessageDelivery"] == "false" and "FilterPolicy" not in attributes
    destroy(aws, "subscription")
    assert sns.list_subscriptions()["Subscriptions"] == []


def web_acl(name: str = "acl") -> dict[str, Any]:
    visibility = {
        "SampledRequestsEnabled": True,
        "CloudWatchMetricsEnabled": True,
        "MetricName": name,
    }
    return {
        "Type": "AWS::WAFv2::WebACL",
        "Properties": {
            "Name": name,
            "Scope": "REGIONAL",
            "DefaultAction": {"Allow": {}},
            "VisibilityConfig": visibility,
            "Rules": [
                {
                    "Name": "rate",
                    "Priority": 0,
                    "Action": {"Block": {}},
                    "Statement": {"RateBasedStatement": {"Limit": 1000, "AggregateKeyType": "IP"}},
                    "VisibilityConfig": visibility,
                }
            ],
        },
    }


def test_waf_acl_association_and_logging(aws: Any) -> None:
    waf, apigw = aws("wafv2"), aws("apigateway")
    stage_arn = {"Fn::Sub": "arn:aws:apigateway:${AWS::Region}::/restapis/${Api}/stages/${Stage}"}
    resources = {
        **rest_api(),
        "Stage": STAGE,
        "Logs": {
            "Type": "AWS::Logs::LogGroup",
            "Properties": {"LogGroupName": "aws-waf-logs-test"},
        },
        "Acl": web_acl(),
        "Association": {
            "Type": "AWS::WAFv2::WebACLAssociation",
            "Properties": {"ResourceArn": stage_arn, "WebACLArn": {"Fn::GetAtt": ["Acl", "Arn"]}},
        },
        "Logging": {
            "Type": "AWS::WAFv2::LoggingConfiguration",
            "Properties": {
                "ResourceArn": {"Fn::GetAtt": ["Acl", "Arn"]},
                "LogDestinationConfigs": [{"Fn::GetAtt": ["Logs", "Arn"]}],
            },
        },
    }
    ids = apply(aws, "waf", resources)
    name, acl_id, scope = ids["Acl"].split("|")
    acl = waf.get_web_acl(Name=name, Id=acl_id, Scope=scope)["WebACL"]
    assert [r["Name"] for r in acl["Rules"]] == ["rate"]
    assert apigw.get_stage(restApiId=ids["Api"], stageName="prod")["webAclArn"] == acl["ARN"]
    config = waf.get_logging_configuration(ResourceArn=acl["ARN"])["LoggingConfiguration"]
    assert config["LogDestinationConfigs"][0].startswith(
        "arn:aws:logs:us-east-1:123456789012:log-group:aws-waf-logs-test"
    )
    rules = [dict(web_acl()["Properties"]["Rules"][0], Name="rate-2")]
    resources["Acl"] = with_props(web_acl(), Rules=rules)
    apply(aws, "waf", resources)
    assert [
        r["Name"] for r in waf.get_web_acl(Name=name, Id=acl_id, Scope=scope)["WebACL"]["Rules"]
    ] == ["rate-2"]
    destroy(aws, "waf")
    assert waf.list_web_acls(Scope="REGIONAL")["WebACLs"] == []
    assert waf.list_logging_configurations(Scope="REGIONAL")["LoggingConfigurations"] == []


def waf_logging(log_group: str) -> dict[str, Any]:
    """A web ACL logging to a log group of this name."""
    return {
        "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": log_group}},
        "Acl": web_acl(),
        "Logging": {
            "Type": "AWS::WAFv2::LoggingConfiguration",
            "Properties": {
                "ResourceArn": {"Fn::GetAtt": ["Acl", "Arn"]},
                "LogDestinationConfigs": [{"Fn::GetAtt": ["Logs", "Arn"]}],
            },
        },
    }


def test_waf_logging_refuses_a_destination_waf_refuses(aws: Any) -> None:
    apply(aws, "waf-bad", waf_logging("not-waf"))
    # A failed create rolls back: the failed resource has its reason, nothing is left.
    assert status(aws, "waf-bad") == "ROLLBACK_COMPLETE"
    events = aws("cloudformation").describe_stack_events(StackName="waf-bad")["StackEvents"]
    failed = [e for e in events if e["ResourceStatus"] == "CREATE_FAILED"]
    assert failed and failed[0]["LogicalResourceId"] == "Logging"
    assert "aws-waf-logs-" in failed[0]["ResourceStatusReason"]
    assert aws("wafv2").list_web_acls(Scope="REGIONAL")["WebACLs"] == []


def test_vpc_types_created_and_destroyed(aws: Any) -> None:
    ec2 = aws("ec2")
    resources = {
        "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.0.0.0/16"}},
        "Subnet": {
            "Type": "AWS::EC2::Subnet",
            "Properties": {"VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.0.1.0/24"},
        },
        "Routes": {"Type": "AWS::EC2::RouteTable", "Properties": {"VpcId": {"Ref": "Vpc"}}},
        "Association": {
            "Type": "AWS::EC2::SubnetRouteTableAssociation",
            "Properties": {"SubnetId": {"Ref": "Subnet"}, "RouteTableId": {"Ref": "Routes"}},
        },
        "Group": {
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {"GroupDescription": "https only", "VpcId": {"Ref": "Vpc"}},
        },
        "Https": {
            "Type": "AWS::EC2::SecurityGroupEgress",
            "Properties": {
                "GroupId": {"Fn::GetAtt": ["Group", "GroupId"]},
                "IpProtocol": "tcp",
                "FromPort": 443,
                "ToPort": 443,
                "CidrIp": "10.0.0.0/16",
            },
        },
        "Dynamo": {
            "Type": "AWS::EC2::VPCEndpoint",
            "Properties": {
                "VpcId": {"Ref": "Vpc"},
                "ServiceName": "com.amazonaws.us-east-1.dynamodb",
                "VpcEndpointType": "Gateway",
                "RouteTableIds": [{"Ref": "Routes"}],
            },
        },
    }
    ids = apply(aws, "vpc", resources)
    assert status(aws, "vpc") == "CREATE_COMPLETE", physical_ids(aws, "vpc")
    (group,) = ec2.describe_security_groups(GroupIds=[ids["Group"]])["SecurityGroups"]
    assert {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443} in [
        {k: p[k] for k in ("IpProtocol", "FromPort", "ToPort") if k in p}
        for p in group["IpPermissionsEgress"]
    ]
    endpoints = ec2.describe_vpc_endpoints()["VpcEndpoints"]
    assert [e["ServiceName"] for e in endpoints] == ["com.amazonaws.us-east-1.dynamodb"]
    destroy(aws, "vpc")
    assert not stack_exists(aws("cloudformation"), "vpc")
    # As on AWS, a deleted endpoint is listed a while longer in state "deleted".
    assert {e["State"] for e in ec2.describe_vpc_endpoints()["VpcEndpoints"]} <= {"deleted"}
    assert ids["Vpc"] not in [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]]


def test_depends_on_orders_creation_in_change_sets(aws: Any) -> None:
    # The association names the stage only by its literal name and DependsOn (no Ref).
    stage_arn = {"Fn::Sub": "arn:aws:apigateway:${AWS::Region}::/restapis/${Api}/stages/prod"}
    resources = {
        "Association": {
            "Type": "AWS::WAFv2::WebACLAssociation",
            "DependsOn": ["Stage"],
            "Properties": {"ResourceArn": stage_arn, "WebACLArn": {"Fn::GetAtt": ["Acl", "Arn"]}},
        },
        **rest_api(),
        "Acl": web_acl(),
        "Stage": STAGE,
    }
    ids = apply(aws, "order", resources)
    assert aws("apigateway").get_stage(restApiId=ids["Api"], stageName="prod").get("webAclArn")


@pytest.mark.parametrize("change_type", ["CREATE"])
def test_outputs_after_change_set(aws: Any, change_type: str) -> None:
    cfn = aws("cloudformation")
    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"TopicArn": {"Value": {"Ref": "Topic"}}},
    }
    cfn.create_change_set(
        StackName="outputs",
        ChangeSetName="c",
        ChangeSetType=change_type,
        TemplateBody=json.dumps(template),
    )
    cfn.execute_change_set(StackName="outputs", ChangeSetName="c")
    outputs = cfn.describe_stacks(StackName="outputs")["Stacks"][0]["Outputs"]
    assert [o["OutputKey"] for o in outputs] == ["TopicArn"] and ":sns:" in outputs[0][
        "OutputValue"
    ]


def failure_reason(aws: Any, stack: str) -> tuple[str, str]:
    events = aws("cloudformation").describe_stack_events(StackName=stack)["StackEvents"]
    (failed,) = [e for e in events if e["ResourceStatus"].endswith("_FAILED")]
    return failed["LogicalResourceId"], failed["ResourceStatusReason"]


def test_usage_plan_and_waf_association_need_their_stage(aws: Any) -> None:
    # API Gateway and WAF refuse a stage that does not exist yet: a template whose plan or
    # association names the stage without depending on it fails on a fresh account.
    stage_arn = {"Fn::Sub": "arn:aws:apigateway:${AWS::Region}::/restapis/${Api}/stages/prod"}
    association = {
        "Type": "AWS::WAFv2::WebACLAssociation",
        "Properties": {"ResourceArn": stage_arn, "WebACLArn": {"Fn::GetAtt": ["Acl", "Arn"]}},
    }
    apply(aws, "early-waf", {**rest_api(), "Acl": web_acl(), "Association": association})
    assert status(aws, "early-waf") == "ROLLBACK_COMPLETE"
    assert failure_reason(aws, "early-waf")[0] == "Association"
    plan = {
        "Type": "AWS::ApiGateway::UsagePlan",
        "Properties": {"ApiStages": [{"ApiId": {"Ref": "Api"}, "Stage": "prod"}]},
    }
    apply(aws, "early-plan", {**rest_api(), "Plan": plan})
    assert status(aws, "early-plan") == "ROLLBACK_COMPLETE"
    logical, reason = failure_reason(aws, "early-plan")
    assert logical == "Plan" and "API Stage not found" in reason


def test_waf_logging_accepts_a_log_group_name_with_a_slash(aws: Any) -> None:
    apply(aws, "waf-slash", waf_logging("aws-waf-logs-payments/qa"))
    assert status(aws, "waf-slash") == "CREATE_COMPLETE"


def test_change_set_says_which_modification_replaces(aws: Any) -> None:
    # moto listed no Replacement: a --no-execute preview never warned of one.
    cfn = aws("cloudformation")

    def alarm(name: str, threshold: int) -> dict[str, Any]:
        return {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {
                "AlarmName": name,
                "Namespace": "AWS/Lambda",
                "MetricName": "Errors",
                "Statistic": "Sum",
                "Period": 60,
                "EvaluationPeriods": 1,
                "Threshold": threshold,
                "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            },
        }

    apply(aws, "preview", {"Renamed": alarm("a", 1), "Retuned": alarm("b", 1)})
    cfn.create_change_set(
        StackName="preview",
        ChangeSetName="next",
        ChangeSetType="UPDATE",
        TemplateBody=json.dumps(
            {"Resources": {"Renamed": alarm("a2", 1), "Retuned": alarm("b", 5)}}
        ),
    )
    changes = cfn.describe_change_set(StackName="preview", ChangeSetName="next")["Changes"]
    assert {
        c["ResourceChange"]["LogicalResourceId"]: c["ResourceChange"]["Replacement"]
        for c in changes
    } == {
        "Renamed": "True",
        "Retuned": "False",
    }
