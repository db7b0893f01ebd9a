"""One structured logger and one metrics emitter per function, card numbers redacted.

Nothing in the code logs a request body, a submitted field name or an idempotency key; the
serializer is the backstop for what slips through anyway (an exception message quoting
input, a header a client filled with a card number). It redacts twice: every value of the
record (keys included), then the final line as a whole with its own pass, which sees what
no single value holds (digits split across fields, numbers formatted by `default=str`).
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from handlers.config import CommonConfig
from handlers.payments import cards

# Kept from a record whose final line still matched after redaction (see redacting_serializer).
_WITHHELD_KEEPS = ("level", "location", "timestamp", "service", "correlation_id", "function_name")


def redact_value(value: Any) -> Any:
    """The value with every card-number look-alike in it redacted (recursively)."""
    if isinstance(value, str):
        return cards.redact(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float)):
        return cards.REDACTED if cards.contains_pan(str(value)) else value
    if isinstance(value, dict):
        return {redact_value(key): redact_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [redact_value(item) for item in value]
    return cards.redact(str(value))


def _dumps(record: Any) -> str:
    # ensure_ascii=False: \uXXXX escapes would put hex digits next to the text's own digits.
    return json.dumps(record, separators=(",", ":"), default=str, ensure_ascii=False)


def redacting_serializer(log: dict[str, Any]) -> str:
    """Serialise one log record as one JSON line with no card number in it."""
    line = _dumps(redact_value(log))
    # The line's own pass, through JSON's escapes (a tab between two values is `\t`).
    scrubbed = cards.redact(line, cards.pan_spans(cards.json_text_view(line)))
    if scrubbed == line:
        return line
    try:
        json.loads(scrubbed)
    except ValueError:
        # The second pass cut across JSON syntax (a number split over two values): keep the
        # record's envelope, withhold the rest rather than write half a line.
        kept = {key: redact_value(log[key]) for key in _WITHHELD_KEEPS if key in log}
        kept["message"] = "log line withheld: it held a card-number pattern across fields"
        return cards.redact(_dumps(kept))
    return scrubbed


def build_logger(config: CommonConfig) -> Logger:
    """The function's JSON logger (level from POWERTOOLS_LOG_LEVEL)."""
    return Logger(service=config.service, json_serializer=redacting_serializer)


def build_metrics(config: CommonConfig) -> Metrics:
    """The function's EMF metrics emitter."""
    return Metrics(namespace=config.metrics_namespace, service=config.service)
