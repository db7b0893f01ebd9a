"""A lost answer to the key binding never turns into a 503 for a payment that exists.

503 promises nothing was kept (the client may give up, or pay another way). When the binding
write's answer is lost, it may have committed, or may still commit after a read-back that did
not see it; the answer must then be the payment (it is there) or a 503 that is true (it is
not, and can no longer appear), and a server error that promises nothing when DynamoDB cannot
say which. Each case runs the sweeper and the consumer afterwards: a charge after a 503 is
the failure.
"""

from __future__ import annotations

import pytest

from tests.handlers.conftest import (
    aws_error,
    body_of,
    deliver,
    drain,
    new_key,
    payment_body,
    response_headers,
)
from tests.handlers.test_stuck_payments import THRESHOLD, age

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning")
THROTTLED = "ProvisionedThroughputExceededException"


class Faults:
    """Hooks on the processing environment's DynamoDB client, registered for one request."""

    def __init__(self, client):
        self.client = client
        self.hooks = []

    def on(self, event, hook):
        self.client.meta.events.register(event, hook, unique_id=f"{event}-{len(self.hooks)}")
        self.hooks.append(event)

    def __enter__(self):
        return self

    def __exit__(self, *_):
        for index, event in enumerate(self.hooks):
            self.client.meta.events.unregister(event, unique_id=f"{event}-{index}")


class HeldBack:
    """The first binding write of the next request is answered with `error` and not made;
    `land()` makes it afterwards (the write DynamoDB still held after the function answered)."""

    def __init__(self, processing, error=None):
        self.processing = processing
        self.error = error or (lambda: aws_error(THROTTLED, "TransactWriteItems"))
        self.params = []

    def __call__(self, params, **_):
        if not self.params:
            self.params.append(dict(params))
            raise self.error()  # the answer never came

    def pay(self, body, key):
        with Faults(self.processing.runtime.store._client) as faults:
            faults.on("provide-client-params.dynamodb.TransactWriteItems", self)
            return self.processing.pay(body, key)

    def land(self):
        clean = self.processing.aws.fresh_client("dynamodb")
        try:
            clean.transact_write_items(**self.params[0])
        except clean.exceptions.TransactionCanceledException:
            pass


def settle_everything(processing, health):
    """Age every row past the sweeper's threshold, sweep, and let the consumer run."""
    for transaction_id in processing.aws.scan_ids("txn_"):
        age(processing.aws, transaction_id, THRESHOLD + 60)
    health.scheduled()
    drain(processing)


def never_charged_after_a_503(processing, response):
    if response["statusCode"] == 503:
        assert processing.ledger.charges() == {}, "charged after answering 503"
        assert processing.aws.scan_ids("idem_") == []  # the key is free


def test_binding_committed_answer_lost_and_read_back_throttled(processing, health):
    """The binding took effect, its answer was lost, and the read-back was throttled: the
    payment exists, so the client gets it (before: 503, then the sweeper charged it)."""
    lost = []

    def lose_answer(model, **_):
        if not lost:
            lost.append(model.name)
            raise aws_error(THROTTLED, model.name)

    def throttle_read_back(params, **_):
        if lost and len(lost) == 1:
            lost.append("GetItem")
            raise aws_error(THROTTLED, "GetItem")

    with Faults(processing.runtime.store._client) as faults:
        faults.on("after-call.dynamodb.TransactWriteItems", lose_answer)
        faults.on("provide-client-params.dynamodb.GetItem", throttle_read_back)
        response = processing.pay(payment_body(), new_key())
    assert lost == ["TransactWriteItems", "GetItem"]
    settle_everything(processing, health)
    never_charged_after_a_503(processing, response)
    assert response["statusCode"] in (201, 202), response
    assert list(processing.ledger.charges()) == [body_of(response)["transactionId"]]


def test_binding_still_in_flight_after_the_read_back(processing, health):
    """The binding's answer is lost and it commits only after the read-back saw nothing (a
    slow write, a timeout): once answered 503 it must never commit (before: it did, and the
    sweeper charged a payment answered 503)."""
    held = HeldBack(processing)
    response = held.pay(payment_body(), new_key())
    held.land()  # the write lands now, after the function answered
    settle_everything(processing, health)
    never_charged_after_a_503(processing, response)
    if response["statusCode"] != 503:
        assert response["statusCode"] in (201, 202), response
        assert processing.get(body_of(response)["transactionId"])["statusCode"] == 200


