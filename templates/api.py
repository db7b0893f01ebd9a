"""The API Gateway building block both stacks share.

One implementation of the REST API, its routes to Lambda (AWS_PROXY), CORS (preflights
and gateway responses), API key, usage plan, logging (access and execution, kept a fixed
number of days), the account's CloudWatch role, the deployment and the `prod` stage.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from awacs import logs as awslogs
from troposphere import (
    Equals,
    If,
    Join,
    Parameter,
    Ref,
    Sub,
    Template,
)
from troposphere.apigateway import (
    AccessLogSetting,
    Account,
    ApiKey,
    ApiStage,
    Deployment,
    EndpointConfiguration,
    GatewayResponse,
    Integration,
    IntegrationResponse,
    Method,
    MethodResponse,
    MethodSetting,
    Model,
    QuotaSettings,
    RequestValidator,
    Resource,
    RestApi,
    Stage,
    ThrottleSettings,
    UsagePlan,
    UsagePlanKey,
)
from troposphere.awslambda import Permission
from troposphere.cloudformation import WaitConditionHandle
from troposphere.logs import LogGroup

from templates.common import add_output, add_parameter, skip_checkov
from templates.iam import add_service_role, allow
from templates.keys import StackKey
from templates.logs import add_log_group
from templates.naming import Kind, Naming, unique_token

STAGE_NAME = "prod"
COMPONENT = "api"
ACCOUNT_CONDITION = "ManagesApiGatewayAccount"
# Headers a browser may send; X-Api-Key carries the key, Idempotency-Key makes retries safe.
CORS_ALLOWED_HEADERS = ("Content-Type", "X-Api-Key", "Idempotency-Key")
# One JSON line per request: who (IP, key id), when, what (method, path), outcome
# (status, latency). Never a body, never $context.identity.apiKey (the key's value).
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "sourceIp": "$context.identity.sourceIp",
    "apiKeyId": "$context.identity.apiKeyId",
    "userAgent": "$context.identity.userAgent",
    "requestTime": "$context.requestTime",
    "requestTimeEpoch": "$context.requestTimeEpoch",
    "httpMethod": "$context.httpMethod",
    # The route template (/payments/{transactionId}), never $context.path: a card number
    # pasted into a URL must not reach the access log.
    "resourcePath": "$context.resourcePath",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "xrayTraceId": "$context.xrayTraceId",
}
# API Gateway's own errors (missing key, throttled, quota, 5XX) in the same JSON shape the
# functions use; $context.error.messageString is already a quoted JSON string.
GATEWAY_ERROR_TEMPLATE = (
    '{"error": {"code": "$context.error.responseType", '
    '"message": $context.error.messageString}, "requestId": "$context.requestId"}'
)


@dataclass(frozen=True)
class LambdaTarget:
    """A function the API invokes: its ARN (integration URI) and name (permission)."""

    arn: Any
    name: Any


@dataclass(frozen=True)
class Route:
    """One method on one path, proxied to a Lambda function."""

    path: str
    method: str
    target: LambdaTarget
    api_key_required: bool = True
    request_schema: dict[str, Any] | None = None
    required_headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class GatewaySpec:
    """What differs between the two stacks' APIs."""

    api_base: str
    description: str
    key_base: str
    key_description: str
    routes: tuple[Route, ...]
    cors_origin: str = "https://app.example.com"
    rate_limit: float = 100.0
    burst_limit: int = 200
    daily_quota: int = 10_000
    log_retention_days: int = 7


@dataclass
class Gateway:
    """Handles on what `add_gateway` built, for callers to wire to."""

    api: RestApi
    stage: Stage
    api_key: ApiKey
    usage_plan: UsagePlan
    access_log_group: LogGroup
    execution_log_group: LogGroup
    parameters: list[Parameter] = field(default_factory=list)
    stage_name: str = STAGE_NAME

    @property
    def base_url(self) -> Sub:
        """The HTTPS root of the `prod` stage."""
        return self.invoke_url("")

    def invoke_url(self, path: str) -> Sub:
        """The full HTTPS URL of `path` on the `prod` stage."""
        return Sub(
            "https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}/" + self.stage_name + path,
            Api=self.api.ref(),
        )


def logical_name(path: str) -> str:
    """`/payments/{transactionId}` -> `PaymentsTransactionId` (for logical IDs)."""
    words = re.split(r"[^A-Za-z0-9]+", path)
    return "".join(w[:1].upper() + w[1:] for w in words if w) or "Root"


