"""Both real stacks deployed with the deployer to the emulator, then looked at as an operator
would: each resource of each template through its own service's API, an update, a destroy."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Any

import pytest

import emulator
from deployer.artifacts import BOOTSTRAP_STACK
from deployer.aws import AwsSettings, make_clients
from deployer.run import DeployOptions, Report, Run, prepare
from templates import registry
from templates.cfnread import condition_holds, decide_conditions
from templates.naming import Naming

pytestmark = pytest.mark.slow
SUFFIX = "emu"
STACKS = [Naming(SUFFIX).stack(base) for base in registry.select_stacks(None)]


def deploy(endpoint: str, lines: Any, edit: Any = None, **options: Any) -> Report:
    """One deployer run against the emulator; `edit(templates)` changes the built templates."""

    def build(naming: Naming, bases: Iterable[str]) -> dict[str, dict[str, Any]]:
        built = copy.deepcopy(registry.build_templates(naming, bases))
        if edit is not None:
            edit(built)
        return built

    settings = AwsSettings(
        region="us-east-1", endpoint_url=endpoint, access_key="k", secret_key="s", max_attempts=2
    )
    opts = DeployOptions(suffix=SUFFIX, yes=True, local=True, **options)
    plan = prepare(opts, build=build)
    return Run(
        plan, opts, make_clients(settings), lines, lambda _: False, sleep=lambda _: None
    ).execute()


def physical(aws: Any, stack: str) -> dict[str, str]:
    pages = aws("cloudformation").get_paginator("list_stack_resources").paginate(StackName=stack)
    return {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for p in pages
        for r in p["StackResourceSummaries"]
    }


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


PSEUDO_PARAMETERS = {
    "AWS::AccountId": emulator.ACCOUNT_ID,
    "AWS::Partition": "aws",
    "AWS::Region": emulator.REGION,
}


def ref(value: Any, ids: dict[str, str]) -> Any:
    """A template value with each Ref / GetAtt Arn of a resource resolved to its physical id."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return {**PSEUDO_PARAMETERS, **ids}[value["Ref"]]
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        target, attribute = value["Fn::GetAtt"]
        if attribute == "QueueName":  # a queue's physical id is its URL
            return ids[target].rsplit("/", 1)[-1]
        raise AssertionError(f"resolve GetAtt {target}.{attribute} in this test")
    return value


