"""Property-based fuzzing of the API handlers: thousands of generated bodies and
headers. Whatever arrives: only 2xx/4xx, always a JSON body with the CORS
headers, never a card number in a response, a log line or a metric."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import string
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import event as event_label
from hypothesis import strategies as st

from handlers.payments.cards import contains_pan
from tests.handlers.conftest import FakeLambdaContext, api_event, body_of, response_headers

# Test card numbers from the card schemes' documentation (Visa, Mastercard, Amex, Discover, Diners).
ALNUM = string.ascii_letters + string.digits
TOKEN_CHARS = ALNUM + "_"
PANS = [
    "4111111111111111",
    "5555555555554444",
    "378282246310005",
    "6011111111111117",
    "30569309025904",
]
FUZZ = settings(
    deadline=None,
    database=None,  # no .hypothesis/ in the shared checkout; a failure prints its blob
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@st.composite
def written_pan(draw):
    """A test card number written as people write them: plain, spaced, dashed."""
    pan = draw(st.sampled_from(PANS))
    separator = draw(st.sampled_from(["", " ", "-", "  ", " - "]))
    groups = [pan[i : i + 4] for i in range(0, len(pan), 4)]
    return separator.join(groups) if separator else pan


json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)

field_values = {
    "amount": st.sampled_from(
        ["12.50", "0.01", "10000.00", "100", "0", "-1", "1e3", "12.345", " 1", "10000.01"]
    )
    | st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str)
    | json_scalars,
    "currency": st.sampled_from(["USD", "EUR", "JPY", "GBP", "usd", "XXX", "BHD", "", "US"])
    | json_scalars,
    "paymentToken": st.sampled_from(
        ["tok_test_approve", "tok_test_decline", "tok_test_flaky", "tok_short", "tok_" + "a" * 65]
    )
    | st.text(TOKEN_CHARS, min_size=8, max_size=20).map(lambda t: "tok_" + t)
    | json_scalars,
    "merchantId": st.sampled_from(["mer_0042", "m1", "merchant-7", ""])
    | st.text(ALNUM + "_-", min_size=1, max_size=70)
    | json_scalars,
    "description": st.text(max_size=160) | json_scalars,
}


MINOR_UNITS = {"USD": 2, "EUR": 2, "GBP": 2, "CAD": 2, "AUD": 2, "JPY": 0, "CHF": 2}


@st.composite
def valid_payment(draw):
    """A payment the template's rules accept (amount within 10000.00, allowed currency)."""
    currency = draw(st.sampled_from(sorted(MINOR_UNITS)))
    places = draw(st.integers(0, MINOR_UNITS[currency]))
    minor = draw(st.integers(1, 10000 * 10**places))
    amount = str(minor) if places == 0 else f"{minor // 10**places}.{minor % 10**places:0{places}d}"
    body = {
        "amount": amount,
        "currency": currency,
        "paymentToken": "tok_" + draw(st.text(TOKEN_CHARS, min_size=8, max_size=64)),
        "merchantId": draw(st.text(ALNUM, min_size=1, max_size=1))
        + draw(st.text(ALNUM + "_-", min_size=2, max_size=63)),
    }
    if draw(st.booleans()):
        body["description"] = draw(
            st.text(st.characters(categories=["L", "N", "P", "Zs"]), max_size=140)
        )
    return body


@st.composite
def payment_like(draw):
    """Mostly near-valid payment objects: each field valid, junk, or absent; maybe extra keys."""
    body = {}
    for name, values in field_values.items():
        if draw(st.integers(0, 9)) < 8:
            body[name] = draw(values)
    if draw(st.booleans()) and draw(st.booleans()):
        body[draw(st.text(min_size=1, max_size=12))] = draw(json_scalars)
    if draw(st.integers(0, 5)) == 0:  # a card number pasted somewhere
        target = draw(st.sampled_from(["description", "paymentToken", "merchantId", "note"]))
        body[target] = draw(st.text(max_size=8)) + draw(written_pan()) + draw(st.text(max_size=8))
    return body


@st.composite
def request_body(draw):
    """Raw body text: near-valid JSON objects, any JSON, or arbitrary text; sometimes base64."""
    kind = draw(st.integers(0, 9))
    if kind < 3:
        text = json.dumps(draw(valid_payment()), ensure_ascii=draw(st.booleans()))
    elif kind < 6:
        text = json.dumps(draw(payment_like()), ensure_ascii=draw(st.booleans()))
    elif kind < 8:
        text = json.dumps(draw(json_values))
    else:
        text = draw(st.text(max_size=200) | written_pan())
    encoded = draw(st.booleans()) and draw(st.booleans())
    if encoded:
        text = base64.b64encode(text.encode("utf-8", "surrogatepass")).decode()
    return text, encoded


