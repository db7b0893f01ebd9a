"""The idempotency contract (docs/handlers.md): a key scoped to caller and merchant, bound with
its transaction in one write; the same body replays the current state and runs nothing, another
body is 422 on every path; sequential and concurrent repeats from separate execution
environments (each its own clients and acquirer object) make one transaction and one charge.
No lock anywhere: DynamoDB conditional writes."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from handlers.payments.idempotency import KeyReusedError, KeyScope
from handlers.payments.service import PaymentRequest, accept_payment, run_attempt
from handlers.payments.store import TransactionStore
from handlers.payments.validation import ValidationRules, validate_payment
from tests.handlers.conftest import (
    body_of,
    drain,
    failing,
    new_key,
    payment_body,
    response_headers,
)

THREADS = 12
RULES = ValidationRules(max_amount=Decimal("10000"), allowed_currencies=frozenset({"USD"}))


def test_same_request_many_times_sequentially(processing):
    key = new_key()
    first = processing.pay(payment_body(), key)
    again = [processing.pay(payment_body(), key) for _ in range(24)]
    assert first["statusCode"] == 201
    assert {r["statusCode"] for r in again} == {201}
    assert {r["body"] for r in again} == {first["body"]}  # byte-identical replays
    assert all(response_headers(r)["idempotent-replayed"] == "true" for r in again)
    assert "idempotent-replayed" not in response_headers(first)
    (transaction_id,) = processing.aws.scan_ids("txn_")
    assert processing.ledger.attempts(transaction_id) == 1


def test_replay_of_a_queued_payment_shows_its_current_state_and_runs_nothing(processing):
    key = new_key()
    first = processing.pay(payment_body(paymentToken="tok_test_flaky"), key)
    assert first["statusCode"] == 202
    transaction_id = body_of(first)["transactionId"]
    replay = processing.pay(payment_body(paymentToken="tok_test_flaky"), key)
    assert replay["statusCode"] == 202 and body_of(replay)["status"] == "QUEUED"
    assert processing.ledger.attempts(transaction_id) == 1  # no provider call
    assert processing.aws.queue_depth("FailedTransactionsQueue") == 1  # no new message
    drain(processing)
    final = processing.pay(payment_body(paymentToken="tok_test_flaky"), key)
    assert final["statusCode"] == 201 and body_of(final)["status"] == "SUCCEEDED"
    assert body_of(final) == body_of(processing.get(transaction_id))


def test_a_different_body_is_refused_on_every_path(processing):
    """Once bound, another body is 422: after a 201, after a 202, while pending."""
    for token in ("tok_test_approve", "tok_test_flaky", "tok_test_timeout"):
        key = new_key()
        assert processing.pay(payment_body(paymentToken=token), key)["statusCode"] in (201, 202)
        other = processing.pay(payment_body(paymentToken=token, amount="99.99"), key)
        assert other["statusCode"] == 422, token
        assert body_of(other)["error"]["code"] == "idempotency_key_reused"
    assert len(processing.aws.scan_ids("txn_")) == 3


def test_an_equivalent_body_is_the_same_request(processing):
    key = new_key()
    first = body_of(processing.pay(payment_body(amount="12.5", description=None), key))
    again = processing.pay(
        {"merchantId": "mer_0042", "paymentToken": "tok_test_approve", "currency": "USD",
         "amount": "12.50"},
        key,
    )  # fmt: skip
    assert again["statusCode"] == 201 and body_of(again) == first


def test_a_key_is_scoped_to_the_merchant_too(processing):
    key = new_key()
    one = processing.pay(payment_body(merchantId="mer_one"), key)
    two = processing.pay(payment_body(merchantId="mer_two"), key)
    assert one["statusCode"] == two["statusCode"] == 201
    assert body_of(one)["transactionId"] != body_of(two)["transactionId"]


def test_a_failed_binding_keeps_nothing_and_frees_the_key(processing):
    """503 with Retry-After when the one write fails: nothing stored, queued or charged, and
    the key may carry a different body afterwards."""
    key = new_key()
    client = processing.runtime.store._client
    with failing(client, "TransactWriteItems"):
        refused = processing.pay(payment_body(), key)
    assert refused["statusCode"] == 503
    assert response_headers(refused)["retry-after"] == "1"
    # Nothing but the void marker of the unused transaction id (store.bind): no row, no binding.
    assert processing.aws.scan_ids("idem_") == []
    assert [voided(processing, i) for i in processing.aws.scan_ids("")] == [True]
    assert processing.aws.queue_depth("FailedTransactionsQueue") == 0
    assert processing.ledger.items() == {}
    assert processing.pay(payment_body(amount="30.00"), key)["statusCode"] == 201


def voided(processing, item_id):
    """True when the item is only the void marker of a transaction id (store.bind)."""
    item = processing.aws.client("dynamodb").get_item(
        TableName=processing.aws.table, Key={"id": {"S": item_id}}
    )["Item"]
    return item["recordType"]["S"] == "void" and set(item) == {"id", "recordType", "expiration"}


def test_a_cancelled_transaction_for_throttling_is_503(processing):
    """DynamoDB cancels a TransactWriteItems whose item is throttled (reason ThrottlingError):
    transient, so 503, not a conflict and not a 500."""
    from botocore.exceptions import ClientError

    client = processing.runtime.store._client
    cancelled = ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": [{"Code": "ThrottlingError"}, {"Code": "None"}],
        },
        "TransactWriteItems",
    )

    def hook(**_):
        raise cancelled

    client.meta.events.register("before-call.dynamodb.TransactWriteItems", hook, unique_id="c")
    try:
        assert processing.pay(payment_body())["statusCode"] == 503
    finally:
        client.meta.events.unregister("before-call.dynamodb.TransactWriteItems", unique_id="c")


def test_an_expired_binding_no_longer_holds_the_key(processing):
    """Retention: a binding older than IDEMPOTENCY_TTL_SECONDS (>= 24 h) lets the key start a
    new payment, even before DynamoDB's TTL has deleted the item."""
    config = processing.module.CONFIG
    assert config.idempotency_ttl_seconds >= 24 * 3600
    key = new_key()
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=config.idempotency_ttl_seconds + 60)
    old_store = TransactionStore(
        processing.aws.client("dynamodb"), processing.aws.table,
        config.idempotency_ttl_seconds, clock=lambda: long_ago,
    )  # fmt: skip
    payment = validate_payment(payment_body(), RULES)
    old_store.bind(KeyScope("abcd1234ef", payment.merchant_id, key), payment, "txn_" + "a" * 32)
    fresh = processing.pay(payment_body(amount="30.00"), key)
    assert fresh["statusCode"] == 201
    assert body_of(fresh)["transactionId"] != "txn_" + "a" * 32