def execute_api_arn(api: RestApi, method: str, path: str) -> Sub:
    """The execute-api ARN of one method on the `prod` stage; path parameters become `*`."""
    resource_path = re.sub(r"\{[^}]+\}", "*", path)
    return Sub(
        "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${Api}/"
        + f"{STAGE_NAME}/{method}{resource_path}",
        Api=api.ref(),
    )


def lambda_integration_uri(function_arn: Any) -> Sub:
    """The integration URI API Gateway uses to invoke a Lambda function."""
    return Sub(
        "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/"
        "${FunctionArn}/invocations",
        FunctionArn=function_arn,
    )


def add_gateway(t: Template, naming: Naming, spec: GatewaySpec, *, key: StackKey) -> Gateway:
    """Build the whole REST API of `spec` and return handles on it."""
    api = t.add_resource(
        RestApi(
            "RestApi",
            Name=naming.name(spec.api_base, Kind.API),
            Description=spec.description,
            EndpointConfiguration=EndpointConfiguration(Types=["REGIONAL"]),
            ApiKeySourceType="HEADER",
            Tags=naming.tags(COMPONENT),
        )
    )
    resources = _add_resources(t, api, [route.path for route in spec.routes])
    validators = _add_validators(t, api, spec.routes)
    for route in spec.routes:
        _add_route(t, api, resources, validators, route, spec.cors_origin)
        _add_invoke_permission(t, api, route)
    for path in sorted({route.path for route in spec.routes}):
        verbs = sorted({r.method for r in spec.routes if r.path == path})
        _add_preflight(t, api, resources[path], path, verbs, spec)
    _add_gateway_responses(t, api, spec.cors_origin)

    account_parameter, account_dependency = _add_account_logging_role(t, naming)
    access_logs = add_log_group(
        t,
        naming,
        "ApiAccessLogGroup",
        name=f"/aws/apigateway/{naming.name(spec.api_base, Kind.API)}/access",
        retention_days=spec.log_retention_days,
        component=COMPONENT,
        key=key,
    )
    # API Gateway would create this group itself, with no expiry; pre-creating it
    # (the stage depends on it) is how its retention is set.
    execution_logs = add_log_group(
        t,
        naming,
        "ApiExecutionLogGroup",
        name=Sub("API-Gateway-Execution-Logs_${Api}/" + STAGE_NAME, Api=api.ref()),
        retention_days=spec.log_retention_days,
        component=COMPONENT,
        key=key,
    )
    deployment = _add_deployment(t, api)
    stage = t.add_resource(
        Stage(
            "ApiStage",
            StageName=STAGE_NAME,
            Description=f"{STAGE_NAME} stage of {naming.name(spec.api_base, Kind.API)}",
            RestApiId=api.ref(),
            DeploymentId=deployment.ref(),
            TracingEnabled=True,
            AccessLogSetting=AccessLogSetting(
                DestinationArn=access_logs.get_att("Arn"),
                Format=json.dumps(ACCESS_LOG_FORMAT, sort_keys=True, separators=(",", ":")),
            ),
            MethodSettings=[
                MethodSetting(
                    ResourcePath="/*",
                    HttpMethod="*",
                    LoggingLevel="INFO",
                    # Data tracing would log full request and response bodies.
                    DataTraceEnabled=False,
                    MetricsEnabled=True,
                    ThrottlingRateLimit=spec.rate_limit,
                    ThrottlingBurstLimit=spec.burst_limit,
                    CachingEnabled=False,
                    CacheDataEncrypted=True,
                )
            ],
            Tags=naming.tags(COMPONENT),
            DependsOn=[execution_logs.title, account_dependency.title],
        )
    )
    skip_checkov(
        stage,
        {
            "CKV_AWS_120": "Caching is off on purpose: payment responses must never be "
            "served from a cache.",
        },
    )
    api_key, usage_plan = _add_api_key(t, naming, spec, api, stage)

    gateway = Gateway(
        api=api,
        stage=stage,
        api_key=api_key,
        usage_plan=usage_plan,
        access_log_group=access_logs,
        execution_log_group=execution_logs,
        parameters=[account_parameter],
    )
    add_output(t, "RestApiId", api.ref(), "Id of the REST API")
    add_output(t, "ApiUrl", gateway.base_url, f"HTTPS root of the {STAGE_NAME} stage")
    add_output(
        t,
        "ApiKeyId",
        api_key.ref(),
        "Id of the API key (its value is not an output: anyone who can describe the "
        "stack could read it)",
    )
    add_output(
        t,
        "ApiKeyValueCommand",
        Sub(
            "aws apigateway get-api-key --api-key ${Key} --include-value "
            "--query value --output text --region ${AWS::Region}",
            Key=api_key.ref(),
        ),
        "Command that prints the API key's value for someone allowed apigateway:GET on it",
    )
    return gateway


