"""The stuck-payment sweeper: a transaction left RECEIVED with no retry message (the function
timed out or crashed between the charge and the completion, or the message aged out of the
DLQ) is found through the sparse index `pending-by-age` by the scheduled health run,
re-enqueued, and completed by the queue consumer without a second charge."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from decimal import Decimal

import pytest

from handlers.payments.service import transaction_id_for
from handlers.payments.store import (
    PENDING_INDEX,
    PENDING_SHARD,
    TransactionStore,
    timestamp,
)
from handlers.payments.validation import Payment
from tests.handlers.conftest import body_of, drain, item_id, new_key, payment_body

# The killed processing invocation flushes no metrics: Powertools warns, which is expected here.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")


class Killed(BaseException):
    """The runtime ending the invocation (timeout, out of memory): nothing can catch it."""


def crash_before_completion(client):
    """Kill the invocation when it tries to complete a transaction (after the charge)."""

    def hook(params, **_):
        if item_id(params).startswith("txn_"):
            raise Killed("the function timed out between the charge and store.complete")

    event = "provide-client-params.dynamodb.UpdateItem"
    client.meta.events.register(event, hook, unique_id="crash-before-completion")
    return lambda: client.meta.events.unregister(event, unique_id="crash-before-completion")


def stuck_payment(processing, token="tok_test_approve"):
    """A payment charged by the provider and left RECEIVED, with nothing on any queue."""
    key = new_key()
    stop = crash_before_completion(processing.aws.client("dynamodb"))
    try:
        with pytest.raises(Killed):
            processing.pay(payment_body(paymentToken=token), key)
    finally:
        stop()
    transaction_id = transaction_id_for(key)
    assert status_of(processing, transaction_id) == "RECEIVED"
    assert processing.aws.queue_depth("FailedTransactionsQueue") == 0
    assert processing.aws.queue_depth("FailedTransactionsQueueDlq") == 0
    return transaction_id


def status_of(processing, transaction_id):
    return body_of(processing.get(transaction_id))["status"]


def age(aws, transaction_id, seconds):
    """Move a transaction's receivedAt back in time."""
    then = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)
    aws.client("dynamodb").update_item(
        TableName=aws.table,
        Key={"id": {"S": transaction_id}},
        UpdateExpression="SET receivedAt = :then",
        ExpressionAttributeValues={":then": {"S": timestamp(then)}},
    )


def indexed(aws):
    """Ids of the transactions in the sparse index."""
    items = aws.client("dynamodb").query(
        TableName=aws.table,
        IndexName=PENDING_INDEX,
        KeyConditionExpression="pendingShard = :shard",
        ExpressionAttributeValues={":shard": {"S": PENDING_SHARD}},
    )["Items"]
    return [item["id"]["S"] for item in items]


def requeue_action(result):
    (action,) = [a for a in result["actions"] if a["action"] == "requeue-stuck"]
    return action


THRESHOLD = 900  # STUCK_AFTER_SECONDS in the template


def test_template_gives_the_sweeper_its_threshold(health):
    assert health.module.CONFIG.stuck_after_seconds == THRESHOLD
    assert health.module.CONFIG.stuck_requeue_limit == 50


def test_stuck_payment_is_requeued_and_completed_once(processing, health):
    transaction_id = stuck_payment(processing)
    assert processing.provider.attempts(transaction_id) == 1  # charged before the crash
    age(processing.aws, transaction_id, THRESHOLD + 60)

    result = health.scheduled()
    assert result["stuckPaymentsRequeued"] == 1
    assert requeue_action(result) == {
        "action": "requeue-stuck",
        "decision": "requeue",
        "found": 1,
        "requeued": 1,
        "done": True,
    }
    assert processing.aws.queue_depth("FailedTransactionsQueue") == 1

    assert drain(processing) == 1
    assert status_of(processing, transaction_id) == "AUTHORIZED"
    # One charge: the retry used the same provider idempotency key and got the same result.
    assert list(processing.provider.charges) == [transaction_id]
    assert processing.provider.attempts(transaction_id) == 2
    assert indexed(processing.aws) == []
    # Completed: the next run finds nothing.
    assert requeue_action(health.scheduled())["requeued"] == 0
    assert processing.aws.queue_depth("FailedTransactionsQueue") == 0


def test_duplicate_retry_messages_complete_the_payment_once(processing, health):
    """The sweeper may re-enqueue a payment whose message is still queued: harmless."""
    transaction_id = stuck_payment(processing)
    age(processing.aws, transaction_id, THRESHOLD + 60)
    health.scheduled()
    health.scheduled()  # nothing consumed in between: a second message for the same payment
    assert processing.aws.queue_depth("FailedTransactionsQueue") == 2
    assert drain(processing) == 2
    assert status_of(processing, transaction_id) == "AUTHORIZED"
    assert list(processing.provider.charges) == [transaction_id]


def test_young_received_payment_is_left_alone(processing, health):
    transaction_id = stuck_payment(processing)
    age(processing.aws, transaction_id, THRESHOLD - 60)
    result = health.scheduled()
    assert requeue_action(result)["decision"] == "none-stuck"
    assert result["stuckPaymentsRequeued"] == 0
    assert processing.aws.queue_depth("FailedTransactionsQueue") == 0
    assert indexed(processing.aws) == [transaction_id]  # still pending, just not stuck yet


