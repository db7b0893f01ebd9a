"""The same request many times, sequentially and from concurrent threads: one
transaction, one provider charge. No lock anywhere: DynamoDB conditional writes."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from handlers.payments.idempotency import RequestInProgressError
from handlers.payments.service import process_payment, transaction_id_for
from handlers.payments.validation import ValidationRules, validate_payment
from tests.handlers.conftest import FakeLambdaContext, new_key, payment_body

THREADS = 12
RULES = ValidationRules(
    max_amount=__import__("decimal").Decimal("10000"), allowed_currencies=frozenset({"USD"})
)


def test_same_request_many_times_sequentially(processing):
    key = new_key()
    responses = [processing.pay(payment_body(), key) for _ in range(25)]
    assert {r["statusCode"] for r in responses} == {201}
    assert len({r["body"] for r in responses}) == 1
    transaction_id = transaction_id_for(key)
    assert processing.aws.scan_ids("txn_") == [transaction_id]
    assert processing.provider.attempts(transaction_id) == 1


def containers(processing, count):
    """Independent runtimes (own clients, own idempotency layer), as separate Lambda
    execution environments would have; they share the account and the acquirer."""
    module = processing.module
    return [
        module.build_runtime(
            module.CONFIG,
            dynamodb=processing.aws.fresh_client("dynamodb"),
            sqs=processing.aws.fresh_client("sqs"),
            provider=processing.provider,
        )
        for _ in range(count)
    ]


@pytest.mark.parametrize("token", ["tok_test_approve", "tok_test_decline"])
def test_same_request_from_concurrent_containers(processing, token, atomic_item_writes):
    key = new_key()
    payment = validate_payment(payment_body(paymentToken=token), RULES)
    runtimes = containers(processing, THREADS)
    start = threading.Barrier(THREADS)
    in_progress = []

    def client(runtime):
        start.wait()
        for _ in range(200):
            try:
                return runtime.acceptor(key, payment, FakeLambdaContext())
            except RequestInProgressError:
                in_progress.append(1)  # the client is told 409: retry shortly
                time.sleep(0.005)
        raise AssertionError("never got an answer")

    with ThreadPoolExecutor(THREADS) as pool:
        answers = list(pool.map(client, runtimes))

    assert all(answer == answers[0] for answer in answers)
    transaction_id = transaction_id_for(key)
    assert processing.aws.scan_ids("txn_") == [transaction_id]
    assert processing.provider.attempts(transaction_id) == 1
    assert list(processing.provider.charges) == [transaction_id]
    print(f"\n{THREADS} concurrent requests, one charge; {len(in_progress)} answered 409 first")


def test_core_flow_racing_itself_completes_once(processing, atomic_item_writes):
    """Without the idempotency layer (an expired record, the API racing the queue
    consumer): conditional writes alone keep one transaction and one outcome."""
    transaction_id = transaction_id_for(new_key())
    payment = validate_payment(payment_body(), RULES)
    runtimes = containers(processing, THREADS)
    start = threading.Barrier(THREADS)

    def attempt(runtime):
        start.wait()
        return process_payment(transaction_id, payment, runtime.store, runtime.provider)

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(attempt, runtimes))

    assert {r.status.value for r in results} == {"AUTHORIZED"}
    assert len({r.completed_at for r in results}) == 1  # every racer read the winner's write
    assert processing.aws.scan_ids("txn_") == [transaction_id]
    assert len(processing.provider.charges) == 1
