"""POST /validate-payment: 200 with the normalised request, 400 with every field error."""

from __future__ import annotations

import pytest

from tests.handlers.conftest import (
    FakeLambdaContext,
    api_event,
    body_of,
    payment_body,
    response_headers,
)


@pytest.fixture
def validate(modules):
    module = modules["validation"]

    def call(body=None, raw_body=None, **kwargs):
        event = api_event("apigw_rest_post_validate_payment", body, raw_body=raw_body, **kwargs)
        return module.handler(event, FakeLambdaContext(function_name="payment-validator-test"))

    return call


def test_valid_request_is_normalised(validate):
    response = validate(payment_body(amount="12.5"))
    assert response["statusCode"] == 200
    assert body_of(response) == {
        "valid": True,
        "payment": {**payment_body(), "amount": "12.50"},
    }
    assert response_headers(response)["access-control-allow-origin"] == "https://app.example.com"


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("amount", "0", "not_positive"),
        ("amount", "10000.01", "too_large"),
        ("amount", "12.345", "too_many_decimals"),
        ("amount", "1e3", "malformed"),
        ("amount", "-5", "malformed"),
        ("amount", 12.5, "wrong_type"),
        ("currency", "XXX", "malformed"),
        ("currency", "SEK", "not_allowed"),
        ("paymentToken", "tok_short", "malformed"),
        ("merchantId", "x", "malformed"),
        ("description", "x" * 141, "too_long"),
        ("description", 5, "wrong_type"),
    ],
)
def test_each_rule(validate, field, value, code):
    response = validate(payment_body(**{field: value}))
    assert response["statusCode"] == 400
    details = body_of(response)["error"]["details"]
    assert {"field": field, "code": code} in [
        {"field": d["field"], "code": d["code"]} for d in details
    ]


def test_minor_units_follow_the_currency(validate):
    assert validate(payment_body(currency="JPY", amount="1200"))["statusCode"] == 200
    jpy = validate(payment_body(currency="JPY", amount="1200.5"))
    assert body_of(jpy)["error"]["details"][0]["code"] == "too_many_decimals"
    assert (
        body_of(validate(payment_body(currency="JPY", amount="1200")))["payment"]["amount"]
        == "1200"
    )


def test_control_characters_in_description_are_refused(validate):
    for text in ["a\nb", "a\tb", "a\u2028b", "a\x00b"]:
        response = validate(payment_body(description=text))
        assert response["statusCode"] == 400, repr(text)
    assert validate(payment_body(description="Café crème\u00a0— ok"))["statusCode"] == 200


def test_every_error_at_once_in_a_stable_order(validate):
    response = validate({"currency": 1, "amount": "", "unexpected": 1, "description": None})
    details = body_of(response)["error"]["details"]
    assert details == sorted(details, key=lambda d: (d["field"], d["code"], d["message"]))
    assert {d["field"] for d in details} == {
        "currency",
        "amount",
        "body",  # the unknown field, by count and position: never its submitted name
        "paymentToken",
        "merchantId",
    }
    (unknown,) = [d for d in details if d["code"] == "unknown_fields"]
    assert "position(s) 3" in unknown["message"] and "unexpected" not in response["body"]
    again = body_of(validate({"currency": 1, "amount": "", "unexpected": 1, "description": None}))
    assert again["error"]["details"] == details


def test_errors_never_echo_the_submitted_values(validate):
    response = validate(payment_body(merchantId="<script>alert(1)</script>", currency="ZZ9"))
    assert "<script>" not in response["body"] and "ZZ9" not in response["body"]


def test_unreadable_field_names_are_not_echoed(validate):
    response = validate(raw_body='{"<img src=x>": 1, "amount": "1.00"}')
    fields = {d["field"] for d in body_of(response)["error"]["details"]}
    assert "body" in fields and not any("<" in f for f in fields)


def test_wrong_route_on_the_validation_function(validate):
    response = validate(payment_body(), path="/process-payment")
    assert response["statusCode"] == 404
