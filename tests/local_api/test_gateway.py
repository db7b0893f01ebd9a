"""The deployed platform API over HTTP, as API Gateway serves it (from the deployed definition)."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import jsonschema
import pytest

from emulator.functions import LAMBDA_VARIABLES
from emulator.gateway import KEY_CACHE_SECONDS
from emulator.local_api import NOT_ENFORCED, stack_resources
from templates.openapi import build_openapi
from tests.local_api.conftest import PAYMENT_API, PLATFORM, SERVED, call

pytestmark = SERVED

PAYMENT = {
    "amount": "12.50",
    "currency": "USD",
    "paymentToken": "tok_test_approve",
    "merchantId": "m-123",
}


def key_headers(served, stack=PLATFORM, **extra):
    return {"x-api-key": served.endpoint_of(stack).api_key_value, **extra}


def gateway_error_schema(served, stack=PLATFORM):
    document = build_openapi(served.templates[stack], stack)
    schemas = document["components"]["schemas"]
    return {**schemas["GatewayError"], "components": {"schemas": schemas}}


def assert_gateway_error(served, answer, status, response_type):
    assert answer.status == status
    body = answer.json()
    jsonschema.validate(body, gateway_error_schema(served))
    assert body["error"]["code"] == response_type
    # The DEFAULT_4XX/5XX gateway responses' CORS header, from the deployed definition.
    assert answer.headers["Access-Control-Allow-Origin"] == "https://app.example.com"


def test_a_payment_with_the_key_is_charged_by_the_deployed_function(served):
    answer = call(
        "POST",
        served.endpoint_of(PLATFORM).invoke_url,
        PAYMENT,
        key_headers(served, **{"Idempotency-Key": str(uuid.uuid4())}),
    )
    assert answer.status == 201, answer.body
    assert answer.json()["status"] in {"AUTHORIZED", "SUCCEEDED"}
    # The function's own headers reach the client (AWS_PROXY).
    assert answer.headers["X-Correlation-Id"] == answer.headers["x-amzn-RequestId"]


@pytest.mark.parametrize("key", [None, "not-a-key-of-this-plan"])
def test_without_a_key_of_the_usage_plan_the_gateway_answers_403(served, key):
    headers = {"Idempotency-Key": str(uuid.uuid4())} | ({"x-api-key": key} if key else {})
    answer = call("POST", served.endpoint_of(PLATFORM).invoke_url, PAYMENT, headers)
    assert_gateway_error(served, answer, 403, "INVALID_API_KEY")


def test_the_other_stacks_key_is_not_in_this_stacks_plan(served):
    headers = key_headers(served, PAYMENT_API, **{"Idempotency-Key": str(uuid.uuid4())})
    answer = call("POST", served.endpoint_of(PLATFORM).invoke_url, PAYMENT, headers)
    assert_gateway_error(served, answer, 403, "INVALID_API_KEY")


def test_health_needs_no_key(served):
    answer = call("GET", served.url(PLATFORM, "/health"))
    assert answer.status in (200, 503)
    assert set(answer.json()) == {"status", "components", "checkedAt"}


def test_the_request_validator_refuses_a_missing_header_and_a_body_off_the_model(served):
    url = served.endpoint_of(PLATFORM).invoke_url
    no_header = call("POST", url, PAYMENT, key_headers(served))
    assert_gateway_error(served, no_header, 400, "BAD_REQUEST_PARAMETERS")
    assert "Idempotency-Key" in no_header.json()["error"]["message"]
    wrong = {**PAYMENT, "amount": 12.5}  # a number where the model wants a string
    off_model = call("POST", url, wrong, key_headers(served, **{"Idempotency-Key": "k" * 12}))
    assert_gateway_error(served, off_model, 400, "BAD_REQUEST_BODY")
    # The gateway's error quotes nothing of what was sent.
    assert b"12.5" not in off_model.body


def test_preflight_is_answered_from_the_mock_integration_without_a_key(served):
    answer = call("OPTIONS", served.endpoint_of(PLATFORM).invoke_url)
    assert answer.status == 204
    assert answer.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert answer.headers["Access-Control-Allow-Methods"] == "POST,OPTIONS"
    assert "Idempotency-Key" in answer.headers["Access-Control-Allow-Headers"]


def test_unknown_routes_and_stages_get_missing_authentication_token(served):
    for path in ("/nope", "/payments", "/process-payment/extra"):
        answer = call("GET", served.url(PLATFORM, path), headers=key_headers(served))
        assert_gateway_error(served, answer, 403, "MISSING_AUTHENTICATION_TOKEN")
    base = served.serve.apis[PLATFORM].base_url
    assert call("GET", f"{base}/dev/health").status == 403
    assert call("DELETE", served.url(PLATFORM, "/health")).status == 403


def test_the_usage_plan_throttle_answers_429(served):
    """A key on a usage plan of 1 request/s, burst 2: the third quick request is throttled."""
    apigateway = served.clients.apigateway
    api_id = served.endpoint_of(PLATFORM).api_id
    key = apigateway.create_api_key(name=f"throttled-{uuid.uuid4().hex[:8]}", enabled=True)
    plan = apigateway.create_usage_plan(
        name=f"tight-{uuid.uuid4().hex[:8]}",
        apiStages=[{"apiId": api_id, "stage": "prod"}],
        throttle={"rateLimit": 1.0, "burstLimit": 2},
    )
    apigateway.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
    url = served.url(PLATFORM, "/payments/txn_" + "a" * 32)
    statuses = [call("GET", url, headers={"x-api-key": key["value"]}).status for _ in range(4)]
    assert statuses[:2] == [404, 404]
    assert 429 in statuses[2:]
    throttled = call("GET", url, headers={"x-api-key": key["value"]})
    assert_gateway_error(served, throttled, 429, "THROTTLED")


def test_each_function_runs_in_its_own_processes_with_exactly_its_deployed_environment(served):
    lam = served.client("lambda")
    runners = served.serve.functions.runners
    pids = {}
    for name, runner in runners.items():
        deployed = lam.get_function(FunctionName=name)["Configuration"]["Environment"]["Variables"]
        assert runner.workers, f"{name} has no execution environment"
        for worker in runner.workers:
            pids[worker.process.pid] = name
            environ = Path(f"/proc/{worker.process.pid}/environ").read_bytes()
            env = dict(item.split("=", 1) for item in environ.decode().split("\0") if item)
            for variable, value in deployed.items():
                assert env[variable] == value
            assert env["AWS_LAMBDA_FUNCTION_NAME"] == name
            assert env["AWS_ENDPOINT_URL"] == served.endpoint
            # Nothing of this process leaks in (its HOME, its virtualenv, its AWS settings).
            assert set(env) == set(deployed) | set(LAMBDA_VARIABLES)
        # The handler module comes from the deployed zip, extracted as the task root.
        module = runner.spec.handler.rsplit(".", 1)[0].replace(".", "/") + ".py"
        assert (Path(runner.task_root) / module).is_file()
    assert len(pids) >= len(runners)
    assert {"payment-validator-qa", "payment-processor-qa", "payment-health-monitor-qa"} <= set(
        runners
    )


def test_the_access_line_names_the_route_and_key_id_never_the_path_or_key_value(served):
    served.logs.clear()
    pasted = "4111111111111111"
    call("GET", served.url(PLATFORM, f"/payments/{pasted}"), headers=key_headers(served))
    line = next(entry for entry in served.logs if "/payments/" in entry)
    assert "/payments/{transactionId}" in line
    assert pasted not in line
    assert served.endpoint_of(PLATFORM).api_key_value not in "".join(served.logs)


def test_what_is_not_enforced_is_said(served):
    lines = served.serve.describe()
    assert NOT_ENFORCED in lines
    assert "WAF" in NOT_ENFORCED and "quota" in NOT_ENFORCED


def test_gateway_error_bodies_are_valid_json(served):
    answer = call("POST", served.endpoint_of(PLATFORM).invoke_url, b"{", key_headers(served))
    json.loads(answer.body)


def test_a_disabled_key_is_refused_as_soon_as_the_gateway_rereads_the_plan(served):
    """Fails before review-12: a key once seen was trusted until the gateway restarted."""
    apigateway = served.clients.apigateway
    _, plan_id = stack_resources(served.clients.cloudformation, PLATFORM)["UsagePlan"]
    key = apigateway.create_api_key(name=f"revoked-{uuid.uuid4().hex[:8]}", enabled=True)
    apigateway.create_usage_plan_key(usagePlanId=plan_id, keyId=key["id"], keyType="API_KEY")
    url = served.url(PLATFORM, "/payments/txn_" + "b" * 32)
    assert call("GET", url, headers={"x-api-key": key["value"]}).status == 404
    apigateway.update_api_key(
        apiKey=key["id"], patchOperations=[{"op": "replace", "path": "/enabled", "value": "false"}]
    )
    time.sleep(KEY_CACHE_SECONDS + 0.1)
    answer = call("GET", url, headers={"x-api-key": key["value"]})
    assert_gateway_error(served, answer, 403, "INVALID_API_KEY")


@pytest.mark.parametrize("stack", [PLATFORM, PAYMENT_API])
def test_the_document_describes_the_api_as_deployed(served, stack):
    """The OpenAPI document (built from the template) against the definition the gateway
    serves (read back from the deployed API): the same operations, the API key exactly where
    the deployed method requires one, the required parameters the deployed validator
    enforces, the deployed model as the body schema, the preflight's deployed headers."""
    document = build_openapi(served.templates[stack], stack)
    schemas = document["components"]["schemas"]
    definition = served.serve.apis[stack].app.definition
    operations = {
        (path, verb.upper()): operation
        for path, item in document["paths"].items()
        for verb, operation in item.items()
        if verb != "parameters"
    }
    assert set(operations) == set(definition.methods)
    for where, method in definition.methods.items():
        operation = operations[where]
        assert bool(operation["security"]) == method.api_key_required, where
        required = {
            (parameter["in"], parameter["name"].lower())
            for parameter in operation.get("parameters", [])
            if parameter.get("required") and parameter["in"] == "header"
        }
        enforced = {
            ("header", name.rsplit(".", 1)[1].lower())
            for name, needed in method.request_parameters.items()
            if needed and method.validate_parameters and ".header." in name
        }
        assert required == enforced, where
        content = (operation.get("requestBody") or {}).get("content", {})
        model = method.request_models.get("application/json") if method.validate_body else None
        if model is None:
            assert not content, where
            continue
        reference = content["application/json"]["schema"]["$ref"]
        documented = schemas[reference.rsplit("/", 1)[1]]
        deployed = definition.models[model]
        for keyword in ("type", "required", "properties", "additionalProperties"):
            assert documented.get(keyword) == deployed.get(keyword), (where, keyword)
    for (path, verb), method in definition.methods.items():
        if method.integration.type != "MOCK":
            continue
        (answer,) = method.integration.responses.values()
        documented = operations[(path, verb)]["responses"][answer["statusCode"]]["headers"]
        deployed = {
            name.removeprefix("method.response.header."): value.strip("'")
            for name, value in answer["responseParameters"].items()
        }
        assert set(documented) == set(deployed), path
        for name, value in deployed.items():
            assert documented[name]["description"] == f"always {value}", (path, name)