def _add_resources(t: Template, api: RestApi, paths: Sequence[str]) -> dict[str, Any]:
    """One AWS::ApiGateway::Resource per path segment; returns path -> resource id."""
    ids: dict[str, Any] = {"/": api.get_att("RootResourceId")}
    for path in sorted(set(paths)):
        parent = "/"
        for part in path.strip("/").split("/"):
            current = parent.rstrip("/") + "/" + part
            if current not in ids:
                resource = t.add_resource(
                    Resource(
                        f"{logical_name(current)}Resource",
                        RestApiId=api.ref(),
                        ParentId=ids[parent],
                        PathPart=part,
                    )
                )
                ids[current] = resource.ref()
            parent = current
    return ids


def _add_validators(t: Template, api: RestApi, routes: Sequence[Route]) -> dict[str, Any]:
    """Request validators, only those the routes use."""
    validators: dict[str, Any] = {}
    if any(route.request_schema for route in routes):
        validators["body"] = t.add_resource(
            RequestValidator(
                "BodyAndParametersValidator",
                RestApiId=api.ref(),
                Name="body-and-parameters",
                ValidateRequestBody=True,
                ValidateRequestParameters=True,
            )
        ).ref()
    if any(route.required_headers and not route.request_schema for route in routes):
        validators["parameters"] = t.add_resource(
            RequestValidator(
                "ParametersValidator",
                RestApiId=api.ref(),
                Name="parameters-only",
                ValidateRequestBody=False,
                ValidateRequestParameters=True,
            )
        ).ref()
    return validators


def _cors_method_response(status: str, origin_required: bool = False) -> MethodResponse:
    """A method response that declares the three CORS headers."""
    return MethodResponse(
        StatusCode=status,
        ResponseParameters={
            "method.response.header.Access-Control-Allow-Origin": origin_required,
            "method.response.header.Access-Control-Allow-Headers": False,
            "method.response.header.Access-Control-Allow-Methods": False,
        },
    )


def _add_route(
    t: Template,
    api: RestApi,
    resources: dict[str, Any],
    validators: dict[str, Any],
    route: Route,
    origin: str,
) -> Method:
    """The method of one route, AWS_PROXY to its function."""
    name = logical_name(route.path) + route.method.capitalize()
    request_parameters = {
        f"method.request.path.{param}": True for param in re.findall(r"\{([^}]+)\}", route.path)
    }
    request_parameters |= {f"method.request.header.{h}": True for h in route.required_headers}
    kwargs: dict[str, Any] = {}
    if route.request_schema:
        model = t.add_resource(
            Model(
                f"{name}Model",
                RestApiId=api.ref(),
                Name=f"{name}Request",
                ContentType="application/json",
                Description=f"Shape of the {route.method} {route.path} body",
                Schema=route.request_schema,
            )
        )
        kwargs["RequestModels"] = {"application/json": model.ref()}
        kwargs["RequestValidatorId"] = validators["body"]
    elif route.required_headers:
        kwargs["RequestValidatorId"] = validators["parameters"]
    if request_parameters:
        kwargs["RequestParameters"] = request_parameters
    method = t.add_resource(
        Method(
            f"{name}Method",
            RestApiId=api.ref(),
            ResourceId=resources[route.path],
            HttpMethod=route.method,
            AuthorizationType="NONE",
            ApiKeyRequired=route.api_key_required,
            Integration=Integration(
                Type="AWS_PROXY",
                IntegrationHttpMethod="POST",
                Uri=lambda_integration_uri(route.target.arn),
                # With AWS_PROXY the function's own headers reach the client; this
                # mapping documents the allowed origin for the console and the audit.
                IntegrationResponses=[
                    IntegrationResponse(
                        StatusCode="200",
                        ResponseParameters={
                            "method.response.header.Access-Control-Allow-Origin": f"'{origin}'"
                        },
                    )
                ],
            ),
            MethodResponses=[_cors_method_response("200")],
            **kwargs,
        )
    )
    if not route.api_key_required:
        skip_checkov(
            method,
            {
                "CKV_AWS_59": f"{route.method} {route.path} is public by design "
                "(a health probe answering with states only); stage throttling limits it.",
            },
        )
    return method


