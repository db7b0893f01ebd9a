"""Fixtures for the handler tests: the template's resources in moto, the template's
environment for each function, real event shapes from tests/fixtures, and the
functions' log output captured (and checked for card numbers after every test).
"""

from __future__ import annotations

import copy
import importlib
import io
import json
import os
import sys
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from handlers.payments.cards import contains_pan
from handlers.payments.provider import LEDGER_KEY, ChargeStatus
from handlers.payments.store import VOID_RECORD
from tests.figures import report  # noqa: F401 - the handler tests import it from here
from tests.handlers.platform import REGION, PlatformSpec, platform_template

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
HANDLER_MODULES = ("validation", "processing", "health")

# Never reach a real account, whatever the developer's shell holds.
os.environ.update(
    AWS_DEFAULT_REGION=REGION,
    AWS_REGION=REGION,
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
)
os.environ.pop("AWS_PROFILE", None)


@dataclass
class FakeLambdaContext:
    """The attributes of the Lambda context object the code and Powertools read."""

    function_name: str = "payment-processor-test"
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    remaining_ms: int = 25_000

    @property
    def invoked_function_arn(self) -> str:
        """The function's ARN."""
        return f"arn:aws:lambda:{REGION}:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        """Time left before the (simulated) timeout."""
        return self.remaining_ms


@pytest.fixture(scope="session")
def spec() -> PlatformSpec:
    """The generated platform template, resolved."""
    return PlatformSpec.from_template(platform_template())


def import_handler(spec: PlatformSpec, module: str) -> ModuleType:
    """Import handlers.<module> with exactly the environment the template gives it."""
    name = f"handlers.{module}"
    with mock.patch.dict(os.environ, spec.env(module)):
        if name in sys.modules:
            return sys.modules[name]
        return importlib.import_module(name)


@pytest.fixture(scope="session")
def modules(spec) -> dict[str, ModuleType]:
    """The three handler modules, each imported under its own template environment."""
    return {module: import_handler(spec, module) for module in HANDLER_MODULES}


@pytest.fixture(autouse=True)
def captured_logs(request) -> io.StringIO:
    """Every log line the functions write during a test; none may hold a card number."""
    buffer = io.StringIO()
    loaded = [
        sys.modules[f"handlers.{m}"] for m in HANDLER_MODULES if f"handlers.{m}" in sys.modules
    ]
    if "modules" in request.fixturenames:
        loaded = list(request.getfixturevalue("modules").values())
    previous = [module.logger.registered_handler.setStream(buffer) for module in loaded]
    yield buffer
    for module, stream in zip(loaded, previous, strict=True):
        module.logger.registered_handler.setStream(stream)
    leaked = [line for line in buffer.getvalue().splitlines() if contains_pan(line)]
    assert not leaked, f"card number in a log line: {leaked[:1]}"


@pytest.fixture(scope="session")
def boto_session():
    """One botocore session for the run: a client from it costs ms, a new session ~100 ms."""
    return boto3.Session(region_name=REGION)


# Clients are stateless and moto intercepts at the HTTP layer, so one client per
# service serves every test; tests that add event hooks take a fresh one.
_CLIENTS: dict[str, Any] = {}


@pytest.fixture
def aws(spec, boto_session):
    """moto with the template's table, queues, topic and alarms."""
    with mock_aws():
        created = spec.create_resources(Aws(spec=spec, session=boto_session, created={}))
        yield Aws(spec=spec, session=boto_session, created=created)


