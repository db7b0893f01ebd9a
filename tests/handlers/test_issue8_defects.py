"""Issue 8's numbered defects, each reproduced through the functions' own entry points.

Every test here failed on the code before the fix (see the commit that added it); the
property it asserts is the issue's, not the fix's.
"""

from __future__ import annotations

import json

import pytest

from tests.handlers.conftest import (
    FakeLambdaContext,
    api_event,
    body_of,
    deliver,
    drain,
    failing,
    item_id,
    load_event,
    new_key,
    payment_body,
    response_headers,
)

ORIGIN = "https://app.example.com"


def pay_as(processing, caller, body, key):
    """POST /process-payment from the API key whose id is `caller`."""
    event = api_event("apigw_rest_post_process_payment", body, {"Idempotency-Key": key})
    event["requestContext"]["identity"]["apiKeyId"] = caller
    return processing.invoke(event)


def get_as(processing, caller, transaction_id):
    """GET /payments/{id} from the API key whose id is `caller`."""
    event = api_event(
        "apigw_rest_get_payment",
        path=f"/payments/{transaction_id}",
        path_parameters={"transactionId": transaction_id},
    )
    event["requestContext"]["identity"]["apiKeyId"] = caller
    return processing.invoke(event)


def queue_bodies(aws, logical="FailedTransactionsQueue"):
    sqs = aws.client("sqs")
    messages = sqs.receive_message(
        QueueUrl=aws.queue_url(logical), MaxNumberOfMessages=10, VisibilityTimeout=0
    ).get("Messages", [])
    return [m["Body"] for m in messages]


# ---- 1. a 202 payment can be lost, and a reused key is accepted -------------------------


@pytest.mark.requirement("S001-INTEGRITY")
def test_defect1_a_failed_first_write_is_never_a_202_without_a_row(processing):
    """The first DynamoDB write of the transaction fails transiently: either 503 with
    Retry-After and nothing kept, or a 202 whose row GET shows and whose key stays bound."""
    key = new_key()
    dynamodb = processing.module.runtime().store._client
    first_writes = ("PutItem", "TransactWriteItems")
    with (
        failing(dynamodb, first_writes[0], lambda p: item_id(p).startswith("txn_")),
        failing(dynamodb, first_writes[1]),
    ):
        first = processing.pay(payment_body(), key)
    # 500 when DynamoDB refused even settling the binding's outcome (store.bind): no promise.
    assert first["statusCode"] in (202, 503, 500), first
    if first["statusCode"] == 503:
        assert response_headers(first)["retry-after"]
    if first["statusCode"] in (503, 500):
        assert processing.aws.kept_ids() == []
        assert processing.aws.queue_depth("FailedTransactionsQueue") == 0
        return
    transaction_id = body_of(first)["transactionId"]
    assert processing.get(transaction_id)["statusCode"] == 200  # a durable row exists
    other = processing.pay(payment_body(amount="99.99"), key)
    assert other["statusCode"] == 422


@pytest.mark.requirement("S001-INTEGRITY")
def test_defect1_every_202_ends_visible_and_charged_once(processing):
    """Whatever the first write did, every payment answered 202 ends with an outcome GET
    shows once the queue has been drained; a different body for the key never charges."""
    key = new_key()
    dynamodb = processing.module.runtime().store._client
    with (
        failing(dynamodb, "PutItem", lambda p: item_id(p).startswith("txn_")),
        failing(dynamodb, "TransactWriteItems"),
    ):
        first = processing.pay(payment_body(), key)
    reused = processing.pay(payment_body(amount="99.99"), key)
    drain(processing)
    if first["statusCode"] == 202:
        assert reused["statusCode"] == 422
        transaction_id = body_of(first)["transactionId"]
        final = body_of(processing.get(transaction_id))
        assert final["status"] not in ("RECEIVED", "QUEUED"), final
        assert final["amount"] == "12.50"


# ---- 2. keys and payments are not scoped to the caller ---------------------------------


def test_defect2_two_callers_may_use_the_same_key(processing):
    key = "order-00000001"
    first = pay_as(processing, "caller-one", payment_body(), key)
    second = pay_as(processing, "caller-two", payment_body(amount="30.00"), key)
    assert first["statusCode"] == 201 and second["statusCode"] == 201, (first, second)
    assert body_of(first)["transactionId"] != body_of(second)["transactionId"]
    assert body_of(second)["amount"] == "30.00"


