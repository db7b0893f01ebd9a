"""At least 1,000 payments with transient faults injected at random (DynamoDB
throttling, provider timeouts before and after the charge, SQS refusing
messages): every payment the API accepted ends completed in the table or
waiting in a queue; none is missing, none is charged twice."""

from __future__ import annotations

import contextlib
import io
import json
import random
import time
from collections import Counter, defaultdict

from handlers.payments.provider import ProviderTimeoutError
from handlers.payments.service import transaction_id_for
from tests.handlers.conftest import aws_error, body_of, deliver, item_id, payment_body, report

PAYMENTS = 1000
SEED = 20261123
TOKENS = ["tok_test_approve"] * 14 + [
    "tok_test_decline",
    "tok_test_flaky",
    "tok_test_insufficient_funds",
]
TOKENS += ["tok_test_timeout"]  # never succeeds: must end in the DLQ, not vanish
FAULT_RATES = {"dynamodb": 0.06, "provider_before": 0.05, "provider_after": 0.05, "sqs": 0.05}


class FaultyAcquirer:
    """The simulated acquirer behind a network that times out at random, before the
    request reaches it or after it charged (the answer is lost)."""

    def __init__(self, inner, rng):
        self.inner = inner
        self.rng = rng
        self.enabled = True
        self.keys_by_merchant = defaultdict(set)
        self.captures = Counter()

    def charge(self, request):
        self.keys_by_merchant[request.merchant_id].add(request.idempotency_key)
        if self.enabled and self.rng.random() < FAULT_RATES["provider_before"]:
            raise ProviderTimeoutError("injected: request lost")
        known = request.idempotency_key in self.inner.charges
        result = self.inner.charge(request)
        if not known:
            self.captures[request.idempotency_key] += 1
        if self.enabled and self.rng.random() < FAULT_RATES["provider_after"]:
            raise ProviderTimeoutError("injected: answer lost after the charge")
        return result


def inject_throttling(client, rng, switch, service, operations, rate, code, when=lambda p: True):
    """Raise `code` on a random share of calls while switch["on"]."""

    def hook(params, model, **_):
        if switch["on"] and when(params) and rng.random() < rate:
            raise aws_error(code, model.name)

    for operation in operations:
        client.meta.events.register(f"provide-client-params.{service}.{operation}", hook)


def test_thousand_payments_with_random_faults_none_lost_none_charged_twice(processing):
    rng = random.Random(SEED)
    acquirer = FaultyAcquirer(processing.provider, rng)
    module = processing.module
    runtime = module.build_runtime(
        module.CONFIG,
        dynamodb=processing.aws.fresh_client("dynamodb"),
        sqs=processing.aws.fresh_client("sqs"),
        provider=acquirer,
    )
    module.runtime = lambda: runtime  # the fixture's monkeypatch restores the original
    switch = {"on": True}
    dynamodb, sqs = runtime.store._client, runtime.queue._client
    inject_throttling(
        dynamodb, rng, switch, "dynamodb", ["PutItem", "UpdateItem", "GetItem", "DeleteItem"],
        FAULT_RATES["dynamodb"], "ProvisionedThroughputExceededException",
        when=lambda p: item_id(p).startswith(("txn_", "payment-request#")),
    )  # fmt: skip
    inject_throttling(
        sqs, rng, switch, "sqs", ["SendMessage"], FAULT_RATES["sqs"], "RequestThrottled"
    )

    # Time-scaled Lambda timeout: an in-progress record left by a request whose
    # cleanup was throttled expires after 40 ms here instead of 25 s.
    processing.remaining_ms = 40
    outcomes = Counter()
    accepted = {}
    polls = 0
    with contextlib.redirect_stdout(io.StringIO()):  # EMF lines; logs go to captured_logs
        for i in range(PAYMENTS):
            key = f"run-{SEED}-{i:05d}"
            body = payment_body(
                paymentToken=rng.choice(TOKENS),
                merchantId=f"mer_run_{i:05d}",
                amount=f"{rng.randint(1, 99999) / 100:.2f}",
            )
            for _attempt in range(20):  # a client retrying 503/409 with the same key
                response = processing.pay(body, key)
                outcomes[response["statusCode"]] += 1
                if response["statusCode"] in (201, 202):
                    accepted[key] = body_of(response)
                    break
                assert response["statusCode"] in (409, 503), response
                if response["statusCode"] == 409:
                    time.sleep(0.045)  # Retry-After, time-scaled like the timeout
            else:
                raise AssertionError(f"payment {i} never accepted")
            if i % 10 == 9:  # the event source mapping polls while clients keep paying
                deliver(processing)
                polls += 1

        while processing.aws.queue_depth("FailedTransactionsQueue") and polls < 2000:
            deliver(processing)
            polls += 1

    switch["on"] = False
    acquirer.enabled = False
    assert len(accepted) == PAYMENTS

    # Where every payment ended.
    completed, queued, missing = 0, 0, []
    waiting = set()
    for logical in ("FailedTransactionsQueue", "FailedTransactionsQueueDlq"):
        url = processing.aws.queue_url(logical)
        while True:
            batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600)
            if not batch.get("Messages"):
                break
            waiting.update(json.loads(m["Body"])["transactionId"] for m in batch["Messages"])
    in_dlq = processing.aws.queue_depth("FailedTransactionsQueueDlq")
    statuses = Counter()
    for key in accepted:
        transaction_id = transaction_id_for(key)
        stored = runtime.store.get(transaction_id)
        if stored is not None and stored.status.terminal:
            completed += 1
            statuses[stored.status.value] += 1
            charge = processing.provider.charges.get(transaction_id)
            assert charge is not None and charge.provider_reference == stored.provider_reference
        elif transaction_id in waiting:
            queued += 1
        else:
            missing.append(key)

    charged_twice = [m for m, keys in acquirer.keys_by_merchant.items() if len(keys) > 1]
    captured_twice = [k for k, n in acquirer.captures.items() if n > 1]
    report(
        f"nothing-lost run: {PAYMENTS} payments, {sum(outcomes.values())} API calls "
        f"({', '.join(f'{code}: {n}' for code, n in sorted(outcomes.items()))}); "
        f"{polls} queue polls"
    )
    report(
        f"  completed in the table: {completed} ({dict(sorted(statuses.items()))}); "
        f"waiting in a queue: {queued} (DLQ: {in_dlq}); missing: {len(missing)}; "
        f"charged twice: {len(charged_twice) + len(captured_twice)}; "
        f"provider charges: {len(processing.provider.charges)}"
    )
    assert not missing
    assert not charged_twice and not captured_twice
    assert completed + queued == PAYMENTS
    assert outcomes[202] > 0 and outcomes[503] > 0 and queued > 0  # the faults really happened