@dataclass
class Aws:
    """Handles on the moto resources of one test."""

    spec: PlatformSpec
    session: Any
    created: dict[str, Any]

    def client(self, service: str) -> Any:
        """The shared client of a service (add no event hooks to it)."""
        if service not in _CLIENTS:
            _CLIENTS[service] = self.session.client(service)
        return _CLIENTS[service]

    def fresh_client(self, service: str) -> Any:
        """A client of its own, for a test that injects faults through its event hooks."""
        return self.session.client(service)

    @property
    def table(self) -> str:
        """The transactions table name (from the template)."""
        return self.created["table_names"]["TransactionsTable"]

    @property
    def ledger_table(self) -> str:
        """The simulated acquirer's ledger table name (from the template)."""
        return self.created["table_names"]["AcquirerLedgerTable"]

    def queue_url(self, logical: str) -> str:
        """URL of a queue by logical id."""
        return self.created["queues"][logical]

    def queue_depth(self, logical: str) -> int:
        """Visible plus in-flight messages of a queue."""
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=self.queue_url(logical),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return sum(int(value) for value in attributes.values())

    def kept_ids(self) -> list[str]:
        """Ids of the table's items that hold anything: every item but the void markers a
        lost binding leaves (store.VOID_RECORD: an unused random id and its expiry, checked
        here to hold nothing else)."""
        paginator = self.client("dynamodb").get_paginator("scan")
        kept = []
        for page in paginator.paginate(TableName=self.table):
            for item in page["Items"]:
                if item.get("recordType", {}).get("S") == VOID_RECORD:
                    assert set(item) == {"id", "recordType", "expiration"}, item
                else:
                    kept.append(item["id"]["S"])
        return kept

    def scan_ids(self, prefix: str) -> list[str]:
        """Ids of the table's items starting with a prefix."""
        paginator = self.client("dynamodb").get_paginator("scan")
        return [
            item["id"]["S"]
            for page in paginator.paginate(TableName=self.table)
            for item in page["Items"]
            if item["id"]["S"].startswith(prefix)
        ]


def load_event(name: str) -> dict[str, Any]:
    """A fixture event (a real API Gateway / SQS / EventBridge shape)."""
    return json.loads((FIXTURES / f"{name}.json").read_text())


def api_event(
    name: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    *,
    path: str | None = None,
    method: str | None = None,
    path_parameters: dict[str, str] | None = None,
    raw_body: str | None = None,
    caller: str | None = None,
) -> dict[str, Any]:
    """A REST proxy event from a fixture, with the given body and headers.

    `headers` replaces the fixture's Idempotency-Key (pass {} for none) and is
    mirrored into multiValueHeaders, as API Gateway does. `caller` replaces the
    API key id API Gateway puts in requestContext.identity.apiKeyId.
    """
    event = copy.deepcopy(load_event(name))
    if caller is not None:
        event["requestContext"]["identity"]["apiKeyId"] = caller
    if raw_body is not None:
        event["body"] = raw_body
    elif body is not None:
        event["body"] = json.dumps(body)
    if headers is not None:
        for section in ("headers", "multiValueHeaders"):
            if event[section] is not None:
                event[section] = {
                    k: v for k, v in event[section].items() if k.lower() != "idempotency-key"
                }
        for key, value in headers.items():
            event["headers"][key] = value
            event["multiValueHeaders"][key] = [value]
    if path is not None:
        event["path"] = path
        event["requestContext"]["path"] = "/prod" + path
    if method is not None:
        event["httpMethod"] = event["requestContext"]["httpMethod"] = method
    if path_parameters is not None:
        event["pathParameters"] = path_parameters
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    return event