def test_defect2_the_transaction_id_is_not_a_function_of_the_key(processing):
    """The same key from two callers (same body) gives two unrelated ids; the old id was a
    public hash of the key, so it was the same for both."""
    key = "order-00000002"
    ids = {
        body_of(pay_as(processing, caller, payment_body(), key)).get("transactionId")
        for caller in ("caller-one", "caller-two")
    }
    assert len(ids) == 2


def test_defect2_another_callers_payment_is_404_like_a_missing_one(processing):
    paid = pay_as(processing, "caller-one", payment_body(description="secret order"), new_key())
    transaction_id = body_of(paid)["transactionId"]
    assert get_as(processing, "caller-one", transaction_id)["statusCode"] == 200
    foreign = get_as(processing, "caller-two", transaction_id)
    missing = get_as(processing, "caller-two", "txn_" + "a" * 32)
    assert foreign["statusCode"] == missing["statusCode"] == 404
    strip = lambda r: {k: v for k, v in body_of(r).items() if k != "correlationId"}  # noqa: E731
    assert strip(foreign) == strip(missing)
    assert "secret" not in foreign["body"] and "12.50" not in foreign["body"]


# ---- 3. card numbers get past the detector ----------------------------------------------


ISSUE_LAYOUTS = [
    "4111.1111.1111.1111",
    "4111/1111/1111/1111",
    "4111_1111_1111_1111",
    "4111,1111,1111,1111",
    "4111     1111     1111     1111",
    "4111 -- 1111 -- 1111 -- 1111",
    "4111\u20101111\u20101111\u20101111",
    "4111\u22121111\u22121111\u22121111",
    "Visa4111 1111 1111 1111",
    "".join(chr(0x0660 + int(d)) for d in "4111111111111111"),  # Arabic-Indic
    "".join(chr(0x0966 + int(d)) for d in "4111111111111111"),  # Devanagari
    "".join(chr(0xFF10 + int(d)) for d in "4111111111111111"),  # fullwidth
]


@pytest.mark.parametrize("written", ISSUE_LAYOUTS)
def test_defect3_the_issues_layouts_are_refused(processing, written, captured_logs):
    response = processing.pay(payment_body(description=f"card {written}"))
    assert response["statusCode"] == 400
    assert body_of(response)["error"]["details"][0]["code"] == "card_data_not_allowed"
    assert processing.aws.scan_ids("") == []
    assert processing.aws.queue_depth("FailedTransactionsQueue") == 0


def test_defect3_a_card_number_as_a_field_name_is_neither_logged_nor_echoed(
    processing, captured_logs
):
    body = {**payment_body(), "card_4111_1111_1111_1111": "x"}
    raw = json.dumps(body)
    for text in (raw, raw.replace("card_4111_1111_1111_1111", "4111111111111111")):
        event = api_event(
            "apigw_rest_post_process_payment", raw_body=text, headers={"Idempotency-Key": new_key()}
        )
        response = processing.invoke(event)
        assert response["statusCode"] == 400
        assert "1111" not in response["body"]
    assert "1111" not in captured_logs.getvalue()


def test_defect3_an_unknown_field_name_is_never_echoed(processing, captured_logs):
    body = {**payment_body(), "customerSecretNote": "x"}
    response = processing.pay(body)
    assert response["statusCode"] == 400
    assert "customerSecretNote" not in response["body"]
    assert "customerSecretNote" not in captured_logs.getvalue()


def test_defect3_the_log_redactor_catches_the_same_layouts(modules, captured_logs):
    logger = modules["processing"].logger
    for written in ISSUE_LAYOUTS:
        logger.info(f"mistake {written}")
    for line in captured_logs.getvalue().splitlines():
        digits = "".join(
            str(__import__("unicodedata").digit(c)) for c in line if c.isdigit() or c.isnumeric()
        )
        assert "4111111111111111" not in digits, line


# ---- 6. retry amplification -------------------------------------------------------------


class CountingProvider:
    """Counts calls to the provider (each one is a request to the acquirer)."""

    def __init__(self, inner):
        self.inner = inner
        self.calls = 0

    def charge(self, request):
        self.calls += 1
        return self.inner.charge(request)


