"""Crash consistency, by test (hypothesis stateful testing).

A model of the world drives payments through two simulated Lambda execution environments.
Each environment has its own boto3 clients and its own simulated-acquirer object; the only
things they share are the ones AWS shares: the DynamoDB tables (transactions and the
acquirer's ledger) and the SQS queues, in moto, and the wall clock. Between steps the model
injects what production does to a payment system:

- a crash (the runtime killing the invocation: `Killed`, a BaseException nothing catches)
  before or after any AWS call of an invocation, so between every pair of side effects:
  after the key binding and before the charge, after the charge and before the record, after
  the record and before the enqueue, in the middle of a queue batch;
- a transient AWS failure at any call (throttling before the call, or the answer lost after it),
  alone or followed by a second one at the next call (a lost answer whose read-back fails);
- a call that took effect and whose answer was lost, sent again as botocore's retry does (it
  answers ConditionalCheckFailed to a conditional write that landed), alone or on every call
  after a lost answer;
- a call answered with an error (a timeout) that AWS still holds and makes only after the
  invocation answered (`late`): a binding the read-back could not see, that lands after a 503;
- SQS redeliveries (visibility timeouts running out), DLQ redrives, sweeper runs as time
  passes (sometimes a day, past IDEMPOTENCY_TTL_SECONDS: every key is free again, and a
  request with one binds a new payment, never replays the expired one), and clients retrying
  with the same key, or reusing a key with another body.

Invariants after every step: no charge without a stored transaction; no key bound to two
transactions; every payment answered 201/202 has its row; every pending row is in the
sweeper's index; an acknowledged queue message's payment is finished. At the end (teardown:
faults stop, the queue drains, the DLQ is redriven and the sweeper runs until nothing is
pending): every accepted payment is SUCCEEDED and charged exactly once, or DECLINED and not
charged, or NEEDS_REVIEW; none is lost.

Settings in CI: `CRASH_SETTINGS` below (10 examples of up to 30 steps, about 30 s on the
shared 2-core machine); `CRASH_EXAMPLES=200 pytest tests/handlers/test_crash_consistency.py`
explores further. `test_a_crash_at_every_call_of_one_payment` enumerates every crash point of
the API path and of the consumer path deterministically, so no gap depends on the draw.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime as dt
import io
import json
import os
from collections import Counter
from typing import Any

import pytest
from botocore import xform_name
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from moto import mock_aws

from handlers.payments.idempotency import KeyScope
from handlers.payments.store import VOID_RECORD, TransactionStore
from handlers.payments.validation import validate_payment
from tests.handlers.conftest import (
    FakeLambdaContext,
    api_event,
    aws_error,
    body_of,
    report,
    sqs_record,
)

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")

CRASH_SETTINGS = settings(
    max_examples=int(os.environ.get("CRASH_EXAMPLES", "10")),
    stateful_step_count=30,
    deadline=None,
    database=None,  # no .hypothesis/ in the shared checkout; a failure prints its blob
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
CALLERS = ("caller-one", "caller-two")
KEYS = ("order-00000001", "order-00000002", "order-00000003")  # few: callers collide
TOKENS = ("tok_test_approve", "tok_test_approve", "tok_test_decline", "tok_test_flaky",
          "tok_test_timeout", "tok_test_insufficient_funds")  # fmt: skip
# The model caps attempts lower than the template's 10: the property does not depend on the
# number, and a never-succeeding payment then settles in a few deliveries, not dozens.
MAX_ATTEMPTS = 4
PENDING = {"RECEIVED", "QUEUED"}
# A day and a minute: past IDEMPOTENCY_TTL_SECONDS (86400), so every binding has expired.
KEY_RETENTION_MINUTES = 24 * 60 + 1
FINAL = {"SUCCEEDED", "DECLINED", "NEEDS_REVIEW"}


SEEN: Counter[str] = Counter()  # what the runs exercised, reported in pytest's summary


def label(text: str) -> None:
    """Count what a step exercised (crash points, answers, end states), in SEEN and in
    hypothesis's own statistics when a hypothesis test is running."""
    SEEN[text] += 1
    with contextlib.suppress(InvalidArgument):
        event(text)


class Killed(BaseException):
    """The runtime ending an invocation (timeout, out of memory): nothing can catch it."""


class Clock:
    """The wall clock every environment reads (simulated, so time can pass in a step)."""

    def __init__(self) -> None:
        self.moment = dt.datetime.now(dt.UTC)

    def now(self) -> dt.datetime:
        self.moment += dt.timedelta(milliseconds=1)
        return self.moment

    def advance(self, seconds: int) -> dt.datetime:
        self.moment += dt.timedelta(seconds=seconds)
        return self.moment


