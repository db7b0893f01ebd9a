"""Request idempotency with Powertools: the `Idempotency-Key` header, stored in DynamoDB.

The first final answer (201) for a key is stored and returned for every
repeat; the same key with a different payment is refused. A 202 (queued) is
not a final answer: it raises through Powertools, which deletes the record,
so a repeat resumes the same transaction and returns its outcome once known.
Powertools' idempotency package is imported on first use: the queue path of
the function never needs it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from handlers.payments.service import PaymentQueuedError
from handlers.payments.validation import Payment

# Records are `id = "payment-request#<hash of the key>"`, beside the transactions.
KEY_PREFIX = "payment-request"


class IdempotencyKeyReusedError(Exception):
    """The key was already used with a different request body."""


class RequestInProgressError(Exception):
    """Another request with the same key is being processed right now."""


class IdempotencyStoreUnavailableError(Exception):
    """The idempotency records could not be read or written; the client should retry."""


Accept = Callable[[str, Payment], dict[str, Any]]


class IdempotentAcceptor:
    """Runs `accept(key, payment)` at most once per key, replaying its answer."""

    def __init__(self, dynamodb_client: Any, table_name: str, ttl_seconds: int, accept: Accept):
        from aws_lambda_powertools.utilities.idempotency import (
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            idempotent_function,
        )

        self._config = IdempotencyConfig(
            event_key_jmespath="idempotencyKey",
            payload_validation_jmespath="payment",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=ttl_seconds,
        )
        persistence = DynamoDBPersistenceLayer(
            table_name=table_name,
            key_attr="id",
            expiry_attr="expiration",
            boto3_client=dynamodb_client,
        )

        @idempotent_function(
            data_keyword_argument="request",
            persistence_store=persistence,
            config=self._config,
            key_prefix=KEY_PREFIX,
        )
        def run(request: dict[str, Any], payment: Payment) -> dict[str, Any]:
            return accept(request["idempotencyKey"], payment)

        self._run = run

    def __call__(
        self, idempotency_key: str, payment: Payment, lambda_context: Any
    ) -> dict[str, Any]:
        """The answer for this key: computed now, or replayed from the first request."""
        from aws_lambda_powertools.utilities.idempotency.exceptions import (
            IdempotencyAlreadyInProgressError,
            IdempotencyPersistenceLayerError,
            IdempotencyValidationError,
        )

        # The in-progress record expires when this invocation would time out, so a
        # request cut short by a timeout does not block its key until the TTL.
        self._config.register_lambda_context(lambda_context)
        request = {"idempotencyKey": idempotency_key, "payment": payment.to_dict()}
        try:
            return self._run(request=request, payment=payment)
        except IdempotencyValidationError as error:
            raise IdempotencyKeyReusedError("key reused with a different request") from error
        except IdempotencyAlreadyInProgressError as error:
            raise RequestInProgressError("a request with this key is in progress") from error
        except IdempotencyPersistenceLayerError as error:
            queued = _queued_payment(error)
            if queued is not None:
                # The payment is on the retry queue; only forgetting the in-progress key
                # failed (it expires with this invocation). The truthful answer is still 202.
                raise queued from error
            raise IdempotencyStoreUnavailableError("idempotency store unavailable") from error


def _queued_payment(error: BaseException) -> PaymentQueuedError | None:
    """The PaymentQueuedError behind a persistence error, if the payment was queued.

    Powertools raises its persistence error while handling the function's exception
    (when deleting the in-progress record fails), so the queued error is in the chain.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, PaymentQueuedError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