def test_outcome_nobody_can_settle_is_not_a_503(processing):
    """Every DynamoDB call after the lost answer fails: the payment may exist, so the answer
    is a server error that promises nothing (a 503 promises nothing was kept)."""

    def lose_answer(model, **_):
        raise aws_error(THROTTLED, model.name)

    def throttled(params, **_):
        raise aws_error(THROTTLED, "any")

    with Faults(processing.runtime.store._client) as faults:
        faults.on("after-call.dynamodb.TransactWriteItems", lose_answer)
        faults.on("provide-client-params.dynamodb.GetItem", throttled)
        faults.on("provide-client-params.dynamodb.PutItem", throttled)
        response = processing.pay(payment_body(), new_key())
    assert processing.aws.scan_ids("txn_"), "the binding did commit"
    assert response["statusCode"] == 500, response
    assert body_of(response)["error"]["code"] == "internal_error"
    assert "same Idempotency-Key" in body_of(response)["error"]["message"]


def test_a_replay_that_cannot_read_its_payment_is_not_a_503(processing):
    """The key is bound and its payment charged; the replay's read is throttled. A 503 would
    tell a client that lost the first answer that nothing was kept (before: 503)."""
    key = new_key()
    first = processing.pay(payment_body(), key)
    assert first["statusCode"] == 201

    def throttled(params, **_):
        raise aws_error(THROTTLED, "GetItem")

    with Faults(processing.runtime.store._client) as faults:
        faults.on("provide-client-params.dynamodb.GetItem", throttled)
        replay = processing.pay(payment_body(), key)
    assert replay["statusCode"] == 500, replay
    assert "same Idempotency-Key" in body_of(replay)["error"]["message"]
    assert processing.pay(payment_body(), key)["statusCode"] == 201  # and then the payment


def cancelled_for_throttling(**_):
    from botocore.exceptions import ClientError

    raise ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": [{"Code": "ThrottlingError"}, {"Code": "None"}],
        },
        "TransactWriteItems",
    )


def cancelled_for_a_conflict(**_):
    """Another request's binding transaction holds the key's item (TransactionConflict)."""
    from botocore.exceptions import ClientError

    raise ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": [{"Code": "TransactionConflict"}, {"Code": "None"}],
        },
        "TransactWriteItems",
    )


@pytest.mark.parametrize("failure", ["throttled, read-back throttled", "cancelled, throttled"])
def test_a_retry_of_a_bound_key_is_never_told_the_key_is_free(processing, failure):
    """The key is bound (the first answer was lost to the client); the retry's binding write
    fails before it is made, and DynamoDB never evaluated the key's condition. A 503 would say
    nothing is kept and the key is free (before: 503): the retry finds the binding and replays
    the payment."""
    key = new_key()
    first = body_of(processing.pay(payment_body(), key))
    reads = []

    def throttle_first_read(params, **_):
        if not reads:
            reads.append(True)
            raise aws_error(THROTTLED, "GetItem")

    def throttled(params, **_):
        raise aws_error(THROTTLED, "TransactWriteItems")

    with Faults(processing.runtime.store._client) as faults:
        if failure.startswith("throttled"):
            faults.on("provide-client-params.dynamodb.TransactWriteItems", throttled)
            faults.on("provide-client-params.dynamodb.GetItem", throttle_first_read)
        else:
            faults.on("before-call.dynamodb.TransactWriteItems", cancelled_for_throttling)
        retry = processing.pay(payment_body(), key)
    assert retry["statusCode"] == 201, retry
    assert body_of(retry)["transactionId"] == first["transactionId"]


def test_a_taken_key_whose_binding_cannot_be_read_is_not_a_503(processing):
    """The retry's binding is refused on the key's condition (the key is bound), the
    cancellation carries no old item (not every SDK path returns it), and the read that
    fetches the binding instead is throttled. The key is bound and its payment charged, so a
    503 would be false (before: 503); the answer promises nothing, and the next retry replays."""
    from botocore.exceptions import ClientError

    key = new_key()
    first = body_of(processing.pay(payment_body(), key))

    def taken_without_the_old_item(**_):
        raise ClientError(
            {
                "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                "CancellationReasons": [{"Code": "ConditionalCheckFailed"}, {"Code": "None"}],
            },
            "TransactWriteItems",
        )

    def throttled(params, **_):
        raise aws_error(THROTTLED, "GetItem")

    with Faults(processing.runtime.store._client) as faults:
        faults.on("before-call.dynamodb.TransactWriteItems", taken_without_the_old_item)
        faults.on("provide-client-params.dynamodb.GetItem", throttled)
        retry = processing.pay(payment_body(), key)
    assert retry["statusCode"] == 500, retry
    assert "same Idempotency-Key" in body_of(retry)["error"]["message"]
    replay = processing.pay(payment_body(), key)
    assert replay["statusCode"] == 201
    assert body_of(replay)["transactionId"] == first["transactionId"]
    assert list(processing.ledger.charges()) == [first["transactionId"]]


