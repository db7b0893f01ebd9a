"""The detector's false-positive budget: 0 in 100,000 of each family of identifiers the
platform carries, drawn with fresh randomness on every run (no seed: a cherry-picked seed
proves nothing). docs/handlers.md and handlers/payments/cards.py explain the rate without the
identifier rule (about 2 UUID4s in 100,000) and why it is 0 with it."""

from __future__ import annotations

import datetime as dt
import json
import random
import secrets
import uuid

from handlers.observability import redacting_serializer
from handlers.payments.cards import contains_pan, redact
from handlers.payments.idempotency import KeyScope
from handlers.payments.provider import _reference
from handlers.payments.store import new_transaction_id, timestamp

DRAWS = 100_000
RANDOM = random.SystemRandom()
EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
SPAN_MICROSECONDS = 100 * 365 * 24 * 3600 * 10**6  # 2000 to 2100


def refused(values):
    return [value for value in values if contains_pan(value)]


def test_uuid4s():
    assert refused(str(uuid.uuid4()) for _ in range(DRAWS)) == []


def iso_timestamp() -> str:
    """A random instant, written in one of the ISO 8601 / RFC 3339 forms systems emit."""
    offset = dt.timezone(dt.timedelta(minutes=RANDOM.randrange(-14 * 60, 14 * 60 + 1, 15)))
    moment = (EPOCH + dt.timedelta(microseconds=RANDOM.randrange(SPAN_MICROSECONDS))).astimezone(
        offset if RANDOM.random() < 0.5 else dt.UTC
    )
    form = RANDOM.randrange(4)
    if form == 0:
        return timestamp(moment)  # ours: milliseconds, Z
    if form == 1:
        text = moment.isoformat(sep=RANDOM.choice("T "), timespec="microseconds")
    elif form == 2:
        text = moment.isoformat(timespec=RANDOM.choice(["seconds", "milliseconds"]))
    else:  # Powertools' log timestamp: 2026-11-23 07:40:11,123+0000
        text = moment.strftime("%Y-%m-%d %H:%M:%S,") + f"{moment.microsecond // 1000:03d}"
        text += moment.strftime("%z")
    return text.replace("+00:00", "Z") if RANDOM.random() < 0.3 else text


def test_iso_8601_timestamps():
    assert refused(iso_timestamp() for _ in range(DRAWS)) == []


def our_id() -> str:
    """One of the ids the platform generates or carries in every log line."""
    kind = RANDOM.randrange(5)
    if kind == 0:
        return new_transaction_id()
    if kind == 1:
        return KeyScope(f"k{secrets.token_hex(5)}", "mer_0042", str(uuid.uuid4())).item_id
    if kind == 2:
        return _reference(new_transaction_id())  # the simulated acquirer's reference
    if kind == 3:  # an X-Ray trace id: 1-<epoch seconds, hex>-<96 random bits>
        seconds = int((EPOCH + dt.timedelta(seconds=RANDOM.randrange(3 * 10**9))).timestamp())
        return f"1-{seconds & 0xFFFFFFFF:08x}-{secrets.token_hex(12)}"
    return str(uuid.uuid4())  # API Gateway and Lambda request ids


def test_ids_we_generate():
    assert refused(our_id() for _ in range(DRAWS)) == []


def test_a_log_line_full_of_them_is_left_as_it_is():
    for _ in range(200):
        record = {
            "level": "INFO",
            "timestamp": iso_timestamp(),
            "correlation_id": str(uuid.uuid4()),
            "xray_trace_id": our_id(),
            "transactionId": new_transaction_id(),
            "requeuedAt": timestamp(dt.datetime.now(dt.UTC)),
        }
        line = redacting_serializer(record)
        assert json.loads(line) == record
        assert redact(line) == line
