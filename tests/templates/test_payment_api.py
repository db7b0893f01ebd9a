"""One test per requirement of seed 000 (the payment-api stack), on the template dict."""

from __future__ import annotations

import json

import pytest

from templates.api import ACCESS_LOG_FORMAT
from tests.templates.cfn import one, props, refs_to, resources, role_statements, walk

ORIGIN = "https://app.example.com"


def method(template, http_method, path_part):
    """The method `http_method` on the resource whose PathPart is `path_part`."""
    res_ids = [
        i
        for i, r in resources(template, "AWS::ApiGateway::Resource").items()
        if props(r)["PathPart"] == path_part
    ]
    assert len(res_ids) == 1
    found = [
        r
        for r in resources(template, "AWS::ApiGateway::Method").values()
        if props(r)["HttpMethod"] == http_method and props(r)["ResourceId"] == {"Ref": res_ids[0]}
    ]
    assert len(found) == 1, (http_method, path_part)
    return found[0]


@pytest.mark.requirement("S000-REST-API", "S000-REGIONAL")
def test_rest_api_is_named_described_and_regional(payment_api):
    _, api = one(payment_api, "AWS::ApiGateway::RestApi")
    assert props(api)["Name"] == "payment-api"  # the seed's name, verbatim
    assert len(props(api)["Description"]) > 20
    assert props(api)["EndpointConfiguration"]["Types"] == ["REGIONAL"]


@pytest.mark.requirement("S000-POST-PROCESS-PAYMENT", "S000-API-KEY-AUTH", "S000-AWS-PROXY")
def test_post_process_payment_requires_the_key_and_proxies_to_lambda(payment_api):
    post = props(method(payment_api, "POST", "process-payment"))
    assert post["ApiKeyRequired"] is True
    integration = post["Integration"]
    assert integration["Type"] == "AWS_PROXY"
    assert integration["IntegrationHttpMethod"] == "POST"
    template, variables = integration["Uri"]["Fn::Sub"]
    assert (
        ":apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${FunctionArn}/invocations"
        in template
    )
    # The function ARN is built from the parameter, in this stack's partition, region and account.
    arn_template, arn_variables = variables["FunctionArn"]["Fn::Sub"]
    assert (
        arn_template
        == "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${Name}"
    )
    assert arn_variables == {"Name": {"Ref": "ProcessorFunctionName"}}


@pytest.mark.requirement("S000-EXISTING-FUNCTION", "S000-FILE-LAYOUT")
def test_existing_function_name_is_a_parameter_defaulting_to_payment_processor(payment_api):
    parameter = payment_api["Parameters"]["ProcessorFunctionName"]
    assert parameter["Default"] == "payment-processor"
    assert parameter["AllowedPattern"] and parameter["ConstraintDescription"]


@pytest.mark.requirement("S000-API-KEY")
def test_api_key_is_named_and_described(payment_api):
    _, key = one(payment_api, "AWS::ApiGateway::ApiKey")
    assert props(key)["Name"] == "mobile-app-key"  # the seed's name, verbatim
    assert props(key)["Enabled"] is True
    assert "mobile app" in props(key)["Description"]


@pytest.mark.requirement("S000-USAGE-PLAN", "S000-USAGE-PLAN-KEY")
def test_usage_plan_throttles_meters_and_binds_the_key_to_prod(payment_api):
    plan_id, plan = one(payment_api, "AWS::ApiGateway::UsagePlan")
    stage_id, stage = one(payment_api, "AWS::ApiGateway::Stage")
    p = props(plan)
    assert p["Throttle"]["RateLimit"] == 100
    assert p["Throttle"]["BurstLimit"] >= 100
    assert p["Quota"] == {"Limit": 10000, "Period": "DAY"}
    # Ref to the stage, so the plan is created after it ("API Stage not found" otherwise).
    assert p["ApiStages"][0]["Stage"] == {"Ref": stage_id}
    assert props(stage)["StageName"] == "prod"
    _, plan_key = one(payment_api, "AWS::ApiGateway::UsagePlanKey")
    key_id, _ = one(payment_api, "AWS::ApiGateway::ApiKey")
    assert props(plan_key) == {
        "KeyId": {"Ref": key_id},
        "KeyType": "API_KEY",
        "UsagePlanId": {"Ref": plan_id},
    }


