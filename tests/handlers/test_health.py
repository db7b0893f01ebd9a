"""GET /health: 200 or 503 with each component's state and nothing an attacker could use."""

from __future__ import annotations

import re

import pytest

from tests.handlers.conftest import (
    FakeLambdaContext,
    api_event,
    body_of,
    failing,
    response_headers,
)

STATES = {"ok", "degraded", "unavailable"}
COMPONENTS = {"database", "retryQueue", "deadLetterQueue", "alarms", "processing"}


def public_body(response):
    """The body, checked to hold states only: no names, ARNs, counts or errors."""
    headers = response_headers(response)
    assert headers["access-control-allow-origin"] == "https://app.example.com"
    assert headers["content-type"] == "application/json"
    body = body_of(response)
    assert set(body) == {"status", "components", "checkedAt"}
    assert set(body["components"]) == COMPONENTS
    assert set(body["components"].values()) <= STATES
    text = response["body"].replace(body["checkedAt"], "")
    assert not re.search(r"[0-9]|arn:|test|transactions|queue-|amazonaws", text), text
    return body


def send(aws, logical, count):
    for i in range(count):
        aws.client("sqs").send_message(QueueUrl=aws.queue_url(logical), MessageBody=f'{{"n":{i}}}')


@pytest.mark.requirement("S001-API-HEALTH")
def test_all_ok_is_200_healthy(health):
    response = health.get()
    assert response["statusCode"] == 200
    body = public_body(response)
    assert body["status"] == "healthy"
    assert set(body["components"].values()) == {"ok"}


def test_messages_in_the_dlq_are_degraded_not_down(health):
    send(health.aws, "FailedTransactionsQueueDlq", 3)
    response = health.get()
    body = public_body(response)
    assert response["statusCode"] == 200 and body["status"] == "degraded"
    assert body["components"]["deadLetterQueue"] == "degraded"


def test_a_firing_alarm_is_degraded(health):
    health.aws.client("cloudwatch").set_alarm_state(
        AlarmName="platform-processor-errors-test", StateValue="ALARM", StateReason="test"
    )
    body = public_body(health.get())
    assert body["status"] == "degraded" and body["components"]["alarms"] == "degraded"


def test_high_processing_error_rate_is_degraded(health):
    cloudwatch = health.aws.client("cloudwatch")
    dimensions = [{"Name": "FunctionName", "Value": health.module.CONFIG.processing_function_name}]
    cloudwatch.put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {"MetricName": "Invocations", "Dimensions": dimensions, "Value": 20},
            {"MetricName": "Errors", "Dimensions": dimensions, "Value": 5},
        ],
    )
    body = public_body(health.get())
    assert body["components"]["processing"] == "degraded"


@pytest.mark.requirement("S001-API-HEALTH", "S001-ERROR-HANDLING")
def test_unreachable_table_is_503_without_internals(health, captured_logs):
    health.aws.client("dynamodb").delete_table(TableName=health.aws.table)
    response = health.get()
    assert response["statusCode"] == 503
    body = public_body(response)
    assert body["status"] == "unhealthy" and body["components"]["database"] == "unavailable"
    assert "ResourceNotFoundException" in captured_logs.getvalue()  # the operator sees why


def test_throttled_checks_make_components_unavailable_not_errors(health):
    with failing(health.aws.client("cloudwatch"), "DescribeAlarms", code="Throttling"):
        response = health.get()
    assert response["statusCode"] == 503
    assert public_body(response)["components"]["alarms"] == "unavailable"


def test_answer_is_cached_briefly_so_a_flood_is_not_a_flood_of_aws_calls(health):
    calls = []
    client = health.aws.client("dynamodb")
    client.meta.events.register(
        "before-call.dynamodb.DescribeTable", lambda **kw: calls.append(1), unique_id="count"
    )
    try:
        for _ in range(20):
            assert health.get()["statusCode"] == 200
    finally:
        client.meta.events.unregister("before-call.dynamodb.DescribeTable", unique_id="count")
    assert len(calls) == 1


def test_health_answers_requests_without_headers(health):
    assert health.get(headers=None)["statusCode"] == 200
    event_without = health.get(headers={})
    assert event_without["statusCode"] == 200


def test_unknown_route_on_the_health_function_is_404(health):
    event = api_event("apigw_rest_get_health", path="/admin", method="POST")
    response = health.module.handler(event, FakeLambdaContext())
    assert response["statusCode"] == 404
    assert body_of(response)["error"]["message"] == "No such route. Routes: GET /health."