@dataclasses.dataclass
class Fault:
    """What to do at the `index`-th AWS call of the next invocation: crash or throttle,
    before the call is made or after it took effect."""

    # "crash" | "throttle" | "double" (a throttle, and the next call throttled) | "resent"
    # (after the call took effect its answer is lost and the SDK sends it again) | "lossy"
    # (a throttle, then every later call of the invocation resent so) | "late" (before: the
    # call is answered with a throttle and made only once the invocation has answered)
    kind: str
    index: int
    phase: str  # "before" | "after"


class CallPlan:
    """Counts one environment's AWS calls in an invocation, injects the fault at its call,
    and records which calls were made (to check what a replay did not do)."""

    def __init__(self) -> None:
        self.fault: Fault | None = None
        self.count = 0
        self.calls: list[tuple[str, str]] = []
        self.fired: str | None = None
        self.params: dict[int, tuple[Any, dict[str, Any]]] = {}
        self.lossy = False
        self.resending = False
        self.held: list[tuple[str, dict[str, Any]]] = []  # `late` calls AWS has not made yet

    def arm(self, fault: Fault | None) -> None:
        self.fault, self.count, self.calls, self.fired = fault, 0, [], None
        self.params, self.lossy, self.held = {}, False, []

    def install(self, client: Any) -> None:
        # provide-client-params: the API parameters, before anything is sent (the dict
        # itself: botocore fills in idempotency tokens afterwards, and a resend reuses them).
        client.meta.events.register(
            "provide-client-params", lambda params, model, **_: self._before(client, params, model)
        )
        client.meta.events.register("after-call", self._after)

    def _target(self, params: dict[str, Any]) -> str:
        return str(params.get("TableName") or params.get("QueueUrl", "")).rsplit("/", 1)[-1]

    def _before(self, client, params, model):
        index = self.count
        self.count += 1
        self.calls.append((model.name, self._target(params)))
        self.params[index] = (client, params)
        self._maybe(index, "before", model.name)

    def _after(self, model, **_):
        if self.lossy and not self.resending:
            self._resend(self.count - 1, model.name)
            return
        self._maybe(self.count - 1, "after", model.name)

    def _maybe(self, index: int, phase: str, operation: str) -> None:
        fault = self.fault
        if fault is None or fault.index != index or fault.phase != phase:
            return
        self.fault = None
        self.fired = self.fired or f"{fault.kind} {phase} {operation}"
        if fault.kind == "double":  # the next call fails too: a lost answer, then its read-back
            self.fault = Fault("throttle", index + 1, "before")
        self.lossy = fault.kind == "lossy"
        if fault.kind == "crash":
            raise Killed(self.fired)
        if fault.kind == "resent":
            self._resend(index, operation)
            return
        if fault.kind == "late":  # the call is held, not made: `land` makes it later
            self.held.append((operation, copy.deepcopy(self.params[index][1])))
        raise aws_error("ThrottlingException", operation)

    def land(self, clients: dict[str, Any]) -> None:
        """Make the calls AWS held (a conditional write may be refused now: that is its
        outcome), with the model's clients (never faulty)."""
        held, self.held = self.held, []
        for operation, params in held:
            client = clients["sqs" if "QueueUrl" in params else "dynamodb"]
            with contextlib.suppress(ClientError):
                getattr(client, xform_name(operation))(**params)
            label(f"landed late: {operation}")

    def _resend(self, index: int, operation: str) -> None:
        """What botocore's retry does after a lost answer (a read timeout): the same call
        again, whose answer (or error) the caller gets. TransactWriteItems carries a
        ClientRequestToken, so DynamoDB answers its resend as the first (moto does not)."""
        if operation == "TransactWriteItems":
            return
        client, params = self.params[index]
        self.resending = True
        try:
            getattr(client, xform_name(operation))(**copy.deepcopy(params))
        finally:
            self.resending = False