def test_completed_payment_never_appears_in_the_index(processing, health):
    key = new_key()
    assert processing.pay(payment_body(), key)["statusCode"] == 201
    transaction_id = transaction_id_for(key)
    item = processing.aws.client("dynamodb").get_item(
        TableName=processing.aws.table, Key={"id": {"S": transaction_id}}
    )["Item"]
    assert "pendingShard" not in item
    assert indexed(processing.aws) == []
    age(processing.aws, transaction_id, THRESHOLD + 60)
    assert requeue_action(health.scheduled())["decision"] == "none-stuck"
    assert processing.aws.queue_depth("FailedTransactionsQueue") == 0


def test_queued_payment_is_in_the_index_until_the_consumer_completes_it(processing):
    key = new_key()
    assert processing.pay(payment_body(paymentToken="tok_test_flaky"), key)["statusCode"] == 202
    assert indexed(processing.aws) == [transaction_id_for(key)]
    drain(processing)
    assert indexed(processing.aws) == []


def test_index_holds_what_a_retry_needs_and_no_card_data(processing, health):
    transaction_id = stuck_payment(processing)
    (item,) = processing.aws.client("dynamodb").query(
        TableName=processing.aws.table,
        IndexName=PENDING_INDEX,
        KeyConditionExpression="pendingShard = :shard",
        ExpressionAttributeValues={":shard": {"S": PENDING_SHARD}},
    )["Items"]
    assert item["id"]["S"] == transaction_id
    assert set(item) == {
        "id",
        "pendingShard",
        "receivedAt",
        "amount",
        "currency",
        "paymentToken",
        "merchantId",
        "description",
    }
    assert item["paymentToken"]["S"] == "tok_test_approve"


def test_dry_run_requeues_nothing(processing, health, monkeypatch):
    monkeypatch.setattr(
        health.runtime, "config", dataclasses.replace(health.runtime.config, dry_run=True)
    )
    transaction_id = stuck_payment(processing)
    age(processing.aws, transaction_id, THRESHOLD + 60)
    result = health.scheduled()
    assert requeue_action(result) == {
        "action": "requeue-stuck",
        "decision": "requeue",
        "found": 1,
        "requeued": 0,
        "done": False,
        "reason": "dry-run",
    }
    assert result["stuckPaymentsRequeued"] == 0
    assert processing.aws.queue_depth("FailedTransactionsQueue") == 0
    assert status_of(processing, transaction_id) == "RECEIVED"


def test_unhealthy_processing_path_requeues_nothing(processing, health):
    transaction_id = stuck_payment(processing)
    age(processing.aws, transaction_id, THRESHOLD + 60)
    health.aws.client("cloudwatch").set_alarm_state(
        AlarmName="platform-table-write-throttles-test", StateValue="ALARM", StateReason="throttled"
    )
    result = health.scheduled()
    assert requeue_action(result)["decision"] == "unhealthy"
    assert processing.aws.queue_depth("FailedTransactionsQueue") == 0


def test_requeues_at_most_the_per_run_bound_oldest_first(processing, health, monkeypatch):
    monkeypatch.setattr(
        health.runtime,
        "config",
        dataclasses.replace(health.runtime.config, stuck_requeue_limit=3),
    )
    now = dt.datetime.now(dt.UTC)
    ids = []
    for minutes in range(5):  # the oldest first
        received = now - dt.timedelta(seconds=THRESHOLD + 3600 - minutes * 60)
        store = TransactionStore(
            processing.aws.client("dynamodb"), processing.aws.table, clock=lambda r=received: r
        )
        transaction_id = transaction_id_for(new_key())
        payment = Payment(Decimal("12.50"), "USD", "tok_test_approve", "mer_0042")
        assert store.create(transaction_id, payment, payment.fingerprint())
        ids.append(transaction_id)

    result = health.scheduled()
    assert requeue_action(result)["requeued"] == 3
    assert processing.aws.queue_depth("FailedTransactionsQueue") == 3
    messages = processing.aws.client("sqs").receive_message(
        QueueUrl=processing.aws.queue_url("FailedTransactionsQueue"),
        MaxNumberOfMessages=10,
        VisibilityTimeout=0,
    )["Messages"]
    assert sorted(json.loads(m["Body"])["transactionId"] for m in messages) == sorted(ids[:3])

    drain(processing)
    assert requeue_action(health.scheduled())["requeued"] == 2  # the rest, on the next run
    drain(processing)
    assert [status_of(processing, i) for i in ids] == ["AUTHORIZED"] * 5
    assert sorted(processing.provider.charges) == sorted(ids)


def test_scheduled_run_emits_the_requeue_metric(processing, health, capsys):
    transaction_id = stuck_payment(processing)
    age(processing.aws, transaction_id, THRESHOLD + 60)
    capsys.readouterr()
    health.scheduled()
    emf = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if line.startswith('{"_aws"')
    ]
    assert any(line.get("StuckPaymentsRequeued") == [1.0] for line in emf)
