"""The OpenAPI 3 document of a stack's REST API, read from the generated template itself.

Pure: a template dict in, a document dict out. Routes, path and header parameters, request
models, the API key scheme, the stage and API Gateway's own answers (403 without a key, 429
throttled, 400 from a request validator, 502/504 when the function fails) come from the
template's API Gateway resources; what each function answers comes from
`templates/api_contract.py`. A route the template has and the contract does not is an error,
so no route is ever published with its statuses unknown.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from templates.api_contract import (
    CORRELATION_HEADER,
    SCHEMAS,
    Answer,
    route_contract,
)
from templates.cfnread import decide_conditions
from templates.registry import DEPLOY_ORDER

# deploy.py --serve-port's default (sam local start-api's): the first API's port.
LOCAL_FIRST_PORT = 3000

OPENAPI_VERSION = "3.0.3"
API_KEY_HEADER = "x-api-key"
API_KEY_SCHEME = "ApiKey"
CORS_ORIGIN_HEADER = "Access-Control-Allow-Origin"
# Parameters the template only marks required; the function's rules, for clients and
# for generated tests (handlers/payments/service.py).
PARAMETER_SCHEMAS = {
    ("header", "Idempotency-Key"): {
        "type": "string",
        "pattern": "^[A-Za-z0-9_-]{8,128}$",
        "description": "Makes a retry safe: the same key and body again replays the first "
        "answer and charges nothing twice (a UUID fits).",
        "example": "7b0e1f0c-4a8e-4c55-9a3b-2f1d9c7e6a10",
    },
}
# API Gateway's own error body with our DEFAULT_4XX/5XX template (templates/api.py
# GATEWAY_ERROR_TEMPLATE); without a template it answers {"message": "..."}.
GATEWAY_ERROR = {
    "type": "object",
    "description": "An error answered by API Gateway itself (the gateway response template).",
    "required": ["error", "requestId"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "the gateway response type"},
                "message": {"type": "string"},
            },
            "additionalProperties": False,
        },
        "requestId": {"type": "string"},
    },
    "additionalProperties": False,
}
DEFAULT_GATEWAY_ERROR = {
    "type": "object",
    "description": "An error answered by API Gateway itself (its default body).",
    "required": ["message"],
    "properties": {"message": {"type": "string"}},
    "additionalProperties": False,
}


@dataclass(frozen=True)
class GatewayAnswer:
    """A status API Gateway answers itself, before or after the function."""

    status: int
    description: str


class OpenApiError(ValueError):
    """The template's API cannot be described (a shape this builder does not know)."""