def with_counting_provider(processing):
    """Route the function to an environment whose acquirer calls are counted."""
    import dataclasses

    runtime = processing.module.runtime()
    counting = CountingProvider(runtime.provider)
    processing.use(dataclasses.replace(runtime, provider=counting))
    return counting


@pytest.mark.requirement("S001-INTEGRITY")
def test_defect6_client_retries_of_a_queued_payment_run_nothing_again(processing):
    counting = with_counting_provider(processing)
    key = new_key()
    answers = [
        processing.pay(payment_body(paymentToken="tok_test_timeout"), key) for _ in range(20)
    ]
    assert {a["statusCode"] for a in answers} == {202}
    assert counting.calls == 1
    assert len(queue_bodies(processing.aws)) == 1


# ---- 7. messages deleted unprocessed ----------------------------------------------------


@pytest.mark.requirement("S001-ERROR-HANDLING", "S001-DLQ")
def test_defect7_unprocessable_messages_are_batch_item_failures(processing):
    good = load_event("sqs_failed_transactions_batch")["Records"][0]
    bodies = [
        "not json",
        json.dumps({"version": 99, "transactionId": "txn_" + "b" * 32}),
        json.dumps({"version": 1, "transactionId": "x"}),
        json.dumps({"version": 2, "transactionId": "txn_" + "c" * 32}),  # no such transaction
    ]
    records = [dict(good, messageId=f"m{i}", body=body) for i, body in enumerate(bodies)]
    response = processing.invoke({"Records": records})
    failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    assert failed == {f"m{i}" for i in range(len(bodies))}


@pytest.mark.requirement("S001-ERROR-HANDLING")
def test_defect7_a_message_conflicting_with_the_stored_transaction_is_not_dropped(processing):
    paid = processing.pay(payment_body(paymentToken="tok_test_flaky"))
    assert paid["statusCode"] == 202
    (body,) = queue_bodies(processing.aws)
    message = json.loads(body)
    message["payment"] = {**payment_body(), "amount": "999.00"}
    record = dict(
        load_event("sqs_failed_transactions_batch")["Records"][0],
        messageId="conflict",
        body=json.dumps(message),
    )
    response = processing.invoke({"Records": [record]})
    assert response["batchItemFailures"] == [{"itemIdentifier": "conflict"}]


# ---- 8. malformed events raise ----------------------------------------------------------


def _malformed_events(fixture):
    base = load_event(fixture)
    cases = {
        "null path": dict(base, path=None),
        "missing path": {k: v for k, v in base.items() if k != "path"},
        "null httpMethod": dict(base, httpMethod=None),
        "missing httpMethod": {k: v for k, v in base.items() if k != "httpMethod"},
        "null headers": dict(base, headers=None, multiValueHeaders=None),
        "missing headers": {
            k: v for k, v in base.items() if k not in ("headers", "multiValueHeaders")
        },
        "null requestContext": dict(base, requestContext=None),
        "missing requestContext": {k: v for k, v in base.items() if k != "requestContext"},
        "object body": dict(base, body={"amount": "1.00"}),
        "number body": dict(base, body=12),
        "list headers": dict(base, headers=["x"]),
    }
    return cases


def _answers(invoke, fixture):
    """Every malformed shape of the fixture's event answered: (case, status); each answer is
    JSON with the CORS header; nothing raised."""
    answers = {}
    for name, event in _malformed_events(fixture).items():
        response = invoke(event)
        assert response_headers(response)["access-control-allow-origin"] == ORIGIN, name
        body = body_of(response)
        assert isinstance(body, dict), name
        if response["statusCode"] >= 400:
            assert set(body) == {"error", "correlationId"}, name
        answers[name] = response["statusCode"]
    return answers


# Shapes a request can still be answered from (a header-less request, no request context).
STILL_A_REQUEST = {"null headers", "missing headers", "null requestContext",
                   "missing requestContext"}  # fmt: skip


def _assert_malformed_refused(answers, needs_caller):
    for name, status in answers.items():
        if name in STILL_A_REQUEST and not needs_caller:
            assert status in (200, 400), (name, status)
        else:
            assert 400 <= status < 500, (name, status)


