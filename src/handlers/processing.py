"""The processing function: POST /process-payment, GET /payments/{transactionId},
and the failed-transactions queue (one function, dispatched on the event's shape).

Thin: parse the request, call the plain functions in `handlers.payments` with
the clients built once per execution environment, format the answer.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from handlers import api
from handlers.config import ProcessingConfig, load_processing
from handlers.lazy import Lazy
from handlers.observability import build_logger, build_metrics
from handlers.payments.idempotency import (
    IdempotencyKeyReusedError,
    IdempotencyStoreUnavailableError,
    IdempotentAcceptor,
    RequestInProgressError,
)
from handlers.payments.provider import PaymentProvider, ProviderUnavailableError, build_provider
from handlers.payments.service import (
    TRANSACTION_ID_PATTERN,
    InvalidRetryMessageError,
    PaymentQueuedError,
    QueueUnavailableError,
    RetryMessage,
    RetryQueue,
    TransactionConflictError,
    accept_payment,
    process_payment,
    valid_idempotency_key,
)
from handlers.payments.store import StoreUnavailableError, TransactionStore
from handlers.payments.validation import FieldError, parse_payment

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

CONFIG: ProcessingConfig = load_processing(os.environ)
logger = build_logger(CONFIG.api.common)
metrics = build_metrics(CONFIG.api.common)
ROUTES = "POST /process-payment, GET /payments/{transactionId}"
app = api.build_resolver(logger, metrics, CONFIG.api.common.cors_allowed_origin, ROUTES)
IDEMPOTENCY_HEADER = "Idempotency-Key"
RETRY_AFTER = {"Retry-After": "1"}


@dataclass(frozen=True)
class Runtime:
    """The clients and collaborators of one execution environment."""

    store: TransactionStore
    queue: RetryQueue
    provider: PaymentProvider
    acceptor: IdempotentAcceptor


def build_runtime(
    config: ProcessingConfig,
    dynamodb: Any = None,
    sqs: Any = None,
    provider: PaymentProvider | None = None,
) -> Runtime:
    """Wire the store, queue, provider and idempotency layer (clients made if not given)."""
    import boto3
    from botocore.config import Config

    # Fail fast inside the API Gateway 29 s budget; throttling is retried a little.
    client_config = Config(
        connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3}
    )
    dynamodb = dynamodb or boto3.client("dynamodb", config=client_config)
    sqs = sqs or boto3.client("sqs", config=client_config)
    store = TransactionStore(dynamodb, config.transactions_table)
    queue = RetryQueue(sqs, config.failed_queue_url)
    provider = provider or build_provider(config.provider)

    def accept(key: str, payment: Any) -> dict[str, Any]:
        return accept_payment(key, payment, store, provider, queue)

    acceptor = IdempotentAcceptor(
        dynamodb, config.transactions_table, config.idempotency_ttl_seconds, accept
    )
    return Runtime(store=store, queue=queue, provider=provider, acceptor=acceptor)


# The execution environment's runtime, built on first use (not at import).
runtime: Lazy[Runtime] = Lazy(lambda: build_runtime(CONFIG))


def idempotency_key(headers: Any, multi_value_headers: Any) -> str:
    """The one Idempotency-Key header (any case), or BadRequestError."""
    wanted = IDEMPOTENCY_HEADER.lower()
    values: list[Any] = []
    if isinstance(multi_value_headers, dict):
        for name, items in multi_value_headers.items():
            if isinstance(name, str) and name.lower() == wanted and isinstance(items, list):
                values.extend(items)
    if len(values) > 1:
        raise _header_error("duplicate", "Send exactly one Idempotency-Key header.")
    value = headers.get(wanted) if headers is not None else None
    if not isinstance(value, str) or value == "":
        raise _header_error(
            "missing", "The Idempotency-Key header is required (for example a UUID)."
        )
    if not valid_idempotency_key(value):
        raise _header_error(
            "malformed", "Idempotency-Key must be 8-128 letters, digits, '_' or '-'."
        )
    return value


def _header_error(code: str, message: str) -> api.BadRequestError:
    return api.BadRequestError([FieldError(IDEMPOTENCY_HEADER, code, message)])


@app.post("/process-payment")
def post_process_payment() -> Response:
    """Validate, then process once per Idempotency-Key: 201 with the outcome."""
    event = app.current_event
    key = idempotency_key(event.headers, event.get("multiValueHeaders"))
    payment = parse_payment(event.body, event.is_base64_encoded, CONFIG.api.rules)
    body = runtime().acceptor(key, payment, app.lambda_context)
    logger.info(
        "payment answered",
        extra={"transactionId": body["transactionId"], "status": body["status"]},
    )
    metrics.add_metric(name=f"Payment{body['status'].title()}", unit=MetricUnit.Count, value=1)
    return api.json_response(app, 201, body)


@app.get("/payments/<transactionId>")
def get_payment(transactionId: str) -> Response:  # the API's own parameter name
    """The stored status of one transaction."""
    if not TRANSACTION_ID_PATTERN.fullmatch(transactionId):
        raise api.BadRequestError(
            [FieldError("transactionId", "malformed", "transactionId must look like txn_...")]
        )
    transaction = runtime().store.get(transactionId)
    metrics.add_metric(name="PaymentLookup", unit=MetricUnit.Count, value=1)
    if transaction is None:
        return api.error_response(app, 404, "transaction_not_found", "No such transaction.")
    return api.json_response(app, 200, transaction.public())


@app.get("/payments")
def get_payment_without_id() -> Response:
    """GET /payments without an id: say which parameter is missing."""
    raise api.BadRequestError(
        [FieldError("transactionId", "missing", "Use GET /payments/{transactionId}.")]
    )


@app.exception_handler(PaymentQueuedError)
def queued(error: PaymentQueuedError) -> Response:
    """A transient failure: the payment waits on the retry queue."""
    logger.warning(
        "transient failure; payment queued for retry",
        extra={"transactionId": error.transaction_id, "cause": _cause(error)},
    )
    metrics.add_metric(name="PaymentQueued", unit=MetricUnit.Count, value=1)
    body = {
        "transactionId": error.transaction_id,
        "status": "QUEUED",
        "message": "Accepted; the payment will be retried. Check GET /payments/{transactionId}.",
    }
    return api.json_response(app, 202, body, {"Location": f"/payments/{error.transaction_id}"})


@app.exception_handler([IdempotencyKeyReusedError, TransactionConflictError])
def key_reused(error: Exception) -> Response:
    """The same Idempotency-Key with a different request: 422."""
    metrics.add_metric(name="ClientError", unit=MetricUnit.Count, value=1)
    logger.info("idempotency key reused with a different request")
    return api.error_response(
        app,
        422,
        "idempotency_key_reused",
        "This Idempotency-Key was already used with a different request; use a new key.",
    )


@app.exception_handler(RequestInProgressError)
def in_progress(error: RequestInProgressError) -> Response:
    """The same key is being processed by another request: try again shortly."""
    metrics.add_metric(name="ClientError", unit=MetricUnit.Count, value=1)
    logger.info("request with the same key in progress")
    message = "A request with this Idempotency-Key is in progress; retry shortly."
    return api.error_response(app, 409, "request_in_progress", message, headers=RETRY_AFTER)


@app.exception_handler(
    [QueueUnavailableError, IdempotencyStoreUnavailableError, StoreUnavailableError]
)
def unavailable(error: Exception) -> Response:
    """Nothing was accepted, or the outcome could not be recorded: a retry with the same
    key is always safe (it resumes the same transaction; never a false 202)."""
    metrics.add_metric(name="ServiceUnavailable", unit=MetricUnit.Count, value=1)
    logger.error(
        "service unavailable", extra={"errorType": type(error).__name__, "cause": _cause(error)}
    )
    message = "The service is temporarily unavailable; retry with the same Idempotency-Key."
    return api.error_response(app, 503, "service_unavailable", message, headers=RETRY_AFTER)


def _cause(error: BaseException) -> str | None:
    """The type name of the underlying error (never its message, which may quote input)."""
    return type(error.__cause__).__name__ if error.__cause__ is not None else None


def retry_record(record: SQSRecord) -> None:
    """Retry one queued payment; raising marks the message failed (SQS retries it)."""
    logger.set_correlation_id(record.message_id)
    try:
        message = RetryMessage.from_json(record.body, CONFIG.api.rules)
    except InvalidRetryMessageError as error:
        # Not a retry this platform wrote (malformed, or carrying card data); configurable
        # limits are not rechecked (see accepted_payment_rules). Retrying cannot fix it,
        # so it is reported and acknowledged.
        logger.error("queue message rejected", extra={"reason": str(error)})
        metrics.add_metric(name="RetryMessageRejected", unit=MetricUnit.Count, value=1)
        return
    rt = runtime()
    try:
        transaction = process_payment(
            message.transaction_id, message.payment, rt.store, rt.provider
        )
    except (StoreUnavailableError, ProviderUnavailableError) as error:
        logger.warning(
            "retry failed transiently; the queue will redeliver",
            extra={"transactionId": message.transaction_id, "errorType": type(error).__name__},
        )
        metrics.add_metric(name="RetryDeferred", unit=MetricUnit.Count, value=1)
        raise
    except TransactionConflictError:
        logger.error(
            "queued retry conflicts with the stored transaction",
            extra={"transactionId": message.transaction_id},
        )
        metrics.add_metric(name="RetryMessageRejected", unit=MetricUnit.Count, value=1)
        return
    logger.info(
        "retry completed",
        extra={"transactionId": transaction.id, "status": transaction.status.value},
    )
    metrics.add_metric(name="RetryCompleted", unit=MetricUnit.Count, value=1)


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


class UnsupportedEventError(ValueError):
    """An event that is neither an API Gateway request nor an SQS batch."""


def is_sqs_event(event: Any) -> bool:
    """True for an SQS batch from the event source mapping."""
    records = event.get("Records") if isinstance(event, dict) else None
    return bool(records) and all(
        isinstance(record, dict) and record.get("eventSource") == "aws:sqs" for record in records
    )


def is_api_event(event: Any) -> bool:
    """True for an API Gateway REST proxy request."""
    return isinstance(event, dict) and "httpMethod" in event and "requestContext" in event


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True
)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point: an API request or a batch from the failed-transactions queue."""
    if is_sqs_event(event):
        return handle_queue(event, context)
    if is_api_event(event):
        return app.resolve(event, context)
    raise UnsupportedEventError("expected an API Gateway REST request or an SQS batch")