header_names = st.sampled_from(
    [
        "Idempotency-Key",
        "idempotency-key",
        "IDEMPOTENCY-KEY",
        "Origin",
        "Content-Type",
        "X-Correlation-Id",
        "x-api-key",
    ]
) | st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20)
header_values = (
    st.uuids().map(str)
    | st.text(max_size=60)
    | written_pan()
    | st.text(ALNUM + "_-", min_size=8, max_size=40)
)
headers = st.dictionaries(header_names, header_values, max_size=5)


def event_with(fixture, body, encoded, extra_headers):
    event = api_event(fixture, raw_body=body, headers={})
    for name, value in extra_headers.items():
        event["headers"][name] = value
        event["multiValueHeaders"][name] = [value]
    event["isBase64Encoded"] = encoded
    return event


def check_response(response, metrics_out):
    """The invariant every API answer keeps."""
    status = response["statusCode"]
    assert 200 <= status < 300 or 400 <= status < 500, response
    body = body_of(response)
    assert isinstance(body, dict)
    assert response_headers(response)["access-control-allow-origin"] == "https://app.example.com"
    if status >= 400:
        assert set(body) == {"error", "correlationId"}
        assert {"code", "message"} <= set(body["error"])
    assert not contains_pan(response["body"])
    assert not any(contains_pan(line) for line in metric_values(metrics_out))
    return status, body


def metric_values(emf_output):
    """Each EMF line without its own epoch-millisecond timestamp (13 digits, not input)."""
    for line in emf_output.splitlines():
        document = json.loads(line)
        document["_aws"].pop("Timestamp")
        yield json.dumps(document)


@settings(FUZZ, max_examples=2000)
@given(body=request_body(), extra_headers=headers)
def test_validation_handler_fuzz(modules, body, extra_headers, captured_logs):
    module = modules["validation"]
    event = event_with("apigw_rest_post_validate_payment", *body, extra_headers)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        response = module.handler(event, FakeLambdaContext(function_name="payment-validator-test"))
    status, answer = check_response(response, out.getvalue())
    event_label(f"status {status}")
    text, encoded = body
    raw = base64.b64decode(text).decode("utf-8", "replace") if encoded else text
    if contains_pan(raw):
        assert status == 400 and answer["error"]["details"][0]["code"] == "card_data_not_allowed"
    if status == 200:
        assert answer["valid"] is True and set(answer["payment"]) <= set(field_values)


@settings(FUZZ, max_examples=800)
@given(
    body=request_body(),
    extra_headers=headers,
    key=st.none() | st.uuids().map(str) | st.uuids().map(str),
)
def test_processing_handler_fuzz(processing, body, extra_headers, key, captured_logs):
    if key is not None:
        extra_headers = {**extra_headers, "Idempotency-Key": key}
    event = event_with("apigw_rest_post_process_payment", *body, extra_headers)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        response = processing.invoke(event)
    status, _ = check_response(response, out.getvalue())
    event_label(f"status {status}")
    assert status in (201, 202, 400, 409, 413, 422)


@settings(FUZZ, max_examples=300)
@given(
    extra_headers=headers,
    path=st.sampled_from(["/payments/", "/payments/txn_x", "/health", "/"])
    | st.text(max_size=30).map(lambda t: "/payments/" + t),
)
def test_processing_get_routes_fuzz(processing, extra_headers, path):
    event = api_event(
        "apigw_rest_get_payment",
        path=path,
        path_parameters={"transactionId": path.rsplit("/", 1)[-1]},
    )
    event["headers"].update(extra_headers)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        response = processing.invoke(event)
    check_response(response, out.getvalue())


@settings(FUZZ, max_examples=300)
@given(extra_headers=headers, method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]))
def test_health_handler_fuzz(health, extra_headers, method):
    event = api_event("apigw_rest_get_health", method=method)
    event["headers"].update(extra_headers)
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        response = health.module.handler(event, FakeLambdaContext())
    status = response["statusCode"]
    assert status in (200, 404, 503)  # 503 only for an unhealthy platform, never a crash
    body_of(response)
    assert not contains_pan(response["body"])
    assert not any(contains_pan(line) for line in metric_values(out.getvalue()))


@settings(FUZZ, max_examples=1000)
@given(body=valid_payment())
def test_every_valid_payment_is_accepted_and_normalised(body):
    """No false refusals: a valid request passes, with the currency's minor units."""
    from decimal import Decimal

    from handlers.payments.validation import ValidationRules, validate_payment

    rules = ValidationRules(
        max_amount=Decimal("10000.00"), allowed_currencies=frozenset(MINOR_UNITS)
    )
    if contains_pan(json.dumps(body, ensure_ascii=False)):
        return  # a generated description that really looks like a card number
    payment = validate_payment(body, rules).to_dict()
    assert Decimal(payment["amount"]) == Decimal(body["amount"])
    assert len(payment["amount"].partition(".")[2]) == MINOR_UNITS[body["currency"]]
    assert {k: v for k, v in payment.items() if k != "amount"} == {
        k: v for k, v in body.items() if k != "amount"
    }
