"""A local API Gateway: one deployed REST API served over HTTP as API Gateway serves it.

For each request, in API Gateway's order: the stage and route (403
MISSING_AUTHENTICATION_TOKEN otherwise), the API key against the usage plans of the stage
(403 INVALID_API_KEY), the usage plan's and the stage's throttles (429 THROTTLED), the body
size (413), the request validator with the method's model (400 BAD_REQUEST_PARAMETERS /
BAD_REQUEST_BODY), then the integration: MOCK answered from its request template and
integration response, AWS_PROXY through the function's local execution environments.
API Gateway's own answers are rendered from the API's gateway responses (VTL, by airspeed).

Not enforced locally: WAF rules, the usage plan's quota (QUOTA_EXCEEDED), resource
policies, the account-level throttle, authorizers (our API has none), caching (off).
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import airspeed
import jsonschema
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from emulator.apidef import ApiDefinition, Method, PlanKey
from emulator.functions import CALLER_TIMEOUT, Functions
from emulator.proxy import Caller, MalformedProxyResponse, Route, build_event, parse_response
from emulator.throttle import Buckets

# API Gateway's limits for a REST API.
MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
INTEGRATION_TIMEOUT_SECONDS = 29.0
# The default status and message of each gateway response type we produce.
GATEWAY_ERRORS = {
    "MISSING_AUTHENTICATION_TOKEN": (403, "Missing Authentication Token"),
    "INVALID_API_KEY": (403, "Forbidden"),
    "THROTTLED": (429, "Too Many Requests"),
    "REQUEST_TOO_LARGE": (413, "Request Too Long"),
    "BAD_REQUEST_PARAMETERS": (400, "Missing required request parameters"),
    "BAD_REQUEST_BODY": (400, "Invalid request body"),
    "INTEGRATION_FAILURE": (502, "Internal server error"),
    "INTEGRATION_TIMEOUT": (504, "Endpoint request timed out"),
    # A failure of the emulator itself (moto unreachable, a definition it cannot read).
    "API_CONFIGURATION_ERROR": (500, "Internal server error"),
}
BUILT_IN_TEMPLATE = '{"message":$context.error.messageString}'
# How long a known key's usage-plan membership is trusted before it is read again: a key
# disabled, deleted or taken off the plan stops working within this time.
KEY_CACHE_SECONDS = 1.0
# The environ entry holding the request headers as received (RequestHandler.make_environ).
RAW_HEADERS = "emulator.raw_headers"


@dataclass(frozen=True)
class GatewayError(Exception):
    """API Gateway answers itself with a gateway response of `response_type`."""

    response_type: str
    message: str | None = None
    validation_error: str = ""


class KeyRing:
    """The API keys of the stage's usage plans, read again whenever an unknown key arrives
    (a key or plan created after start works at once) and whenever the last read is older
    than KEY_CACHE_SECONDS (a revoked key stops working). Concurrent reads share one; while
    it runs, a known key is served from the last read instead of waiting for it."""

    def __init__(
        self,
        load: Callable[[], dict[str, PlanKey]],
        max_age: float = KEY_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.load = load
        self.max_age = max_age
        self.clock = clock
        self.keys = load()
        self.loaded_at = clock()
        self.generation = 0
        self.lock = threading.Lock()

    def find(self, value: str) -> PlanKey | None:
        key = self.keys.get(value)
        if key is not None and self.clock() - self.loaded_at < self.max_age:
            return key
        seen = self.generation
        # An unknown key waits for the read; a known one only if no read is under way.
        if not self.lock.acquire(blocking=key is None):
            return key
        try:
            if self.generation == seen:
                self.keys = self.load()
                self.loaded_at = self.clock()
                self.generation += 1
        finally:
            self.lock.release()
        return self.keys.get(value)


def _route_pattern(path: str) -> re.Pattern[str]:
    parts = []
    for segment in path.strip("/").split("/"):
        if segment.startswith("{") and segment.endswith("+}"):
            parts.append(f"(?P<{segment[1:-2]}>.+)")
        elif segment.startswith("{") and segment.endswith("}"):
            parts.append(f"(?P<{segment[1:-1]}>[^/]+)")
        else:
            parts.append(re.escape(segment))
    return re.compile("/" + "/".join(parts) if parts != [""] else "/")


class LocalApi:
    """The WSGI application of one REST API (all its stages)."""

    def __init__(
        self,
        definition: ApiDefinition,
        plan_keys: Callable[[str], dict[str, PlanKey]],
        functions: Functions,
        *,
        account_id: str,
        region: str,
        log: Callable[[str], None] = print,
    ) -> None:
        self.definition = definition
        self.functions = functions
        self.account_id = account_id
        self.region = region
        self.log = log
        self.buckets = Buckets()
        # stage -> the keys of its usage plans (apidef.read_plan_keys on the emulator).
        self.keyrings = {
            stage: KeyRing(lambda s=stage: plan_keys(s)) for stage in definition.stages
        }
        # Literal paths before templated ones, deeper before shallower.
        self.routes = sorted(
            ((path, _route_pattern(path)) for path in definition.resource_paths),
            key=lambda item: (item[0].count("{"), -item[0].count("/")),
        )

    # --- WSGI -------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Any:
        request = Request(environ)
        request_id = str(uuid.uuid4())
        started = time.monotonic()
        method, route_label, key_id = request.method, "-", "-"
        try:
            stage, path = self._stage_and_path(request.path)
            found, params = self._match(path, method)
            route_label = found.resource_path
            key = self._check_key(request, found, stage)
            key_id = key.key_id if key else "-"
            self._throttle(found, stage, key)
            body = request.get_data(cache=True)
            if len(body) > MAX_PAYLOAD_BYTES:
                raise GatewayError("REQUEST_TOO_LARGE")
            self._validate(request, found, body)
            if found.integration.type == "MOCK":
                response = self._mock(request, found)
            else:
                caller = Caller(
                    source_ip=request.remote_addr or "127.0.0.1",
                    user_agent=request.headers.get("User-Agent"),
                    api_key=key.value if key else None,
                    api_key_id=key.key_id if key else None,
                )
                route = Route(found.resource_id, found.resource_path, params)
                response = self._proxy(request, path, stage, found, route, caller, body, request_id)
        except GatewayError as error:
            response = self._gateway_response(error, request_id)
        except Exception as error:  # noqa: BLE001 - the gateway answers, as API Gateway does
            self.log(f"{self.definition.name}: gateway error {type(error).__name__}: {error}")
            response = self._gateway_response(GatewayError("API_CONFIGURATION_ERROR"), request_id)
        response.headers["x-amzn-RequestId"] = request_id
        # One access line per request: the route template and the key id, never the raw
        # path (a card number pasted into a URL) or the key's value.
        elapsed = (time.monotonic() - started) * 1000
        self.log(
            f"{self.definition.name} {method} {route_label} {response.status_code} "
            f"{elapsed:.0f}ms key={key_id} requestId={request_id}"
        )
        return response(environ, start_response)

    # --- the steps ----------------------------------------------------------------------

    def _stage_and_path(self, raw: str) -> tuple[str, str]:
        stage, _, rest = raw.lstrip("/").partition("/")
        if stage not in self.definition.stages:
            raise GatewayError("MISSING_AUTHENTICATION_TOKEN")
        return stage, "/" + rest

    def _match(self, path: str, verb: str) -> tuple[Method, dict[str, str]]:
        for resource_path, pattern in self.routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            methods = self.definition.methods
            method = methods.get((resource_path, verb)) or methods.get((resource_path, "ANY"))
            if method is None:
                break
            return method, match.groupdict()
        raise GatewayError("MISSING_AUTHENTICATION_TOKEN")

    def _check_key(self, request: Request, method: Method, stage: str) -> PlanKey | None:
        value = request.headers.get("x-api-key")
        if not method.api_key_required:
            return None
        key = self.keyrings[stage].find(value) if value else None
        if key is None or not key.enabled:
            raise GatewayError("INVALID_API_KEY")
        return key

    def _throttle(self, method: Method, stage: str, key: PlanKey | None) -> None:
        if key is not None and key.throttle is not None:
            if not self.buckets.take(
                ("key", key.plan_id, key.key_id), key.throttle.rate, key.throttle.burst
            ):
                raise GatewayError("THROTTLED")
        limits = self.definition.stages[stage].throttle
        if limits is not None:
            where = ("stage", stage, method.resource_path, method.http_method)
            if not self.buckets.take(where, limits.rate, limits.burst):
                raise GatewayError("THROTTLED")

    def _validate(self, request: Request, method: Method, body: bytes) -> None:
        if method.validate_parameters:
            missing = [
                name.split(".", 3)[3]
                for name, required in sorted(method.request_parameters.items())
                if required and not self._has_parameter(request, name)
            ]
            if missing:
                raise GatewayError(
                    "BAD_REQUEST_PARAMETERS",
                    f"Missing required request parameters: [{', '.join(missing)}]",
                )
        if method.validate_body:
            content_type = (request.mimetype or "application/json").lower()
            # No model for the content type: not validated, unless one is set for "$default".
            models = method.request_models
            model = models.get(content_type) or models.get("$default")
            schema = self.definition.models.get(model) if model else None
            if schema is None:
                return
            try:
                document = json.loads(body or b"null")
                jsonschema.Draft4Validator(schema).validate(document)
            except (ValueError, jsonschema.ValidationError) as error:
                # validationErrorString only; the gateway response never quotes the body.
                why = error.message if isinstance(error, jsonschema.ValidationError) else "JSON"
                raise GatewayError("BAD_REQUEST_BODY", validation_error=why) from None

    @staticmethod
    def _has_parameter(request: Request, name: str) -> bool:
        _, _, where, parameter = name.split(".", 3)
        if where == "header":
            return bool(request.headers.get(parameter))
        if where == "querystring":
            return parameter in request.args
        return True  # path parameters: the route matched, so they are there

    def _mock(self, request: Request, method: Method) -> Response:
        templates = method.integration.request_templates
        template = templates.get("application/json") or next(iter(templates.values()), "")
        rendered = (
            airspeed.Template(template).merge({"input": {}, "context": {}}) if template else ""
        )
        try:
            status = str(json.loads(rendered or "{}").get("statusCode", 200))
        except ValueError:
            raise GatewayError("INTEGRATION_FAILURE") from None
        responses = method.integration.responses
        chosen = responses.get(status) or next(
            (r for r in responses.values() if not r.get("selectionPattern")), None
        )
        if chosen is None:
            raise GatewayError("INTEGRATION_FAILURE")
        response = Response(
            status=int(chosen.get("statusCode", status)), content_type="application/json"
        )
        for name, value in (chosen.get("responseParameters") or {}).items():
            response.headers[name.removeprefix("method.response.header.")] = value.strip("'")
        return response

    def _proxy(
        self,
        request: Request,
        path: str,
        stage: str,
        method: Method,
        route: Route,
        caller: Caller,
        body: bytes,
        request_id: str,
    ) -> Response:
        runner = self.functions.runner(method.integration.function_arn or "")
        if runner is None:
            raise GatewayError("INTEGRATION_FAILURE")
        raw_headers = request.environ.get(RAW_HEADERS)
        event = build_event(
            method=request.method,
            path=path,
            stage=stage,
            headers=list(raw_headers if raw_headers is not None else request.headers.items()),
            query=list(request.args.items(multi=True)),
            body=body,
            route=route,
            caller=caller,
            api_id=self.definition.api_id,
            account_id=self.account_id,
            region=self.region,
            request_id=request_id,
            deployment_id=self.definition.stages[stage].deployment_id,
            stage_variables=self.definition.stages[stage].variables,
        )
        outcome = runner.invoke(event, request_id, limit=INTEGRATION_TIMEOUT_SECONDS)
        if not outcome.ok:
            if (outcome.error or {}).get("errorType") == CALLER_TIMEOUT:
                raise GatewayError("INTEGRATION_TIMEOUT")
            raise GatewayError("INTEGRATION_FAILURE")
        try:
            answer = parse_response(outcome.result)
        except MalformedProxyResponse:
            raise GatewayError("INTEGRATION_FAILURE") from None
        response = Response(answer.body, status=answer.status)
        response.headers.clear()
        for name, value in answer.headers:
            response.headers.add(name, value)
        response.headers.setdefault("Content-Type", "application/json")
        return response

    def _gateway_response(self, error: GatewayError, request_id: str) -> Response:
        """API Gateway's own answer: the API's gateway response for the type, else its
        DEFAULT_4XX/5XX, else the built-in `{"message": ...}`."""
        status, message = GATEWAY_ERRORS[error.response_type]
        message = error.message or message
        responses = self.definition.gateway_responses
        specific = responses.get(error.response_type)
        fallback = responses.get("DEFAULT_4XX" if status < 500 else "DEFAULT_5XX")
        chosen = specific or fallback or {}
        if specific and specific.get("statusCode"):
            status = int(specific["statusCode"])
        template = (chosen.get("responseTemplates") or {}).get("application/json")
        context = {
            "requestId": request_id,
            "error": {
                "responseType": error.response_type,
                "message": message,
                "messageString": json.dumps(message),
                "validationErrorString": error.validation_error,
            },
        }
        body = airspeed.Template(template or BUILT_IN_TEMPLATE).merge({"context": context})
        response = Response(body, status=status, content_type="application/json")
        for name, value in (chosen.get("responseParameters") or {}).items():
            response.headers[name.removeprefix("gatewayresponse.header.")] = value.strip("'")
        response.headers["x-amzn-ErrorType"] = error.response_type
        return response


class RequestHandler(WSGIRequestHandler):
    """werkzeug's request handler with API Gateway's view of the headers, and without its
    request log line, which quotes the raw path (a card number pasted into a URL): the
    gateway writes its own access line."""

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        # As received: one entry per occurrence, in the client's case, names with "_" too
        # (werkzeug's environ joins repeats with commas, title-cases names, drops "_" ones).
        environ[RAW_HEADERS] = list(self.headers.items())
        return environ

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """No line of werkzeug's own per request."""

    def log_error(self, format: str, *args: Any) -> None:
        # http.server's errors quote the raw request line.
        self.log("error", "refused a request the server could not parse")


class ServedApi:
    """A LocalApi on its own loopback port, in a thread of this process."""

    def __init__(self, app: LocalApi, host: str, port: int) -> None:
        self.app = app
        self.server = make_server(host, port, app, threaded=True, request_handler=RequestHandler)
        self.host, self.port = self.server.server_address[:2]
        self.thread = threading.Thread(
            target=self.server.serve_forever, daemon=True, name=f"gateway-{app.definition.api_id}"
        )

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, stage: str, path: str = "") -> str:
        """The local URL of `path` on `stage`."""
        return f"{self.base_url}/{stage}{path}"

    def start(self) -> ServedApi:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