@pytest.mark.requirement(
    "S000-LAMBDA-PERMISSION",
    "S000-PERMISSION-PRINCIPAL",
    "S000-LEAST-PRIVILEGE",
    "PCI.DSS.321-LambdaFunctionPublicAccessProhibited",
)
def test_lambda_permission_is_scoped_to_this_api_route(payment_api):
    _, permission = one(payment_api, "AWS::Lambda::Permission")
    p = props(permission)
    assert p["Principal"] == "apigateway.amazonaws.com"
    assert p["Action"] == "lambda:InvokeFunction"
    assert p["FunctionName"] == {"Ref": "ProcessorFunctionName"}
    api_id, _ = one(payment_api, "AWS::ApiGateway::RestApi")
    assert refs_to(p["SourceArn"], api_id)
    source = json.dumps(p["SourceArn"])
    assert ":execute-api:" in source and "/prod/POST/process-payment" in source


@pytest.mark.requirement(
    "S000-CORS-ORIGIN",
    "S000-CORS-METHOD-RESPONSE",
    "S000-CORS-INTEGRATION-RESPONSE",
)
def test_cors_method_and_integration_responses(payment_api):
    post = props(method(payment_api, "POST", "process-payment"))
    declared = post["MethodResponses"][0]
    assert declared["StatusCode"] == "200"
    for header in ("Origin", "Headers", "Methods"):
        assert (
            f"method.response.header.Access-Control-Allow-{header}"
            in declared["ResponseParameters"]
        )
    mapped = post["Integration"]["IntegrationResponses"][0]["ResponseParameters"]
    assert mapped["method.response.header.Access-Control-Allow-Origin"] == f"'{ORIGIN}'"


@pytest.mark.requirement("S000-CORS-ORIGIN")
def test_browser_preflight_needs_no_key(payment_api):
    options = props(method(payment_api, "OPTIONS", "process-payment"))
    assert options["ApiKeyRequired"] is False
    assert options["AuthorizationType"] == "NONE"
    assert options["Integration"]["Type"] == "MOCK"
    headers = options["Integration"]["IntegrationResponses"][0]["ResponseParameters"]
    assert headers["method.response.header.Access-Control-Allow-Origin"] == f"'{ORIGIN}'"
    assert "POST" in headers["method.response.header.Access-Control-Allow-Methods"]
    assert "X-Api-Key" in headers["method.response.header.Access-Control-Allow-Headers"]


@pytest.mark.parametrize("response_type", ["DEFAULT_4XX", "DEFAULT_5XX"])
@pytest.mark.requirement("S000-CORS-ORIGIN")
def test_gateway_errors_carry_cors_and_json(payment_api, response_type):
    found = [
        props(r)
        for r in resources(payment_api, "AWS::ApiGateway::GatewayResponse").values()
        if props(r)["ResponseType"] == response_type
    ]
    assert len(found) == 1
    assert (
        found[0]["ResponseParameters"]["gatewayresponse.header.Access-Control-Allow-Origin"]
        == f"'{ORIGIN}'"
    )
    assert "application/json" in found[0]["ResponseTemplates"]


@pytest.mark.requirement(
    "S000-EXECUTION-LOGS-INFO",
    "S000-LOG-WHO-WHEN",
    "PCI.DSS.321-APIGWExecutionLoggingEnabled",
)
def test_execution_logging_is_info_without_data_trace(payment_api):
    _, stage = one(payment_api, "AWS::ApiGateway::Stage")
    (settings,) = props(stage)["MethodSettings"]
    assert settings["LoggingLevel"] == "INFO"
    assert settings["DataTraceEnabled"] is False
    assert settings["MetricsEnabled"] is True
    assert (settings["ResourcePath"], settings["HttpMethod"]) == ("/*", "*")


@pytest.mark.requirement("S000-ACCESS-LOG", "S000-LOG-WHO-WHEN")
def test_access_log_records_who_when_what_and_outcome_never_a_body_or_key_value(payment_api):
    _, stage = one(payment_api, "AWS::ApiGateway::Stage")
    access = props(stage)["AccessLogSetting"]
    fmt = json.loads(access["Format"])
    assert fmt == ACCESS_LOG_FORMAT
    values = set(fmt.values())
    for needed in (
        "$context.requestId",
        "$context.identity.sourceIp",
        "$context.identity.apiKeyId",
        "$context.requestTime",
        "$context.httpMethod",
        "$context.resourcePath",
        "$context.status",
        "$context.responseLatency",
    ):
        assert needed in values
    # Why a request failed: API Gateway's own error and the integration's.
    for needed in (
        "$context.error.message",
        "$context.error.responseType",
        "$context.integrationErrorMessage",
    ):
        assert needed in values, needed
    assert not any("body" in v.lower() for v in values)
    assert "$context.identity.apiKey" not in values  # the key's value
    assert "$context.path" not in values  # a card number typed into a URL would be logged
    # validationErrorString names the failing JSON path and can quote the submitted value.
    assert "$context.error.validationErrorString" not in values
    group_id, _ = next(
        (i, r)
        for i, r in resources(payment_api, "AWS::Logs::LogGroup").items()
        if "access" in json.dumps(props(r)["LogGroupName"])
    )
    assert refs_to(access["DestinationArn"], group_id)


