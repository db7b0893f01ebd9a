"""The REST proxy layer every API function shares: event parsing, routing, CORS, JSON errors.

Hand-written rather than Powertools' `APIGatewayRestResolver` for two measured reasons: that
package's `__init__` imports every resolver (AppSync, Bedrock, asyncio...), which put the
processing function's cold start over its budget (bench/cold_start.py), and the resolver
raises on events API Gateway never sends but a caller of the function can (a null `path` or
`httpMethod`, an object as `body`). Four routes need only a dispatch table.

One error path: a route raises `ApiError` or a domain error mapped to one (`Router.on`);
anything else is a 500 that carries only the correlation id. Every answer, whatever the
event looked like, is JSON with the CORS headers.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from handlers.payments.validation import FieldError, PaymentValidationError

JSON = "application/json"
CORRELATION_HEADER = "X-Correlation-Id"
ALLOWED_HEADERS = "Authorization,Content-Type,Idempotency-Key,X-Amz-Date,X-Api-Key"


class ApiError(Exception):
    """An answer other than success: status, a stable code, a message, field details."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[FieldError] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.headers = dict(headers or {})


def bad_request(errors: list[FieldError]) -> ApiError:
    """400 for a problem outside the body (a header, a path parameter)."""
    return ApiError(400, "bad_request", "The request is invalid.", errors)


def malformed_event(why: str) -> ApiError:
    """400 for an event that is not an API Gateway REST proxy request."""
    return ApiError(
        400, "malformed_request", "The request is not a valid API request.",
        [FieldError("request", "malformed", why)],
    )  # fmt: skip