def test_no_card_number_or_key_value_reaches_what_serve_prints(served):
    """--serve prints the gateway's lines and every function's log lines: a card number sent
    in the path, the query, a body field or a body that is not JSON, and the API key value
    every request carries (header and requestContext.identity.apiKey), appear in none."""
    pan = "4242424242424242"
    served.logs.clear()
    served.function_logs.clear()
    headers = key_headers(served, **{"Idempotency-Key": str(uuid.uuid4())})
    url = served.endpoint_of(PLATFORM).invoke_url
    for body in (
        {**PAYMENT, "paymentToken": pan},
        {**PAYMENT, "description": f"card {pan}"},
        {**PAYMENT, "amount": pan},
        f'{{"card": "{pan}"'.encode(),
    ):
        headers["Idempotency-Key"] = str(uuid.uuid4())
        call("POST", f"{url}?card={pan}", body, headers)
    call("GET", served.url(PLATFORM, f"/payments/{pan}?card={pan}"), headers=key_headers(served))
    function_lines = [f"{name} | {line}" for name, line in served.function_logs]
    printed = "\n".join([*served.logs, *function_lines])
    assert served.function_logs, "no function logged anything: the test would prove nothing"
    assert pan not in printed
    assert served.endpoint_of(PLATFORM).api_key_value not in printed
