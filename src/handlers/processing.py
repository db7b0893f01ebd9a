"""The processing function: POST /process-payment, GET /payments/{transactionId},
and the failed-transactions queue (one function, dispatched on the event's shape).

Thin: parse the request, call the flows in `handlers.payments.service` with the clients built
once per execution environment, format the answer; metrics and log lines for what happened.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit

from handlers import api
from handlers.config import ProcessingConfig, load_processing
from handlers.lazy import Lazy
from handlers.observability import build_logger, build_metrics
from handlers.payments.idempotency import KeyReusedError, valid_idempotency_key
from handlers.payments.provider import build_provider
from handlers.payments.retry_queue import (
    TRANSACTION_ID_PATTERN,
    InvalidRetryMessageError,
    RetryMessage,
    RetryQueue,
)
from handlers.payments.service import (
    Accepted,
    NotAcceptedError,
    PaymentRequest,
    Payments,
    RetryDeferredError,
    RetryResult,
    UnknownTransactionError,
    accept_payment,
    retry_payment,
)
from handlers.payments.store import (
    KeyInUseError,
    OutcomeUnknownError,
    StoreUnavailableError,
    TransactionStatus,
    TransactionStore,
)
from handlers.payments.validation import FieldError, parse_payment

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

CONFIG: ProcessingConfig = load_processing(os.environ)
logger = build_logger(CONFIG.api.common)
metrics = build_metrics(CONFIG.api.common)
router = api.Router(logger, metrics, CONFIG.api.common.cors_allowed_origin)
# An unexpected error may come after the payment's binding took effect (an answer botocore
# could not read): the payment may exist, so the client is told the retry that finds out.
# POST only: a GET records nothing and has no Idempotency-Key.
PAYMENT_UNEXPECTED_HINT = (
    " A payment may have been recorded: retry with the same Idempotency-Key and body to "
    "learn its state (it is never charged twice)."
)
IDEMPOTENCY_HEADER = "Idempotency-Key"
RETRY_AFTER = {"Retry-After": "1"}


def build_runtime(
    config: ProcessingConfig, dynamodb: Any = None, sqs: Any = None, provider: Any = None
) -> Payments:
    """Wire the store, acquirer and queue of one execution environment (clients made if not
    given; the acquirer is built on this environment's own DynamoDB client)."""
    import boto3
    from botocore.config import Config

    # Fail fast inside the API Gateway 29 s budget; throttling is retried a little.
    client_config = Config(
        connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3}
    )
    dynamodb = dynamodb or boto3.client("dynamodb", config=client_config)
    sqs = sqs or boto3.client("sqs", config=client_config)
    return Payments(
        store=TransactionStore(dynamodb, config.transactions_table, config.idempotency_ttl_seconds),
        provider=provider
        or build_provider(config.provider, dynamodb, config.acquirer_ledger_table),
        queue=RetryQueue(sqs, config.failed_queue_url),
        max_attempts=config.max_payment_attempts,
    )


# The execution environment's runtime, built on first use (not at import).
runtime: Lazy[Payments] = Lazy(lambda: build_runtime(CONFIG))


def _count(name: str) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


def idempotency_key(request: api.Request) -> str:
    """The one Idempotency-Key header (any case), or 400."""
    wanted = IDEMPOTENCY_HEADER.lower()
    if len(request.header_values.get(wanted, [])) > 1:
        raise _header_error("duplicate", "Send exactly one Idempotency-Key header.")
    value = request.headers.get(wanted)
    if not value:
        raise _header_error(
            "missing", "The Idempotency-Key header is required (for example a UUID)."
        )
    if not valid_idempotency_key(value):
        raise _header_error(
            "malformed", "Idempotency-Key must be 8-128 letters, digits, '_' or '-'."
        )
    return value


def _header_error(code: str, message: str) -> api.ApiError:
    return api.bad_request([FieldError(IDEMPOTENCY_HEADER, code, message)])


