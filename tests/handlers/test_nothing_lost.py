"""1,000 payments through three execution environments (each its own clients and its own
acquirer object over the durable ledger), with transient faults injected at random (DynamoDB
throttling, acquirer timeouts before and after the charge, SQS refusing messages): every
payment the API accepted ends SUCCEEDED, DECLINED or NEEDS_REVIEW, visible to its owner;
none is missing, none is charged twice, nothing is charged without its row."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import random
from collections import Counter

import pytest

from handlers.payments.provider import ProviderTimeoutError
from tests.handlers.conftest import aws_error, body_of, deliver, item_id, payment_body, report

PAYMENTS = int(__import__("os").environ.get("NOTHING_LOST_PAYMENTS", "1000"))
ENVIRONMENTS = 3
SEED = 20261123
TOKENS = ["tok_test_approve"] * 14 + [
    "tok_test_decline",
    "tok_test_flaky",
    "tok_test_insufficient_funds",
]
TOKENS += ["tok_test_timeout"]  # never succeeds: must end in NEEDS_REVIEW, not vanish
FAULT_RATES = {"dynamodb": 0.06, "provider_before": 0.05, "provider_after": 0.05, "sqs": 0.05}


class FaultyNetwork:
    """One environment's acquirer behind a network that times out at random, before the
    request reaches the acquirer or after it decided (the answer is lost)."""

    def __init__(self, inner, rng, switch):
        self.inner = inner
        self.rng = rng
        self.switch = switch

    def charge(self, request):
        if self.switch["on"] and self.rng.random() < FAULT_RATES["provider_before"]:
            raise ProviderTimeoutError("injected: request lost")
        result = self.inner.charge(request)
        if self.switch["on"] and self.rng.random() < FAULT_RATES["provider_after"]:
            raise ProviderTimeoutError("injected: answer lost after the charge")
        return result


def inject_throttling(client, rng, switch, service, operations, rate, code, when=lambda p: True):
    """Raise `code` on a random share of calls while switch["on"]."""

    def hook(params, model, **_):
        if switch["on"] and when(params) and rng.random() < rate:
            raise aws_error(code, model.name)

    for operation in operations:
        client.meta.events.register(f"provide-client-params.{service}.{operation}", hook)


def faulty_environment(processing, rng, switch):
    """A new execution environment whose clients and acquirer see the random faults."""
    import dataclasses

    env = processing.environment()
    inject_throttling(
        env.store._client, rng, switch, "dynamodb",
        ["PutItem", "UpdateItem", "GetItem", "TransactWriteItems"],
        FAULT_RATES["dynamodb"], "ProvisionedThroughputExceededException",
        when=lambda p: "TransactItems" in p or item_id(p).startswith("txn_"),
    )  # fmt: skip
    inject_throttling(
        env.queue._client, rng, switch, "sqs", ["SendMessage"], FAULT_RATES["sqs"],
        "RequestThrottled",
    )  # fmt: skip
    return dataclasses.replace(env, provider=FaultyNetwork(env.provider, rng, switch))


def settle(processing, health, environments, rng):
    """Faults off: drain the queue, redrive the DLQ, run the sweeper later and later, until
    no payment is pending (what the platform does by itself over the following hours)."""
    sqs = processing.aws.client("sqs")
    later = dt.datetime.now(dt.UTC)
    for _ in range(30):
        for _ in range(200):
            processing.use(rng.choice(environments))
            if deliver(processing) == (0, 0):
                break
        moved = move_dlq(processing, sqs)
        later += dt.timedelta(minutes=20)
        swept = health.module.run_scheduled(health.runtime, later)["stuckPaymentsRequeued"]
        if not moved and not swept and not processing.aws.queue_depth("FailedTransactionsQueue"):
            return


def move_dlq(processing, sqs):
    """What the health monitor's StartMessageMoveTask does (moto has no move tasks)."""
    dlq = processing.aws.queue_url("FailedTransactionsQueueDlq")
    moved = 0
    while batch := sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages"):
        for message in batch:
            sqs.send_message(
                QueueUrl=processing.aws.queue_url("FailedTransactionsQueue"),
                MessageBody=message["Body"],
            )
            sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return moved


