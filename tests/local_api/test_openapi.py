"""The OpenAPI documents generate.py writes: valid, and true to the template's API."""

from __future__ import annotations

import copy
import json

import pytest
from openapi_spec_validator import validate

import deploy
from templates.api_contract import ROUTES, UndocumentedRouteError
from templates.cfnread import decide_conditions
from templates.naming import Naming
from templates.openapi import (
    API_KEY_HEADER,
    API_KEY_SCHEME,
    api_resources,
    build_openapi,
    method_path,
    resource_paths,
)
from templates.registry import DEPLOY_ORDER, STACKS, build_templates

NAMING = Naming("qa")
TEMPLATES = build_templates(NAMING)


@pytest.fixture(scope="module", params=sorted(TEMPLATES))
def stack(request):
    """(stack name, template, document) for each stack."""
    template = TEMPLATES[request.param]
    return request.param, template, build_openapi(template, request.param)


def methods(template):
    paths = resource_paths(template)
    for method in api_resources(template, "Method").values():
        yield method_path(method, paths), method["Properties"]


def test_every_stack_has_a_document_valid_by_openapi_spec_validator(stack):
    _, _, document = stack
    assert document is not None
    validate(document)  # raises on any error
    assert document["openapi"].startswith("3.")


def test_the_same_template_gives_the_same_document(stack):
    name, template, document = stack
    assert json.dumps(build_openapi(copy.deepcopy(template), name), sort_keys=True) == (
        json.dumps(document, sort_keys=True)
    )


def test_every_method_of_the_template_is_an_operation_and_nothing_else(stack):
    _, template, document = stack
    from_template = {(path, props["HttpMethod"].lower()) for path, props in methods(template)}
    from_document = {(path, verb) for path, item in document["paths"].items() for verb in item}
    assert from_template == from_document


def test_security_follows_api_key_required(stack):
    _, template, document = stack
    scheme = document["components"]["securitySchemes"][API_KEY_SCHEME]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", API_KEY_HEADER)
    for path, props in methods(template):
        operation = document["paths"][path][props["HttpMethod"].lower()]
        if props.get("ApiKeyRequired"):
            assert operation["security"] == [{API_KEY_SCHEME: []}]
            assert {"403", "429"} <= set(operation["responses"])
        else:
            assert operation["security"] == []


def test_required_headers_and_path_parameters_are_required_parameters(stack):
    _, template, document = stack
    for path, props in methods(template):
        operation = document["paths"][path][props["HttpMethod"].lower()]
        declared = {(p["in"], p["name"]): p["required"] for p in operation.get("parameters", [])}
        for name, required in (props.get("RequestParameters") or {}).items():
            _, _, where, parameter = name.split(".", 3)
            where = {"querystring": "query"}.get(where, where)
            assert declared[(where, parameter)] is (bool(required) or where == "path")


def test_request_bodies_are_the_templates_models(stack):
    _, template, document = stack
    models = api_resources(template, "Model")
    for path, props in methods(template):
        model_ref = (props.get("RequestModels") or {}).get("application/json")
        if model_ref is None:
            continue
        # The schema as the default parameters deploy it (an object, or an Fn::If of them).
        model = decide_conditions(template, models[model_ref["Ref"]]["Properties"])
        schema = dict(model["Schema"])
        schema.pop("$schema")
        operation = document["paths"][path][props["HttpMethod"].lower()]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert document["components"]["schemas"][ref.rsplit("/", 1)[1]] == schema
        assert operation["requestBody"]["required"] is True
        # The validator's own refusal is documented.
        assert "400" in operation["responses"]


def test_every_status_of_the_contract_is_documented_including_503(stack):
    _, template, document = stack
    for path, props in methods(template):
        verb = props["HttpMethod"]
        operation = document["paths"][path][verb.lower()]
        if verb == "OPTIONS":
            statuses = {r["StatusCode"] for r in props["Integration"]["IntegrationResponses"]}
            assert set(operation["responses"]) == statuses
            continue
        documented = set(operation["responses"])
        assert {str(a.status) for a in ROUTES[(verb, path)].answers} <= documented
        # API Gateway's own failures of a Lambda integration.
        assert {"502", "504"} <= documented
    if "/process-payment" in document["paths"]:
        assert "503" in document["paths"]["/process-payment"]["post"]["responses"]


def test_preflight_headers_are_the_mock_integrations_mapping(stack):
    _, template, document = stack
    for path, props in methods(template):
        if props["HttpMethod"] != "OPTIONS":
            continue
        for response in props["Integration"]["IntegrationResponses"]:
            documented = document["paths"][path]["options"]["responses"][response["StatusCode"]]
            assert set(documented["headers"]) == {
                name.removeprefix("method.response.header.")
                for name in response["ResponseParameters"]
            }


def test_a_route_without_a_written_contract_is_refused():
    name = NAMING.stack("payment-platform")
    template = copy.deepcopy(TEMPLATES[name])
    resource = template["Resources"]["HealthResource"]
    resource["Properties"]["PathPart"] = "status"
    with pytest.raises(UndocumentedRouteError, match="GET /status"):
        build_openapi(template, name)


def test_a_template_without_an_api_has_no_document():
    assert build_openapi({"Resources": {}}, "x") is None


def test_the_registry_and_the_documents_agree():
    assert {NAMING.stack(base) for base in STACKS} == set(TEMPLATES)


def test_the_local_server_is_the_port_serve_gives_each_api():
    """The README's command serves every stack: the platform on 3000, the payment API on
    3001 (failed before: both documents said 3000, so the payment API's pointed a client at
    the platform's API)."""
    ports = []
    for base in DEPLOY_ORDER:
        name = NAMING.stack(base)
        servers = build_openapi(TEMPLATES[name], name)["servers"]
        (local,) = [server for server in servers if "127.0.0.1" in server["url"]]
        ports.append(int(local["variables"]["port"]["default"]))
    assert ports == [deploy.SERVE_PORT + i for i in range(len(DEPLOY_ORDER))]