@pytest.mark.parametrize("token", ["tok_test_approve", "tok_test_decline", "tok_test_flaky"])
def test_same_request_from_concurrent_environments(processing, token):
    key = new_key()
    payment = validate_payment(payment_body(paymentToken=token), RULES)
    environments = [processing.environment() for _ in range(THREADS)]
    assert len({id(env.provider) for env in environments}) == THREADS
    start = threading.Barrier(THREADS)

    def client(environment):
        start.wait()
        return accept_payment(PaymentRequest("abcd1234ef", key, payment), environment)

    with ThreadPoolExecutor(THREADS) as pool:
        answers = list(pool.map(client, environments))

    (transaction_id,) = processing.aws.scan_ids("txn_")
    assert {a.transaction.id for a in answers} == {transaction_id}
    assert sum(not a.replayed for a in answers) == 1  # one request bound the key
    assert processing.ledger.attempts(transaction_id) == 1  # the others ran nothing
    assert len(processing.aws.scan_ids("idem_")) == 1


def test_concurrent_requests_with_different_bodies_one_wins(processing):
    key = new_key()
    environments = [processing.environment() for _ in range(THREADS)]
    start = threading.Barrier(THREADS)

    def client(index):
        start.wait()
        body = payment_body(amount=f"{index + 1}.00")
        payment = validate_payment(body, RULES)
        try:
            return accept_payment(PaymentRequest("abcd1234ef", key, payment), environments[index])
        except KeyReusedError:
            return None

    with ThreadPoolExecutor(THREADS) as pool:
        answers = list(pool.map(client, range(THREADS)))
    winners = [a for a in answers if a is not None]
    assert len(winners) == 1 and not winners[0].replayed
    assert len(processing.aws.scan_ids("txn_")) == 1


def test_core_flow_racing_itself_completes_once(processing):
    """The API, the queue consumer, a redrive and the sweeper attempting the same transaction
    at once, from separate environments: one outcome, one charge."""
    payment = validate_payment(payment_body(), RULES)
    created = processing.runtime.store.bind(
        KeyScope("abcd1234ef", payment.merchant_id, new_key()), payment, "txn_" + "b" * 32
    )
    environments = [processing.environment() for _ in range(THREADS)]
    start = threading.Barrier(THREADS)

    def attempt(environment):
        start.wait()
        return run_attempt(created, environment)

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(attempt, environments))

    assert {r.status.value for r in results} == {"SUCCEEDED"}
    assert len({r.completed_at for r in results}) == 1  # every racer read the winner's write
    assert list(processing.ledger.charges()) == [created.id]


def test_bindings_hold_no_client_key_and_no_card_data(processing):
    key = "order-2026-11-23-0001"
    processing.pay(payment_body(), key)
    items = processing.aws.client("dynamodb").scan(TableName=processing.aws.table)["Items"]
    assert key not in repr(items)
    (binding,) = [i for i in items if i["recordType"]["S"] == "idempotency-key"]
    assert set(binding) == {"id", "recordType", "transactionId", "requestHash", "createdAt",
                            "expiration"}  # fmt: skip


def test_stores_are_independent_per_environment(processing):
    """Sanity of the harness: two environments share only what AWS shares."""
    one, two = processing.environment(), processing.environment()
    assert one.store._client is not two.store._client
    assert one.provider is not two.provider
    assert one.provider._client is not two.provider._client