@router.route(
    "POST", "/process-payment", caller_required=True, unexpected_hint=PAYMENT_UNEXPECTED_HINT
)
def post_process_payment(request: api.Request) -> api.Response:
    """Validate, then bind the key and process: 201 with the outcome, 202 while pending."""
    key = idempotency_key(request)
    payment = parse_payment(request.body, request.is_base64_encoded, CONFIG.api.rules)
    assert request.caller is not None  # the route requires it
    accepted = accept_payment(PaymentRequest(request.caller, key, payment), runtime())
    _report(accepted)
    transaction = accepted.transaction
    headers = {"Idempotent-Replayed": "true"} if accepted.replayed else {}
    if transaction.status.outcome:
        return api.Response(201, transaction.public(), headers)
    headers["Location"] = f"/payments/{transaction.id}"
    return api.Response(202, transaction.public(), headers)


def _report(accepted: Accepted) -> None:
    transaction = accepted.transaction
    details = {"transactionId": transaction.id, "status": transaction.status.value}
    if accepted.replayed:
        _count("PaymentReplayed")
        logger.info("payment replayed", extra=details)
        return
    if accepted.queued:
        _count("PaymentQueued")
        if not accepted.message_sent:
            # The row is pending: the sweeper re-queues it after STUCK_AFTER_SECONDS.
            _count("RequeueFailed")
            logger.warning("retry message not sent; left to the sweeper", extra=details)
        logger.warning("transient failure; payment queued for retry", extra=details)
        return
    _count(f"Payment{transaction.status.value.title().replace('_', '')}")
    if transaction.status is TransactionStatus.NEEDS_REVIEW:
        logger.error("payment needs review", extra=details | {"reason": transaction.reason})
        return
    logger.info("payment answered", extra=details)


@router.route("GET", "/payments/{transactionId}", caller_required=True)
def get_payment(request: api.Request) -> api.Response:
    """The stored state of one of the caller's transactions (another caller's: 404)."""
    transaction_id = request.path_parameters["transactionId"]
    if not TRANSACTION_ID_PATTERN.fullmatch(transaction_id):
        raise api.bad_request(
            [FieldError("transactionId", "malformed", "transactionId must look like txn_...")]
        )
    _count("PaymentLookup")
    transaction = runtime().store.get(transaction_id)
    # Someone else's payment answers exactly like a missing one: ids reveal nothing.
    if transaction is None or transaction.caller != request.caller:
        raise api.ApiError(404, "transaction_not_found", "No such transaction.")
    return api.Response(200, transaction.public())


@router.route("GET", "/payments")
def get_payment_without_id(request: api.Request) -> api.Response:
    """GET /payments without an id: say which parameter is missing."""
    raise api.bad_request(
        [FieldError("transactionId", "missing", "Use GET /payments/{transactionId}.")]
    )


@router.on(KeyReusedError)
def key_reused(error: Exception) -> api.ApiError:
    """The same Idempotency-Key with a different request: 422."""
    return api.ApiError(
        422,
        "idempotency_key_reused",
        "This Idempotency-Key was already used with a different request; use a new key.",
    )


@router.on(KeyInUseError)
def key_in_use(error: Exception) -> api.ApiError:
    """Another request with this key is being recorded at this moment (a client that gave up
    and retried, or a double submit): not free (no 503), not a fault (no 500), and not known
    yet; its retry after Retry-After replays that request's payment or gets 422."""
    _count("IdempotencyKeyInUse")
    logger.warning("idempotency key in use")
    return api.ApiError(
        409,
        "idempotency_key_in_use",
        "Another request with this Idempotency-Key is in progress; retry with the same key "
        "and body after Retry-After to get its result.",
        headers=RETRY_AFTER,
    )


@router.on(NotAcceptedError, StoreUnavailableError)
def unavailable(error: Exception) -> api.ApiError:
    """POST: nothing was recorded and the key is free (store.bind settles a lost answer
    first); GET: the transaction could not be read. A retry with the same key is safe."""
    _count("ServiceUnavailable")
    logger.error(
        "service unavailable", extra={"errorType": type(error).__name__, "cause": _cause(error)}
    )
    message = (
        "The service is temporarily unavailable; retry after Retry-After (a payment: with the "
        "same Idempotency-Key and body)."
    )
    return api.ApiError(503, "service_unavailable", message, headers=RETRY_AFTER)


