"""The payment-api stack validates POST /process-payment against the payment request model
(docs/contract.md) before the function runs; `RequestBodyValidation=json-object` relaxes it to
"a JSON object" for another backend, and either value is what the deployed stage serves."""

from __future__ import annotations

from typing import Any

import pytest

from handlers.payments.validation import OPTIONAL_FIELDS, REQUIRED_FIELDS
from templates.cfnread import condition_holds, decide_conditions
from tests.templates.cfn import one, props, resources
from tests.templates.platform_rules import target

PARAMETER = "RequestBodyValidation"


def holds(template: dict, condition: Any, value: str) -> bool:
    """A condition of the template with RequestBodyValidation = `value`."""
    return condition_holds(template, condition, {PARAMETER: value})


def choose(template: dict, node: Any, value: str) -> Any:
    """`node` with every Fn::If decided for RequestBodyValidation = `value`."""
    return decide_conditions(template, node, {PARAMETER: value})


def post_method(template: dict) -> dict:
    (resource_id,) = [
        i
        for i, r in resources(template, "AWS::ApiGateway::Resource").items()
        if props(r)["PathPart"] == "process-payment"
    ]
    (method,) = [
        props(m)
        for m in resources(template, "AWS::ApiGateway::Method").values()
        if props(m)["HttpMethod"] == "POST" and props(m)["ResourceId"] == {"Ref": resource_id}
    ]
    return method


def test_the_parameter_defaults_to_the_payment_model(payment_api):
    parameter = payment_api["Parameters"][PARAMETER]
    assert parameter["Default"] == "payment-request"
    assert sorted(parameter["AllowedValues"]) == ["json-object", "payment-request"]


@pytest.mark.requirement("S000-POST-PROCESS-PAYMENT")
def test_the_body_is_validated_before_the_function_runs(payment_api):
    method = post_method(payment_api)
    validator = props(payment_api["Resources"][target(method["RequestValidatorId"])])
    assert validator["ValidateRequestBody"] is True
    assert target(method["RequestModels"]["application/json"]) in payment_api["Resources"]


@pytest.mark.parametrize("value", ["payment-request", "json-object"])
def test_the_model_is_the_payment_request_or_any_json_object(payment_api, value):
    method = post_method(payment_api)
    model = props(payment_api["Resources"][target(method["RequestModels"]["application/json"])])
    schema = choose(payment_api, model["Schema"], value)
    assert isinstance(schema, dict)  # an object: cloudformation_include refuses a string
    assert schema["type"] == "object"
    if value == "payment-request":
        assert schema["required"] == list(REQUIRED_FIELDS)
        assert set(schema["properties"]) == set(REQUIRED_FIELDS) | set(OPTIONAL_FIELDS)
        assert all(p == {"type": "string"} for p in schema["properties"].values())
    else:
        assert set(schema) <= {"$schema", "title", "type"}


@pytest.mark.parametrize("value", ["payment-request", "json-object"])
def test_the_stage_serves_a_deployment_taken_for_that_value(payment_api, value):
    """A parameter cannot change a logical ID, so each value has its own deployment (under
    opposite conditions): changing it makes a new snapshot instead of keeping the old one."""
    deployments = resources(payment_api, "AWS::ApiGateway::Deployment")
    existing = {i for i, d in deployments.items() if holds(payment_api, d["Condition"], value)}
    assert len(existing) == 1
    _, stage = one(payment_api, "AWS::ApiGateway::Stage")
    assert choose(payment_api, props(stage)["DeploymentId"], value) == {"Ref": existing.pop()}


def test_the_preflight_is_unchanged(payment_api):
    (options,) = [
        props(m)
        for m in resources(payment_api, "AWS::ApiGateway::Method").values()
        if props(m)["HttpMethod"] == "OPTIONS"
    ]
    assert "RequestValidatorId" not in options and "RequestModels" not in options
    assert options["Integration"]["Type"] == "MOCK"