def payment_body(**overrides: Any) -> dict[str, Any]:
    """A valid payment request body."""
    body = {
        "amount": "12.50",
        "currency": "USD",
        "paymentToken": "tok_test_approve",
        "merchantId": "mer_0042",
        "description": "Order 1042",
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def new_key() -> str:
    """A fresh Idempotency-Key (a UUID, as clients send)."""
    return str(uuid.uuid4())


@dataclass
class Ledger:
    """The simulated acquirer's books, read from its DynamoDB ledger (what every execution
    environment's acquirer object shares, as a real acquirer's server-side records)."""

    aws: Aws

    def items(self) -> dict[str, dict[str, Any]]:
        """Idempotency key -> its ledger item."""
        paginator = self.aws.client("dynamodb").get_paginator("scan")
        return {
            item[LEDGER_KEY]["S"]: item
            for page in paginator.paginate(TableName=self.aws.ledger_table)
            for item in page["Items"]
        }

    def decisions(self) -> dict[str, str]:
        """Key -> the decision recorded for it (approved, declined, failed)."""
        return {key: i["outcome"]["S"] for key, i in self.items().items() if "outcome" in i}

    def charges(self) -> dict[str, str]:
        """Key -> provider reference of every approved charge: the money that moved."""
        approved = ChargeStatus.APPROVED.value
        return {
            key: item["providerReference"]["S"]
            for key, item in self.items().items()
            if item.get("outcome", {}).get("S") == approved
        }

    def attempts(self, key: str) -> int:
        """How many times a charge with this key reached the acquirer."""
        item = self.items().get(key)
        return int(item["attempts"]["N"]) if item else 0


@dataclass
class Processing:
    """The processing function wired to moto; `ledger` shows what the acquirer recorded."""

    module: ModuleType
    aws: Aws
    ledger: Ledger
    remaining_ms: int = 25_000

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """Call the Lambda handler as the runtime would."""
        return self.module.handler(event, FakeLambdaContext(remaining_ms=self.remaining_ms))

    def pay(self, body: Any, key: str | None = None, **kwargs: Any) -> dict[str, Any]:
        """POST /process-payment with an Idempotency-Key (from the fixture's API key id unless
        `caller=` says another)."""
        headers = {"Idempotency-Key": key or new_key()}
        return self.invoke(api_event("apigw_rest_post_process_payment", body, headers, **kwargs))

    def get(self, transaction_id: str, caller: str | None = None) -> dict[str, Any]:
        """GET /payments/{transactionId}."""
        return self.invoke(
            api_event(
                "apigw_rest_get_payment",
                path=f"/payments/{transaction_id}",
                path_parameters={"transactionId": transaction_id},
                caller=caller,
            )
        )

    @property
    def runtime(self) -> Any:
        """The execution environment's runtime the handler uses now."""
        return self.module.runtime()

    def environment(self) -> Any:
        """A new execution environment: its own clients and its own acquirer object."""
        return self.module.build_runtime(
            self.module.CONFIG,
            dynamodb=self.aws.fresh_client("dynamodb"),
            sqs=self.aws.fresh_client("sqs"),
        )

    def use(self, runtime: Any) -> None:
        """Route the next invocations to this execution environment."""
        self.module.runtime = lambda: runtime


@pytest.fixture
def processing(modules, aws, monkeypatch) -> Processing:
    """handlers.processing with a fresh runtime on this test's moto account."""
    module = modules["processing"]
    runtime = module.build_runtime(
        module.CONFIG, dynamodb=aws.client("dynamodb"), sqs=aws.client("sqs")
    )
    monkeypatch.setattr(module, "runtime", lambda: runtime)
    return Processing(module=module, aws=aws, ledger=Ledger(aws))


def response_headers(response: dict[str, Any]) -> dict[str, str]:
    """Response headers, lower-cased, from `headers` and `multiValueHeaders` alike."""
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    for name, values in (response.get("multiValueHeaders") or {}).items():
        headers[name.lower()] = ",".join(values)
    return headers


def body_of(response: dict[str, Any]) -> Any:
    """The JSON body of a handler response (fails if it is not JSON)."""
    return json.loads(response["body"])


def aws_error(code: str, operation: str) -> ClientError:
    """The ClientError botocore raises for an AWS error code."""
    return ClientError(
        {
            "Error": {"Code": code, "Message": "injected by the test"},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        operation,
    )


def item_id(params: dict[str, Any]) -> str:
    """The `id` a DynamoDB item call addresses."""
    key = params.get("Item") or params.get("Key") or {}
    return key.get("id", {}).get("S", "")


@contextmanager
def failing(
    client: Any,
    operation: str,
    when: Any = None,
    code: str = "ProvisionedThroughputExceededException",
):
    """Make `operation` on `client` raise `code` whenever `when(params)` is true."""
    event = f"provide-client-params.{client.meta.service_model.service_name}.{operation}"
    calls: list[dict[str, Any]] = []

    def hook(params: dict[str, Any], **_: Any) -> None:
        if when is None or when(params):
            calls.append(params)
            raise aws_error(code, operation)

    client.meta.events.register(event, hook, unique_id=f"failing-{operation}")
    try:
        yield calls
    finally:
        client.meta.events.unregister(event, unique_id=f"failing-{operation}")


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """An SQS event record, as the event source mapping builds it from a received message."""
    record = copy.deepcopy(load_event("sqs_failed_transactions_batch")["Records"][0])
    record.update(
        messageId=message["MessageId"],
        receiptHandle=message["ReceiptHandle"],
        body=message["Body"],
        md5OfBody=message["MD5OfBody"],
        eventSourceARN=queue_arn,
    )
    record["attributes"].update(
        {k: v for k, v in message.get("Attributes", {}).items() if k in record["attributes"]}
    )
    return record


def deliver(processing: Processing, logical: str = "FailedTransactionsQueue") -> tuple[int, int]:
    """One poll of the event source mapping: receive a batch, invoke, delete the successes.

    Failed messages are made visible again at once, as if their visibility
    timeout had passed; SQS moves them to the DLQ after maxReceiveCount.
    Returns (delivered, failed).
    """
    sqs = processing.aws.client("sqs")
    url = processing.aws.queue_url(logical)
    arn = processing.aws.spec.resolver.get_att(logical, "Arn")
    messages = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]
    ).get("Messages", [])
    if not messages:
        return 0, 0
    response = processing.invoke({"Records": [sqs_record(m, arn) for m in messages]})
    failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    for message in messages:
        if message["MessageId"] in failed:
            sqs.change_message_visibility(
                QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
        else:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return len(messages), len(failed)


def drain(processing: Processing, rounds: int = 50) -> int:
    """Deliver until the queue is empty (or `rounds` polls); the number of deliveries."""
    total = 0
    for _ in range(rounds):
        delivered, _failed = deliver(processing)
        if delivered == 0:
            break
        total += delivered
    return total


@pytest.fixture(autouse=True, scope="session")
def dynamodb_as_atomic_as_dynamodb():
    """moto checks a condition and then writes without a lock (two threads can both pass
    `attribute_not_exists`), and rolls a failed TransactWriteItems back by restoring copies
    of whole tables (under threads, erasing others' committed items; and 70 ms per binding at
    1,500 items). The emulator's fix gives it DynamoDB's atomicity; the code under test holds
    no lock of its own: this only makes the mock honest."""
    from emulator.patches import install_dynamodb_atomicity

    install_dynamodb_atomicity()


@dataclass
class Health:
    """The health function wired to moto, with move tasks answered by a Stubber
    (moto implements neither StartMessageMoveTask nor ListMessageMoveTasks)."""

    module: ModuleType
    aws: Aws
    runtime: Any
    stubber: Stubber

    def get(self, headers: dict[str, str] | None = None) -> dict[str, Any]:
        """GET /health through the Lambda handler."""
        event = api_event("apigw_rest_get_health")
        if headers is not None:
            event["headers"], event["multiValueHeaders"] = (
                headers,
                {k: [v] for k, v in headers.items()},
            )
        return self.module.handler(
            event, FakeLambdaContext(function_name="payment-health-monitor-test")
        )

    def scheduled(self) -> dict[str, Any]:
        """The EventBridge schedule's invocation."""
        event = load_event("eventbridge_scheduled_health")
        return self.module.handler(
            event, FakeLambdaContext(function_name="payment-health-monitor-test")
        )


@pytest.fixture
def health(modules, aws, monkeypatch) -> Health:
    """handlers.health with a fresh runtime on this test's moto account."""
    module = modules["health"]
    move_client = aws.fresh_client("sqs")
    stubber = Stubber(move_client)
    stubber.activate()
    runtime = module.build_runtime(
        module.CONFIG,
        dynamodb=aws.client("dynamodb"),
        sqs=aws.client("sqs"),
        cloudwatch=aws.client("cloudwatch"),
        sns=aws.client("sns"),
        move_tasks_sqs=move_client,
    )
    monkeypatch.setattr(module, "runtime", lambda: runtime)
    yield Health(module=module, aws=aws, runtime=runtime, stubber=stubber)
    stubber.deactivate()