@pytest.mark.parametrize("old_item", ["returned", "not returned"])
def test_a_void_whose_answer_was_lost_and_retried_by_the_sdk_is_not_a_payment(
    processing, health, old_item
):
    """The binding write is throttled (nothing written), the read-back sees no binding, and
    the void marker's put lands but its answer is lost (a read timeout): botocore's retry
    (standard mode, as build_runtime configures) sends it again and meets its own marker
    (ConditionalCheckFailed). That is not the transaction row: nothing may be charged
    (before: taken for the row, the acquirer was charged for a transaction that does not
    exist, the answer was 500, and the retry with the same key charged a second time)."""
    import json

    from botocore.config import Config
    from botocore.exceptions import ReadTimeoutError

    client = processing.aws.session.client(
        "dynamodb", config=Config(retries={"mode": "standard", "max_attempts": 3})
    )
    environment = processing.module.build_runtime(
        processing.module.CONFIG, dynamodb=client, sqs=processing.aws.fresh_client("sqs")
    )
    processing.use(environment)
    clean = processing.aws.fresh_client("dynamodb")
    lost = []

    def throttled(params, **_):
        if not lost:
            raise aws_error(THROTTLED, "TransactWriteItems")

    def lose_the_void_answer(request, **_):
        item = json.loads(request.body).get("Item", {})
        if item.get("recordType") == {"S": "void"} and not lost:
            lost.append(item["id"]["S"])
            clean.put_item(TableName=processing.aws.table, Item=item)  # the put lands
            raise ReadTimeoutError(endpoint_url=request.url)  # and its answer is lost

    def without_the_old_item(params, **_):
        params.pop("ReturnValuesOnConditionCheckFailure", None)

    with Faults(client) as faults:
        faults.on("provide-client-params.dynamodb.TransactWriteItems", throttled)
        faults.on("before-send.dynamodb.PutItem", lose_the_void_answer)
        if old_item == "not returned":  # not every SDK path returns it: the id is read
            faults.on("provide-client-params.dynamodb.PutItem", without_the_old_item)
        key = new_key()
        response = processing.pay(payment_body(), key)
    assert lost, "the void marker was not written"
    settle_everything(processing, health)
    never_charged_after_a_503(processing, response)
    retry = processing.pay(payment_body(), key)
    settle_everything(processing, health)
    charged = processing.ledger.charges()
    for transaction_id in charged:
        assert processing.get(transaction_id)["statusCode"] == 200, "charged, and no row"
    assert len(charged) == 1, f"one payment charged {len(charged)} times"
    assert body_of(retry)["transactionId"] in charged


def expire_the_binding(processing):
    """Move the one binding's `expiration` into the past (TTL has not deleted it yet)."""
    import time

    [binding] = processing.aws.scan_ids("idem_")
    processing.aws.client("dynamodb").update_item(
        TableName=processing.aws.table,
        Key={"id": {"S": binding}},
        UpdateExpression="SET expiration = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 60)}},
    )


@pytest.mark.parametrize("body", ["the same body", "another body"])
def test_an_expired_binding_read_back_after_a_lost_answer_holds_nothing(processing, health, body):
    """The key's binding has expired (TTL has not deleted it yet), so the key is free and a new
    request with it binds a new payment. That binding's answer is lost and the write lands only
    after the read-back, which finds the expired binding. It holds nothing: taking it for the
    key's owner answered 422 (another body) or replayed the old payment (the same body) without
    voiding the new write, which then committed and was charged after that answer. Expired is
    free: the write is voided, and the answer is the 503 of a free key."""
    key = new_key()
    first = body_of(processing.pay(payment_body(), key))
    expire_the_binding(processing)
    second_body = payment_body() if body == "the same body" else payment_body(amount="99.00")
    held = HeldBack(processing)
    response = held.pay(second_body, key)
    held.land()  # the write lands now, after the function answered
    settle_everything(processing, health)
    charged = processing.ledger.charges()
    assert set(charged) == {first["transactionId"]}, (response["statusCode"], charged)
    assert response["statusCode"] == 503, response


