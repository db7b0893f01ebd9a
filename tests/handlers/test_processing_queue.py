"""Transient failures: 202 with a durable row and a retry message, the queue consumer, bounded
attempts ending in NEEDS_REVIEW, and no message acknowledged unless it was processed."""

from __future__ import annotations

import dataclasses
import json

from tests.handlers.conftest import (
    aws_error,
    body_of,
    deliver,
    drain,
    failing,
    item_id,
    load_event,
    payment_body,
    response_headers,
    sqs_record,
)


def queued_messages(processing, logical="FailedTransactionsQueue"):
    """Bodies of the messages waiting in a queue (left in place)."""
    sqs = processing.aws.client("sqs")
    url = processing.aws.queue_url(logical)
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def stored(processing, transaction_id):
    return body_of(processing.get(transaction_id))


def test_provider_timeout_answers_202_and_the_consumer_completes_it(processing):
    response = processing.pay(payment_body(paymentToken="tok_test_flaky"))
    assert response["statusCode"] == 202
    body = body_of(response)
    transaction_id = body["transactionId"]
    assert body["status"] == "QUEUED"
    assert response_headers(response)["location"] == f"/payments/{transaction_id}"
    assert stored(processing, transaction_id) == body  # the durable row the 202 stands on
    (message,) = queued_messages(processing)
    # Only the transaction id: the row holds the payment, so no message can disagree with it.
    assert message == {"version": 2, "transactionId": transaction_id}

    assert deliver(processing) == (1, 0)
    assert stored(processing, transaction_id)["status"] == "SUCCEEDED"
    assert processing.aws.queue_depth("FailedTransactionsQueue") == 0
    assert list(processing.ledger.charges()) == [transaction_id]


def test_throttled_completion_after_the_charge_never_charges_twice(processing):
    dynamodb = processing.runtime.store._client
    with failing(dynamodb, "UpdateItem", lambda p: item_id(p).startswith("txn_")):
        response = processing.pay(payment_body())
    assert response["statusCode"] == 202  # charged, outcome not recorded: waits for a retry
    transaction_id = body_of(response)["transactionId"]
    assert list(processing.ledger.charges()) == [transaction_id]
    assert stored(processing, transaction_id)["status"] == "RECEIVED"  # marking it failed too
    drain(processing)
    assert stored(processing, transaction_id)["status"] == "SUCCEEDED"
    assert list(processing.ledger.charges()) == [transaction_id]
    assert processing.ledger.attempts(transaction_id) == 2  # asked twice, charged once


def test_queue_send_failure_still_answers_202_the_sweeper_has_the_row(processing):
    """The row exists, so the payment is accepted; the message is what failed, and the
    sweeper re-queues any pending row nobody touched (test_stuck_payments.py)."""
    sqs = processing.runtime.queue._client
    with failing(sqs, "SendMessage", code="RequestThrottled"):
        response = processing.pay(payment_body(paymentToken="tok_test_flaky"))
    assert response["statusCode"] == 202
    transaction_id = body_of(response)["transactionId"]
    assert processing.aws.queue_depth("FailedTransactionsQueue") == 0
    assert stored(processing, transaction_id)["status"] == "QUEUED"


def test_non_transient_queue_error_is_a_500_with_only_a_correlation_id(processing):
    sqs = processing.runtime.queue._client
    with failing(sqs, "SendMessage", code="AccessDenied"):
        response = processing.pay(payment_body(paymentToken="tok_test_flaky"))
    assert response["statusCode"] == 500
    body = body_of(response)
    assert set(body) == {"error", "correlationId"}
    assert "AccessDenied" not in response["body"] and "Traceback" not in response["body"]


def test_a_limit_changed_after_the_202_does_not_strand_the_queued_payment(processing, monkeypatch):
    """Accepted under the limits of its day: a retry charges the stored row, never rechecked
    against a later, stricter MaxPaymentAmount or AllowedCurrencies."""
    import dataclasses
    from decimal import Decimal

    body = payment_body(paymentToken="tok_test_flaky", currency="EUR", amount="500.00")
    transaction_id = body_of(processing.pay(body))["transactionId"]
    module = processing.module
    stricter = dataclasses.replace(
        module.CONFIG.api.rules, allowed_currencies=frozenset({"USD"}), max_amount=Decimal("1")
    )
    api = dataclasses.replace(module.CONFIG.api, rules=stricter)
    monkeypatch.setattr(module, "CONFIG", dataclasses.replace(module.CONFIG, api=api))
    drain(processing)
    assert stored(processing, transaction_id)["status"] == "SUCCEEDED"


def test_consumer_reports_only_the_failed_messages(processing):
    flaky = [body_of(processing.pay(payment_body(paymentToken="tok_test_flaky"))) for _ in range(3)]
    processing.pay(payment_body(paymentToken="tok_test_timeout"))
    assert processing.aws.queue_depth("FailedTransactionsQueue") == 4
    assert deliver(processing) == (4, 1)
    assert {stored(processing, b["transactionId"])["status"] for b in flaky} == {"SUCCEEDED"}


