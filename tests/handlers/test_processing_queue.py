"""Transient failures: 202 and the retry queue, the queue consumer, 503 when even SQS fails."""

from __future__ import annotations

import json

from handlers.payments.service import transaction_id_for
from tests.handlers.conftest import (
    body_of,
    deliver,
    drain,
    failing,
    item_id,
    load_event,
    new_key,
    payment_body,
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
    key = new_key()
    response = processing.pay(payment_body(paymentToken="tok_test_flaky"), key)
    assert response["statusCode"] == 202
    body = body_of(response)
    transaction_id = transaction_id_for(key)
    assert body == {
        "transactionId": transaction_id,
        "status": "QUEUED",
        "message": body["message"],
    }
    assert stored(processing, transaction_id)["status"] == "RECEIVED"
    (message,) = queued_messages(processing)
    assert message["transactionId"] == transaction_id
    # Only what a retry needs: no headers, no key, nothing beyond the payment.
    assert set(message) == {"version", "transactionId", "payment"}
    assert set(message["payment"]) <= {
        "amount",
        "currency",
        "paymentToken",
        "merchantId",
        "description",
    }

    assert deliver(processing) == (1, 0)
    assert stored(processing, transaction_id)["status"] == "AUTHORIZED"
    assert processing.aws.queue_depth("FailedTransactionsQueue") == 0
    # The client's retry now gets the final answer, without a second charge.
    again = processing.pay(payment_body(paymentToken="tok_test_flaky"), key)
    assert again["statusCode"] == 201 and body_of(again)["status"] == "AUTHORIZED"
    assert len(processing.provider.charges) == 1


def test_client_retry_before_the_consumer_and_the_consumer_agree(processing):
    key = new_key()
    assert processing.pay(payment_body(paymentToken="tok_test_flaky"), key)["statusCode"] == 202
    retried = processing.pay(payment_body(paymentToken="tok_test_flaky"), key)
    assert retried["statusCode"] == 201
    assert deliver(processing) == (1, 0)  # finds it done; acknowledges
    assert stored(processing, transaction_id_for(key)) == body_of(retried)
    assert len(processing.provider.charges) == 1


def test_throttled_create_queues_the_payment_and_the_consumer_records_it(processing):
    key = new_key()
    dynamodb = processing.module.runtime().store._client
    with failing(dynamodb, "PutItem", lambda p: item_id(p).startswith("txn_")) as calls:
        response = processing.pay(payment_body(), key)
    assert calls and response["statusCode"] == 202
    assert processing.aws.scan_ids("txn_") == []
    assert processing.provider.charges == {}
    assert deliver(processing) == (1, 0)
    assert stored(processing, transaction_id_for(key))["status"] == "AUTHORIZED"


def test_throttled_completion_after_the_charge_never_charges_twice(processing):
    key = new_key()
    dynamodb = processing.module.runtime().store._client
    with failing(dynamodb, "UpdateItem", lambda p: item_id(p).startswith("txn_")):
        assert processing.pay(payment_body(), key)["statusCode"] == 202
    assert len(processing.provider.charges) == 1  # charged, outcome not yet stored
    assert stored(processing, transaction_id_for(key))["status"] == "RECEIVED"
    drain(processing)
    assert stored(processing, transaction_id_for(key))["status"] == "AUTHORIZED"
    assert len(processing.provider.charges) == 1


def test_queue_send_failure_is_503_and_a_retry_with_the_same_key_succeeds(processing):
    key = new_key()
    sqs = processing.module.runtime().queue._client
    with failing(sqs, "SendMessage", code="RequestThrottled"):
        response = processing.pay(payment_body(paymentToken="tok_test_flaky"), key)
    assert response["statusCode"] == 503
    assert body_of(response)["error"]["code"] == "service_unavailable"
    assert processing.aws.queue_depth("FailedTransactionsQueue") == 0
    retried = processing.pay(payment_body(paymentToken="tok_test_flaky"), key)
    assert retried["statusCode"] == 201 and body_of(retried)["status"] == "AUTHORIZED"
    assert len(processing.provider.charges) == 1


def test_non_transient_queue_error_is_a_500_with_only_a_correlation_id(processing):
    sqs = processing.module.runtime().queue._client
    with failing(sqs, "SendMessage", code="AccessDenied"):
        response = processing.pay(payment_body(paymentToken="tok_test_flaky"))
    assert response["statusCode"] == 500
    body = body_of(response)
    assert set(body) == {"error", "correlationId"}
    assert "AccessDenied" not in response["body"] and "Traceback" not in response["body"]


def test_idempotency_store_throttled_is_503_and_nothing_is_charged(processing):
    dynamodb = processing.module.runtime().store._client
    key = new_key()
    with failing(dynamodb, "PutItem", lambda p: item_id(p).startswith("payment-request#")):
        response = processing.pay(payment_body(), key)
    assert response["statusCode"] == 503
    assert processing.provider.charges == {}
    assert processing.pay(payment_body(), key)["statusCode"] == 201


def test_queued_payment_is_202_even_when_forgetting_the_key_fails(processing):
    """Powertools deletes the in-progress key on a 202; if that delete fails too (the table is
    throttled, which is often why the payment was queued), the payment is still queued."""
    dynamodb = processing.module.runtime().store._client
    key = new_key()
    with failing(dynamodb, "DeleteItem", lambda p: item_id(p).startswith("payment-request#")):
        response = processing.pay(payment_body(paymentToken="tok_test_flaky"), key)
    assert response["statusCode"] == 202
    transaction_id = body_of(response)["transactionId"]
    assert [m["transactionId"] for m in queued_messages(processing)] == [transaction_id]
    drain(processing)
    assert stored(processing, transaction_id)["status"] == "AUTHORIZED"
    assert len(processing.provider.charges) == 1


def test_a_limit_changed_after_the_202_does_not_strand_the_queued_payment(
    processing, monkeypatch
):
    """Accepted under the limits of its day: a later, stricter config must not drop it."""
    import dataclasses
    from decimal import Decimal

    key = new_key()
    body = payment_body(paymentToken="tok_test_flaky", currency="EUR", amount="500.00")
    assert processing.pay(body, key)["statusCode"] == 202
    module = processing.module
    stricter = dataclasses.replace(
        module.CONFIG.api.rules, allowed_currencies=frozenset({"USD"}), max_amount=Decimal("1")
    )
    api = dataclasses.replace(module.CONFIG.api, rules=stricter)
    monkeypatch.setattr(module, "CONFIG", dataclasses.replace(module.CONFIG, api=api))
    drain(processing)
    assert stored(processing, transaction_id_for(key))["status"] == "AUTHORIZED"
    assert len(processing.provider.charges) == 1


def test_consumer_reports_only_the_failed_messages(processing):
    keys = [new_key() for _ in range(3)]
    for key in keys:
        processing.pay(payment_body(paymentToken="tok_test_flaky"), key)
    processing.pay(payment_body(paymentToken="tok_test_timeout"), "always-times-out-0001")
    assert processing.aws.queue_depth("FailedTransactionsQueue") == 4
    delivered, failed = deliver(processing)
    assert (delivered, failed) == (4, 1)
    assert [stored(processing, transaction_id_for(k))["status"] for k in keys] == ["AUTHORIZED"] * 3


def test_a_payment_that_keeps_failing_ends_in_the_dlq_not_lost(processing):
    key = "always-times-out-0002"
    processing.pay(payment_body(paymentToken="tok_test_timeout"), key)
    drain(processing, rounds=10)
    assert processing.aws.queue_depth("FailedTransactionsQueue") == 0
    (message,) = queued_messages(processing, "FailedTransactionsQueueDlq")
    assert message["transactionId"] == transaction_id_for(key)
    assert stored(processing, transaction_id_for(key))["status"] == "RECEIVED"


def test_invalid_queue_messages_are_reported_and_acknowledged(processing, captured_logs):
    event = load_event("sqs_failed_transactions_batch")
    good = event["Records"][0]
    bodies = [
        "not json",
        json.dumps({"version": 2}),
        json.dumps({"version": 1, "transactionId": "x"}),
    ]
    records = [dict(good, messageId=f"m{i}", body=body) for i, body in enumerate(bodies)]
    response = processing.invoke({"Records": records})
    assert response == {"batchItemFailures": []}
    assert captured_logs.getvalue().count("queue message rejected") == 3


def test_queue_message_carrying_a_card_number_is_rejected_without_logging_it(processing):
    event = load_event("sqs_failed_transactions_batch")
    record = event["Records"][0]
    message = json.loads(record["body"])
    message["payment"]["description"] = "4111 1111 1111 1111"
    record["body"] = json.dumps(message)
    assert processing.invoke(event) == {"batchItemFailures": []}
    assert processing.provider.charges == {}


def test_fixture_record_shape_is_processed(processing):
    event = load_event("sqs_failed_transactions_batch")
    assert processing.invoke(event) == {"batchItemFailures": []}
    message = json.loads(event["Records"][0]["body"])
    assert stored(processing, message["transactionId"])["status"] == "AUTHORIZED"


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
