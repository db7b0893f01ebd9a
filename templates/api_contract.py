"""What each route's function can answer (docs/handlers.md), for the OpenAPI documents.

With AWS_PROXY the template declares only the transport (`MethodResponses` 200); the
statuses, bodies and headers are the functions' contract. They are written down here once,
keyed by route, so `templates/openapi.py` can document every status a client can see, and
the served-API tests (schemathesis) fail when a function answers anything not listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ERROR_DETAIL = {
    "type": "object",
    "required": ["field", "code", "message"],
    "properties": {
        "field": {
            "type": "string",
            "description": "the field or header at fault (ours, never a submitted name)",
        },
        "code": {"type": "string"},
        "message": {"type": "string"},
    },
    "additionalProperties": False,
}
# The functions' one error shape (handlers/api.py: error_response).
FUNCTION_ERROR = {
    "type": "object",
    "description": "An error answered by a function; never echoes a submitted value.",
    "required": ["error", "correlationId"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "array", "items": {"$ref": "#/components/schemas/ErrorDetail"}},
            },
            "additionalProperties": False,
        },
        "correlationId": {"type": "string", "description": "quote it to support"},
    },
    "additionalProperties": False,
}
PAYMENT = {
    "type": "object",
    "description": "A normalised payment request (amount written with the currency's minor units).",
    "required": ["amount", "currency", "paymentToken", "merchantId"],
    "properties": {
        "amount": {"type": "string", "example": "12.50"},
        "currency": {"type": "string", "example": "USD"},
        "paymentToken": {"type": "string", "example": "tok_test_approve"},
        "merchantId": {"type": "string", "example": "m-123"},
        "description": {"type": "string"},
    },
    "additionalProperties": False,
}
# The states of docs/handlers.md's state machine (handlers/payments/store.py).
TRANSACTION_STATES = ["RECEIVED", "QUEUED", "SUCCEEDED", "DECLINED", "NEEDS_REVIEW"]
TRANSACTION = {
    "type": "object",
    "description": "A stored transaction as its owner sees it (docs/handlers.md, states).",
    "required": [
        "transactionId",
        "status",
        "amount",
        "currency",
        "merchantId",
        "receivedAt",
        "updatedAt",
    ],
    "properties": {
        "transactionId": {
            "type": "string",
            "pattern": "^txn_[a-z2-7]{32}$",
            "description": "random, unrelated to the Idempotency-Key",
        },
        "status": {"type": "string", "enum": TRANSACTION_STATES},
        "amount": {"type": "string"},
        "currency": {"type": "string"},
        "merchantId": {"type": "string"},
        "description": {"type": "string"},
        "receivedAt": {"type": "string", "format": "date-time"},
        "updatedAt": {"type": "string", "format": "date-time"},
        "completedAt": {"type": "string", "format": "date-time"},
        "providerReference": {"type": "string"},
        "reason": {
            "type": "string",
            "description": "why declined (card_declined, insufficient_funds, invalid_token) "
            "or in review (attempts_exhausted, provider_conflict)",
        },
    },
    "additionalProperties": False,
}
VALIDATION_RESULT = {
    "type": "object",
    "required": ["valid", "payment"],
    "properties": {
        "valid": {"type": "boolean", "enum": [True]},
        "payment": {"$ref": "#/components/schemas/Payment"},
    },
    "additionalProperties": False,
}
COMPONENT_STATE = {"type": "string", "enum": ["ok", "degraded", "unavailable"]}
HEALTH = {
    "type": "object",
    "description": "States only: no names, ARNs, depths or error text.",
    "required": ["status", "components", "checkedAt"],
    "properties": {
        "status": {"type": "string", "enum": ["healthy", "degraded", "unhealthy"]},
        "components": {
            "type": "object",
            "additionalProperties": {"$ref": "#/components/schemas/ComponentState"},
        },
        "checkedAt": {"type": "string"},
    },
    "additionalProperties": False,
}
SCHEMAS: dict[str, dict[str, Any]] = {
    "ErrorDetail": ERROR_DETAIL,
    "FunctionError": FUNCTION_ERROR,
    "Payment": PAYMENT,
    "Transaction": TRANSACTION,
    "ValidationResult": VALIDATION_RESULT,
    "ComponentState": COMPONENT_STATE,
    "Health": HEALTH,
}

# Headers every function answer carries (handlers/api.py), and the retry hint.
CORRELATION_HEADER = "X-Correlation-Id"
RETRY_AFTER = "Retry-After"
LOCATION = "Location"


@dataclass(frozen=True)
class Answer:
    """One status a function answers on a route: when, with which body and headers."""

    status: int
    description: str
    schema: str = "FunctionError"
    headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class RouteContract:
    """Everything the function behind one route can answer."""

    summary: str
    answers: tuple[Answer, ...]
    tags: tuple[str, ...] = field(default=("payments",))


_INTERNAL = Answer(
    500, "Unexpected error in the function: code internal_error and the correlation id only."
)
_BAD_BODY = Answer(
    400,
    "Invalid body or field (every error at once); a body that looks like "
    "it holds a card number (card_data_not_allowed).",
)
_TOO_LARGE = Answer(413, "Body over 8 KiB.")

ROUTES: dict[tuple[str, str], RouteContract] = {
    ("POST", "/validate-payment"): RouteContract(
        summary="Check a payment request without side effects",
        answers=(
            Answer(200, "The request is valid: the normalised payment.", "ValidationResult"),
            _BAD_BODY,
            _TOO_LARGE,
            _INTERNAL,
        ),
    ),
    ("POST", "/process-payment"): RouteContract(
        summary="Record and charge a payment, once per Idempotency-Key",
        answers=(
            Answer(
                201,
                "The transaction with its outcome (SUCCEEDED or DECLINED). The same key "
                "(scoped to the caller's API key and the merchant) with the same body "
                "replays the current state and runs nothing (Idempotent-Replayed: true).",
                "Transaction",
            ),
            Answer(
                202,
                "Recorded, outcome pending (RECEIVED or QUEUED: a transient failure, or a "
                "replay of a payment in progress) or NEEDS_REVIEW; follow Location.",
                "Transaction",
                (LOCATION,),
            ),
            Answer(
                400,
                "Invalid body or field, or a missing, malformed or duplicate "
                "Idempotency-Key; a card number in the body (card_data_not_allowed).",
            ),
            Answer(403, "No caller: the request carries no API key id."),
            _TOO_LARGE,
            Answer(
                422,
                "The Idempotency-Key is bound to a different body (after a 201, a 202, or "
                "while pending).",
            ),
            Answer(
                409,
                "idempotency_key_in_use: another request with this Idempotency-Key is being "
                "recorded at this moment; retry with the same key and body after Retry-After "
                "(it replays that request's payment, or 422 for another body).",
                headers=(RETRY_AFTER,),
            ),
            Answer(
                500,
                "Unexpected error, or the payment's state could not be established (the "
                "table refused even the read that settles it): code internal_error and the "
                "correlation id only; nothing is promised, so retry with the same key and "
                "body to learn the state (it replays if the payment was recorded).",
            ),
            Answer(
                503,
                "Nothing was recorded and the key is free (the table refused the write): "
                "retry with the same key and body.",
                headers=(RETRY_AFTER,),
            ),
        ),
    ),
    ("GET", "/payments/{transactionId}"): RouteContract(
        summary="The stored status of one of your payments",
        answers=(
            Answer(200, "The transaction.", "Transaction"),
            Answer(400, "A malformed transactionId."),
            Answer(403, "No caller: the request carries no API key id."),
            Answer(404, "No such transaction, or another caller's (the same answer)."),
            _INTERNAL,
            Answer(
                503,
                "The table refused the read (throttled): retry after Retry-After.",
                headers=(RETRY_AFTER,),
            ),
        ),
    ),
    ("GET", "/health"): RouteContract(
        summary="Is the platform able to take payments (no API key)",
        tags=("operations",),
        answers=(
            Answer(200, "Healthy or degraded, with each component's state.", "Health"),
            Answer(
                503,
                "Unhealthy: a component cannot be reached or the table is not ACTIVE.",
                "Health",
            ),
            _INTERNAL,
        ),
    ),
}


class UndocumentedRouteError(ValueError):
    """A template route whose function contract is not written down in ROUTES."""


def route_contract(method: str, path: str) -> RouteContract:
    """The contract of one route, or an error naming the route to document."""
    try:
        return ROUTES[(method, path)]
    except KeyError:
        raise UndocumentedRouteError(
            f"route {method} {path} has no contract in templates/api_contract.py: "
            "document every status its function answers there"
        ) from None