def test_a_payment_that_keeps_failing_ends_in_review_not_in_a_loop(processing):
    """tok_test_timeout never succeeds: the API's attempt and the message's receives use up
    MAX_PAYMENT_ATTEMPTS between them; the message then reaches the DLQ and the sweeper's next
    re-queue (or a redrive) finds no attempt left: NEEDS_REVIEW, no more provider calls."""
    limit = processing.module.CONFIG.max_payment_attempts
    transaction_id = body_of(processing.pay(payment_body(paymentToken="tok_test_timeout")))[
        "transactionId"
    ]
    drain(processing, rounds=20)  # 5 receives, then SQS moves it to the DLQ
    assert processing.ledger.attempts(transaction_id) == 6
    assert stored(processing, transaction_id)["status"] == "QUEUED"
    (dlq_message,) = queued_messages(processing, "FailedTransactionsQueueDlq")
    for _ in range(3):  # redriven twice over (the health monitor's move task does this)
        processing.aws.client("sqs").send_message(
            QueueUrl=processing.aws.queue_url("FailedTransactionsQueue"),
            MessageBody=json.dumps(dlq_message),
        )
        drain(processing, rounds=20)
    final = stored(processing, transaction_id)
    assert final["status"] == "NEEDS_REVIEW" and final["reason"] == "attempts_exhausted"
    assert processing.ledger.attempts(transaction_id) == limit
    assert processing.ledger.charges() == {}


def test_unprocessable_records_are_reported_failed_so_they_reach_the_dlq(processing, captured_logs):
    good = load_event("sqs_failed_transactions_batch")["Records"][0]
    bodies = [
        "not json",
        json.dumps({"version": 1, "transactionId": "txn_" + "a" * 32, "payment": {}}),
        json.dumps({"version": 2, "transactionId": "x"}),
        json.dumps({"version": 2, "transactionId": "txn_" + "a" * 32, "extra": 1}),
        json.dumps({"version": 2, "transactionId": "txn_" + "a" * 32}),  # no such transaction
        json.dumps([1, 2]),
    ]
    records = [dict(good, messageId=f"m{i}", body=body) for i, body in enumerate(bodies)]
    response = processing.invoke({"Records": records})
    assert {f["itemIdentifier"] for f in response["batchItemFailures"]} == {
        f"m{i}" for i in range(len(bodies))
    }
    assert captured_logs.getvalue().count("queue message rejected") == len(bodies)


def test_a_poison_message_ends_in_the_dlq(processing):
    sqs = processing.aws.client("sqs")
    sqs.send_message(
        QueueUrl=processing.aws.queue_url("FailedTransactionsQueue"), MessageBody="poison"
    )
    drain(processing, rounds=10)
    assert processing.aws.queue_depth("FailedTransactionsQueue") == 0
    assert processing.aws.queue_depth("FailedTransactionsQueueDlq") == 1


def test_a_record_carrying_a_card_number_is_rejected_without_logging_it(processing):
    event = load_event("sqs_failed_transactions_batch")
    event["Records"][0]["body"] = json.dumps(
        {"version": 2, "transactionId": "txn_" + "a" * 32, "note": "4111 1111 1111 1111"}
    )
    response = processing.invoke(event)
    assert len(response["batchItemFailures"]) == 1
    assert processing.ledger.items() == {}


def test_a_retry_of_a_finished_payment_is_acknowledged_and_runs_nothing(processing):
    transaction_id = body_of(processing.pay(payment_body()))["transactionId"]
    sqs = processing.aws.client("sqs")
    sqs.send_message(
        QueueUrl=processing.aws.queue_url("FailedTransactionsQueue"),
        MessageBody=json.dumps({"version": 2, "transactionId": transaction_id}),
    )
    assert deliver(processing) == (1, 0)
    assert processing.ledger.attempts(transaction_id) == 1


def test_a_batch_whose_records_are_not_sqs_records_fails_whole(processing):
    """A `Records` event that is not an SQS batch is never answered as an API request (that
    would acknowledge the batch): the invocation fails and SQS keeps every message."""
    import pytest

    with pytest.raises(Exception):  # noqa: B017 - any error fails the invocation
        processing.invoke({"Records": [{"eventSource": "aws:sqs"}]})


def test_sqs_record_helper_matches_the_fixture_shape(processing):
    fixture = load_event("sqs_failed_transactions_batch")["Records"][0]
    message = {
        "MessageId": "a",
        "ReceiptHandle": "b",
        "Body": "{}",
        "MD5OfBody": "c",
        "Attributes": {},
    }
    assert set(sqs_record(message, "arn")) == set(fixture)


def emitted_metrics(output: str) -> dict[str, float]:
    """Metric name -> sum of its values over the EMF lines the function printed."""
    totals: dict[str, float] = {}
    for line in output.splitlines():
        if line.startswith('{"_aws"'):
            emf = json.loads(line)
            for definition in emf["_aws"]["CloudWatchMetrics"]:
                for metric in definition["Metrics"]:
                    values = emf[metric["Name"]]
                    values = values if isinstance(values, list) else [values]
                    totals[metric["Name"]] = totals.get(metric["Name"], 0) + sum(values)
    return totals