class Environment:
    """One Lambda execution environment of the processing function: its own clients, its own
    acquirer object. A crash ends it; the next invocation gets a fresh one."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.plan = CallPlan()
        self.last_fault: str | None = None  # what the last invocation had injected, if anything
        self.start()

    def start(self) -> None:
        world = self.world
        self.dynamodb = world.session.client("dynamodb")
        self.sqs = world.session.client("sqs")
        for client in (self.dynamodb, self.sqs):
            self.plan.install(client)
        runtime = world.module.build_runtime(world.config, dynamodb=self.dynamodb, sqs=self.sqs)
        store = TransactionStore(
            self.dynamodb, world.table, world.config.idempotency_ttl_seconds, world.clock.now
        )
        self.runtime = dataclasses.replace(runtime, store=store, max_attempts=MAX_ATTEMPTS)

    def invoke(self, event: dict[str, Any], fault: Fault | None) -> dict[str, Any] | None:
        """The handler's answer, or None when the invocation was killed."""
        self.plan.arm(fault)
        self.world.module.runtime = lambda: self.runtime
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # EMF lines
                return self.world.module.handler(event, FakeLambdaContext())
        except Killed:
            label(f"killed: {self.plan.fired}")
            self.start()  # Lambda replaces the environment
            return None
        finally:
            self.last_fault = self.plan.fired
            if self.plan.fired:
                label(self.plan.fired)
            self.plan.fault = None
            self.plan.land({"dynamodb": self.world.dynamodb, "sqs": self.world.sqs})


class NoMoveTasks:
    """moto has no message move tasks: the model's `redrive` rule moves the DLQ itself."""

    def running(self, source_arn: str) -> bool:
        return True


class World:
    """The AWS account (moto), the clock, two processing environments, the health monitor."""

    def __init__(self, spec, session, modules) -> None:
        self.mock = mock_aws()
        self.mock.start()
        self.session = session
        self.spec = spec
        self.module = modules["processing"]
        self.original_runtime = self.module.runtime
        self.config = self.module.CONFIG
        assert self.config.idempotency_ttl_seconds < KEY_RETENTION_MINUTES * 60
        self.clock = Clock()
        created = spec.create_resources(_Clients(session), alarms=False)
        self.table = created["table_names"]["TransactionsTable"]
        self.ledger_table = created["table_names"]["AcquirerLedgerTable"]
        self.queue = created["queues"]["FailedTransactionsQueue"]
        self.dlq = created["queues"]["FailedTransactionsQueueDlq"]
        self.queue_arn = spec.resolver.get_att("FailedTransactionsQueue", "Arn")
        self.dynamodb = session.client("dynamodb")  # the model's own eyes, never faulty
        self.sqs = session.client("sqs")
        self.environments = [Environment(self), Environment(self)]
        health = modules["health"]
        self.health_module = health
        rt = health.build_runtime(
            health.CONFIG,
            dynamodb=self.dynamodb,
            sqs=self.sqs,
            cloudwatch=session.client("cloudwatch"),
            sns=session.client("sns"),
            move_tasks_sqs=self.sqs,
        )
        rt.recovery = dataclasses.replace(
            rt.recovery,
            move_tasks=NoMoveTasks(),
            transactions=TransactionStore(self.dynamodb, self.table, clock=self.clock.now),
        )
        self.health = rt

    def close(self) -> None:
        self.module.runtime = self.original_runtime
        self.mock.stop()

    def items(self, table: str) -> list[dict[str, Any]]:
        paginator = self.dynamodb.get_paginator("scan")
        return [i for page in paginator.paginate(TableName=table) for i in page["Items"]]

    def records(self) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """(transaction rows, key bindings) by id, from one scan."""
        rows, bindings = {}, {}
        for item in self.items(self.table):
            kind = item["recordType"]["S"]
            if kind == VOID_RECORD:  # a lost binding's unused id: nothing else in it
                assert set(item) == {"id", "recordType", "expiration"}, item
                continue
            (rows if kind == "transaction" else bindings)[item["id"]["S"]] = item
        return rows, bindings

    def live_binding(self, item_id: str) -> dict[str, Any] | None:
        """The key's binding unless it expired (TTL deletes lazily: moto never does)."""
        item = self.item(item_id)
        if item is None or int(item["expiration"]["N"]) < int(self.clock.moment.timestamp()):
            return None
        return item

    def item(self, item_id: str) -> dict[str, Any] | None:
        return self.dynamodb.get_item(
            TableName=self.table, Key={"id": {"S": item_id}}, ConsistentRead=True
        ).get("Item")

    def pending(self) -> int:
        """Transactions in the sweeper's index (exactly the pending ones: an invariant)."""
        return self.dynamodb.query(
            TableName=self.table, IndexName="pending-by-requeue", Select="COUNT",
            KeyConditionExpression="pendingShard = :p",
            ExpressionAttributeValues={":p": {"S": "pending"}},
        )["Count"]  # fmt: skip

    def charges(self) -> dict[str, str]:
        """Ledger key -> provider reference of each approved charge."""
        return {
            i["idempotencyKey"]["S"]: i["providerReference"]["S"]
            for i in self.items(self.ledger_table)
            if i.get("outcome", {}).get("S") == "approved"
        }