def as_deployed(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    """The template as CloudFormation applies it for these parameters: resources whose
    condition is false left out, each Fn::If replaced by the branch it takes."""
    resources = {
        logical: decide_conditions(template, resource, parameters)
        for logical, resource in template["Resources"].items()
        if "Condition" not in resource
        or condition_holds(template, resource["Condition"], parameters)
    }
    return {**template, "Resources": resources}


def check_stage(aws: Any, template: dict[str, Any], ids: dict[str, str]) -> None:
    apigw, logs = aws("apigateway"), aws("logs")
    groups = {g["logGroupName"]: g for g in logs.describe_log_groups()["logGroups"]}
    for logical, resource in of_type(template, "AWS::ApiGateway::Stage").items():
        p = resource["Properties"]
        stage = apigw.get_stage(restApiId=ids[p["RestApiId"]["Ref"]], stageName=ids[logical])
        assert stage["deploymentId"] == ref(p["DeploymentId"], ids)
        assert stage["tracingEnabled"] is p["TracingEnabled"]
        settings = stage["methodSettings"]["*/*"]
        assert settings["loggingLevel"] == "INFO"
        assert settings["dataTraceEnabled"] is False
        wanted = p["MethodSettings"][0]
        assert settings["throttlingRateLimit"] == wanted["ThrottlingRateLimit"]
        assert settings["throttlingBurstLimit"] == wanted["ThrottlingBurstLimit"]
        assert settings["metricsEnabled"] is wanted["MetricsEnabled"]
        access = stage["accessLogSettings"]
        assert access["format"] == p["AccessLogSetting"]["Format"]
        assert "body" not in access["format"].lower()
        destination = access["destinationArn"]
        group = p["AccessLogSetting"]["DestinationArn"]["Fn::GetAtt"][0]
        name = template["Resources"][group]["Properties"]["LogGroupName"]
        assert name in groups and destination.startswith(groups[name]["arn"].removesuffix(":*"))
        assert groups[name]["retentionInDays"] == 7


def check_usage_plans(aws: Any, template: dict[str, Any], ids: dict[str, str]) -> None:
    apigw = aws("apigateway")
    for logical, resource in of_type(template, "AWS::ApiGateway::UsagePlan").items():
        p = resource["Properties"]
        plan = apigw.get_usage_plan(usagePlanId=ids[logical])
        assert plan["throttle"] == {
            "burstLimit": p["Throttle"]["BurstLimit"],
            "rateLimit": p["Throttle"]["RateLimit"],
        }
        assert plan["quota"]["limit"] == p["Quota"]["Limit"]
        assert plan["quota"]["period"] == p["Quota"]["Period"]
        stages = [(s["ApiId"]["Ref"], s["Stage"]["Ref"]) for s in p["ApiStages"]]
        assert [(s["apiId"], s["stage"]) for s in plan["apiStages"]] == [
            (ids[api], ids[stage]) for api, stage in stages
        ]
    for resource in of_type(template, "AWS::ApiGateway::UsagePlanKey").values():
        p = resource["Properties"]
        keys = apigw.get_usage_plan_keys(usagePlanId=ids[p["UsagePlanId"]["Ref"]])["items"]
        assert [k["id"] for k in keys] == [ids[p["KeyId"]["Ref"]]]
        key = apigw.get_api_key(apiKey=ids[p["KeyId"]["Ref"]], includeValue=True)
        assert key["enabled"] is True and len(key["value"]) >= 20


def check_api_definition(aws: Any, template: dict[str, Any], ids: dict[str, str]) -> None:
    apigw = aws("apigateway")
    for resource in of_type(template, "AWS::ApiGateway::GatewayResponse").values():
        p = resource["Properties"]
        response = apigw.get_gateway_response(
            restApiId=ids[p["RestApiId"]["Ref"]], responseType=p["ResponseType"]
        )
        assert response["responseParameters"] == p["ResponseParameters"]
        assert response["responseTemplates"] == p["ResponseTemplates"]
    for logical, resource in of_type(template, "AWS::ApiGateway::RequestValidator").items():
        p = resource["Properties"]
        validator = apigw.get_request_validator(
            restApiId=ids[p["RestApiId"]["Ref"]], requestValidatorId=ids[logical]
        )
        assert validator["validateRequestBody"] is p["ValidateRequestBody"]
    for resource in of_type(template, "AWS::ApiGateway::Model").values():
        p = resource["Properties"]
        model = apigw.get_model(restApiId=ids[p["RestApiId"]["Ref"]], modelName=p["Name"])
        schema = p["Schema"]  # a template may give the schema as JSON text or as an object
        wanted = json.loads(schema) if isinstance(schema, str) else schema
        assert json.loads(model["schema"]) == wanted
    for resource in of_type(template, "AWS::ApiGateway::Method").values():
        p = resource["Properties"]
        method = apigw.get_method(
            restApiId=ids[p["RestApiId"]["Ref"]],
            resourceId=ids[p["ResourceId"]["Ref"]],
            httpMethod=p["HttpMethod"],
        )
        assert method["apiKeyRequired"] is p.get("ApiKeyRequired", False)
        if "RequestValidatorId" in p:
            assert method["requestValidatorId"] == ids[p["RequestValidatorId"]["Ref"]]
        integration = method["methodIntegration"]
        assert integration["type"] == p["Integration"]["Type"]
        for response in p["Integration"].get("IntegrationResponses", []):
            got = integration["integrationResponses"][str(response["StatusCode"])]
            assert got.get("responseParameters", {}) == response.get("ResponseParameters", {})


def check_alarms(aws: Any, template: dict[str, Any], ids: dict[str, str]) -> None:
    alarms = {a["AlarmName"]: a for a in aws("cloudwatch").describe_alarms()["MetricAlarms"]}
    for logical, resource in of_type(template, "AWS::CloudWatch::Alarm").items():
        p = resource["Properties"]
        alarm = alarms[ids[logical]]
        if "Metrics" in p:  # metric math: each metric with its dimensions
            got = {m["Id"]: m for m in alarm["Metrics"]}
            for metric in p["Metrics"]:
                assert got[metric["Id"]].get("Expression") == metric.get("Expression")
                if "MetricStat" in metric:
                    inner, stat = metric["MetricStat"]["Metric"], got[metric["Id"]]["MetricStat"]
                    assert stat["Metric"]["MetricName"] == inner["MetricName"]
                    assert stat["Metric"]["Namespace"] == inner["Namespace"]
                    assert {d["Name"]: d["Value"] for d in stat["Metric"]["Dimensions"]} == {
                        d["Name"]: str(ref(d["Value"], ids)) for d in inner["Dimensions"]
                    }
        else:
            assert (alarm["Namespace"], alarm["MetricName"]) == (p["Namespace"], p["MetricName"])
            wanted = {d["Name"]: str(ref(d["Value"], ids)) for d in p.get("Dimensions", [])}
            assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == wanted
        assert alarm["Threshold"] == float(p["Threshold"])
        assert alarm["ComparisonOperator"] == p["ComparisonOperator"]
        assert alarm["TreatMissingData"] == p["TreatMissingData"]
        for key in ("AlarmActions", "OKActions"):
            assert alarm[key] == [ids[a["Ref"]] for a in p[key]]
            assert all(":sns:" in arn for arn in alarm[key])


def check_policies(aws: Any, template: dict[str, Any], ids: dict[str, str]) -> None:
    sqs, sns = aws("sqs"), aws("sns")
    for _logical, resource in of_type(template, "AWS::SQS::QueuePolicy").items():
        p = resource["Properties"]
        for queue in p["Queues"]:
            got = sqs.get_queue_attributes(QueueUrl=ids[queue["Ref"]], AttributeNames=["Policy"])
            statements = json.loads(got["Attributes"]["Policy"])["Statement"]
            assert [s["Sid"] for s in statements] == [
                s["Sid"] for s in p["PolicyDocument"]["Statement"]
            ]
            deny = [s for s in statements if s["Effect"] == "Deny"]
            assert deny and deny[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    for _logical, resource in of_type(template, "AWS::SNS::TopicPolicy").items():
        p = resource["Properties"]
        for topic in p["Topics"]:
            policy = json.loads(
                sns.get_topic_attributes(TopicArn=ids[topic["Ref"]])["Attributes"]["Policy"]
            )
            assert [s["Sid"] for s in policy["Statement"]] == [
                s["Sid"] for s in p["PolicyDocument"]["Statement"]
            ]


def check_waf(aws: Any, template: dict[str, Any], ids: dict[str, str]) -> None:
    waf, apigw = aws("wafv2"), aws("apigateway")
    for resource in of_type(template, "AWS::WAFv2::WebACLAssociation").values():
        acl_logical = resource["Properties"]["WebACLArn"]["Fn::GetAtt"][0]
        name, acl_id, scope = ids[acl_logical].split("|")
        acl = waf.get_web_acl(Name=name, Id=acl_id, Scope=scope)["WebACL"]
        wanted = template["Resources"][acl_logical]["Properties"]
        assert [r["Name"] for r in acl["Rules"]] == [r["Name"] for r in wanted["Rules"]]
        assert acl["DefaultAction"] == wanted["DefaultAction"]
        for logical, stage in of_type(template, "AWS::ApiGateway::Stage").items():
            api = ids[stage["Properties"]["RestApiId"]["Ref"]]
            arn = f"arn:aws:apigateway:{emulator.REGION}::/restapis/{api}/stages/{ids[logical]}"
            assert waf.get_web_acl_for_resource(ResourceArn=arn)["WebACL"]["ARN"] == acl["ARN"]
            assert apigw.get_stage(restApiId=api, stageName=ids[logical])["webAclArn"] == acl["ARN"]
    for logical, resource in of_type(template, "AWS::WAFv2::LoggingConfiguration").items():
        config = waf.get_logging_configuration(ResourceArn=ids[logical])["LoggingConfiguration"]
        assert all(":aws-waf-logs-" in d for d in config["LogDestinationConfigs"])
        # The API key header never reaches the WAF logs.
        assert config.get("RedactedFields", []) == resource["Properties"].get("RedactedFields", [])


def check_network(aws: Any, template: dict[str, Any], ids: dict[str, str]) -> None:
    ec2 = aws("ec2")
    for logical, resource in of_type(template, "AWS::EC2::VPC").items():
        p = resource["Properties"]
        for name, default in (("EnableDnsSupport", True), ("EnableDnsHostnames", False)):
            attribute = name[0].lower() + name[1:]
            got = ec2.describe_vpc_attribute(VpcId=ids[logical], Attribute=attribute)
            assert got[name[0].upper() + name[1:]]["Value"] is p.get(name, default), name
    standalone = of_type(template, "AWS::EC2::SecurityGroupEgress").values()
    for logical, resource in of_type(template, "AWS::EC2::SecurityGroup").items():
        wanted = resource["Properties"].get("SecurityGroupEgress")
        if wanted is None:
            continue
        wanted = wanted + [
            r["Properties"] for r in standalone if r["Properties"]["GroupId"] == {"Ref": logical}
        ]
        (group,) = ec2.describe_security_groups(GroupIds=[ids[logical]])["SecurityGroups"]
        got = sorted(
            (p["IpProtocol"], p.get("FromPort"), p.get("ToPort"))
            for p in group["IpPermissionsEgress"]
            for _ in p["IpRanges"] + p["UserIdGroupPairs"]
        )
        assert got == sorted(
            (str(w["IpProtocol"]), w.get("FromPort"), w.get("ToPort")) for w in wanted
        ), logical
    for logical, resource in of_type(template, "AWS::EC2::VPCEndpoint").items():
        p = resource["Properties"]
        (endpoint,) = ec2.describe_vpc_endpoints(VpcEndpointIds=[ids[logical]])["VpcEndpoints"]
        assert endpoint["VpcEndpointType"] == p["VpcEndpointType"]
        assert [s["Sid"] for s in json.loads(endpoint["PolicyDocument"])["Statement"]] == [
            s["Sid"] for s in p["PolicyDocument"]["Statement"]
        ]
        if p["VpcEndpointType"] == "Interface":
            assert endpoint["PrivateDnsEnabled"] is p.get("PrivateDnsEnabled", True)
            assert {g["GroupId"] for g in endpoint["Groups"]} == {
                ids[g["Ref"]] for g in p["SecurityGroupIds"]
            }


CHECKS = (
    check_network,
    check_stage,
    check_usage_plans,
    check_api_definition,
    check_alarms,
    check_policies,
    check_waf,
)


def test_every_resource_created_updated_and_destroyed(
    emulator_server: Any, aws: Any, lines: Any
) -> None:
    endpoint = emulator_server.endpoint
    first = deploy(endpoint, lines)
    assert first.ok, lines.text()
    templates = registry.build_templates(Naming(SUFFIX), registry.select_stacks(None))

    # Nothing skipped: exactly the resources whose condition holds are created.
    for stack in STACKS:
        assert all("(condition" in line for line in first.skipped[stack]), first.skipped[stack]
        ids = physical(aws, stack)
        description = aws("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]
        parameters = {p["ParameterKey"]: p["ParameterValue"] for p in description["Parameters"]}
        deployed = as_deployed(templates[stack], parameters)
        assert set(ids) == set(deployed["Resources"]), stack
        for check in CHECKS:
            check(aws, deployed, ids)
        outputs = aws("cloudformation").describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]
        assert {o["OutputKey"] for o in outputs} >= {"ApiKeyId", "InvokeUrl"}
    policy = json.loads(
        aws("s3").get_bucket_policy(Bucket=physical(aws, BOOTSTRAP_STACK)["ArtifactBucket"])[
            "Policy"
        ]
    )
    assert any(
        s["Effect"] == "Deny" and "aws:SecureTransport" in json.dumps(s)
        for s in policy["Statement"]
    )

    # A redeploy with a changed throttle updates the stage in place; nothing else changes.
    def halve_throttle(built: dict[str, dict[str, Any]]) -> None:
        for template in built.values():
            for stage in of_type(template, "AWS::ApiGateway::Stage").values():
                stage["Properties"]["MethodSettings"][0]["ThrottlingRateLimit"] = 50.0

    before = {stack: physical(aws, stack) for stack in STACKS}
    second = deploy(endpoint, lines, edit=halve_throttle)
    assert second.ok, lines.text()
    assert [o.result for o in second.outcomes] == ["updated"] * len(STACKS)
    for stack in STACKS:
        ids = physical(aws, stack)
        assert ids == before[stack]
        for logical, resource in of_type(templates[stack], "AWS::ApiGateway::Stage").items():
            api = ids[resource["Properties"]["RestApiId"]["Ref"]]
            settings = aws("apigateway").get_stage(restApiId=api, stageName=ids[logical])[
                "methodSettings"
            ]
            assert settings["*/*"]["throttlingRateLimit"] == 50.0
            assert settings["*/*"]["loggingLevel"] == "INFO"

    # Destroy leaves nothing of either stack behind.
    third = deploy(endpoint, lines, destroy=True)
    assert third.ok, lines.text()
    assert aws("apigateway").get_rest_apis()["items"] == []
    assert aws("apigateway").get_api_keys()["items"] == []
    assert aws("apigateway").get_usage_plans()["items"] == []
    assert aws("cloudwatch").describe_alarms()["MetricAlarms"] == []
    assert aws("sqs").list_queues().get("QueueUrls", []) == []
    assert aws("sns").list_topics()["Topics"] == []
    assert aws("dynamodb").list_tables()["TableNames"] == []
    assert aws("lambda").list_functions()["Functions"] == []
    assert aws("wafv2").list_web_acls(Scope="REGIONAL")["WebACLs"] == []
    names = [g["logGroupName"] for g in aws("logs").describe_log_groups()["logGroups"]]
    assert not [n for n in names if SUFFIX in n], names
    assert aws("sns").list_subscriptions()["Subscriptions"] == []
    assert aws("events").list_rules()["Rules"] == []
    assert aws("lambda").list_event_source_mappings()["EventSourceMappings"] == []
    assert aws("wafv2").list_logging_configurations(Scope="REGIONAL")["LoggingConfigurations"] == []
    iam = aws("iam")
    assert iam.list_roles()["Roles"] == [] and iam.list_policies(Scope="Local")["Policies"] == []
    keys = [k["KeyId"] for k in aws("kms").list_keys()["Keys"]]
    states = {aws("kms").describe_key(KeyId=k)["KeyMetadata"]["KeyState"] for k in keys}
    assert states <= {"PendingDeletion"}  # as on AWS: a key waits out its deletion window
    ec2 = aws("ec2")
    assert [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"] if not v["IsDefault"]] == []
    assert [
        g for g in ec2.describe_security_groups()["SecurityGroups"] if g["GroupName"] != "default"
    ] == []
    assert {e["State"] for e in ec2.describe_vpc_endpoints()["VpcEndpoints"]} <= {"deleted"}