def api_resources(template: Mapping[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """Logical id -> resource for every resource of `AWS::ApiGateway::<kind>`."""
    wanted = f"AWS::ApiGateway::{kind}"
    return {
        logical_id: resource
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == wanted
    }


def resource_paths(template: Mapping[str, Any]) -> dict[str, str]:
    """Logical id of each AWS::ApiGateway::Resource -> its full path (`/payments/{id}`)."""
    resources = api_resources(template, "Resource")
    paths: dict[str, str] = {}

    def path_of(logical_id: str, seen: tuple[str, ...] = ()) -> str:
        if logical_id in paths:
            return paths[logical_id]
        if logical_id in seen or logical_id not in resources:
            raise OpenApiError(f"resource {logical_id} has no path to the API root")
        properties = resources[logical_id]["Properties"]
        parent = properties["ParentId"]
        prefix = "" if "Fn::GetAtt" in parent else path_of(parent["Ref"], (*seen, logical_id))
        paths[logical_id] = f"{prefix}/{properties['PathPart']}"
        return paths[logical_id]

    for logical_id in resources:
        path_of(logical_id)
    return paths


def method_path(method: Mapping[str, Any], paths: Mapping[str, str]) -> str:
    """The path a method is attached to."""
    resource_id = method["Properties"]["ResourceId"]
    return "/" if "Fn::GetAtt" in resource_id else paths[resource_id["Ref"]]


def build_openapi(template: Mapping[str, Any], stack_name: str) -> dict[str, Any] | None:
    """The OpenAPI 3 document of the template's REST API, or None when it has none."""
    apis = api_resources(template, "RestApi")
    if not apis:
        return None
    if len(apis) > 1:
        raise OpenApiError(
            f"{stack_name} has {len(apis)} REST APIs; one document each is not supported"
        )
    api = next(iter(apis.values()))["Properties"]
    paths = resource_paths(template)
    # The API as deployed with the parameters' defaults (a model may be an Fn::If of them).
    models = {
        logical_id: decide_conditions(template, resource["Properties"])
        for logical_id, resource in api_resources(template, "Model").items()
    }
    validators = {
        logical_id: resource["Properties"]
        for logical_id, resource in api_resources(template, "RequestValidator").items()
    }
    templated_errors = bool(api_resources(template, "GatewayResponse"))
    throttled = _throttle_description(template)
    schemas: dict[str, Any] = dict(SCHEMAS)
    schemas["GatewayError"] = GATEWAY_ERROR if templated_errors else DEFAULT_GATEWAY_ERROR

    document_paths: dict[str, dict[str, Any]] = {}
    methods = sorted(
        api_resources(template, "Method").values(),
        key=lambda m: (method_path(m, paths), m["Properties"]["HttpMethod"]),
    )
    for method in methods:
        properties = method["Properties"]
        path = method_path(method, paths)
        verb = properties["HttpMethod"]
        integration = properties.get("Integration", {})
        if integration.get("Type") == "MOCK":
            operation = _mock_operation(properties, path)
        elif integration.get("Type") == "AWS_PROXY":
            operation = _proxy_operation(properties, path, models, validators, schemas, throttled)
        else:
            raise OpenApiError(
                f"{verb} {path}: integration type {integration.get('Type')!r} is not described"
            )
        document_paths.setdefault(path, {})[verb.lower()] = operation

    stage = _stage_name(template)
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": api.get("Name", stack_name),
            "description": _info_description(api, stack_name, throttled),
            "version": _definition_version(template),
        },
        "servers": [
            {
                "url": "https://{restApiId}.execute-api.{region}.amazonaws.com/" + stage,
                "description": f"The deployed {stage} stage (the stack's ApiUrl output)",
                "variables": {
                    "restApiId": {
                        "default": "restApiId",
                        "description": "the RestApiId output of the stack",
                    },
                    "region": {"default": "us-east-1"},
                },
            },
            {
                "url": "http://127.0.0.1:{port}/" + stage,
                "description": "deploy.py --local --serve (docs/deployer.md)",
                "variables": {
                    "port": {
                        "default": str(_local_port(stack_name)),
                        "description": f"where --serve puts this API when every stack is "
                        f"served: {LOCAL_FIRST_PORT} for the first in deploy order, the next "
                        "port for each further one (--serve-port moves them)",
                    }
                },
            },
        ],
        "paths": document_paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                API_KEY_SCHEME: {
                    "type": "apiKey",
                    "in": "header",
                    "name": API_KEY_HEADER,
                    "description": "The API key of the stack's usage plan (ApiKeyId output; "
                    "deploy.py prints its value).",
                }
            },
        },
    }
    return document


def _local_port(stack_name: str) -> int:
    """The port `deploy.py --local --serve` serves this stack's API on (every stack served,
    the default --serve-port): one port per API, in deploy order."""
    bases = [base for base in DEPLOY_ORDER if stack_name.startswith(f"{base}-")]
    return LOCAL_FIRST_PORT + (DEPLOY_ORDER.index(max(bases, key=len)) if bases else 0)


def _stage_name(template: Mapping[str, Any]) -> str:
    stages = api_resources(template, "Stage")
    if len(stages) != 1:
        raise OpenApiError(f"expected one stage, found {len(stages)}")
    return next(iter(stages.values()))["Properties"]["StageName"]


def _definition_version(template: Mapping[str, Any]) -> str:
    """The API definition's hash the deployment carries (templates/api.py _add_deployment)."""
    deployments = sorted(api_resources(template, "Deployment"))
    if not deployments:
        return "0"
    return "definition-" + deployments[0].removeprefix("ApiDeployment")


def _throttle_description(template: Mapping[str, Any]) -> str:
    plans = [r["Properties"] for r in api_resources(template, "UsagePlan").values()]
    parts = []
    for plan in plans:
        throttle, quota = plan.get("Throttle", {}), plan.get("Quota", {})
        if throttle:
            parts.append(
                f"{throttle['RateLimit']:g} requests/s, burst {throttle['BurstLimit']} per key"
            )
        if quota:
            parts.append(f"{quota['Limit']} requests per {quota['Period'].lower()}")
    return "; ".join(parts)