@dataclasses.dataclass
class _Clients:
    """What PlatformSpec.create_resources expects of `aws`."""

    session: Any

    def client(self, service: str) -> Any:
        return self.session.client(service)


# Uniform over every fault point (sampled_from does not lean towards small indexes the way
# integers() does when shrinking-friendly generation starts), and sometimes none.
faults = st.sampled_from(
    [None] * 8
    + [Fault(kind, index, phase) for kind in ("crash", "throttle", "double") for index in range(8)
       for phase in ("before", "after")]
    + [Fault("resent", index, "after") for index in range(8)]
    + [Fault("lossy", index, phase) for index in range(8) for phase in ("before", "after")]
    + [Fault("late", index, "before") for index in range(8)]
)  # fmt: skip
REQUESTS = ["new"] * 5 + ["retry"] * 3 + ["reuse"] * 2


class PaymentWorld(RuleBasedStateMachine):
    """The model: what clients sent and were told, and what must hold of the world."""

    def __init__(self, spec, session, modules) -> None:
        super().__init__()
        self.world = World(spec, session, modules)
        self.accepted: dict[tuple[str, str, str], str] = {}  # scope -> transaction id
        self.unbindable: set[str] = set()  # rows whose binding has expired (may be replaced)
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.in_flight: list[str] = []  # receipt handles received and not yet deleted

    # ---- requests ----------------------------------------------------------------------

    @initialize(data=st.data(), faults_drawn=st.lists(faults, min_size=3, max_size=3))
    def opening_payments(self, data, faults_drawn) -> None:
        """Every run starts with a few requests (and their faults), so none is empty."""
        assert self.world.records() == ({}, {})
        for index, fault in enumerate(faults_drawn):
            self._request(data, index % 2, fault)

    @rule(data=st.data(), env=st.integers(0, 1), fault=faults, burst=st.integers(1, 3))
    def pay(self, data, env, fault, burst) -> None:
        """Requests: each a new payment, a retry of an earlier request, or a key reused with
        another body; the fault (if any) hits the first one."""
        for index in range(burst):
            self._request(data, env, dataclasses.replace(fault) if fault and not index else None)

    def _request(self, data, env, fault) -> None:
        choice = data.draw(st.sampled_from(REQUESTS), label="request")
        if choice != "new" and self.requests:
            caller, key, body = data.draw(st.sampled_from(self.requests), label="earlier")
            if choice == "reuse":
                body = {**body, "amount": f"{data.draw(st.integers(1, 999))}.00"}
        else:
            caller = data.draw(st.sampled_from(CALLERS), label="caller")
            key = data.draw(st.sampled_from(KEYS), label="key")
            body = {
                "amount": f"{data.draw(st.integers(1, 999))}.00",
                "currency": "USD",
                "paymentToken": data.draw(st.sampled_from(TOKENS), label="token"),
                "merchantId": data.draw(st.sampled_from(["mer_one", "mer_two"]), label="merchant"),
            }
        self.requests.append((caller, key, body))
        self._send(caller, key, body, self.world.environments[env], fault)

    def _send(self, caller, key, body, environment, fault) -> None:
        world = self.world
        payment = validate_payment(body, world.config.api.rules)
        scope = KeyScope(caller, payment.merchant_id, key)
        before = world.live_binding(scope.item_id)  # an expired binding leaves the key free
        expired = world.item(scope.item_id) if before is None else None
        event = api_event(
            "apigw_rest_post_process_payment", body, {"Idempotency-Key": key}, caller=caller
        )
        response = environment.invoke(event, fault)
        if response is None:
            return  # killed: the client saw a gateway error and may retry later
        status = response["statusCode"]
        answer = body_of(response)
        label(f"answered {status}")
        assert status in (201, 202, 422, 503, 500), response
        assert status < 500 or environment.last_fault, "a 5xx with nothing failing"
        if status == 500:
            return  # the binding's outcome could not be settled: like a killed invocation
        calls = environment.plan.calls
        if before is not None:
            same = before["requestHash"]["S"] == payment.fingerprint()
            # A 503 says nothing is kept and the key is free: never true of a bound key.
            assert status != 503, "503 for a key that is bound"
            if not same:
                assert status == 422, (status, answer)
                return
            # A replay: the current state, and nothing ran again.
            assert answer["transactionId"] == before["transactionId"]["S"]
            assert not [c for c in calls if c[1] == world.ledger_table], calls
            assert not [c for c in calls if c[0] == "SendMessage"], calls
        elif status == 503:
            # Nothing kept: the key is free (and, bound with it or not at all, no row: the
            # invariants count rows against bindings after this step).
            assert world.live_binding(scope.item_id) is None
            return
        else:
            assert status in (201, 202)
        transaction_id = answer["transactionId"]
        if expired is not None:  # a free key binds a new payment, never replays the old one
            assert transaction_id != expired["transactionId"]["S"], "replayed an expired key"
        row = world.item(transaction_id)
        assert row is not None, "a 201/202 without a durable row"
        assert row["caller"]["S"] == caller
        if status == 201:
            assert row["status"]["S"] in ("SUCCEEDED", "DECLINED")
        self.accepted[(caller, payment.merchant_id, key)] = transaction_id

    # ---- the queue, the DLQ, time ---------------------------------------------------------

    @rule(env=st.integers(0, 1), fault=faults)
    def deliver(self, env, fault) -> None:
        """One poll of the event source mapping: a batch, maybe cut short by a crash."""
        world = self.world
        messages = world.sqs.receive_message(
            QueueUrl=world.queue, MaxNumberOfMessages=10, VisibilityTimeout=600,
            AttributeNames=["All"],
        ).get("Messages", [])  # fmt: skip
        if not messages:
            return
        self.in_flight += [m["ReceiptHandle"] for m in messages]
        event = {"Records": [sqs_record(m, world.queue_arn) for m in messages]}
        response = world.environments[env].invoke(event, fault)
        if response is None:
            return  # killed mid-batch: nothing deleted, every message comes back
        failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
        for message in messages:
            handle = message["ReceiptHandle"]
            self.in_flight.remove(handle)
            if message["MessageId"] in failed:
                world.sqs.change_message_visibility(
                    QueueUrl=world.queue, ReceiptHandle=handle, VisibilityTimeout=0
                )
                continue
            # Acknowledged: only once its payment is finished (never deleted unprocessed).
            row = world.item(json.loads(message["Body"])["transactionId"])
            assert row is not None and row["status"]["S"] in FINAL, row
            world.sqs.delete_message(QueueUrl=world.queue, ReceiptHandle=handle)

    @rule()
    def visibility_timeouts_run_out(self) -> None:
        """Messages a killed invocation held become visible again."""
        for handle in self.in_flight:
            with contextlib.suppress(Exception):
                self.world.sqs.change_message_visibility(
                    QueueUrl=self.world.queue, ReceiptHandle=handle, VisibilityTimeout=0
                )
        self.in_flight = []

    @rule()
    def redrive(self) -> None:
        """The DLQ moved back to the queue (the health monitor's move task, or an operator)."""
        move_dlq(self.world)

    @rule(minutes=st.sampled_from([1, 16, 60, KEY_RETENTION_MINUTES]))
    def time_passes_and_the_sweeper_runs(self, minutes) -> None:
        world = self.world
        if minutes == KEY_RETENTION_MINUTES:  # every binding expires: its key is free again
            self.unbindable |= set(world.records()[0])
        now = world.clock.advance(minutes * 60)
        with contextlib.redirect_stdout(io.StringIO()):
            world.health_module.run_scheduled(world.health, now)

    # ---- what must hold after every step --------------------------------------------------

    @invariant()
    def the_books_agree(self) -> None:
        """No charge without a stored transaction; each key binds one existing transaction;
        every accepted payment has its row; every pending row is in the sweeper's index;
        attempts never exceed the cap."""
        world = self.world
        rows, bindings = world.records()
        for transaction_id, reference in world.charges().items():
            row = rows.get(transaction_id)
            assert row is not None, f"charged {transaction_id} with no row"
            assert row["status"]["S"] != "DECLINED"
            if row["status"]["S"] == "SUCCEEDED":
                assert row["providerReference"]["S"] == reference
        bound = [b["transactionId"]["S"] for b in bindings.values()]
        assert len(bound) == len(set(bound)) and set(bound) <= set(rows)
        assert set(rows) - set(bound) <= self.unbindable, "a row whose key was never free"
        assert set(self.accepted.values()) <= set(rows)
        for row in rows.values():
            assert ("pendingShard" in row) == (row["status"]["S"] in PENDING), row
            assert int(row["attempts"]["N"]) <= MAX_ATTEMPTS

    # ---- the end ---------------------------------------------------------------------------

    def teardown(self) -> None:
        try:
            self._settle()
            self._every_payment_has_its_outcome()
        finally:
            self.world.close()

    def _settle(self) -> None:
        """No more faults: everything the platform does by itself, until nothing is pending."""
        world = self.world
        for _ in range(40):
            self.visibility_timeouts_run_out()
            for _ in range(50):
                self.deliver(env=0, fault=None)
                if not visible(world, world.queue):
                    break
            move_dlq(world)
            if not world.pending():
                return
            self.time_passes_and_the_sweeper_runs(minutes=16)
        raise AssertionError("payments still pending after the platform settled")

    def _every_payment_has_its_outcome(self) -> None:
        (rows, _), charges = self.world.records(), self.world.charges()
        for transaction_id, row in rows.items():  # accepted or not answered: none is lost
            status = row["status"]["S"]
            assert status in FINAL, row
            if status == "SUCCEEDED":
                assert charges.get(transaction_id) == row["providerReference"]["S"]
            elif status == "DECLINED":
                assert transaction_id not in charges
        for transaction_id in self.accepted.values():
            assert transaction_id in rows
        label(f"final: {sorted(r['status']['S'] for r in rows.values())}")