def test_the_acquirer_refusing_the_key_is_review_on_both_paths(
    processing, monkeypatch, captured_logs, capsys
):
    """The acquirer holds a different charge under the transaction id (never expected: ids are
    random): no charge, terminal NEEDS_REVIEW with reason provider_conflict, the metric the
    alarm watches and the log line the runbook names; on the API path and on the retry path."""
    from handlers.payments import service

    ids = iter(["txn_" + "a" * 32, "txn_" + "b" * 32])
    monkeypatch.setattr(service, "new_transaction_id", lambda: next(ids))
    ledger = processing.aws.client("dynamodb")
    for key in ("txn_" + "a" * 32, "txn_" + "b" * 32):
        ledger.put_item(
            TableName=processing.aws.ledger_table,
            Item={"idempotencyKey": {"S": key}, "attempts": {"N": "1"},
                  "chargeRequest": {"S": '{"someone":"else"}'}},
        )  # fmt: skip
    capsys.readouterr()

    api_path = body_of(processing.pay(payment_body()))
    assert (api_path["status"], api_path["reason"]) == ("NEEDS_REVIEW", "provider_conflict")

    sqs = processing.runtime.queue._client
    with failing(sqs, "SendMessage", code="RequestThrottled"):  # the API path parks it first
        with failing(processing.runtime.store._client, "UpdateItem",
                     lambda p: "#status = :review" in p.get("UpdateExpression", "")):  # fmt: skip
            parked = body_of(processing.pay(payment_body()))
    assert parked["status"] == "QUEUED"
    processing.aws.client("sqs").send_message(
        QueueUrl=processing.aws.queue_url("FailedTransactionsQueue"),
        MessageBody=json.dumps({"version": 2, "transactionId": parked["transactionId"]}),
    )
    assert deliver(processing) == (1, 0)  # finished (in review), so acknowledged
    retried = stored(processing, parked["transactionId"])
    assert (retried["status"], retried["reason"]) == ("NEEDS_REVIEW", "provider_conflict")

    assert processing.ledger.charges() == {}
    assert emitted_metrics(capsys.readouterr().out).get("PaymentNeedsReview") == 2
    assert captured_logs.getvalue().count("payment needs review") == 2


def test_a_review_whose_answer_was_lost_still_raises_the_alarm(processing, capsys, captured_logs):
    """The move to NEEDS_REVIEW took effect but its answer was lost (the redelivery then finds
    the payment finished): the metric the alarm watches and the runbook's log line still come
    out (before: neither, ever; the payment sat in review with no alarm)."""
    runtime = dataclasses.replace(processing.runtime, max_attempts=2)
    processing.use(runtime)
    queued = body_of(processing.pay(payment_body(paymentToken="tok_test_timeout")))
    assert queued["status"] == "QUEUED"
    capsys.readouterr()
    client, armed = runtime.store._client, []

    def arm(params, **_):
        if "#status = :review" in params.get("UpdateExpression", ""):
            armed.append(True)

    def lose_answer(model, **_):
        if armed:
            armed.clear()
            raise aws_error("ProvisionedThroughputExceededException", model.name)

    client.meta.events.register("provide-client-params.dynamodb.UpdateItem", arm, "arm")
    client.meta.events.register("after-call.dynamodb.UpdateItem", lose_answer, "lose")
    try:
        assert deliver(processing) == (1, 1)  # the review's answer was lost: redelivered
    finally:
        client.meta.events.unregister("provide-client-params.dynamodb.UpdateItem", "arm")
        client.meta.events.unregister("after-call.dynamodb.UpdateItem", "lose")
    assert deliver(processing) == (1, 0)
    assert stored(processing, queued["transactionId"])["status"] == "NEEDS_REVIEW"
    assert emitted_metrics(capsys.readouterr().out).get("PaymentNeedsReview", 0) >= 1
    assert "payment needs review" in captured_logs.getvalue()


def test_an_unexpected_error_in_the_consumer_is_what_the_health_gate_counts(
    processing, capsys, captured_logs
):
    """A retry failing with an error that is not transient (a permission the role lost, a
    bug) is a batch item failure, which Lambda's Errors never counts: the consumer counts it as
    a server error, the metric the health gate reads (before: no metric at all, so the gate
    stayed open while every retry failed)."""
    queued = body_of(processing.pay(payment_body(paymentToken="tok_test_timeout")))
    assert queued["status"] == "QUEUED"
    capsys.readouterr()
    ledger = processing.aws.ledger_table
    with failing(processing.runtime.provider._client, "UpdateItem",
                 lambda p: p["TableName"] == ledger, code="AccessDeniedException"):  # fmt: skip
        assert deliver(processing) == (1, 1)  # failed, redelivered: nothing acknowledged
    assert emitted_metrics(capsys.readouterr().out).get("ServerError") == 1
    assert "unexpected error" in captured_logs.getvalue()
