"""The gateway's proxy contract with small functions of our own (zips built here)."""

from __future__ import annotations

import http.client
import io
import json
import logging
import socket
import threading
import uuid
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
from werkzeug.test import Client

from emulator.apidef import ApiDefinition, Integration, Method, PlanKey, Stage, Throttle
from emulator.event_sources import failed_ids
from emulator.functions import Functions, FunctionSpec
from emulator.gateway import KeyRing, LocalApi, ServedApi
from emulator.proxy import MalformedProxyResponse, parse_response

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "apigw_rest_post_process_payment.json"
CODE = """
import json, os, time
SEEN_AT_IMPORT = os.environ.get("ONLY_MINE")
def echo(event, context):
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"event": event, "env": SEEN_AT_IMPORT,
                                "requestId": context.aws_request_id,
                                "remaining": context.get_remaining_time_in_millis()})}
def crash(event, context):
    raise RuntimeError("boom")
def malformed(event, context):
    return {"statusCode": "two hundred"}
def slow(event, context):
    time.sleep(5)
def late(event, context):
    time.sleep(event["sleep"])
    return {"id": event["id"]}
def imports(event, context):
    import importlib
    found = {}
    for name in ("boto3", "moto", "werkzeug", "proxy", "gateway", "lambda_only.app"):
        try:
            importlib.import_module(name)
            found[name] = True
        except ImportError:
            found[name] = False
    return {"statusCode": 200, "body": json.dumps(found)}
def both_header_kinds(event, context):
    return {"statusCode": 200, "headers": {"X-Kept": "one", "X-Both": "single"},
            "multiValueHeaders": {"X-Both": ["m1", "m2"]}, "body": ""}
"""
KEY = PlanKey("key-id-1", "key-value-1", True, "plan-1", Throttle(100.0, 200))


def function(name: str, handler: str, timeout: float = 3) -> FunctionSpec:
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w") as archive:
        archive.writestr("lambda_only/app.py", CODE)
        archive.writestr("lambda_only/__init__.py", "")
    return FunctionSpec(
        name=name,
        arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
        handler=f"lambda_only.app.{handler}",
        runtime="python3.12",
        timeout=timeout,
        memory=128,
        environment={"ONLY_MINE": name},
        code=data.getvalue(),
        log_group=f"/aws/lambda/{name}",
    )


def method(path: str, function_name: str, verb: str = "POST") -> Method:
    return Method(
        http_method=verb,
        resource_id=f"res-{function_name}",
        resource_path=path,
        api_key_required=True,
        request_parameters={},
        request_models={},
        validate_body=False,
        validate_parameters=False,
        integration=Integration(
            type="AWS_PROXY",
            function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}",
        ),
    )


@pytest.fixture(scope="module")
def gateway():
    """Small functions of our own behind a LocalApi, also served on a loopback port."""
    specs = [
        function("echo-fn", "echo"),
        function("crash-fn", "crash"),
        function("malformed-fn", "malformed"),
        function("slow-fn", "slow", timeout=1),
        function("imports-fn", "imports", timeout=30),  # imports boto3 in the call
        function("headers-fn", "both_header_kinds"),
    ]
    functions = Functions(specs, endpoint="http://127.0.0.1:9", region="us-east-1")
    definition = ApiDefinition(
        api_id="abc123",
        name="units",
        methods={
            ("/items/{itemId}", "POST"): method("/items/{itemId}", "echo-fn"),
            ("/crash", "POST"): method("/crash", "crash-fn"),
            ("/malformed", "POST"): method("/malformed", "malformed-fn"),
            ("/slow", "POST"): method("/slow", "slow-fn"),
            ("/imports", "POST"): method("/imports", "imports-fn"),
            ("/headers", "POST"): method("/headers", "headers-fn"),
            ("/validated", "POST"): replace(
                method("/validated", "echo-fn"),
                request_models={"$default": "Thing"},
                validate_body=True,
            ),
        },
        models={"Thing": {"type": "object", "required": ["name"]}},
        gateway_responses={},
        stages={"prod": Stage("prod", "dep-1", None, {"flavour": "local"})},
    )
    app = LocalApi(
        definition,
        lambda stage: {KEY.value: KEY},
        functions,
        account_id="123456789012",
        region="us-east-1",
        log=lambda _: None,
    )
    served = ServedApi(app, "127.0.0.1", 0).start()
    try:
        yield Client(app), served
    finally:
        served.stop()
        functions.close()