@pytest.mark.requirement("S001-ERROR-HANDLING")
def test_defect8_validation_answers_every_event_shape(modules):
    handler = modules["validation"].handler
    answers = _answers(
        lambda e: handler(e, FakeLambdaContext()), "apigw_rest_post_validate_payment"
    )
    _assert_malformed_refused(answers, needs_caller=False)


@pytest.mark.requirement("S001-ERROR-HANDLING")
def test_defect8_processing_answers_every_event_shape(processing):
    answers = _answers(processing.invoke, "apigw_rest_post_process_payment")
    _assert_malformed_refused(answers, needs_caller=True)
    assert processing.aws.scan_ids("") == []


@pytest.mark.requirement("S001-ERROR-HANDLING", "S001-API-HEALTH")
def test_defect8_health_answers_every_event_shape(health):
    invoke = lambda e: health.module.handler(e, FakeLambdaContext())  # noqa: E731
    _assert_malformed_refused(_answers(invoke, "apigw_rest_get_health"), needs_caller=False)


# ---- 9. the health gate can be blind ----------------------------------------------------


@pytest.mark.requirement("S001-SELF-HEALING", "S001-HEALTH-FUNCTION")
def test_defect9_deferred_retries_make_processing_degraded(health):
    namespace = health.module.CONFIG.common.metrics_namespace
    health.aws.client("cloudwatch").put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": "RetryDeferred",
                "Dimensions": [{"Name": "service", "Value": "processing"}],
                "Value": 40,
            },
            {
                "MetricName": "ServerError",
                "Dimensions": [{"Name": "service", "Value": "processing"}],
                "Value": 3,
            },
        ],
    )
    assert body_of(health.get())["components"]["processing"] == "degraded"


@pytest.mark.requirement("S001-HEALTH-FUNCTION")
def test_defect9_describe_alarms_asks_for_metric_alarms_by_name_only(health):
    seen = []
    client = health.aws.client("cloudwatch")

    def record(params, **_):
        seen.append(params)

    client.meta.events.register(
        "provide-client-params.cloudwatch.DescribeAlarms", record, unique_id="seen"
    )
    try:
        health.get()
    finally:
        client.meta.events.unregister(
            "provide-client-params.cloudwatch.DescribeAlarms", unique_id="seen"
        )
    assert seen
    for params in seen:
        assert params["AlarmTypes"] == ["MetricAlarm"]
        assert params["AlarmNames"]


def test_defect7_and_1_the_consumer_never_acknowledges_a_payment_it_did_not_finish(processing):
    """A retry for a payment whose row is missing must not be acknowledged silently."""
    paid = processing.pay(payment_body(paymentToken="tok_test_flaky"))
    assert len(queue_bodies(processing.aws)) == 1
    transaction_id = body_of(paid)["transactionId"]
    processing.aws.client("dynamodb").delete_item(
        TableName=processing.aws.table, Key={"id": {"S": transaction_id}}
    )
    delivered, failed = deliver(processing)
    assert (delivered, failed) == (1, 1)


# ---- 4. the sweeper starves; nothing caps the retries -----------------------------------


class Killed(BaseException):
    """The runtime ending an invocation (timeout, out of memory): nothing catches it."""


def crash_on(client, operation, when):
    """Kill the invocation when `operation` is called with params matching `when`."""
    event = f"provide-client-params.dynamodb.{operation}"

    def hook(params, **_):
        if when(params):
            raise Killed(f"killed before {operation}")

    client.meta.events.register(event, hook, unique_id="crash-on")
    return lambda: client.meta.events.unregister(event, unique_id="crash-on")


class NoMoveTasks:
    """Move tasks reported as running, so the DLQ redrive stays out of these tests (moto
    has no move tasks); the tests move DLQ messages themselves where they need to."""

    def running(self, source_arn):
        return True


def without_redrive(health, monkeypatch):
    import dataclasses

    recovery = dataclasses.replace(health.runtime.recovery, move_tasks=NoMoveTasks())
    monkeypatch.setattr(health.runtime, "recovery", recovery)


