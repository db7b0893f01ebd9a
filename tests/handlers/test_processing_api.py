"""POST /process-payment and GET /payments/{id} against moto, with real event shapes."""

from __future__ import annotations

import base64
import re

from handlers.payments.store import new_transaction_id
from tests.handlers.conftest import api_event, body_of, new_key, payment_body, response_headers

ORIGIN = "https://app.example.com"


def assert_api_response(response, status):
    """Status, CORS for the configured origin, a JSON body, a correlation id."""
    assert response["statusCode"] == status, response
    headers = response_headers(response)
    assert headers["access-control-allow-origin"] == ORIGIN
    assert headers["content-type"] == "application/json"
    assert headers["x-correlation-id"]
    return body_of(response)


def test_approved_payment_is_recorded_succeeded_and_answered_201(processing):
    key = new_key()
    body = assert_api_response(processing.pay(payment_body(), key), 201)
    assert re.fullmatch(r"txn_[a-z2-7]{32}", body["transactionId"])
    assert body["status"] == "SUCCEEDED"
    assert body["amount"] == "12.50" and body["currency"] == "USD"
    assert body["receivedAt"] <= body["completedAt"]
    assert "paymentToken" not in body and "requestHash" not in body and "attempts" not in body
    stored = assert_api_response(processing.get(body["transactionId"]), 200)
    assert stored == body
    assert list(processing.ledger.charges()) == [body["transactionId"]]


def test_declined_and_invalid_tokens_are_declines(processing):
    declined = body_of(processing.pay(payment_body(paymentToken="tok_test_decline")))
    assert declined["status"] == "DECLINED" and declined["reason"] == "card_declined"
    invalid = body_of(processing.pay(payment_body(paymentToken="tok_test_invalid")))
    assert invalid["status"] == "DECLINED" and invalid["reason"] == "invalid_token"
    assert processing.ledger.charges() == {}  # nothing was charged


def test_ids_are_random_not_derived_from_the_key(processing):
    """The same key and body from two callers, and two fresh ids: unrelated, unguessable."""
    key = new_key()
    one = body_of(processing.pay(payment_body(), key, caller="caller-one"))["transactionId"]
    two = body_of(processing.pay(payment_body(), key, caller="caller-two"))["transactionId"]
    assert one != two
    assert len({new_transaction_id() for _ in range(1000)}) == 1000


def test_only_the_owner_reads_a_payment(processing):
    paid = body_of(processing.pay(payment_body(), caller="owner-key"))
    assert processing.get(paid["transactionId"], caller="owner-key")["statusCode"] == 200
    foreign = processing.get(paid["transactionId"], caller="other-key")
    missing = processing.get(new_transaction_id(), caller="other-key")
    assert foreign["statusCode"] == missing["statusCode"] == 404
    assert body_of(foreign)["error"] == body_of(missing)["error"]


def test_idempotency_key_header_is_case_insensitive(processing):
    key = new_key()
    first = processing.pay(payment_body(), key)
    event = api_event("apigw_rest_post_process_payment", payment_body(), {"idempotency-key": key})
    assert body_of(processing.invoke(event)) == body_of(first)
    event = api_event("apigw_rest_post_process_payment", payment_body(), {"IDEMPOTENCY-KEY": key})
    assert body_of(processing.invoke(event)) == body_of(first)
    assert len(processing.ledger.charges()) == 1


def test_missing_malformed_or_duplicate_idempotency_key_is_400(processing):
    missing = api_event("apigw_rest_post_process_payment", payment_body(), {})
    for event, code in [
        (missing, "missing"),
        (
            api_event(
                "apigw_rest_post_process_payment", payment_body(), {"Idempotency-Key": "short"}
            ),
            "malformed",
        ),
        (
            api_event(
                "apigw_rest_post_process_payment",
                payment_body(),
                {"Idempotency-Key": "4111111111111111"},
            ),
            "malformed",
        ),
    ]:
        body = assert_api_response(processing.invoke(event), 400)
        assert body["error"]["details"][0] == {
            "field": "Idempotency-Key",
            "code": code,
            "message": body["error"]["details"][0]["message"],
        }
    duplicate = api_event(
        "apigw_rest_post_process_payment", payment_body(), {"Idempotency-Key": new_key()}
    )
    duplicate["multiValueHeaders"]["Idempotency-Key"] = [new_key(), new_key()]
    body = assert_api_response(processing.invoke(duplicate), 400)
    assert body["error"]["details"][0]["code"] == "duplicate"
    assert processing.ledger.items() == {}


def test_invalid_body_reports_every_field_error_at_once(processing):
    response = processing.pay(
        {"amount": 12.5, "currency": "usd", "paymentToken": "4111 1111 1111 1112", "extra": 1}
    )
    body = assert_api_response(response, 400)
    fields = {(d["field"], d["code"]) for d in body["error"]["details"]}
    assert fields == {
        ("amount", "wrong_type"),
        ("currency", "malformed"),
        ("paymentToken", "malformed"),
        ("body", "unknown_fields"),  # by count and position, never by the submitted name
        ("merchantId", "missing"),
    }
    assert "extra" not in response["body"]
    assert processing.aws.scan_ids("") == []