def _info_description(api: Mapping[str, Any], stack_name: str, throttled: str) -> str:
    lines = [
        str(api.get("Description", "")),
        "",
        f"Generated from the template of stack {stack_name} by generate.py.",
        "Errors have one shape per source: FunctionError (the function, with correlationId) "
        "or GatewayError (API Gateway itself, with requestId). No error ever echoes a "
        "submitted value.",
    ]
    if throttled:
        lines.append(f"Usage plan: {throttled} (429 beyond).")
    return "\n".join(lines)


def _json_content(schema_names: list[str]) -> dict[str, Any]:
    refs = [{"$ref": f"#/components/schemas/{name}"} for name in schema_names]
    schema = refs[0] if len(refs) == 1 else {"oneOf": refs}
    return {"application/json": {"schema": schema}}


def _header(description: str, required: bool = True) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": {"type": "string"}}


def _mock_operation(properties: Mapping[str, Any], path: str) -> dict[str, Any]:
    """A MOCK method (the CORS preflight): its integration responses are the answers."""
    responses = {}
    for response in properties["Integration"].get("IntegrationResponses", []):
        headers = {
            name.removeprefix("method.response.header."): _header(f"always {value.strip(chr(39))}")
            for name, value in sorted(response.get("ResponseParameters", {}).items())
        }
        responses[str(response["StatusCode"])] = {
            "description": "CORS preflight, answered by API Gateway (no API key, no function)",
            "headers": headers,
        }
    operation: dict[str, Any] = {
        "summary": f"CORS preflight for {path}",
        "operationId": _operation_id("OPTIONS", path),
        "tags": ["cors"],
        "security": [],
        "responses": responses,
    }
    parameters = _path_parameters(path, [])
    if parameters:
        operation["parameters"] = parameters
    return operation


def _proxy_operation(
    properties: Mapping[str, Any],
    path: str,
    models: Mapping[str, Mapping[str, Any]],
    validators: Mapping[str, Mapping[str, Any]],
    schemas: dict[str, Any],
    throttled: str,
) -> dict[str, Any]:
    """A method proxied to a function: the gateway's answers and the function's contract."""
    verb = properties["HttpMethod"]
    contract = route_contract(verb, path)
    validator = _validator(properties, validators)
    parameters = _path_parameters(path, _parameters(properties))
    operation: dict[str, Any] = {
        "summary": contract.summary,
        "operationId": _operation_id(verb, path),
        "tags": list(contract.tags),
        "security": [{API_KEY_SCHEME: []}] if properties.get("ApiKeyRequired") else [],
    }
    if parameters:
        operation["parameters"] = parameters
    body_model = (properties.get("RequestModels") or {}).get("application/json")
    if body_model is not None:
        model = models[body_model["Ref"]]
        name = model["Name"]
        schemas[name] = _openapi_schema(model["Schema"])
        operation["requestBody"] = {
            "required": bool(validator.get("ValidateRequestBody")),
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
        }
    elif verb in ("POST", "PUT", "PATCH"):
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Payment"}}},
        }
    gateway = _gateway_answers(properties, validator, bool(parameters), throttled)
    operation["responses"] = _responses(contract.answers, gateway)
    return operation


def _validator(
    properties: Mapping[str, Any], validators: Mapping[str, Mapping[str, Any]]
) -> Mapping[str, Any]:
    validator_id = properties.get("RequestValidatorId")
    return validators[validator_id["Ref"]] if validator_id else {}


