"""The REST event handler every API function shares: CORS, JSON errors, error mapping.

Each function adds its routes and any error mapping of its own; what is common
(400 for invalid input, 404 for an unknown route, 500 with a correlation id
for anything unexpected) is registered here once.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.metrics import MetricUnit

from handlers.payments.validation import FieldError, PaymentValidationError

JSON = "application/json"
CORRELATION_HEADER = "X-Correlation-Id"
ALLOWED_HEADERS = ["Content-Type", "Idempotency-Key", "X-Api-Key", "X-Amz-Date", "Authorization"]


class SingleOriginCORS(CORSConfig):
    """CORS for one configured origin, sent on every response.

    Powertools sends the headers only when the request's Origin matches; the
    contract is that every response carries them (as the gateway's own
    responses do), so a browser always sees the one origin it may use.
    """

    def allowed_origin(self, extracted_origin: str | None) -> str | None:
        """Always the configured origin, whatever the request sent."""
        return self._allowed_origins[0]


class BadRequestError(ValueError):
    """A request problem outside the body (a header, a path parameter)."""

    def __init__(self, errors: list[FieldError], status: int = 400) -> None:
        super().__init__(f"{len(errors)} request error(s)")
        self.errors = errors
        self.status = status


def cors_config(origin: str) -> SingleOriginCORS:
    """CORS for the configured origin, allowing the headers the API reads."""
    return SingleOriginCORS(
        allow_origin=origin,
        allow_headers=ALLOWED_HEADERS,
        expose_headers=[CORRELATION_HEADER],
        max_age=600,
    )


def correlation_id(app: APIGatewayRestResolver) -> str:
    """The id a client quotes to support: API Gateway's request id, else the Lambda one."""
    context = app.current_event.get("requestContext") or {}
    request_id = context.get("requestId") if isinstance(context, dict) else None
    if isinstance(request_id, str) and request_id:
        return request_id
    return getattr(app.lambda_context, "aws_request_id", "unknown")


def json_response(
    app: APIGatewayRestResolver,
    status: int,
    body: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> Response:
    """A JSON response carrying the correlation id header."""
    all_headers = {CORRELATION_HEADER: correlation_id(app), **(headers or {})}
    return Response(status_code=status, content_type=JSON, body=body, headers=all_headers)


def error_response(
    app: APIGatewayRestResolver,
    status: int,
    code: str,
    message: str,
    details: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """The one error shape: {"error": {code, message, details?}, "correlationId"}."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = [detail.to_dict() for detail in details]
    body = {"error": error, "correlationId": correlation_id(app)}
    return json_response(app, status, body, headers)


def build_resolver(
    logger: Logger, metrics: Metrics, origin: str, routes: str
) -> APIGatewayRestResolver:
    """A resolver with CORS and the error mapping shared by all API functions.

    `routes` is the human-readable list of routes, quoted in the 404 message.
    """
    app = APIGatewayRestResolver(cors=cors_config(origin), serializer=_serialize)

    @app.exception_handler(PaymentValidationError)
    def invalid_payment(error: PaymentValidationError) -> Response:
        metrics.add_metric(name="ClientError", unit=MetricUnit.Count, value=1)
        if error.contains_card_data:
            metrics.add_metric(name="CardDataRejected", unit=MetricUnit.Count, value=1)
            logger.warning("request refused: it looks like it contains a card number")
        else:
            logger.info("request refused: invalid payment", extra={"errors": _codes(error.errors)})
        if any(detail.code == "too_large" and detail.field == "body" for detail in error.errors):
            return error_response(
                app, 413, "payload_too_large", "The request body is too large.", error.errors
            )
        return error_response(
            app, 400, "validation_failed", "The payment request is invalid.", error.errors
        )

    @app.exception_handler(BadRequestError)
    def bad_request(error: BadRequestError) -> Response:
        metrics.add_metric(name="ClientError", unit=MetricUnit.Count, value=1)
        logger.info("request refused", extra={"errors": _codes(error.errors)})
        return error_response(
            app, error.status, "bad_request", "The request is invalid.", error.errors
        )

    @app.not_found
    def not_found(_: NotFoundError) -> Response:
        metrics.add_metric(name="ClientError", unit=MetricUnit.Count, value=1)
        logger.info("no route", extra={"method": app.current_event.http_method})
        return error_response(app, 404, "not_found", f"No such route. Routes: {routes}.")

    @app.exception_handler(Exception)
    def unexpected(error: Exception) -> Response:
        # The boundary of the function: log the whole error (redacted) for the
        # operator, give the client only the correlation id to quote.
        metrics.add_metric(name="ServerError", unit=MetricUnit.Count, value=1)
        logger.exception("unexpected error", extra={"errorType": type(error).__name__})
        return error_response(
            app,
            500,
            "internal_error",
            "Something went wrong on our side; quote the correlation id to support.",
        )

    return app


def _serialize(body: Any) -> str:
    # Sorted keys: a replayed answer (read back from the idempotency record) is
    # byte-identical to the first one.
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


def _codes(errors: list[FieldError]) -> list[str]:
    """Field and code of each error, for a log line (never the submitted values)."""
    return [f"{error.field}:{error.code}" for error in errors]
