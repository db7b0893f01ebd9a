"""The API Gateway building block both stacks share.

One implementation of the REST API, its routes to Lambda (AWS_PROXY), request validation,
CORS (preflights and gateway responses), API key, usage plan, logging (access and execution,
kept a fixed number of days), the account's CloudWatch role (`api_account`), the deployment,
the `prod` stage and its web application firewall (`waf`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from troposphere import Condition, Equals, If, Join, Not, Parameter, Sub, Template
from troposphere.apigateway import (
    AccessLogSetting,
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
from troposphere.logs import LogGroup

from templates.api_account import add_account_logging_role
from templates.common import add_output, add_parameter
from templates.contract import JSON_OBJECT_SCHEMA
from templates.findings import Accepted, accept
from templates.keys import StackKey
from templates.logs import add_log_group
from templates.naming import Kind, Naming
from templates.waf import WebAcl, add_web_acl

STAGE_NAME = "prod"
COMPONENT = "api"
# RequestBodyValidation=payment-request (else any JSON object passes the model).
STRICT_BODIES = "ValidatesPaymentRequests"
RELAXED_BODIES = "ValidatesJsonObjectsOnly"
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
    # Why a request failed: API Gateway's own error (missing key, throttled, invalid body;
    # messages name the cause, never a submitted value) and the integration's failure.
    "errorMessage": "$context.error.message",
    "errorResponseType": "$context.error.responseType",
    "integrationErrorMessage": "$context.integrationErrorMessage",
}
# Findings accepted on the gateway's resources (templates/findings.py).
NO_CACHE = Accepted(
    "Caching is off on purpose: a payment answer must never be served from a cache (a replayed "
    "201 for another caller, a stale status); with no cache there is no cache data to encrypt.",
    checkov=("CKV_AWS_120",),
    cdk_nag=(
        "PCI.DSS.321-APIGWCacheEnabledAndEncrypted",
        "NIST.800.53.R5-APIGWCacheEnabledAndEncrypted",
    ),
    guard=("API_GW_CACHE_ENABLED_AND_ENCRYPTED",),
)
NO_CLIENT_CERTIFICATE = Accepted(
    "A client certificate authenticates API Gateway to an HTTP backend. This stage's "
    "integrations are Lambda proxy invocations (signed with SigV4 over TLS by API Gateway "
    "itself) and MOCK preflights, which cannot use one; clients reach the stage over TLS only.",
    cdk_nag=("PCI.DSS.321-APIGWSSLEnabled", "NIST.800.53.R5-APIGWSSLEnabled"),
)
API_KEY_AUTHENTICATION = Accepted(
    "Authentication is the seed's API key (X-Api-Key, required here, metered by the usage "
    "plan). It proves the caller holds the application's key, and scopes idempotency and "
    "payment lookups to it; it identifies an application, not a user, so it must stay in the "
    "app's backend (rotate it by issuing a new key). User authorizers are out of the seed.",
    cdk_nag=("AwsSolutions-APIG4", "AwsSolutions-COG4"),
)
PUBLIC_HEALTH = Accepted(
    "Public by design: a load balancer or uptime probe calls it without credentials. It "
    "answers component states only (no internals); the function reuses its last answer for "
    "15 s (stage caching stays off), and the stage's throttle and the web ACL's per-IP rate "
    "rule bound the calls.",
    checkov=("CKV_AWS_59",),
    cdk_nag=("AwsSolutions-APIG4", "AwsSolutions-COG4"),
)
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
    # The seed gives the API and key names verbatim (no suffix; AWS allows duplicates).
    seed_names: bool = False
    # A RequestBodyValidation parameter may relax the routes' models to "a JSON object".
    relaxable_validation: bool = False


@dataclass
class Gateway:
    """Handles on what `add_gateway` built, for callers to wire to."""

    api: RestApi
    stage: Stage
    api_key: ApiKey
    usage_plan: UsagePlan
    access_log_group: LogGroup
    execution_log_group: LogGroup
    web_acl: WebAcl
    # Account-wide settings, and the request protection an operator may tune.
    parameters: list[Parameter] = field(default_factory=list)
    protection_parameters: list[Parameter] = field(default_factory=list)
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


class JsonSchemaModel(Model):
    """A Model whose Schema stays a JSON object in the template.

    troposphere rewrites a dict Schema as a JSON string; CloudFormation accepts both, but
    cloudformation_include (the cdk-nag gate loads our JSON with it) accepts only the object.
    """

    def validate(self) -> None:
        """Keep Schema as given (the base class would turn a dict into a string)."""


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


def physical_name(naming: Naming, spec: GatewaySpec, base: str) -> str:
    """The API's or key's name: the seed's own words, or `{base}-{suffix}`."""
    if spec.seed_names:
        return naming.seed_name(base, Kind.API)
    return naming.name(base, Kind.API)