def _parameters(properties: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Path, header and query parameters from the method's RequestParameters."""
    parameters = []
    for name, required in sorted((properties.get("RequestParameters") or {}).items()):
        _, _, location, parameter = name.split(".", 3)
        where = {"path": "path", "header": "header", "querystring": "query"}[location]
        schema = PARAMETER_SCHEMAS.get((where, parameter), {"type": "string"})
        parameters.append(
            {
                "name": parameter,
                "in": where,
                # OpenAPI requires path parameters to be required.
                "required": bool(required) or where == "path",
                "schema": {k: v for k, v in schema.items() if k != "description"},
                **({"description": schema["description"]} if "description" in schema else {}),
            }
        )
    return parameters


def _path_parameters(path: str, parameters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`parameters` plus every `{name}` of the path not declared there (OpenAPI requires
    each path template variable on every operation)."""
    declared = {p["name"] for p in parameters if p["in"] == "path"}
    extra = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"\{([^}]+)\}", path)
        if name not in declared
    ]
    return sorted(parameters + extra, key=lambda p: (p["in"], p["name"]))


def _gateway_answers(
    properties: Mapping[str, Any],
    validator: Mapping[str, Any],
    has_parameters: bool,
    throttled: str,
) -> list[GatewayAnswer]:
    answers = []
    if validator.get("ValidateRequestBody") or (
        validator.get("ValidateRequestParameters") and has_parameters
    ):
        checks = [
            what
            for what, on in (
                ("the body against the request model", validator.get("ValidateRequestBody")),
                ("the required parameters", validator.get("ValidateRequestParameters")),
            )
            if on
        ]
        answers.append(
            GatewayAnswer(
                400,
                "API Gateway's request validator refused "
                + " and ".join(checks)
                + " (BAD_REQUEST_BODY / "
                "BAD_REQUEST_PARAMETERS).",
            )
        )
    if properties.get("ApiKeyRequired"):
        answers.append(
            GatewayAnswer(
                403, "No API key, or one that is not in the usage plan (INVALID_API_KEY)."
            )
        )
        answers.append(
            GatewayAnswer(
                429,
                "Throttled or over quota (THROTTLED, "
                f"QUOTA_EXCEEDED): {throttled or 'the stage limits'}.",
            )
        )
    else:
        answers.append(GatewayAnswer(429, "Throttled by the stage's limits (THROTTLED)."))
    answers.append(GatewayAnswer(413, "Body over API Gateway's 10 MB limit (REQUEST_TOO_LARGE)."))
    answers.append(
        GatewayAnswer(502, "The function failed or returned an invalid answer (DEFAULT_5XX).")
    )
    answers.append(
        GatewayAnswer(
            504, "The function did not answer within the integration timeout (INTEGRATION_TIMEOUT)."
        )
    )
    return answers


def _responses(answers: tuple[Answer, ...], gateway: list[GatewayAnswer]) -> dict[str, Any]:
    """One response per status; where both the function and the gateway can answer it,
    the body is one of the two error shapes."""
    by_status: dict[int, dict[str, Any]] = {}
    for answer in answers:
        headers = {
            CORS_ORIGIN_HEADER: _header("the one allowed browser origin"),
            CORRELATION_HEADER: _header("the request id to quote to support"),
        }
        headers |= {name: _header(_HEADER_WHY[name]) for name in answer.headers}
        by_status[answer.status] = {
            "description": answer.description,
            "headers": headers,
            "schemas": [answer.schema],
        }
    for answer in gateway:
        entry = by_status.setdefault(
            answer.status,
            {
                "description": "",
                "headers": {CORS_ORIGIN_HEADER: _header("the one allowed browser origin")},
                "schemas": [],
            },
        )
        entry["description"] = " ".join(
            part for part in (entry["description"], "Gateway: " + answer.description) if part
        )
        entry["schemas"].append("GatewayError")
        # The gateway's answers carry no correlation header: only those of the function do.
        if CORRELATION_HEADER in entry["headers"]:
            entry["headers"][CORRELATION_HEADER]["required"] = False
    return {
        str(status): {
            "description": entry["description"],
            "headers": entry["headers"],
            "content": _json_content(entry["schemas"]),
        }
        for status, entry in sorted(by_status.items())
    }


_HEADER_WHY = {
    "Retry-After": "seconds to wait before retrying with the same key",
    "Location": "the path of the transaction to poll",
}


def _openapi_schema(schema: Any) -> dict[str, Any]:
    """A model's JSON Schema (draft 4, as API Gateway takes it) as an OpenAPI 3.0 schema."""
    data = json.loads(schema) if isinstance(schema, str) else dict(schema)
    data.pop("$schema", None)
    return data


def _operation_id(verb: str, path: str) -> str:
    words = [w for w in path.replace("{", "").replace("}", "").split("/") if w]
    camel = "".join(w[:1].upper() + w[1:] for part in words for w in part.split("-"))
    return verb.lower() + (camel or "Root")