def test_a_key_another_request_is_binding_is_not_told_free(processing, health):
    """A client gave up on its request (A) and retried (B) while A's binding transaction was
    still in progress: DynamoDB cancels B with TransactionConflict on the key's item. B's
    read-back does not see A yet, but the key is being bound, so a 503 (nothing kept, the key
    is free) is false: A commits and is charged (before: 503, then A's charge). B is told the
    key is in use (409, Stripe's answer; not a server error); the next retry replays A."""
    key = new_key()
    first, retry = processing.environment(), processing.environment()
    answers = {}

    def retried_while_in_progress(**_):
        if "retry" not in answers:  # A's transaction is sent and not yet committed
            processing.use(retry)
            answers["retry"] = processing.pay(payment_body(), key)
            processing.use(first)

    with Faults(first.store._client) as a, Faults(retry.store._client) as b:
        a.on("before-send.dynamodb.TransactWriteItems", retried_while_in_progress)
        b.on("before-call.dynamodb.TransactWriteItems", cancelled_for_a_conflict)
        processing.use(first)
        answers["first"] = processing.pay(payment_body(), key)
    settle_everything(processing, health)
    assert list(processing.ledger.charges()) == [body_of(answers["first"])["transactionId"]]
    assert answers["retry"]["statusCode"] != 503, answers["retry"]
    assert answers["retry"]["statusCode"] == 409, answers["retry"]
    assert body_of(answers["retry"])["error"]["code"] == "idempotency_key_in_use"
    assert response_headers(answers["retry"])["retry-after"]
    replay = processing.pay(payment_body(), key)
    assert body_of(replay)["transactionId"] == body_of(answers["first"])["transactionId"]


def test_a_binding_the_sdk_left_in_progress_is_settled(processing, health):
    """The binding's first attempt timed out and is still running at DynamoDB; the SDK's
    retries (same ClientRequestToken) are answered TransactionInProgressException until they
    run out. The write may still commit, exactly like a lost answer, and is settled like one
    (before: an unexpected error, 500, and the write then committed and was charged)."""
    from botocore.exceptions import ClientError

    def still_in_progress():
        return ClientError(
            {
                "Error": {"Code": "TransactionInProgressException", "Message": "in progress"},
                "ResponseMetadata": {"HTTPStatusCode": 400},
            },
            "TransactWriteItems",
        )

    held = HeldBack(processing, still_in_progress)
    response = held.pay(payment_body(), new_key())
    held.land()  # the first attempt commits now, after the function answered
    settle_everything(processing, health)
    never_charged_after_a_503(processing, response)
    assert response["statusCode"] == 503, response


def test_a_voided_id_is_nothing_to_anyone(processing, health):
    """The void marker left by a 503 holds nothing: GET of its id answers exactly like a
    missing id, the sweeper never sees it, and a retry message naming it is a batch item
    failure (the DLQ's), never a charge."""
    import json

    from handlers.payments.store import new_transaction_id

    def lose_answer(params, **_):
        raise aws_error(THROTTLED, "TransactWriteItems")

    with Faults(processing.runtime.store._client) as faults:
        faults.on("provide-client-params.dynamodb.TransactWriteItems", lose_answer)
        assert processing.pay(payment_body(), new_key())["statusCode"] == 503
    [voided] = processing.aws.scan_ids("txn_")
    missing = processing.get(new_transaction_id())
    answer = processing.get(voided)
    assert (answer["statusCode"], body_of(answer)["error"]) == (404, body_of(missing)["error"])
    settle_everything(processing, health)
    assert processing.aws.queue_depth("FailedTransactionsQueue") == 0  # the sweeper sent none
    processing.aws.client("sqs").send_message(
        QueueUrl=processing.aws.queue_url("FailedTransactionsQueue"),
        MessageBody=json.dumps({"version": 2, "transactionId": voided}),
    )
    assert deliver(processing) == (1, 1)
    assert processing.ledger.items() == {}
    assert processing.aws.scan_ids("") == [voided]


def test_a_binding_seen_live_then_deleted_by_ttl_cannot_let_the_lost_write_commit(
    processing, health
):
    """The read-back after a lost answer finds another request's binding, live by this
    function's clock; DynamoDB's TTL (its own clock, a second ahead at the boundary) deletes
    it before the lost write is evaluated, so the write's `attribute_not_exists` holds and it
    commits. Answering 422 from that read without voiding made a payment after the 422
    (before: charged). Only our own binding lets the read-back answer; anything else voids."""
    key = new_key()
    first = body_of(processing.pay(payment_body(), key))
    held = HeldBack(processing)
    response = held.pay(payment_body(amount="99.00"), key)
    [binding] = processing.aws.scan_ids("idem_")
    processing.aws.client("dynamodb").delete_item(  # TTL's deletion
        TableName=processing.aws.table, Key={"id": {"S": binding}}
    )
    held.land()
    settle_everything(processing, health)
    assert response["statusCode"] == 422, response
    assert set(processing.ledger.charges()) == {first["transactionId"]}


