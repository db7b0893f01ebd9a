"""The stuck-payment sweeper: a pending transaction nobody re-queued for STUCK_AFTER_SECONDS
(the function crashed or timed out mid-attempt, its message was never sent or sits in the DLQ)
is found through the sparse index `pending-by-requeue`, least recently re-queued first, by the
scheduled health run, re-queued, and completed by the consumer without a second charge."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid

import pytest

from handlers.payments.store import PENDING_INDEX, PENDING_SHARD, timestamp
from tests.handlers.conftest import body_of, drain, item_id, new_key, payment_body

# The killed processing invocation flushes no metrics: Powertools warns, which is expected here.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
THRESHOLD = 900  # STUCK_AFTER_SECONDS in the template


class Killed(BaseException):
    """The runtime ending the invocation (timeout, out of memory): nothing can catch it."""


def stuck_payment(processing, token="tok_test_approve"):
    """A payment the acquirer charged whose outcome was never recorded, nothing queued."""
    client = processing.runtime.store._client

    def hook(params, **_):
        if item_id(params).startswith("txn_"):
            raise Killed("the function timed out between the charge and the completion")

    event = "provide-client-params.dynamodb.UpdateItem"
    client.meta.events.register(event, hook, unique_id="crash-before-completion")
    merchant = f"mer_{uuid.uuid4().hex[:12]}"  # finds the row the killed call left behind
    try:
        with pytest.raises(Killed):
            processing.pay(payment_body(paymentToken=token, merchantId=merchant), new_key())
    finally:
        client.meta.events.unregister(event, unique_id="crash-before-completion")
    (transaction_id,) = [
        item["id"]["S"]
        for item in processing.aws.client("dynamodb").scan(TableName=processing.aws.table)["Items"]
        if item.get("merchantId", {}).get("S") == merchant
    ]
    assert status_of(processing, transaction_id) == "RECEIVED"
    assert processing.aws.queue_depth("FailedTransactionsQueue") == 0
    return transaction_id


def status_of(processing, transaction_id):
    return body_of(processing.get(transaction_id))["status"]


def age(aws, transaction_id, seconds):
    """Move a transaction's last re-queue back in time."""
    then = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds)
    aws.client("dynamodb").update_item(
        TableName=aws.table,
        Key={"id": {"S": transaction_id}},
        UpdateExpression="SET requeuedAt = :then",
        ExpressionAttributeValues={":then": {"S": timestamp(then)}},
    )


def indexed(aws):
    """Ids of the transactions in the sparse index, in its order."""
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


def test_template_gives_the_sweeper_its_threshold(health):
    assert health.module.CONFIG.stuck_after_seconds == THRESHOLD
    assert health.module.CONFIG.stuck_requeue_limit == 50


@pytest.mark.requirement("S001-SELF-HEALING")
def test_stuck_payment_is_requeued_and_completed_once(processing, health):
    transaction_id = stuck_payment(processing)
    assert processing.ledger.attempts(transaction_id) == 1  # charged before the crash
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
    assert status_of(processing, transaction_id) == "QUEUED"
    assert drain(processing) == 1
    assert status_of(processing, transaction_id) == "SUCCEEDED"
    # One charge: the retry used the same acquirer key and got the same decision.
    assert list(processing.ledger.charges()) == [transaction_id]
    assert processing.ledger.attempts(transaction_id) == 2
    assert indexed(processing.aws) == []
    assert requeue_action(health.scheduled())["requeued"] == 0  # finished: nothing more


def test_a_requeued_payment_moves_to_the_back_of_the_line(processing, health):
    """Re-queueing stamps requeuedAt: the same payment is not re-queued again until it has
    waited the threshold once more, and overlapping runs send one message."""
    transaction_id = stuck_payment(processing)
    age(processing.aws, transaction_id, THRESHOLD + 60)
    assert health.scheduled()["stuckPaymentsRequeued"] == 1
    assert health.scheduled()["stuckPaymentsRequeued"] == 0  # just re-queued: not stuck
    assert processing.aws.queue_depth("FailedTransactionsQueue") == 1


@pytest.mark.requirement("S001-SELF-HEALING")
def test_the_least_recently_requeued_come_first_and_none_starves(processing, health, monkeypatch):
    limit = 3
    config = dataclasses.replace(health.runtime.config, stuck_requeue_limit=limit)
    monkeypatch.setattr(health.runtime, "config", config)
    ids = [stuck_payment(processing) for _ in range(5)]
    for rank, transaction_id in enumerate(ids):  # ids[0] waited longest
        age(processing.aws, transaction_id, THRESHOLD + 3600 - rank * 60)
    assert indexed(processing.aws) == ids

    assert requeue_action(health.scheduled())["requeued"] == limit
    messages = processing.aws.client("sqs").receive_message(
        QueueUrl=processing.aws.queue_url("FailedTransactionsQueue"),
        MaxNumberOfMessages=10,
        VisibilityTimeout=0,
    )["Messages"]
    assert sorted(json.loads(m["Body"])["transactionId"] for m in messages) == sorted(ids[:limit])
    assert indexed(processing.aws)[:2] == ids[limit:]  # the rest now head the line

    assert requeue_action(health.scheduled())["requeued"] == 2  # the rest, on the next run
    drain(processing)
    assert [status_of(processing, i) for i in ids] == ["SUCCEEDED"] * 5
    assert sorted(processing.ledger.charges()) == sorted(ids)