@pytest.mark.requirement("S000-LOG-RETENTION")
def test_every_log_group_is_kept_exactly_seven_days(payment_api):
    """Access, execution and WAF logs."""
    groups = resources(payment_api, "AWS::Logs::LogGroup")
    assert len(groups) == 3
    assert {props(g)["RetentionInDays"] for g in groups.values()} == {7}


@pytest.mark.requirement("S000-LOG-GROUP-AND-ROLE")
def test_execution_log_group_is_pre_created_and_the_stage_waits_for_it(payment_api):
    api_id, _ = one(payment_api, "AWS::ApiGateway::RestApi")
    _, stage = one(payment_api, "AWS::ApiGateway::Stage")
    execution = [
        (i, g)
        for i, g in resources(payment_api, "AWS::Logs::LogGroup").items()
        if "API-Gateway-Execution-Logs_${Api}/prod" in json.dumps(props(g)["LogGroupName"])
    ]
    assert len(execution) == 1
    group_id, group = execution[0]
    assert refs_to(props(group)["LogGroupName"], api_id)
    assert group_id in stage["DependsOn"]


@pytest.mark.requirement("S000-LOG-GROUP-AND-ROLE", "S000-LEAST-PRIVILEGE")
def test_cloudwatch_role_is_least_privilege_and_owned_by_one_stack(payment_api):
    account_id, account = one(payment_api, "AWS::ApiGateway::Account")
    role_id = props(account)["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    role = payment_api["Resources"][role_id]
    assert account["Condition"] == role["Condition"] == "ManagesApiGatewayAccount"
    trust = props(role)["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [
        {
            "Action": ["sts:AssumeRole"],
            "Effect": "Allow",
            "Principal": {"Service": ["apigateway.amazonaws.com"]},
        }
    ]
    actions = {a for s in role_statements(payment_api, role_id) for a in s["Action"]}
    assert actions == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "logs:DescribeLogStreams",
        "logs:DescribeLogGroups",
        # only /aws/apigateway/welcome: tests/templates/test_security.py
        "logs:CreateLogGroup",
    }
    # The stage waits for the account setting when this stack owns it.
    _, stage = one(payment_api, "AWS::ApiGateway::Stage")
    handle = payment_api["Resources"]["ApiGatewayAccountDependency"]
    assert "ApiGatewayAccountDependency" in stage["DependsOn"]
    assert refs_to(handle["Metadata"], account_id)


def _deployment_id(naming, change=None) -> tuple[str, ...]:
    """The payment-api deployments' logical IDs, its gateway spec changed by `change`."""
    import dataclasses

    from templates import payment_api as module
    from templates.api import add_gateway as real_add_gateway

    def changed(t, n, spec, **kwargs):
        return real_add_gateway(t, n, change(dataclasses, spec), **kwargs)

    original = module.add_gateway
    if change is not None:
        module.add_gateway = changed
    try:
        template = module.build_payment_api(naming).to_dict()
    finally:
        module.add_gateway = original
    return tuple(sorted(i for i in template["Resources"] if i.startswith("ApiDeployment")))


def test_deployment_redeploys_when_a_method_changes(naming):
    def require_header(dc, spec):
        route = dc.replace(spec.routes[0], required_headers=("Idempotency-Key",))
        return dc.replace(spec, routes=(route,))

    assert _deployment_id(naming) == _deployment_id(naming)
    assert _deployment_id(naming, require_header) != _deployment_id(naming)


def test_deployment_redeploys_when_a_model_or_gateway_response_changes(naming):
    """A schema lives in a Model the method only Refs; CORS errors live in GatewayResponses."""

    def with_schema(required):
        def change(dc, spec):
            schema = {"type": "object", "required": required}
            route = dc.replace(spec.routes[0], request_schema=schema)
            return dc.replace(spec, routes=(route,))

        return change

    def other_origin(dc, spec):
        return dc.replace(spec, cors_origin="https://other.example.com")

    one_field = _deployment_id(naming, with_schema(["amount"]))
    assert one_field != _deployment_id(naming, with_schema(["amount", "currency"]))
    assert _deployment_id(naming, other_origin) != _deployment_id(naming)


