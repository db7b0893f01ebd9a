"""The AWS_PROXY contract of API Gateway REST APIs: the event it builds, the answer it takes.

Event format 1.0 (REST APIs), as documented in "Set up Lambda proxy integrations" and as
`tests/fixtures/apigw_rest_*.json` record it; an answer that breaks the contract is what
API Gateway turns into a 502.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Caller:
    """Who is calling: address, user agent and, on key-protected methods, the API key."""

    source_ip: str
    user_agent: str | None
    api_key: str | None = None
    api_key_id: str | None = None


@dataclass(frozen=True)
class Route:
    """The matched route: the resource path template and its values."""

    resource_id: str
    resource_path: str
    path_parameters: dict[str, str]


def _single_and_multi(pairs: list[tuple[str, str]]) -> tuple[dict | None, dict | None]:
    """API Gateway's two views of repeated names: the last value, and every value."""
    if not pairs:
        return None, None
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value
        multi.setdefault(name, []).append(value)
    return single, multi


def build_event(
    *,
    method: str,
    path: str,
    stage: str,
    headers: list[tuple[str, str]],
    query: list[tuple[str, str]],
    body: bytes,
    route: Route,
    caller: Caller,
    api_id: str,
    account_id: str,
    region: str,
    request_id: str,
    deployment_id: str,
    stage_variables: dict[str, str] | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The event API Gateway sends a function through an AWS_PROXY integration."""
    moment = time.time() if now is None else now
    single_headers, multi_headers = _single_and_multi(headers)
    single_query, multi_query = _single_and_multi(query)
    domain = f"{api_id}.execute-api.{region}.amazonaws.com"
    try:
        text, encoded = body.decode("utf-8"), False
    except UnicodeDecodeError:
        # No binary media types are declared: API Gateway would mangle such a body;
        # base64 keeps it intact and says so.
        text, encoded = base64.b64encode(body).decode(), True
    return {
        "resource": route.resource_path,
        "path": path,
        "httpMethod": method,
        "headers": single_headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": single_query,
        "multiValueQueryStringParameters": multi_query,
        "pathParameters": route.path_parameters or None,
        "stageVariables": stage_variables or None,
        "requestContext": {
            "resourceId": route.resource_id,
            "resourcePath": route.resource_path,
            "httpMethod": method,
            "extendedRequestId": request_id.replace("-", "")[:16] + "=",
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(moment)),
            "path": f"/{stage}{path}",
            "accountId": account_id,
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": api_id,
            "requestTimeEpoch": int(moment * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "cognitoIdentityId": None,
                "apiKey": caller.api_key,
                "principalOrgId": None,
                "cognitoAuthenticationType": None,
                "userArn": None,
                "apiKeyId": caller.api_key_id,
                "userAgent": caller.user_agent,
                "accountId": None,
                "caller": None,
                "sourceIp": caller.source_ip,
                "accessKey": None,
                "cognitoAuthenticationProvider": None,
                "user": None,
            },
            "domainName": domain,
            "deploymentId": deployment_id,
            "apiId": api_id,
        },
        "body": text if body else None,
        "isBase64Encoded": encoded,
    }


class MalformedProxyResponse(ValueError):
    """The function's answer is not a valid proxy response (API Gateway answers 502)."""


@dataclass(frozen=True)
class ProxyResponse:
    """A function's answer as API Gateway sends it on."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def parse_response(result: Any) -> ProxyResponse:
    """Check a function's answer against the proxy contract and turn it into HTTP."""
    if not isinstance(result, Mapping):
        raise MalformedProxyResponse("the answer is not a JSON object")
    status = result.get("statusCode")
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise MalformedProxyResponse("statusCode is not an HTTP status")
    single = result.get("headers") or {}
    if not isinstance(single, Mapping):
        raise MalformedProxyResponse("headers is not an object")
    multi = result.get("multiValueHeaders") or {}
    if not isinstance(multi, Mapping) or not all(isinstance(v, list) for v in multi.values()):
        raise MalformedProxyResponse("multiValueHeaders values must be lists")
    # Both are merged; a name in both keeps only its multiValueHeaders values, as on AWS.
    in_multi = {str(name).lower() for name in multi}
    headers = [
        (str(name), _header_value(value))
        for name, value in single.items()
        if str(name).lower() not in in_multi
    ]
    for name, values in multi.items():
        headers.extend((str(name), _header_value(v)) for v in values)
    body = result.get("body")
    if body is None:
        data = b""
    elif isinstance(body, str):
        data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    else:
        raise MalformedProxyResponse("body is not a string")
    extra = set(result) - {
        "statusCode",
        "headers",
        "multiValueHeaders",
        "body",
        "isBase64Encoded",
        "cookies",
    }
    if extra:
        raise MalformedProxyResponse("unexpected fields in the answer")
    return ProxyResponse(status=status, headers=headers, body=data)


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int | float):
        return str(value)
    raise MalformedProxyResponse("a header value is not a string")