def test_card_number_in_body_is_refused_and_never_stored(processing, captured_logs):
    response = processing.pay(payment_body(description="card 4111-1111-1111-1111 thanks"))
    body = assert_api_response(response, 400)
    assert [d["code"] for d in body["error"]["details"]] == ["card_data_not_allowed"]
    assert "4111" not in response["body"]
    assert processing.aws.scan_ids("") == []
    assert processing.aws.queue_depth("FailedTransactionsQueue") == 0
    assert "card number" in captured_logs.getvalue()


def test_card_number_hidden_behind_json_escapes_is_refused(processing):
    escaped = (
        '{"amount":"1.00","currency":"USD","paymentToken":"tok_test_approve",'
        '"merchantId":"m_1","description":"\\u0034111111111111111"}'
    )
    event = api_event(
        "apigw_rest_post_process_payment", raw_body=escaped, headers={"Idempotency-Key": new_key()}
    )
    body = assert_api_response(processing.invoke(event), 400)
    assert body["error"]["details"][0]["code"] == "card_data_not_allowed"


def test_base64_body_is_decoded(processing):
    event = api_event("apigw_rest_post_process_payment", headers={"Idempotency-Key": new_key()})
    event["body"] = base64.b64encode(event["body"].encode()).decode()
    event["isBase64Encoded"] = True
    assert assert_api_response(processing.invoke(event), 201)["status"] == "SUCCEEDED"


def test_bad_bodies_are_4xx_with_a_clear_code(processing):
    cases = {
        "not json": ("not_json", 400),
        "[1, 2]": ("not_object", 400),
        '"text"': ("not_object", 400),
        "": ("missing", 400),
        '{"amount": "1.00", "amount": "2.00"}': ("duplicate_field", 400),
        "[" * 5000 + "]" * 5000: ("too_large", 413),
        '{"description": "' + "x" * 9000 + '"}': ("too_large", 413),
        "NaN": ("not_json", 400),
    }
    for raw, (code, status) in cases.items():
        event = api_event(
            "apigw_rest_post_process_payment", raw_body=raw, headers={"Idempotency-Key": new_key()}
        )
        body = assert_api_response(processing.invoke(event), status)
        assert code in {d["code"] for d in body["error"]["details"]}, (raw[:20], body)


def test_deep_nesting_within_the_size_limit_is_400_not_500(processing):
    raw = "[" * 4000 + "]" * 4000
    event = api_event(
        "apigw_rest_post_process_payment", raw_body=raw, headers={"Idempotency-Key": new_key()}
    )
    assert_api_response(processing.invoke(event), 400)


def test_get_unknown_malformed_and_missing_transaction(processing):
    unknown = processing.get(new_transaction_id())
    assert assert_api_response(unknown, 404)["error"]["code"] == "transaction_not_found"
    malformed = processing.get("txn_1234")
    assert assert_api_response(malformed, 400)["error"]["details"][0]["field"] == "transactionId"
    missing = processing.invoke(
        api_event("apigw_rest_get_payment", path="/payments", path_parameters={})
    )
    assert assert_api_response(missing, 400)["error"]["details"][0]["code"] == "missing"


def test_unknown_route_and_wrong_method_are_404_listing_the_routes(processing):
    for path, method in [
        ("/nope", "GET"),
        ("/process-payment", "GET"),
        ("/payments/x/y", "DELETE"),
    ]:
        body = assert_api_response(
            processing.invoke(api_event("apigw_rest_get_payment", path=path, method=method)), 404
        )
        assert "POST /process-payment" in body["error"]["message"]


def test_a_key_binding_cannot_be_read_as_a_transaction(processing):
    processing.pay(payment_body())
    (record_id,) = processing.aws.scan_ids("idem_")
    response = processing.get(record_id)
    assert response["statusCode"] in (400, 404)
    assert "data" not in body_of(response) and "status" not in body_of(response)


def test_headers_null_as_api_gateway_sends_for_header_less_requests(processing):
    event = api_event("apigw_rest_post_process_payment", payment_body())
    event["headers"] = None
    event["multiValueHeaders"] = None
    body = assert_api_response(processing.invoke(event), 400)
    assert body["error"]["details"][0]["field"] == "Idempotency-Key"


def test_a_request_without_an_api_key_id_is_403(processing):
    """Only API Gateway's keyed routes reach the function; without the caller's key id there
    is no scope for the key and no owner for the payment."""
    for caller in (None, ""):
        event = api_event("apigw_rest_post_process_payment", payment_body())
        event["requestContext"]["identity"]["apiKeyId"] = caller
        body = assert_api_response(processing.invoke(event), 403)
        assert body["error"]["code"] == "forbidden"
    assert processing.aws.scan_ids("") == []


def test_an_options_preflight_reaching_the_function_is_answered(processing):
    event = api_event("apigw_rest_post_process_payment", method="OPTIONS")
    response = processing.invoke(event)
    assert response["statusCode"] == 204
    assert response_headers(response)["access-control-allow-methods"] == "OPTIONS,POST"