def _add_invoke_permission(t: Template, api: RestApi, route: Route) -> Permission:
    """Let this API, and only this route of it, invoke the route's function."""
    return t.add_resource(
        Permission(
            f"{logical_name(route.path)}{route.method.capitalize()}InvokePermission",
            Action="lambda:InvokeFunction",
            FunctionName=route.target.name,
            Principal="apigateway.amazonaws.com",
            SourceArn=execute_api_arn(api, route.method, route.path),
        )
    )


def _add_preflight(
    t: Template, api: RestApi, resource_id: Any, path: str, verbs: list[str], spec: GatewaySpec
) -> Method:
    """An OPTIONS method answered by API Gateway itself: browsers send it without a key."""
    headers = {
        "Access-Control-Allow-Origin": f"'{spec.cors_origin}'",
        "Access-Control-Allow-Headers": "'" + ",".join(CORS_ALLOWED_HEADERS) + "'",
        "Access-Control-Allow-Methods": "'" + ",".join([*verbs, "OPTIONS"]) + "'",
    }
    method = t.add_resource(
        Method(
            f"{logical_name(path)}OptionsMethod",
            RestApiId=api.ref(),
            ResourceId=resource_id,
            HttpMethod="OPTIONS",
            AuthorizationType="NONE",
            ApiKeyRequired=False,
            Integration=Integration(
                Type="MOCK",
                RequestTemplates={"application/json": '{"statusCode": 204}'},
                IntegrationResponses=[
                    IntegrationResponse(
                        StatusCode="204",
                        ResponseParameters={
                            f"method.response.header.{k}": v for k, v in headers.items()
                        },
                    )
                ],
            ),
            MethodResponses=[_cors_method_response("204", origin_required=True)],
        )
    )
    skip_checkov(
        method,
        {
            "CKV_AWS_59": "CORS preflight: browsers send OPTIONS without credentials; "
            "the MOCK integration returns headers only and reaches no backend.",
        },
    )
    return method


def _add_gateway_responses(t: Template, api: RestApi, origin: str) -> None:
    """CORS headers and a JSON body on API Gateway's own 4XX and 5XX answers."""
    for response_type in ("DEFAULT_4XX", "DEFAULT_5XX"):
        t.add_resource(
            GatewayResponse(
                f"GatewayResponse{logical_name(response_type.lower())}",
                RestApiId=api.ref(),
                ResponseType=response_type,
                ResponseParameters={
                    "gatewayresponse.header.Access-Control-Allow-Origin": f"'{origin}'",
                    "gatewayresponse.header.Access-Control-Allow-Headers": "'"
                    + ",".join(CORS_ALLOWED_HEADERS)
                    + "'",
                },
                ResponseTemplates={"application/json": GATEWAY_ERROR_TEMPLATE},
            )
        )