def charged_then_crashed(processing):
    """A payment the acquirer charged whose outcome was never recorded (nothing queued)."""
    key = new_key()
    client = processing.module.runtime().store._client
    stop = crash_on(client, "UpdateItem", lambda p: item_id(p).startswith("txn_"))
    try:
        with pytest.raises(Killed):
            processing.pay(payment_body(merchantId="mer_crashed"), key)
    finally:
        stop()
    (transaction_id,) = [
        i for i in processing.aws.scan_ids("txn_") if _merchant(processing, i) == "mer_crashed"
    ]
    return transaction_id


def _merchant(processing, transaction_id):
    item = processing.aws.client("dynamodb").get_item(
        TableName=processing.aws.table, Key={"id": {"S": transaction_id}}
    )["Item"]
    return item["merchantId"]["S"]


def _status(processing, transaction_id):
    item = processing.aws.client("dynamodb").get_item(
        TableName=processing.aws.table, Key={"id": {"S": transaction_id}}
    )["Item"]
    return item["status"]["S"]


@pytest.mark.requirement("S001-SELF-HEALING")
def test_defect4_a_newer_stuck_payment_is_not_starved_by_older_ones(
    processing, health, monkeypatch
):
    import dataclasses
    import datetime as dt

    limit = 3  # the per-run bound (50 in production), small so the test stays fast
    config = dataclasses.replace(health.runtime.config, stuck_requeue_limit=limit)
    monkeypatch.setattr(health.runtime, "config", config)
    without_redrive(health, monkeypatch)
    for _ in range(limit):
        assert processing.pay(payment_body(paymentToken="tok_test_timeout"))["statusCode"] == 202
    drain(processing, rounds=20)
    crashed = charged_then_crashed(processing)
    now = dt.datetime.now(dt.UTC)
    for run in range(1, 4):
        later = now + dt.timedelta(minutes=20 * run)
        health.module.run_scheduled(health.runtime, later)
        drain(processing, rounds=20)
    assert _status(processing, crashed) in ("SUCCEEDED", "AUTHORIZED")


@pytest.mark.requirement("S001-INTEGRITY", "S001-SELF-HEALING")
def test_defect4_a_payment_that_never_succeeds_ends_in_review_with_bounded_calls(
    processing, health, monkeypatch
):
    import datetime as dt

    without_redrive(health, monkeypatch)
    counting = with_counting_provider(processing)
    paid = processing.pay(payment_body(paymentToken="tok_test_timeout"))
    transaction_id = body_of(paid)["transactionId"]
    now = dt.datetime.now(dt.UTC)
    for run in range(1, 12):
        drain(processing, rounds=20)
        health.module.run_scheduled(health.runtime, now + dt.timedelta(minutes=20 * run))
        for logical in ("FailedTransactionsQueueDlq",):  # an operator's (or the monitor's) redrive
            for body in queue_bodies(processing.aws, logical):
                processing.aws.client("sqs").send_message(
                    QueueUrl=processing.aws.queue_url("FailedTransactionsQueue"), MessageBody=body
                )
    drain(processing, rounds=20)
    calls = counting.calls
    assert body_of(processing.get(transaction_id))["status"] == "NEEDS_REVIEW"
    health.module.run_scheduled(health.runtime, now + dt.timedelta(hours=12))
    drain(processing, rounds=20)
    assert counting.calls == calls  # terminal: no more provider calls
    assert calls <= 10


# ---- 5. charged once only inside one execution environment ------------------------------


@pytest.mark.requirement("S001-INTEGRITY")
def test_defect5_a_second_environment_never_charges_again(processing, health, monkeypatch):
    """Environment A charges and dies before recording; environment B, with its own
    acquirer object and clients, completes the payment: one charge in the acquirer's books."""
    import datetime as dt

    env_a, env_b = processing.environment(), processing.environment()
    assert env_a.provider is not env_b.provider
    without_redrive(health, monkeypatch)
    processing.use(env_a)
    crashed = charged_then_crashed(processing)
    processing.use(env_b)
    health.module.run_scheduled(health.runtime, dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    drain(processing)
    assert _status(processing, crashed) in ("SUCCEEDED", "AUTHORIZED")
    # The acquirer's books: one approved charge for the transaction, reached twice.
    assert list(processing.ledger.charges()) == [crashed]
    assert processing.ledger.attempts(crashed) == 2
