"""Hundreds of payments over HTTP from many threads: none lost, none charged twice.

200 distinct payments (60 of them sent twice, from different threads), split between two
API keys, 10 of their keys also sent with a different body, through the local gateway into
the processing function's execution environments (up to four, separate processes), while the
emulated DynamoDB throttles 5% of the writes to the transactions table. A client here does
what a real one does: it retries 409, 429 and 503 with the same key and body. Then the
throttling stops (the outage ends) and the failed-transactions queue drains.

Every accepted payment (201 or 202) must end in a terminal state its caller can read, each
idempotency key must name exactly one transaction, the table must hold exactly one
transaction per accepted payment, and no reused key may ever be charged with its other body.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from emulator.local_api import stack_resources
from tests.local_api.conftest import PLATFORM, SERVED, TERMINAL, call
from tests.local_api.faults import throttled_writes

pytestmark = SERVED

PAYMENTS = 200
DUPLICATED = 60  # of which sent twice, from different threads
REUSED_KEYS = 10  # of which the key is also sent with another body
THREADS = 16
THROTTLE_PROBABILITY = 0.05
RETRYABLE = {409, 429, 503}
ACCEPTED = {201, 202}
TOKENS = ["tok_test_approve"] * 6 + ["tok_test_decline", "tok_test_flaky"]


@dataclass(frozen=True)
class Payment:
    key: str
    api_key: str
    body: dict


def send(url: str, payment: Payment, body: dict, attempts: int = 40):
    """POST as a careful client: retry what the API says to retry, same key, same body."""
    headers = {"x-api-key": payment.api_key, "Idempotency-Key": payment.key}
    for _ in range(attempts):
        answer = call("POST", url, body, headers)
        if answer.status not in RETRYABLE:
            return answer
        time.sleep(0.05 + random.random() * 0.2)
    return answer


@pytest.fixture
def second_api_key(served):
    """Another caller: a second key on the platform's usage plan."""
    apigateway = served.clients.apigateway
    _, plan_id = stack_resources(served.clients.cloudformation, PLATFORM)["UsagePlan"]
    key = apigateway.create_api_key(name=f"second-caller-{uuid.uuid4().hex[:6]}", enabled=True)
    apigateway.create_usage_plan_key(usagePlanId=plan_id, keyId=key["id"], keyType="API_KEY")
    return key["value"]


def test_no_payment_is_lost_or_charged_twice(served, second_api_key, fast_redelivery):
    endpoint = served.endpoint_of(PLATFORM)
    url = endpoint.invoke_url
    rng = random.Random(12)
    api_keys = [endpoint.api_key_value, second_api_key]
    payments = [
        Payment(
            key=f"conc-{uuid.uuid4()}",
            api_key=api_keys[i % 2],
            body={
                # A unique amount per payment: the table can be checked payment by payment.
                "amount": f"{i + 1}.{i % 100:02d}",
                "currency": "USD",
                "paymentToken": rng.choice(TOKENS),
                "merchantId": f"m-{i % 7}",
            },
        )
        for i in range(PAYMENTS)
    ]
    other_bodies = {
        p.key: {**p.body, "amount": f"{5000 + i}.00"} for i, p in enumerate(payments[:REUSED_KEYS])
    }
    jobs = [(p, p.body) for p in payments]
    jobs += [(p, p.body) for p in payments[REUSED_KEYS : REUSED_KEYS + DUPLICATED]]
    jobs += [(p, other_bodies[p.key]) for p in payments[:REUSED_KEYS]]
    rng.shuffle(jobs)

    with throttled_writes("transactions-qa", THROTTLE_PROBABILITY, seed=3) as throttling:
        with ThreadPoolExecutor(THREADS) as pool:
            answers = list(pool.map(lambda job: (job, send(url, *job)), jobs))
    assert throttling.injected > 0, "no throttle was injected: the test proves nothing"

    statuses = Counter(answer.status for _, answer in answers)
    accepted: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for (payment, body), answer in answers:
        assert answer.status in ACCEPTED | {422}, (answer.status, answer.body)
        if answer.status in ACCEPTED:
            accepted[payment.key][body["amount"]].add(answer.json()["transactionId"])
        else:
            # Refused only because the same key came with the other body first.
            assert payment.key in other_bodies, answer.body
    # Each key was accepted, and names exactly one transaction, however often it was sent.
    assert set(accepted) == {p.key for p in payments}
    # No reused key was ever accepted with its other body (issue 8, defect 1).
    charged_both = [key for key, by_body in accepted.items() if len(by_body) > 1]
    assert not charged_both, charged_both
    assert all(len(ids) == 1 for by_body in accepted.values() for ids in by_body.values())

    # None lost: every accepted payment reaches a terminal state its caller can read.
    owners = {p.key: p.api_key for p in payments}
    settled = accepted
    pending = {
        (key, amount): next(iter(ids))
        for key, by_body in settled.items()
        for amount, ids in by_body.items()
    }
    payments_url = url.rsplit("/", 1)[0] + "/payments/"
    deadline = time.monotonic() + 90
    while pending and time.monotonic() < deadline:
        for (key, amount), transaction_id in list(pending.items()):
            answer = call("GET", payments_url + transaction_id, headers={"x-api-key": owners[key]})
            if answer.status == 200 and answer.json()["status"] in TERMINAL:
                assert answer.json()["amount"] == amount
                del pending[(key, amount)]
        if pending:
            time.sleep(1)
    assert not pending, f"{len(pending)} accepted payment(s) never completed"

    # None charged twice: exactly one stored transaction per accepted payment.
    amounts = Counter()
    pages = served.client("dynamodb").get_paginator("scan").paginate(TableName="transactions-qa")
    for page in pages:
        for item in page["Items"]:
            if {"status", "amount", "merchantId"} <= set(item):
                amounts[item["amount"]["S"]] += 1
    for by_body in settled.values():
        for amount in by_body:
            assert amounts[amount] == 1, amount
    print(
        f"\nconcurrency: {len(jobs)} requests, final statuses {dict(sorted(statuses.items()))}, "
        f"{throttling.injected} of {throttling.calls} writes throttled"
    )