@dataclass(frozen=True)
class Request:
    """The parts of a REST proxy event the functions read, checked for type."""

    method: str
    path: str
    headers: Mapping[str, str]  # names lower-cased
    header_values: Mapping[str, list[str]]  # every value of each (lower-cased) name
    body: str | None
    is_base64_encoded: bool
    caller: str | None  # requestContext.identity.apiKeyId: the API key's id, never its value
    correlation_id: str
    path_parameters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Response:
    """A JSON answer."""

    status: int
    body: dict[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


def _dict_or_none(event: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = event.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise malformed_event(f"{name} must be an object")
    return value


def _text_map(value: Mapping[str, Any], name: str) -> dict[str, str]:
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise malformed_event(f"{name} must map names to strings")
    return {k.lower(): v for k, v in value.items()}


def _correlation_id(event: Any, context: Any) -> str:
    """API Gateway's request id when the event has one, else the Lambda request id."""
    request_context = event.get("requestContext") if isinstance(event, dict) else None
    request_id = request_context.get("requestId") if isinstance(request_context, dict) else None
    if isinstance(request_id, str) and request_id:
        return request_id
    return str(getattr(context, "aws_request_id", "unknown"))


def parse_event(event: Any, context: Any) -> Request:
    """The request, or ApiError(400) naming what in the event is missing or mistyped."""
    if not isinstance(event, dict):
        raise malformed_event("the event must be an object")
    method, path = event.get("httpMethod"), event.get("path")
    if not isinstance(method, str) or not method:
        raise malformed_event("httpMethod must be a string")
    if not isinstance(path, str) or not path.startswith("/"):
        raise malformed_event("path must be a string starting with /")
    headers = _text_map(_dict_or_none(event, "headers"), "headers")
    header_values: dict[str, list[str]] = {}
    for name, values in _dict_or_none(event, "multiValueHeaders").items():
        if not isinstance(name, str) or not isinstance(values, list):
            raise malformed_event("multiValueHeaders must map names to lists")
        header_values.setdefault(name.lower(), []).extend(values)
    body = event.get("body")
    if body is not None and not isinstance(body, str):
        raise malformed_event("body must be a string")
    encoded = event.get("isBase64Encoded")
    if encoded is not None and not isinstance(encoded, bool):
        raise malformed_event("isBase64Encoded must be true or false")
    identity = _dict_or_none(_dict_or_none(event, "requestContext"), "identity")
    caller = identity.get("apiKeyId")
    return Request(
        method=method.upper(),
        path=path,
        headers=headers,
        header_values=header_values,
        body=body,
        is_base64_encoded=bool(encoded),
        caller=caller if isinstance(caller, str) and caller else None,
        correlation_id=_correlation_id(event, context),
    )


Handler = Callable[[Request], Response]
ErrorMapper = Callable[[Exception], ApiError]


@dataclass(frozen=True)
class Route:
    """One method and path template (`{name}` matches one path segment)."""

    method: str
    template: str
    handler: Handler
    caller_required: bool
    unexpected_hint: str = ""

    def match(self, path: str) -> dict[str, str] | None:
        """The path parameters when the path fits the template, else None."""
        want, got = self.template.strip("/").split("/"), path.strip("/").split("/")
        if len(want) != len(got):
            return None
        parameters = {}
        for pattern, segment in zip(want, got, strict=True):
            if pattern.startswith("{") and pattern.endswith("}"):
                if not segment:
                    return None
                parameters[pattern[1:-1]] = segment
            elif pattern != segment:
                return None
        return parameters


class Router:
    """Routes, the mapping of domain errors to answers, and the one way a request ends."""

    def __init__(self, logger: Logger, metrics: Metrics, origin: str) -> None:
        self._logger = logger
        self._metrics = metrics
        self._origin = origin
        self._routes: list[Route] = []
        self._mappers: list[tuple[type[Exception], ErrorMapper]] = []
        self.on(PaymentValidationError)(self._invalid_payment)  # type: ignore[arg-type]

    def route(
        self,
        method: str,
        template: str,
        *,
        caller_required: bool = False,
        unexpected_hint: str = "",
    ):
        """Register a handler for METHOD /template. `unexpected_hint`: what a client of this
        route may safely do after an unexpected 500 (appended to its message)."""

        def register(handler: Handler) -> Handler:
            self._routes.append(Route(method, template, handler, caller_required, unexpected_hint))
            return handler

        return register

    def on(self, *error_types: type[Exception]):
        """Register how domain errors of these types become answers."""

        def register(mapper: ErrorMapper) -> ErrorMapper:
            self._mappers.extend((error_type, mapper) for error_type in error_types)
            return mapper

        return register

    @property
    def routes(self) -> str:
        """The routes, as quoted in a 404."""
        return ", ".join(f"{r.method} {r.template}" for r in self._routes)

    def handle(self, event: Any, context: Any) -> dict[str, Any]:
        """Answer one event; never raises (except BaseException: the runtime ending us)."""
        correlation_id = _correlation_id(event, context)
        self._logger.set_correlation_id(correlation_id)
        hint = ""
        try:
            request = parse_event(event, context)
            hint = self._unexpected_hint(request)
            response = self._dispatch(request)
        except Exception as error:  # noqa: BLE001 - the one boundary: every error is an answer
            response = self._error_response(self._as_api_error(error, hint), correlation_id)
        return self._proxy_response(response, correlation_id)

    def _dispatch(self, request: Request) -> Response:
        allowed = []
        for route in self._routes:
            parameters = route.match(request.path)
            if parameters is None:
                continue
            allowed.append(route.method)
            if route.method != request.method:
                continue
            if route.caller_required and request.caller is None:
                raise ApiError(403, "forbidden", "This route requires an API key.")
            return route.handler(_with_parameters(request, parameters))
        if request.method == "OPTIONS" and allowed:
            methods = ",".join(sorted({*allowed, "OPTIONS"}))
            return Response(204, {}, {"Access-Control-Allow-Methods": methods})
        self._logger.info("no route", extra={"method": request.method[:10]})
        raise ApiError(404, "not_found", f"No such route. Routes: {self.routes}.")

    def _unexpected_hint(self, request: Request) -> str:
        """The hint of the route this request is for ('' when none matches)."""
        for route in self._routes:
            if route.method == request.method and route.match(request.path) is not None:
                return route.unexpected_hint
        return ""

    def _as_api_error(self, error: Exception, hint: str = "") -> ApiError:
        if isinstance(error, ApiError):
            return error
        for error_type, mapper in self._mappers:
            if isinstance(error, error_type):
                return mapper(error)
        # Unexpected: the operator gets the (redacted) traceback, the client a correlation id.
        self._count("ServerError")
        self._logger.exception("unexpected error", extra={"errorType": type(error).__name__})
        return ApiError(
            500,
            "internal_error",
            "Something went wrong on our side; quote the correlation id to support." + hint,
        )

    def _error_response(self, error: ApiError, correlation_id: str) -> Response:
        """The one error shape: {"error": {code, message, details?}, "correlationId"}."""
        if 400 <= error.status < 500:
            self._count("ClientError")
            codes = [f"{d.field}:{d.code}" for d in error.details] or [error.code]
            self._logger.info("request refused", extra={"status": error.status, "errors": codes})
        body: dict[str, Any] = {"code": error.code, "message": error.message}
        if error.details:
            body["details"] = [detail.to_dict() for detail in error.details]
        answer = {"error": body, "correlationId": correlation_id}
        return Response(error.status, answer, error.headers)

    def _invalid_payment(self, error: PaymentValidationError) -> ApiError:
        if error.contains_card_data:
            self._count("CardDataRejected")
            self._logger.warning("request refused: it looks like it contains a card number")
        if any(d.code == "too_large" and d.field == "body" for d in error.errors):
            return ApiError(
                413, "payload_too_large", "The request body is too large.", error.errors
            )
        return ApiError(400, "validation_failed", "The payment request is invalid.", error.errors)

    def _count(self, name: str) -> None:
        self._metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)

    def _proxy_response(self, response: Response, correlation_id: str) -> dict[str, Any]:
        headers = {
            "Content-Type": JSON,
            CORRELATION_HEADER: correlation_id,
            # Always the one configured origin (not echoed from the request's Origin).
            "Access-Control-Allow-Origin": self._origin,
            "Access-Control-Allow-Headers": ALLOWED_HEADERS,
            "Access-Control-Expose-Headers": CORRELATION_HEADER,
            **response.headers,
        }
        return {
            "statusCode": response.status,
            "headers": headers,
            # Sorted keys: a replayed answer is byte-identical to the first one.
            "body": json.dumps(response.body, sort_keys=True, separators=(",", ":")),
            "isBase64Encoded": False,
        }


def _with_parameters(request: Request, parameters: dict[str, str]) -> Request:
    return dataclasses.replace(request, path_parameters=parameters) if parameters else request