class NoMoveTasks:
    """The harness moves the DLQ itself (moto has no move tasks)."""

    def running(self, source_arn):
        return True


@pytest.mark.requirement("S001-INTEGRITY")
def test_thousand_payments_with_random_faults_none_lost_none_charged_twice(
    processing, health, monkeypatch
):
    import dataclasses

    monkeypatch.setattr(
        health.runtime,
        "recovery",
        dataclasses.replace(health.runtime.recovery, move_tasks=NoMoveTasks()),
    )
    rng = random.Random(SEED)
    switch = {"on": True}
    environments = [faulty_environment(processing, rng, switch) for _ in range(ENVIRONMENTS)]
    outcomes = Counter()
    accepted = {}
    with contextlib.redirect_stdout(io.StringIO()):  # EMF lines; logs go to captured_logs
        for i in range(PAYMENTS):
            key = f"run-{SEED}-{i:05d}"
            body = payment_body(
                paymentToken=rng.choice(TOKENS),
                merchantId=f"mer_run_{i:05d}",
                amount=f"{rng.randint(1, 99999) / 100:.2f}",
            )
            for _attempt in range(20):  # a client retrying a 503 with the same key
                processing.use(rng.choice(environments))
                response = processing.pay(body, key)
                outcomes[response["statusCode"]] += 1
                if response["statusCode"] in (201, 202):
                    accepted[key] = (body, body_of(response)["transactionId"])
                    break
                # 500: DynamoDB could not even settle whether the binding happened.
                assert response["statusCode"] in (503, 500), response
            else:
                raise AssertionError(f"payment {i} never accepted")
            if i % 10 == 9:  # the event source mapping polls while clients keep paying
                processing.use(rng.choice(environments))
                deliver(processing)
        switch["on"] = False
        settle(processing, health, environments, rng)

    assert len(accepted) == PAYMENTS
    kept = set(processing.aws.kept_ids())  # void markers of lost bindings hold nothing
    rows = {
        item["id"]["S"]: item
        for item in processing.aws.client("dynamodb").scan(TableName=processing.aws.table)["Items"]
        if item["id"]["S"].startswith("txn_") and item["id"]["S"] in kept
    }
    charges = processing.ledger.charges()
    # No charge without a stored transaction.
    assert set(charges) <= set(rows)
    statuses = Counter()
    missing, wrong = [], []
    for key, (body, transaction_id) in accepted.items():
        row = rows.get(transaction_id)
        if row is None:
            missing.append(key)
            continue
        status = row["status"]["S"]
        statuses[status] += 1
        charged = transaction_id in charges
        if status == "SUCCEEDED":
            ok = charged and charges[transaction_id] == row["providerReference"]["S"]
        elif status == "DECLINED":
            ok = not charged
        else:
            ok = status == "NEEDS_REVIEW"  # charged at most once: the ledger has one key
        if not ok or row["amount"]["S"] != body["amount"]:
            wrong.append((key, status))
    # Visible to its owner: a sample through GET (every row was read above).
    for key in rng.sample(sorted(accepted), 25):
        assert body_of(processing.get(accepted[key][1]))["status"] in statuses
    # One transaction per key: the 503s kept nothing, the replays created nothing.
    assert len(rows) == PAYMENTS
    report(
        f"nothing-lost run: {PAYMENTS} payments over {ENVIRONMENTS} execution environments, "
        f"{sum(outcomes.values())} API calls "
        f"({', '.join(f'{code}: {n}' for code, n in sorted(outcomes.items()))})"
    )
    report(
        f"  final states: {dict(sorted(statuses.items()))}; missing: {len(missing)}; "
        f"inconsistent: {len(wrong)}; acquirer charges: {len(charges)}; "
        f"queue and DLQ left: {processing.aws.queue_depth('FailedTransactionsQueue')}, "
        f"{processing.aws.queue_depth('FailedTransactionsQueueDlq')}"
    )
    assert not missing and not wrong
    assert set(statuses) <= {"SUCCEEDED", "DECLINED", "NEEDS_REVIEW"}
    assert outcomes[202] > 0 and outcomes[503] > 0  # the faults really happened
    assert statuses["NEEDS_REVIEW"] > 0  # the never-succeeding token ran out of attempts