@pytest.fixture(scope="module")
def client(gateway):
    """The gateway's WSGI application, called without a socket."""
    return gateway[0]


def over_http(served, path, headers, body=b""):
    """One request on a socket as a client sends it (repeated headers and their case kept)."""
    connection = http.client.HTTPConnection(served.host, served.port, timeout=30)
    try:
        connection.putrequest("POST", f"/prod{path}")
        for name, value in [("x-api-key", KEY.value), *headers]:
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        connection.close()


def post(client, path, **kwargs):
    headers = {"x-api-key": KEY.value, **kwargs.pop("headers", {})}
    return client.post(f"/prod{path}", headers=headers, **kwargs)


def test_the_event_has_api_gateways_shape_and_the_callers_key_id(client):
    answer = post(
        client,
        "/items/42?a=1&a=2&b=3",
        data=b'{"x": 1}',
        headers={"Content-Type": "application/json", "X-Twice": "one"},
    )
    assert answer.status_code == 200
    seen = answer.get_json()
    event = seen["event"]
    recorded = json.loads(FIXTURE.read_text())
    assert set(event) == set(recorded)
    assert set(event["requestContext"]) == set(recorded["requestContext"])
    assert set(event["requestContext"]["identity"]) == set(recorded["requestContext"]["identity"])
    assert event["requestContext"]["identity"]["apiKeyId"] == KEY.key_id
    assert event["requestContext"]["identity"]["apiKey"] == KEY.value
    assert event["resource"] == "/items/{itemId}"
    assert event["path"] == "/items/42"
    assert event["pathParameters"] == {"itemId": "42"}
    assert event["queryStringParameters"] == {"a": "2", "b": "3"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": ["3"]}
    assert event["body"] == '{"x": 1}' and event["isBase64Encoded"] is False
    assert event["requestContext"]["stage"] == "prod"
    assert event["requestContext"]["path"] == "/prod/items/42"
    assert seen["requestId"] == event["requestContext"]["requestId"]
    assert answer.headers["x-amzn-RequestId"] == seen["requestId"]
    assert 0 < seen["remaining"] <= 3000


def test_each_function_has_its_own_environment_read_at_import_from_its_zip(client):
    # The module is in the zip only (lambda_only/ is nowhere in this repository).
    assert post(client, "/items/1").get_json()["env"] == "echo-fn"


@pytest.mark.parametrize("path", ["/crash", "/malformed"])
def test_a_failing_or_malformed_function_gives_502_with_the_gateway_body(client, path):
    answer = post(client, path)
    assert answer.status_code == 502
    assert answer.get_json() == {"message": "Internal server error"}
    assert answer.headers["x-amzn-ErrorType"] == "INTEGRATION_FAILURE"


def test_a_function_over_its_timeout_gives_502_and_the_next_request_too(client):
    assert post(client, "/slow").status_code == 502
    # The timed-out environment was ended; the next request gets a fresh one, and times out.
    assert post(client, "/slow").status_code == 502


def test_no_key_no_call(client):
    answer = client.post("/prod/items/1")
    assert answer.status_code == 403
    assert answer.get_json() == {"message": "Forbidden"}


def test_a_failure_of_the_emulator_itself_is_a_500_with_the_gateway_body():
    def unreadable(stage):
        raise ConnectionError("the emulator is gone")

    definition = ApiDefinition(
        api_id="abc123",
        name="broken",
        methods={("/x", "POST"): method("/x", "none")},
        models={},
        gateway_responses={},
        stages={"prod": Stage("prod", "dep-1", None)},
    )
    functions = Functions([], endpoint="http://127.0.0.1:9", region="us-east-1")
    try:
        with pytest.raises(ConnectionError):
            LocalApi(definition, unreadable, functions, account_id="1", region="us-east-1")
        calls = iter([{}])

        def once_then_fail(stage):
            try:
                return next(calls)
            except StopIteration:
                raise ConnectionError("the emulator is gone") from None

        app = LocalApi(
            definition,
            once_then_fail,
            functions,
            account_id="1",
            region="us-east-1",
            log=lambda _: None,
        )
        answer = Client(app).post("/prod/x", headers={"x-api-key": "unknown"})
        assert answer.status_code == 500
        assert answer.get_json() == {"message": "Internal server error"}
    finally:
        functions.close()


def test_a_partial_batch_response_with_an_invalid_item_fails_the_whole_batch():
    """Lambda's rule (fails before review-12: a non-object item was skipped, so every
    message was deleted as processed; a non-list raised)."""
    messages = [{"MessageId": i} for i in "abc"]
    assert failed_ids({"batchItemFailures": ["a"]}, messages) == set("abc")
    assert failed_ids({"batchItemFailures": 7}, messages) == set("abc")
    assert failed_ids({"batchItemFailures": {"itemIdentifier": "a"}}, messages) == set("abc")


def test_a_timed_out_environment_is_never_reused():
    """After a timeout the next invocation gets a fresh environment and its own answer
    (fails before review-12: the killed, unreaped worker was put back as idle, so the next
    request got Runtime.ExitError or the late answer of the timed-out one)."""
    functions = Functions(
        [function("late-fn", "late", timeout=0.2)],
        endpoint="http://127.0.0.1:9",
        region="us-east-1",
        max_workers=1,
    )
    runner = functions.runner("late-fn")
    try:
        for sleep in (0.19, 0.2, 0.205, 0.21, 0.22):
            runner.invoke({"id": "slow", "sleep": sleep})
            mine = str(uuid.uuid4())
            outcome = runner.invoke({"id": mine, "sleep": 0})
            assert outcome.ok, outcome.error
            assert outcome.result == {"id": mine}
    finally:
        functions.close()


def test_a_revoked_key_is_refused_once_the_cache_time_has_passed():
    """A key disabled or taken off the plan stops working (fails before review-12: a key
    once seen was trusted until the gateway restarted)."""
    now = [0.0]
    plan = {KEY.value: KEY}
    ring = KeyRing(lambda: dict(plan), max_age=1.0, clock=lambda: now[0])
    assert ring.find(KEY.value) == KEY
    plan.clear()
    now[0] = 0.5
    assert ring.find(KEY.value) == KEY  # within the cache time
    now[0] = 1.5
    assert ring.find(KEY.value) is None
    plan["new"] = PlanKey("k2", "new", True, "plan-1", None)
    assert ring.find("new") is not None  # an unknown key is read at once


def test_a_function_sees_its_zip_and_the_runtimes_modules_only(client):
    """boto3 as the Lambda runtime gives it; nothing else of this machine's site-packages
    and none of the emulator's modules (fails before review-12: moto, werkzeug and the
    emulator's proxy.py were importable, so a dependency missing from a zip went unseen)."""
    found = post(client, "/imports").get_json()
    assert found == {
        "boto3": True,
        "lambda_only.app": True,
        "moto": False,
        "werkzeug": False,
        "proxy": False,
        "gateway": False,
    }


def test_the_stages_variables_are_in_the_event(client):
    event = post(client, "/items/1").get_json()["event"]
    assert event["stageVariables"] == {"flavour": "local"}


def test_an_answers_header_in_both_maps_keeps_its_multi_value_values(gateway):
    """As API Gateway merges them (test fails before review-12: the single value won)."""
    _, served = gateway
    status, headers, _ = over_http(served, "/headers", [])
    assert status == 200
    assert [v for k, v in headers if k == "X-Both"] == ["m1", "m2"]
    assert [v for k, v in headers if k == "X-Kept"] == ["one"]
    answer = parse_response(
        {"statusCode": 200, "headers": {"a": "1"}, "multiValueHeaders": {"A": ["2", "3"]}}
    )
    assert answer.headers == [("A", "2"), ("A", "3")]


def test_repeated_request_headers_reach_the_function_as_api_gateway_sends_them(gateway):
    """Each occurrence in multiValueHeaders, the last one in headers, names in the client's
    case (test fails before review-12: werkzeug's environ gave ["one,two"] and title case)."""
    _, served = gateway
    status, _, body = over_http(
        served, "/items/7", [("X-Twice", "one"), ("X-Twice", "two"), ("idempotency-key", "k1")]
    )
    assert status == 200
    event = json.loads(body)["event"]
    assert event["multiValueHeaders"]["X-Twice"] == ["one", "two"]
    assert event["headers"]["X-Twice"] == "two"
    assert event["headers"]["idempotency-key"] == "k1"
    assert event["headers"]["x-api-key"] == KEY.value


def test_no_server_log_line_quotes_the_raw_path(gateway, caplog):
    """The gateway's access line names the route template; werkzeug's own request line
    quoted the path, a card number pasted into a URL included (fails before review-12)."""
    _, served = gateway
    pasted = "4111111111111111"
    with caplog.at_level(logging.DEBUG):
        over_http(served, f"/items/{pasted}?card={pasted}", [])
        # A request line http.server cannot parse: its error line quoted it.
        with socket.create_connection((served.host, served.port), timeout=30) as raw:
            raw.sendall(f"GET /prod/{pasted} HTTP/1.1 extra\r\n\r\n".encode())
            raw.recv(4096)
    assert caplog.records, "the server logged nothing: the test would prove nothing"
    assert pasted not in caplog.text


def test_a_known_key_does_not_wait_for_a_rereading_of_the_plans():
    """While one request re-reads the usage plans, the others with a known key are served
    from the last read (failed before: every request queued behind the read, ~9 s of the
    concurrency test's threads spent waiting on it)."""
    now = [0.0]
    reading, release = threading.Event(), threading.Event()

    def load():
        if reading.is_set() or now[0] == 0.0:
            return {KEY.value: KEY}
        reading.set()
        release.wait(10)
        return {KEY.value: KEY}

    ring = KeyRing(load, max_age=1.0, clock=lambda: now[0])
    now[0] = 2.0
    reader = threading.Thread(target=ring.find, args=(KEY.value,))
    reader.start()
    try:
        assert reading.wait(10)
        found = []
        other = threading.Thread(target=lambda: found.append(ring.find(KEY.value)))
        other.start()
        other.join(timeout=2)
        assert found == [KEY], "a request with a known key waited for the read"
    finally:
        release.set()
        reader.join()


def test_one_zip_is_extracted_once(client):
    """The functions of one package share one extraction (failed before: each function had
    its copy of the same zip, extracted, compiled by its first environment and deleted, one
    by one: ~1 s per function of setup and teardown)."""
    roots = {runner.task_root for runner in client.application.functions.runners.values()}
    assert len(roots) == 1


def test_a_default_model_validates_a_body_of_any_content_type(client):
    """API Gateway's "$default" content type (failed before: only a model for the request's
    own content type was applied, so such a method validated nothing)."""
    for content_type in ("application/json", "text/plain"):
        refused = post(client, "/validated", data=b"{}", content_type=content_type)
        assert refused.status_code == 400, content_type
        assert refused.headers["x-amzn-ErrorType"] == "BAD_REQUEST_BODY"
        accepted = post(client, "/validated", data=b'{"name": "x"}', content_type=content_type)
        assert accepted.status_code == 200, content_type


@pytest.mark.parametrize("headers", [["X-A", "1"], "X-A: 1", 7])
def test_headers_that_are_not_an_object_are_a_malformed_answer(headers):
    """API Gateway's 502 (failed before: an AttributeError, which the gateway answered 500
    as a failure of its own)."""
    with pytest.raises(MalformedProxyResponse):
        parse_response({"statusCode": 200, "headers": headers, "body": ""})