@router.on(OutcomeUnknownError)
def outcome_unknown(error: Exception) -> api.ApiError:
    """The payment may have been recorded, or is and could not be read: a server error, not
    a 503, which promises nothing was kept; the same key and body replay it if it exists."""
    _count("ServerError")
    logger.error("payment state unknown", extra={"cause": _cause(error)})
    return api.ApiError(
        500,
        "internal_error",
        "The payment's state could not be established; retry with the same Idempotency-Key "
        "and body to learn it.",
    )


def _cause(error: BaseException) -> str | None:
    """The type name of the underlying error (never its message, which may quote input)."""
    return type(error.__cause__).__name__ if error.__cause__ is not None else None


class RejectedMessageError(Exception):
    """A queue record this function cannot process: reported failed so it reaches the DLQ."""


def retry_record(record: SQSRecord) -> None:
    """Retry one queued payment. Raising reports the record failed: SQS delivers it again,
    and after maxReceiveCount moves it to the DLQ. Nothing is acknowledged unprocessed."""
    logger.set_correlation_id(record.message_id)
    try:
        message = RetryMessage.from_json(record.body)
        outcome = retry_payment(message.transaction_id, runtime())
    except (InvalidRetryMessageError, UnknownTransactionError) as error:
        # Not a retry of a payment of ours: no redelivery can fix it; the DLQ shows it.
        logger.error("queue message rejected", extra={"reason": str(error)})
        _count("RetryMessageRejected")
        raise RejectedMessageError(str(error)) from error
    except RetryDeferredError as error:
        logger.warning(
            "retry failed transiently; the queue will redeliver",
            extra={"transactionId": message.transaction_id, "cause": _cause(error)},
        )
        _count("RetryDeferred")
        raise
    except Exception as error:
        # A bug or a lost permission: the record fails and is redelivered like any other, and
        # is counted as the API path counts its 500s (Lambda's Errors never sees a batch item
        # failure, and the health gate would stay open while every retry fails).
        _count("ServerError")
        logger.exception("unexpected error", extra={"errorType": type(error).__name__})
        raise
    transaction = outcome.transaction
    details = {"transactionId": transaction.id, "status": transaction.status.value}
    # A delivery that finds the payment in review counts too: the move's answer may have been
    # lost (the write took effect, the retry was deferred), and then no delivery would ever
    # count it. A duplicate message counts it again: the alarm fires on any, not on a total.
    found_in_review = transaction.status is TransactionStatus.NEEDS_REVIEW
    if outcome.result is RetryResult.REVIEW or found_in_review:
        _count("PaymentNeedsReview")
        logger.error("payment needs review", extra=details | {"reason": transaction.reason})
    elif outcome.result is RetryResult.COMPLETED:
        _count("RetryCompleted")
        logger.info("retry completed", extra=details)
    else:
        logger.info("retry found the payment finished", extra=details)


def handle_queue(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Process an SQS batch and report the failed messages (partial batch response)."""
    from aws_lambda_powertools.utilities.batch import (
        BatchProcessor,
        EventType,
        process_partial_response,
    )

    # Report every failed message even when all fail, rather than failing the
    # invocation: the response then says exactly which ones SQS must redeliver.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(
        event=event, record_handler=retry_record, processor=processor, context=context
    )


def is_queue_event(event: Any) -> bool:
    """True for a batch from the event source mapping (API events have no `Records`).

    Any `Records` list goes to the batch path: a record it cannot read fails there and is
    redelivered, where answering it as an API request would delete the whole batch."""
    return isinstance(event, dict) and isinstance(event.get("Records"), list)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda entry point: an API request or a batch from the failed-transactions queue."""
    if is_queue_event(event):
        return handle_queue(event, context)
    return router.handle(event, context)