def _add_account_logging_role(t: Template, naming: Naming) -> tuple[Parameter, WaitConditionHandle]:
    """The account-level role API Gateway writes logs with, owned by at most one stack.

    AWS::ApiGateway::Account is one setting per account and region: two stacks that both
    set it fight, and deleting the owner leaves the setting pointing at a deleted role.
    A parameter decides whether this stack owns it.
    """
    parameter = add_parameter(
        t,
        "ManageApiGatewayAccount",
        description="true if this stack sets the account-wide API Gateway CloudWatch Logs "
        "role (exactly one stack per account and region should); false if another stack "
        "or an administrator already did",
        default="true",
        allowed_values=["true", "false"],
        label="Own the API Gateway account logging role",
    )
    t.add_condition(ACCOUNT_CONDITION, Equals(parameter.ref(), "true"))
    # The role serves every API in the account and region that logs, so it is scoped
    # to API Gateway's own log-group names in this account and region, not to one API.
    execution_groups = Sub(
        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:"
        "log-group:API-Gateway-Execution-Logs_*"
    )
    access_groups = Sub(
        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/apigateway/*"
    )
    role = add_service_role(
        t,
        naming,
        "ApiGatewayCloudWatchRole",
        base_name="apigateway-cloudwatch",
        # IAM names are global to the account: the stack token keeps two regions apart.
        role_name=Join(
            "-",
            [naming.name("apigateway-cloudwatch", Kind.ROLE, reserve=9), unique_token()],
        ),
        service="apigateway.amazonaws.com",
        component=COMPONENT,
        description="Lets API Gateway write execution and access logs to its pre-created "
        "log groups (no CreateLogGroup: every group is created by a stack with a retention)",
        statements=[
            allow(
                [awslogs.CreateLogStream, awslogs.PutLogEvents, awslogs.DescribeLogStreams],
                [execution_groups, access_groups],
                "WriteApiGatewayLogGroups",
            ),
            allow(
                [awslogs.DescribeLogGroups],
                [Sub("arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*")],
                "FindLogGroupsBeforeWriting",
            ),
        ],
    )
    role.Condition = ACCOUNT_CONDITION
    account = t.add_resource(
        Account(
            "ApiGatewayAccount",
            CloudWatchRoleArn=role.get_att("Arn"),
            Condition=ACCOUNT_CONDITION,
        )
    )
    # DependsOn cannot name a resource whose condition may be false; a handle whose
    # metadata refers to the account only when it exists gives the stage a dependency
    # that holds in both cases (the stage fails if logging starts before the role is set).
    dependency = t.add_resource(
        WaitConditionHandle(
            "ApiGatewayAccountDependency",
            Metadata={"AccountSetting": If(ACCOUNT_CONDITION, Ref(account), "managed elsewhere")},
        )
    )
    return parameter, dependency


# Everything API Gateway snapshots into a deployment: a change to any of them must redeploy.
DEFINITION_TYPES = {
    "AWS::ApiGateway::Resource",
    "AWS::ApiGateway::Method",
    "AWS::ApiGateway::Model",
    "AWS::ApiGateway::RequestValidator",
    "AWS::ApiGateway::GatewayResponse",
}


def _add_deployment(t: Template, api: RestApi) -> Deployment:
    """A deployment that is replaced whenever the API's definition changes.

    CloudFormation never redeploys an unchanged Deployment, and API Gateway serves only
    what was deployed. So the hash of every definition resource of this API (resources,
    methods, models, validators, gateway responses) is part of the logical ID, and the
    Refs in its description make them all real dependencies, so the snapshot is taken
    after they exist (moto ignores DependsOn in change sets).
    """
    definition = sorted(
        (
            resource
            for resource in t.resources.values()
            if resource.resource_type in DEFINITION_TYPES
            and resource.properties.get("RestApiId") == api.ref()
        ),
        key=lambda resource: resource.title,
    )
    digest = hashlib.sha256(
        json.dumps(
            [[r.title, r.to_dict()] for r in definition], sort_keys=True, default=str
        ).encode()
    ).hexdigest()[:12]
    return t.add_resource(
        Deployment(
            f"ApiDeployment{digest}",
            RestApiId=api.ref(),
            Description=Join(" ", [f"definition {digest}:", *[r.ref() for r in definition]]),
        )
    )


def _add_api_key(
    t: Template, naming: Naming, spec: GatewaySpec, api: RestApi, stage: Stage
) -> tuple[ApiKey, UsagePlan]:
    """The API key and the usage plan that throttles and meters it on the stage."""
    api_key = t.add_resource(
        ApiKey(
            "ApiKey",
            Name=naming.name(spec.key_base, Kind.API),
            Description=spec.key_description,
            Enabled=True,
            Tags=naming.tags(COMPONENT),
        )
    )
    # Referencing the stage (not only the API) is what makes the plan wait for it;
    # otherwise creation fails with "API Stage not found".
    usage_plan = t.add_resource(
        UsagePlan(
            "UsagePlan",
            UsagePlanName=naming.name(f"{spec.api_base}-usage-plan", Kind.API),
            Description=f"{spec.rate_limit:g} requests/s (burst {spec.burst_limit}) and "
            f"{spec.daily_quota} requests/day for {spec.key_base}",
            ApiStages=[ApiStage(ApiId=api.ref(), Stage=stage.ref())],
            Throttle=ThrottleSettings(RateLimit=spec.rate_limit, BurstLimit=spec.burst_limit),
            Quota=QuotaSettings(Limit=spec.daily_quota, Period="DAY"),
            Tags=naming.tags(COMPONENT),
        )
    )
    t.add_resource(
        UsagePlanKey(
            "UsagePlanKey",
            KeyId=api_key.ref(),
            KeyType="API_KEY",
            UsagePlanId=usage_plan.ref(),
        )
    )
    return api_key, usage_plan
