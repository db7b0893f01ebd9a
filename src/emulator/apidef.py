"""The deployed definition of a REST API, read through API Gateway's own API.

What the local gateway serves is what an operator sees with `aws apigateway get-*` on the
emulator: resources, methods and integrations, models, request validators, gateway
responses, the stage's method settings and the usage plans with their keys. Nothing is
taken from our Python templates.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

LAMBDA_URI = re.compile(
    r"arn:[^:]+:apigateway:[^:]+:lambda:path/[^/]+/functions/(?P<arn>.+)/invocations"
)


@dataclass(frozen=True)
class Integration:
    """How a method is answered: a Lambda proxy (function ARN) or a MOCK."""

    type: str
    function_arn: str | None = None
    request_templates: dict[str, str] = field(default_factory=dict)
    responses: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Method:
    """One deployed method."""

    http_method: str
    resource_id: str
    resource_path: str
    api_key_required: bool
    request_parameters: dict[str, bool]
    request_models: dict[str, str]
    validate_body: bool
    validate_parameters: bool
    integration: Integration


@dataclass(frozen=True)
class Throttle:
    """A rate (requests per second) and a burst (bucket size)."""

    rate: float
    burst: int


@dataclass(frozen=True)
class Stage:
    """The stage's name, deployment, default method throttling (`*/*`) and variables."""

    name: str
    deployment_id: str
    throttle: Throttle | None
    variables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PlanKey:
    """An API key that a usage plan of this stage lets in."""

    key_id: str
    value: str
    enabled: bool
    plan_id: str
    throttle: Throttle | None


@dataclass(frozen=True)
class ApiDefinition:
    """Everything the gateway needs to serve one REST API."""

    api_id: str
    name: str
    methods: dict[tuple[str, str], Method]  # (resource path, HTTP method)
    models: dict[str, dict[str, Any]]  # model name -> JSON schema
    gateway_responses: dict[str, dict[str, Any]]  # response type -> definition
    stages: dict[str, Stage]
    api_key_source: str = "HEADER"

    @property
    def resource_paths(self) -> list[str]:
        """Every path that has a method, longest (most specific) first."""
        return sorted({path for path, _ in self.methods}, key=lambda p: (-p.count("/"), p))


def _throttle(rate: Any, burst: Any) -> Throttle | None:
    if rate is None or burst is None:
        return None
    return Throttle(rate=float(rate), burst=int(burst))


def _items(client: Any, operation: str, **kwargs: Any) -> list[dict[str, Any]]:
    """All items of a paginated API Gateway list call."""
    if client.can_paginate(operation):
        pages = client.get_paginator(operation).paginate(**kwargs)
        return [item for page in pages for item in page.get("items", [])]
    return getattr(client, operation)(**kwargs).get("items", [])


def read_api(apigateway: Any, api_id: str) -> ApiDefinition:
    """The deployed definition of REST API `api_id`."""
    api = apigateway.get_rest_api(restApiId=api_id)
    validators = {
        v["id"]: v for v in _items(apigateway, "get_request_validators", restApiId=api_id)
    }
    methods: dict[tuple[str, str], Method] = {}
    for resource in _items(apigateway, "get_resources", restApiId=api_id, embed=["methods"]):
        for verb in resource.get("resourceMethods") or {}:
            raw = apigateway.get_method(
                restApiId=api_id, resourceId=resource["id"], httpMethod=verb
            )
            validator = validators.get(raw.get("requestValidatorId") or "", {})
            methods[(resource["path"], verb)] = Method(
                http_method=verb,
                resource_id=resource["id"],
                resource_path=resource["path"],
                api_key_required=bool(raw.get("apiKeyRequired")),
                request_parameters=dict(raw.get("requestParameters") or {}),
                request_models=dict(raw.get("requestModels") or {}),
                validate_body=bool(validator.get("validateRequestBody")),
                validate_parameters=bool(validator.get("validateRequestParameters")),
                integration=_integration(raw.get("methodIntegration") or {}),
            )
    models = {}
    for model in _items(apigateway, "get_models", restApiId=api_id):
        schema = model.get("schema")
        models[model["name"]] = json.loads(schema) if isinstance(schema, str) else schema or {}
    responses = {
        r["responseType"]: r for r in _items(apigateway, "get_gateway_responses", restApiId=api_id)
    }
    stages = {}
    for stage in apigateway.get_stages(restApiId=api_id).get("item", []):
        settings = (stage.get("methodSettings") or {}).get("*/*", {})
        stages[stage["stageName"]] = Stage(
            name=stage["stageName"],
            deployment_id=stage.get("deploymentId", ""),
            throttle=_throttle(
                settings.get("throttlingRateLimit"), settings.get("throttlingBurstLimit")
            ),
            variables=dict(stage.get("variables") or {}),
        )
    return ApiDefinition(
        api_id=api_id,
        name=api.get("name", api_id),
        methods=methods,
        models=models,
        gateway_responses=responses,
        stages=stages,
        api_key_source=api.get("apiKeySource") or "HEADER",
    )


def _integration(raw: dict[str, Any]) -> Integration:
    kind = raw.get("type", "")
    match = LAMBDA_URI.fullmatch(raw.get("uri") or "")
    return Integration(
        type=kind,
        function_arn=match.group("arn") if (kind == "AWS_PROXY" and match) else None,
        request_templates=dict(raw.get("requestTemplates") or {}),
        responses=dict(raw.get("integrationResponses") or {}),
    )


def read_plan_keys(apigateway: Any, api_id: str, stage: str) -> dict[str, PlanKey]:
    """Key value -> the key, for every key of every usage plan that covers `api_id/stage`."""
    keys = {k["id"]: k for k in _items(apigateway, "get_api_keys", includeValues=True)}
    found: dict[str, PlanKey] = {}
    for plan in _items(apigateway, "get_usage_plans"):
        stages = {(s.get("apiId"), s.get("stage")) for s in plan.get("apiStages", [])}
        if (api_id, stage) not in stages:
            continue
        throttle = plan.get("throttle") or {}
        for plan_key in _items(apigateway, "get_usage_plan_keys", usagePlanId=plan["id"]):
            key = keys.get(plan_key["id"])
            if key is None or "value" not in key:
                continue
            found[key["value"]] = PlanKey(
                key_id=key["id"],
                value=key["value"],
                enabled=bool(key.get("enabled")),
                plan_id=plan["id"],
                throttle=_throttle(throttle.get("rateLimit"), throttle.get("burstLimit")),
            )
    return found
