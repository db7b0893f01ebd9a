"""One structured logger and one metrics emitter per function, card numbers redacted.

Nothing in the code logs a request body; the redacting serializer is the
backstop for what slips through anyway (an exception message quoting input,
a header a client filled with a card number): every log line passes through
it before it is written.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics

from handlers.config import CommonConfig
from handlers.payments import cards

_MIN_PAN_INT = 10 ** (cards.MIN_PAN_DIGITS - 1)
_MAX_PAN_INT = 10**cards.MAX_PAN_DIGITS


def redact_value(value: Any) -> Any:
    """The value with every card-number look-alike in it redacted (recursively)."""
    if isinstance(value, str):
        return cards.redact(value)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if _MIN_PAN_INT <= abs(value) < _MAX_PAN_INT and cards.contains_pan(str(abs(value))):
            return cards.REDACTED
        return value
    if isinstance(value, dict):
        return {redact_value(key): redact_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(item) for item in value]
    if value is None or isinstance(value, float):
        return value
    return cards.redact(str(value))


def redacting_serializer(log: dict[str, Any]) -> str:
    """Serialise one log record as compact JSON after redaction."""
    return json.dumps(redact_value(log), separators=(",", ":"), default=str)


def build_logger(config: CommonConfig) -> Logger:
    """The function's JSON logger (level from POWERTOOLS_LOG_LEVEL)."""
    return Logger(service=config.service, json_serializer=redacting_serializer)


def build_metrics(config: CommonConfig) -> Metrics:
    """The function's EMF metrics emitter."""
    return Metrics(namespace=config.metrics_namespace, service=config.service)