def test_young_pending_payment_is_left_alone(processing, health):
    transaction_id = stuck_payment(processing)
    age(processing.aws, transaction_id, THRESHOLD - 60)
    result = health.scheduled()
    assert requeue_action(result)["decision"] == "none-stuck"
    assert processing.aws.queue_depth("FailedTransactionsQueue") == 0
    assert indexed(processing.aws) == [transaction_id]  # still pending, just not stuck yet


def test_completed_payment_never_appears_in_the_index(processing):
    transaction_id = body_of(processing.pay(payment_body()))["transactionId"]
    item = processing.aws.client("dynamodb").get_item(
        TableName=processing.aws.table, Key={"id": {"S": transaction_id}}
    )["Item"]
    assert "pendingShard" not in item
    assert indexed(processing.aws) == []


def test_queued_payment_is_in_the_index_until_the_consumer_completes_it(processing):
    paid = body_of(processing.pay(payment_body(paymentToken="tok_test_flaky")))
    assert indexed(processing.aws) == [paid["transactionId"]]
    drain(processing)
    assert indexed(processing.aws) == []


def test_index_holds_keys_only(processing):
    stuck_payment(processing)
    (item,) = processing.aws.client("dynamodb").query(
        TableName=processing.aws.table,
        IndexName=PENDING_INDEX,
        KeyConditionExpression="pendingShard = :shard",
        ExpressionAttributeValues={":shard": {"S": PENDING_SHARD}},
    )["Items"]
    assert set(item) == {"id", "pendingShard", "requeuedAt"}


def test_the_sweeper_touches_only_what_its_grant_allows(processing, health):
    """UpdateItem of a txn_ item, only status/updatedAt/requeuedAt, ReturnValues NONE
    (templates/platform_functions.py grants exactly that)."""
    from templates.platform_functions import SWEEPER_ATTRIBUTES

    transaction_id = stuck_payment(processing)
    age(processing.aws, transaction_id, THRESHOLD + 60)
    seen = []
    client = health.aws.client("dynamodb")
    client.meta.events.register(
        "provide-client-params.dynamodb.UpdateItem", lambda params, **_: seen.append(params),
        unique_id="seen",
    )  # fmt: skip
    try:
        health.scheduled()
    finally:
        client.meta.events.unregister("provide-client-params.dynamodb.UpdateItem", unique_id="seen")
    updates = [p for p in seen if item_id(p).startswith("txn_")]
    assert len(updates) == 1
    (update,) = updates
    named = set(update["ExpressionAttributeNames"].values())
    written = {
        token.split("=")[0].strip()
        for token in update["UpdateExpression"].removeprefix("SET ").split(",")
    }
    touched = named | {w for w in written if not w.startswith("#")} | {"id"}
    assert touched <= set(SWEEPER_ATTRIBUTES)
    assert update["ReturnValues"] == "NONE"


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
    assert processing.aws.queue_depth("FailedTransactionsQueue") == 0
    assert status_of(processing, transaction_id) == "RECEIVED"


@pytest.mark.requirement("S001-SELF-HEALING")
def test_unhealthy_processing_path_requeues_nothing(processing, health):
    transaction_id = stuck_payment(processing)
    age(processing.aws, transaction_id, THRESHOLD + 60)
    health.aws.client("cloudwatch").set_alarm_state(
        AlarmName="platform-table-write-throttles-test", StateValue="ALARM", StateReason="throttled"
    )
    result = health.scheduled()
    assert requeue_action(result)["decision"] == "unhealthy"
    assert processing.aws.queue_depth("FailedTransactionsQueue") == 0


def test_a_failed_send_leaves_the_payment_for_a_later_run(processing, health):
    from tests.handlers.conftest import failing

    transaction_id = stuck_payment(processing)
    age(processing.aws, transaction_id, THRESHOLD + 60)
    with failing(
        health.runtime.recovery.retry_queue._client, "SendMessage", code="RequestThrottled"
    ):
        result = health.scheduled()
    assert requeue_action(result)["reason"] == "queue-unavailable"
    assert indexed(processing.aws) == [transaction_id]  # still pending: not lost
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=THRESHOLD + 60)
    assert health.module.run_scheduled(health.runtime, later)["stuckPaymentsRequeued"] == 1


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