DEFINITION_TYPES = (
    "AWS::ApiGateway::Resource",
    "AWS::ApiGateway::Method",
    "AWS::ApiGateway::Model",
    "AWS::ApiGateway::RequestValidator",
    "AWS::ApiGateway::GatewayResponse",
)


@pytest.mark.requirement("S000-PROD-STAGE")
def test_deployment_refers_to_every_definition_resource_and_sets_no_stage(stack):
    """Gateway responses, models and validators are deployed too: the snapshot waits for all."""
    _, template = stack
    deployments = resources(template, "AWS::ApiGateway::Deployment")
    assert deployments
    for deployment in deployments.values():
        assert "StageName" not in props(deployment)
        for type_name in DEFINITION_TYPES:
            for logical_id in resources(template, type_name):
                assert refs_to(props(deployment)["Description"], logical_id), logical_id
    _, stage = one(template, "AWS::ApiGateway::Stage")
    for deployment_id in deployments:
        assert refs_to(props(stage)["DeploymentId"], deployment_id)


@pytest.mark.requirement("S000-FILE-LAYOUT")
def test_unique_token_is_eight_characters_of_the_stack_id(payment_api):
    role = next(iter(resources(payment_api, "AWS::IAM::Role").values()))
    name = props(role)["RoleName"]["Fn::Join"]
    token = name[1][-1]
    assert token == {
        "Fn::Select": [
            0,
            {
                "Fn::Split": [
                    "-",
                    {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]},
                ]
            },
        ]
    }


@pytest.mark.requirement("S000-OUTPUT-INVOKE-URL", "S000-OUTPUT-API-KEY")
def test_outputs_give_the_invoke_url_and_the_key_id_but_never_the_key_value(payment_api):
    outputs = payment_api["Outputs"]
    url = outputs["InvokeUrl"]["Value"]["Fn::Sub"]
    assert url[0].startswith(
        "https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}/prod/process-payment"
    )
    key_id, _ = one(payment_api, "AWS::ApiGateway::ApiKey")
    assert outputs["ApiKeyId"]["Value"] == {"Ref": key_id}
    command, variables = outputs["ApiKeyValueCommand"]["Value"]["Fn::Sub"]
    assert "aws apigateway get-api-key --api-key ${Key} --include-value" in command
    assert variables == {"Key": {"Ref": key_id}}
    # The key appears in outputs only by its id (Ref); there is no value to leak.
    for name, output in outputs.items():
        for _path, item in walk(output["Value"]):
            if isinstance(item, dict) and "Fn::GetAtt" in item:
                assert item["Fn::GetAtt"][0] != key_id, name


def test_parameters_are_console_ready(payment_api):
    interface = payment_api["Metadata"]["AWS::CloudFormation::Interface"]
    grouped = {p for g in interface["ParameterGroups"] for p in g["Parameters"]}
    assert grouped == set(payment_api["Parameters"])
    for name, parameter in payment_api["Parameters"].items():
        assert len(parameter["Description"]) > 20, name
        assert {"AllowedPattern", "AllowedValues", "MinValue"} & set(parameter), name
        assert name in interface["ParameterLabels"], name


def test_log_groups_are_encrypted_with_a_key_that_names_exactly_them(payment_api):
    key_id, key = one(payment_api, "AWS::KMS::Key")
    logs_statement = next(
        s
        for s in props(key)["KeyPolicy"]["Statement"]
        if s["Sid"] == "CloudWatchLogsEncryptsOwnLogGroups"
    )
    arns = logs_statement["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    assert len(arns) == len(resources(payment_api, "AWS::Logs::LogGroup"))
    for group in resources(payment_api, "AWS::Logs::LogGroup").values():
        assert props(group)["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}


@pytest.mark.requirement("S000-LOG-GROUP-AND-ROLE")
def test_the_account_parameter_says_what_releasing_the_setting_does(stack):
    """Flipping ManageApiGatewayAccount true -> false (or deleting the owner) deletes the
    role the account setting points at: the console says so where the choice is made."""
    _, template = stack
    description = template["Parameters"]["ManageApiGatewayAccount"]["Description"]
    assert "true to false" in description
    assert "deleted role" in description
    assert "every API in the region" in description
