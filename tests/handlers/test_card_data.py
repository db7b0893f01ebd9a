"""Card-number detection and redaction: what counts as a card number, and that
none ever reaches a log line."""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.observability import redact_value, redacting_serializer
from handlers.payments.cards import REDACTED, contains_pan, luhn_valid, redact

TEST_PANS = [
    "4111111111111111",
    "5555555555554444",
    "378282246310005",
    "6011111111111117",
    "30569309025904",
    "4000056655665556",
]


@pytest.mark.parametrize("pan", TEST_PANS)
@pytest.mark.parametrize("layout", ["{}", "card {} ok", "x{}y", "tok_{}", '"{}"'])
def test_card_numbers_are_found_plain_and_embedded(pan, layout):
    assert luhn_valid(pan)
    assert contains_pan(layout.format(pan))


@pytest.mark.parametrize(
    "written",
    [
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4111  1111 - 1111 1111",
        "3782 822463 10005",
        "12 4111 1111 1111 1111 34",
    ],
)
def test_card_numbers_with_separators_are_found(written):
    assert contains_pan(written)
    assert "1111" not in redact(written) or written.startswith("12")


def test_full_width_digits_are_folded():
    assert contains_pan("".join(chr(0xFF10 + int(d)) for d in "4111111111111111"))


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111112",
        "1234",
        "12.50",
        "2026-11-23 07:40:11,123+0000",
        "Order 1042",
        "123456789012",
        "tok_test_approve",
    ],
)
def test_ordinary_numbers_are_not_card_numbers(text):
    assert not contains_pan(text)
    assert redact(text) == text


@settings(max_examples=2000, deadline=None)
@given(st.uuids())
def test_a_uuid_is_never_mistaken_for_a_card_number(value):
    assert not contains_pan(str(value))


@settings(max_examples=500, deadline=None)
@given(prefix=st.text(max_size=20), pan=st.sampled_from(TEST_PANS), suffix=st.text(max_size=20))
def test_redaction_removes_every_card_number(prefix, pan, suffix):
    redacted = redact(prefix + " " + pan + " " + suffix)
    assert not contains_pan(redacted)
    assert REDACTED in redacted


def test_log_serializer_redacts_strings_numbers_and_nested_values():
    record = {
        "message": "charge 4111 1111 1111 1111 failed",
        "amount": 4111111111111111,
        "nested": {"list": ["5555555555554444", 3], "4111111111111111": True},
        "request_id": str(uuid.uuid4()),
        "cold_start": False,
    }
    line = redacting_serializer(record)
    assert not contains_pan(line)
    parsed = json.loads(line)  # still valid JSON
    assert parsed["request_id"] == record["request_id"]
    assert parsed["cold_start"] is False
    assert redact_value(12) == 12


def test_a_card_number_logged_by_mistake_is_redacted(modules, captured_logs):
    """The backstop: even an exception message quoting input is redacted."""
    logger = modules["processing"].logger
    try:
        raise ValueError("bad input 4111-1111-1111-1111")
    except ValueError:
        logger.exception("something failed for 5555 5555 5555 4444")
    output = captured_logs.getvalue()
    assert REDACTED in output and "4444" not in output