def test_an_unreadable_answer_after_the_binding_invites_the_retry_that_finds_it(
    processing, health
):
    """The binding took effect and botocore could not parse the answer (an error outside the
    transient ones, so the generic 500): the payment exists and will be charged, so the 500
    must tell the client the retry that finds it (before: only 'quote the correlation id')."""
    from botocore.parsers import ResponseParserError

    def unparsable(**_):
        raise ResponseParserError("the answer could not be parsed")

    key = new_key()
    with Faults(processing.runtime.store._client) as faults:
        faults.on("after-call.dynamodb.TransactWriteItems", unparsable)
        response = processing.pay(payment_body(), key)
    assert response["statusCode"] == 500, response
    assert "retry with the same Idempotency-Key and body" in body_of(response)["error"]["message"]
    settle_everything(processing, health)
    (charged,) = processing.ledger.charges()
    replay = processing.pay(payment_body(), key)
    assert replay["statusCode"] == 201, replay
    assert body_of(replay)["transactionId"] == charged


def test_only_a_payment_request_is_told_to_retry_with_its_key(processing):
    """The safe-retry hint of an unexpected 500 belongs to POST /process-payment: a GET has
    no Idempotency-Key and records nothing, and its contract promises 'internal_error and
    the correlation id only' (before: a GET's 500 said a payment may have been recorded and
    to retry with the same Idempotency-Key and body)."""
    from handlers.payments.store import new_transaction_id

    def denied(params, **_):
        raise aws_error("AccessDeniedException", "GetItem")

    with Faults(processing.runtime.store._client) as faults:
        faults.on("provide-client-params.dynamodb.GetItem", denied)
        answer = processing.get(new_transaction_id())
    assert answer["statusCode"] == 500, answer
    message = body_of(answer)["error"]["message"]
    assert "correlation id" in message
    assert "Idempotency-Key" not in message and "payment may have been" not in message


def test_a_get_the_table_throttles_answers_as_its_contract_says(processing):
    """A GET whose read is throttled is answered 503 with Retry-After (the unavailable
    mapper); its contract (and so the OpenAPI document) must list that answer, and the message
    must say what a GET, which has no Idempotency-Key, retries with (before: the GET contract
    listed no 503, and the message said only 'retry with the same Idempotency-Key')."""
    from handlers.payments.store import new_transaction_id
    from templates.api_contract import ROUTES

    def throttled(params, **_):
        raise aws_error(THROTTLED, "GetItem")

    with Faults(processing.runtime.store._client) as faults:
        faults.on("provide-client-params.dynamodb.GetItem", throttled)
        answer = processing.get(new_transaction_id())
    contract = {a.status: a for a in ROUTES[("GET", "/payments/{transactionId}")].answers}
    assert answer["statusCode"] in contract, answer
    assert answer["statusCode"] == 503, answer
    assert "Retry-After" in contract[503].headers
    assert response_headers(answer)["retry-after"]
    # Said for any route, not only a payment's.
    assert "retry after Retry-After" in body_of(answer)["error"]["message"]


def test_a_key_in_use_whose_other_request_then_fails_is_free_for_the_retry(processing, health):
    """B is told 409 while A's binding is in progress; A's answer is then lost, A voids its
    id and answers 503, and A's write lands afterwards (refused by the void). The key is
    free: B's retry after Retry-After binds B's payment, charged once; A's never."""
    key = new_key()
    first, retry = processing.environment(), processing.environment()
    answers = {}

    class InProgress(HeldBack):
        def __call__(self, params, **kwargs):
            if not self.params:  # A's write is at DynamoDB: B meets it
                processing.use(retry)
                with Faults(retry.store._client) as b:
                    b.on("before-call.dynamodb.TransactWriteItems", cancelled_for_a_conflict)
                    answers["retry"] = processing.pay(payment_body(), key)
                processing.use(first)
            super().__call__(params, **kwargs)

    processing.use(first)
    held = InProgress(processing)
    answers["first"] = held.pay(payment_body(), key)
    held.land()
    assert answers["retry"]["statusCode"] == 409, answers["retry"]
    assert answers["first"]["statusCode"] == 503, answers["first"]
    processing.use(retry)
    again = processing.pay(payment_body(), key)
    settle_everything(processing, health)
    assert again["statusCode"] == 201, again
    assert list(processing.ledger.charges()) == [body_of(again)["transactionId"]]