def visible(world: World, url: str) -> int:
    attributes = world.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def move_dlq(world: World) -> int:
    """What StartMessageMoveTask does: every DLQ message back to the queue."""
    moved = 0
    while batch := world.sqs.receive_message(QueueUrl=world.dlq, MaxNumberOfMessages=10).get(
        "Messages"
    ):
        for message in batch:
            world.sqs.send_message(QueueUrl=world.queue, MessageBody=message["Body"])
            world.sqs.delete_message(QueueUrl=world.dlq, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return moved


@pytest.mark.requirement("S001-INTEGRITY")
def test_crash_consistency(spec, boto_session, modules):
    """Run the model (CRASH_SETTINGS)."""
    SEEN.clear()
    run_state_machine_as_test(
        lambda: PaymentWorld(spec, boto_session, modules), settings=CRASH_SETTINGS
    )
    crashes = sorted((k, n) for k, n in SEEN.items() if k.startswith("killed: "))
    answers = sorted((k, n) for k, n in SEEN.items() if k.startswith("answered "))
    report(
        f"crash model: {CRASH_SETTINGS.max_examples} runs of up to "
        f"{CRASH_SETTINGS.stateful_step_count} steps; answers "
        + ", ".join(f"{k.split()[1]}: {n}" for k, n in answers)
    )
    report(
        "  crashes: " + ", ".join(f"{k.removeprefix('killed: crash ')} x{n}" for k, n in crashes)
    )


API_CALLS = 8  # an API payment makes at most this many AWS calls (bind, ledger x2, ...)
BATCH_CALLS = 12  # calls of a batch of a few messages


@pytest.mark.requirement("S001-INTEGRITY")
@pytest.mark.parametrize(
    ("kind", "phase"),
    [("crash", "before"), ("crash", "after"), ("lossy", "before"), ("lossy", "after"),
     ("late", "before")],
)  # fmt: skip
def test_a_crash_at_every_call_of_one_payment(spec, boto_session, modules, phase, kind):
    """Every crash point, deterministically: for each call index, a payment the acquirer
    answers on the first try and one it times out on, each killed at that call of its API
    invocation (or, `lossy`, throttled there and every later call's answer lost and resent
    by the SDK; or, `late`, answered with a throttle and made after the invocation answered)
    and retried by its client, then a queue batch hit at that call; then the platform
    settles and the model's end-state checks run."""
    machine = PaymentWorld(spec, boto_session, modules)
    try:
        env = machine.world.environments[0]
        for index in range(max(API_CALLS, BATCH_CALLS)):
            fault = Fault(kind, index, phase)
            for token in ("tok_test_approve", "tok_test_flaky"):
                body = {"amount": "10.00", "currency": "USD", "paymentToken": token,
                        "merchantId": "mer_one"}  # fmt: skip
                key = f"key-{token}-{index}"
                machine._send("caller-one", key, body, env, fault if index < API_CALLS else None)
                machine._send("caller-one", key, body, env, None)  # the client's retry
            machine.deliver(env=0, fault=dataclasses.replace(fault))
            machine.the_books_agree()
        machine._settle()
        machine._every_payment_has_its_outcome()
    finally:
        machine.world.close()