def add_gateway(t: Template, naming: Naming, spec: GatewaySpec, *, key: StackKey) -> Gateway:
    """Build the whole REST API of `spec` and return handles on it."""
    validation = _add_validation_parameter(t) if spec.relaxable_validation else None
    api = t.add_resource(
        RestApi(
            "RestApi",
            Name=physical_name(naming, spec, spec.api_base),
            Description=spec.description,
            EndpointConfiguration=EndpointConfiguration(Types=["REGIONAL"]),
            ApiKeySourceType="HEADER",
            Tags=naming.tags(COMPONENT),
        )
    )
    resources = _add_resources(t, api, [route.path for route in spec.routes])
    validators = _add_validators(t, api, spec.routes)
    for route in spec.routes:
        _add_route(
            t, api, resources, validators, route, spec.cors_origin, relaxable=bool(validation)
        )
        _add_invoke_permission(t, api, route)
    for path in sorted({route.path for route in spec.routes}):
        verbs = sorted({r.method for r in spec.routes if r.path == path})
        _add_preflight(t, api, resources[path], path, verbs, spec)
    _add_gateway_responses(t, api, spec.cors_origin)

    account_parameter, account_dependency = add_account_logging_role(t, naming)
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
    deployment_id = _add_deployments(t, api, relaxable=bool(validation))
    stage = t.add_resource(
        Stage(
            "ApiStage",
            StageName=STAGE_NAME,
            Description=f"{STAGE_NAME} stage of {naming.name(spec.api_base, Kind.API)}",
            RestApiId=api.ref(),
            DeploymentId=deployment_id,
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
    accept(stage, NO_CACHE, NO_CLIENT_CERTIFICATE)
    api_key, usage_plan = _add_api_key(t, naming, spec, api, stage)
    web_acl = add_web_acl(
        t,
        naming,
        api_base=spec.api_base,
        api=api,
        stage=stage,
        key=key,
        log_retention_days=spec.log_retention_days,
        component=COMPONENT,
        cors_origin=spec.cors_origin,
    )

    gateway = Gateway(
        api=api,
        stage=stage,
        api_key=api_key,
        usage_plan=usage_plan,
        access_log_group=access_logs,
        execution_log_group=execution_logs,
        web_acl=web_acl,
        parameters=[account_parameter],
        protection_parameters=[web_acl.rate_parameter, *([validation] if validation else [])],
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
    *,
    relaxable: bool = False,
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
            JsonSchemaModel(
                f"{name}Model",
                RestApiId=api.ref(),
                Name=f"{name}Request",
                ContentType="application/json",
                Description=f"Shape of the {route.method} {route.path} body",
                Schema=If(STRICT_BODIES, route.request_schema, JSON_OBJECT_SCHEMA)
                if relaxable
                else route.request_schema,
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
    accept(method, API_KEY_AUTHENTICATION if route.api_key_required else PUBLIC_HEALTH)
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


# Everything API Gateway snapshots into a deployment: a change to any of them must redeploy.
DEFINITION_TYPES = {
    "AWS::ApiGateway::Resource",
    "AWS::ApiGateway::Method",
    "AWS::ApiGateway::Model",
    "AWS::ApiGateway::RequestValidator",
    "AWS::ApiGateway::GatewayResponse",
}


def _add_validation_parameter(t: Template) -> Parameter:
    """How strictly API Gateway checks request bodies before the function runs."""
    parameter = add_parameter(
        t,
        "RequestBodyValidation",
        description="payment-request: API Gateway refuses a body that is not a payment request "
        "(docs/contract.md) before the function runs; json-object: any JSON object passes, for "
        "a backend that takes another body",
        default="payment-request",
        allowed_values=["payment-request", "json-object"],
        label="Request body validation",
    )
    t.add_condition(STRICT_BODIES, Equals(parameter.ref(), "payment-request"))
    t.add_condition(RELAXED_BODIES, Not(Condition(STRICT_BODIES)))
    return parameter


def _add_deployments(t: Template, api: RestApi, *, relaxable: bool):
    """The stage's DeploymentId: one deployment, or one per validation setting.

    A parameter value cannot change a logical ID, so a relaxable API gets two deployments
    under opposite conditions: changing the parameter creates the other one (after the model
    it snapshots is updated), moves the stage to it and deletes the old one.
    """
    if not relaxable:
        return _add_deployment(t, api).ref()
    strict = _add_deployment(t, api, variant="payment-request", condition=STRICT_BODIES)
    relaxed = _add_deployment(t, api, variant="json-object", condition=RELAXED_BODIES)
    return If(STRICT_BODIES, strict.ref(), relaxed.ref())


def _add_deployment(
    t: Template, api: RestApi, *, variant: str = "", condition: str | None = None
) -> Deployment:
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
            [variant, [[r.title, r.to_dict()] for r in definition]], sort_keys=True, default=str
        ).encode()
    ).hexdigest()[:12]
    label = f"definition {digest}" + (f" ({variant})" if variant else "")
    extra = {"Condition": condition} if condition else {}
    return t.add_resource(
        Deployment(
            f"ApiDeployment{digest}",
            RestApiId=api.ref(),
            Description=Join(" ", [f"{label}:", *[r.ref() for r in definition]]),
            **extra,
        )
    )


def _add_api_key(
    t: Template, naming: Naming, spec: GatewaySpec, api: RestApi, stage: Stage
) -> tuple[ApiKey, UsagePlan]:
    """The API key and the usage plan that throttles and meters it on the stage."""
    api_key = t.add_resource(
        ApiKey(
            "ApiKey",
            Name=physical_name(naming, spec, spec.key_base),
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
