"""The deployed event sources, run locally: a queued payment is retried as on AWS."""

from __future__ import annotations

import time
import uuid

from emulator.event_sources import failed_ids, rate_seconds, sqs_event
from tests.local_api.conftest import PLATFORM, SERVED, TERMINAL, call

pytestmark = SERVED

FLAKY = {
    "amount": "30.00",
    "currency": "EUR",
    "paymentToken": "tok_test_flaky",
    "merchantId": "m-123",
}


def test_a_queued_payment_is_retried_from_the_queue_by_the_processing_function(
    served, fast_redelivery
):
    # The retry may run in another execution environment than the first attempt, whose
    # in-memory acquirer has not seen it (docs/handlers.md): then it times out once more
    # and the queue redelivers it.
    endpoint = served.endpoint_of(PLATFORM)
    headers = {"x-api-key": endpoint.api_key_value, "Idempotency-Key": str(uuid.uuid4())}
    first = call("POST", endpoint.invoke_url, FLAKY, headers)
    assert first.status == 202, first.body  # the provider timed out: queued
    location = first.headers["Location"]
    deadline = time.monotonic() + 30
    status = None
    while time.monotonic() < deadline:
        answer = call(
            "GET", served.url(PLATFORM, location), headers={"x-api-key": endpoint.api_key_value}
        )
        status = answer.json().get("status")
        if status in TERMINAL:
            break
        time.sleep(0.3)
    assert status in {"AUTHORIZED", "SUCCEEDED"}
    mapping = served.serve.sources.mappings[0]
    assert mapping.runner.spec.name == "payment-processor-qa"
    assert mapping.batches >= 1


def test_the_health_schedule_runs_the_health_function_with_a_scheduled_event(served):
    (schedule,) = served.serve.sources.schedules
    assert schedule.runner.spec.name == "payment-health-monitor-qa"
    assert schedule.period == 300  # the deployed rule's rate(5 minutes)
    result = schedule.fire()
    assert result["status"] in {"healthy", "degraded", "unhealthy"}
    assert "actions" in result


def test_rate_expressions():
    assert rate_seconds("rate(5 minutes)") == 300
    assert rate_seconds("rate(1 hour)") == 3600
    assert rate_seconds("rate(2 days)") == 172800
    assert rate_seconds("cron(0 12 * * ? *)") is None


def test_partial_batch_responses_as_lambda_reads_them():
    messages = [{"MessageId": i, "ReceiptHandle": f"r{i}", "Body": "{}"} for i in "abc"]
    assert failed_ids({"batchItemFailures": []}, messages) == set()
    assert failed_ids(None, messages) == set()
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "b"}]}, messages) == {"b"}
    # An identifier that is not in the batch, or none at all: the whole batch failed.
    assert failed_ids({"batchItemFailures": [{"itemIdentifier": "z"}]}, messages) == set("abc")
    assert failed_ids({"batchItemFailures": [{}]}, messages) == set("abc")
    assert failed_ids("ok", messages) == set("abc")


def test_the_sqs_event_has_lambdas_shape():
    message = {
        "MessageId": "m1",
        "ReceiptHandle": "r1",
        "Body": "{}",
        "MD5OfBody": "x",
        "Attributes": {"ApproximateReceiveCount": "2", "SentTimestamp": "1"},
    }
    (record,) = sqs_event([message], "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1")["Records"]
    assert record["eventSource"] == "aws:sqs"
    assert record["attributes"]["ApproximateReceiveCount"] == "2"
    assert (record["messageId"], record["receiptHandle"], record["body"]) == ("m1", "r1", "{}")
