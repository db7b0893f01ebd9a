"""Processing a payment: the one flow the API and the retry queue both run.

The transaction id is derived from the client's idempotency key, so every
retry of a request, whichever path it takes (the same key again, the queue,
a redrive from the DLQ), lands on the same transaction and the same provider
idempotency key. A charge can be attempted many times; it happens once.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from handlers.aws_errors import AWS_CALL_ERRORS, is_transient
from handlers.payments import cards
from handlers.payments.provider import ChargeRequest, PaymentProvider, ProviderUnavailableError
from handlers.payments.store import StoreUnavailableError, Transaction, TransactionStore
from handlers.payments.validation import (
    ISO_4217_MINOR_UNITS,
    Payment,
    PaymentValidationError,
    ValidationRules,
    payment_from_dict,
)

IDEMPOTENCY_KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{8,128}")
# base32 of 20 bytes: letters and the digits 2-7, so an id never resembles a card number.
TRANSACTION_ID_PATTERN = re.compile(r"txn_[a-z2-7]{32}")
RETRY_MESSAGE_VERSION = 1


class TransactionConflictError(Exception):
    """The idempotency key already belongs to a different payment."""


class QueueUnavailableError(Exception):
    """The retry queue refused the message; the client must retry (never a false 202)."""


class PaymentQueuedError(Exception):
    """The payment hit a transient failure and waits on the retry queue (answered 202)."""

    def __init__(self, transaction_id: str) -> None:
        super().__init__("payment queued for retry")
        self.transaction_id = transaction_id


class InvalidRetryMessageError(ValueError):
    """A queue message that is not a retry this platform wrote."""


def valid_idempotency_key(key: str) -> bool:
    """True for 8-128 letters, digits, '_' or '-' (a UUID fits) that are not a card number."""
    return bool(IDEMPOTENCY_KEY_PATTERN.fullmatch(key)) and not cards.contains_pan(key)


def transaction_id_for(idempotency_key: str) -> str:
    """The transaction id of a request: a hash of its idempotency key, stable across retries."""
    digest = hashlib.sha256(b"payment-platform/transaction/" + idempotency_key.encode()).digest()
    return "txn_" + base64.b32encode(digest[:20]).decode().lower()


def process_payment(
    transaction_id: str, payment: Payment, store: TransactionStore, provider: PaymentProvider
) -> Transaction:
    """Record, charge once, and store the outcome; resumes a transaction left RECEIVED.

    Raises StoreUnavailableError or ProviderUnavailableError on a transient
    failure: nothing is then lost, the same call may simply be repeated.
    """
    request_hash = payment.fingerprint()
    if not store.create(transaction_id, payment, request_hash):
        existing = store.get(transaction_id)
        if existing is None:
            raise RuntimeError("transaction vanished between a failed create and a read")
        if existing.request_hash != request_hash:
            raise TransactionConflictError("idempotency key reused for a different payment")
        if existing.status.terminal:
            return existing
    result = provider.charge(
        ChargeRequest(
            idempotency_key=transaction_id,
            amount=payment.amount,
            currency=payment.currency,
            payment_token=payment.payment_token,
            merchant_id=payment.merchant_id,
        )
    )
    completed = store.complete(transaction_id, result)
    if completed is not None:
        return completed
    # Another attempt completed it first (same provider key, so the same result).
    winner = store.get(transaction_id)
    if winner is None:
        raise RuntimeError("transaction vanished after it was completed")
    return winner


@dataclass(frozen=True)
class RetryMessage:
    """What the retry queue carries: the transaction id and the normalised payment.

    Only what a retry needs: the token (never a card number), amount,
    currency, merchant and description. No headers, no client data beyond it.
    """

    transaction_id: str
    payment: Payment

    def to_json(self) -> str:
        """The message body."""
        return json.dumps(
            {
                "version": RETRY_MESSAGE_VERSION,
                "transactionId": self.transaction_id,
                "payment": self.payment.to_dict(),
            },
            separators=(",", ":"),
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, body: str, rules: ValidationRules) -> RetryMessage:
        """Parse and validate a message body again (never trust the queue either)."""
        try:
            data: Any = json.loads(body)
        except (ValueError, RecursionError) as error:
            raise InvalidRetryMessageError("message body is not JSON") from error
        if not isinstance(data, dict) or data.get("version") != RETRY_MESSAGE_VERSION:
            raise InvalidRetryMessageError("message is not a version 1 retry")
        transaction_id = data.get("transactionId")
        if not isinstance(transaction_id, str) or not TRANSACTION_ID_PATTERN.fullmatch(
            transaction_id
        ):
            raise InvalidRetryMessageError("message has no valid transaction id")
        try:
            payment = payment_from_dict(data.get("payment"), accepted_payment_rules(rules))
        except PaymentValidationError as error:
            raise InvalidRetryMessageError(f"message payment is invalid: {error}") from error
        return cls(transaction_id=transaction_id, payment=payment)


def accepted_payment_rules(rules: ValidationRules) -> ValidationRules:
    """The rules a queued retry is checked against: shape, ISO 4217 and card data, but not
    the configurable limits. The payment was accepted (202) under the limits of that day;
    a later change of MaxPaymentAmount or AllowedCurrencies must not strand it."""
    return dataclasses.replace(
        rules,
        max_amount=Decimal("Infinity"),
        allowed_currencies=frozenset(ISO_4217_MINOR_UNITS),
    )


class RetryQueue:
    """Sends payments that hit a transient failure to the failed-transactions queue."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def send(self, message: RetryMessage) -> None:
        """Enqueue; QueueUnavailableError when SQS is transiently unavailable."""
        try:
            self._client.send_message(QueueUrl=self._url, MessageBody=message.to_json())
        except AWS_CALL_ERRORS as error:
            if is_transient(error):
                raise QueueUnavailableError("the retry queue is unavailable") from error
            raise


def accept_payment(
    idempotency_key: str,
    payment: Payment,
    store: TransactionStore,
    provider: PaymentProvider,
    queue: RetryQueue,
) -> dict[str, Any]:
    """Process a request; on a transient failure queue it and raise PaymentQueuedError.

    If the queue refuses too, QueueUnavailableError propagates: the client is
    told to retry (5xx), and a retry with the same key resumes the same
    transaction, whatever state it was left in.
    """
    transaction_id = transaction_id_for(idempotency_key)
    try:
        return process_payment(transaction_id, payment, store, provider).public()
    except (StoreUnavailableError, ProviderUnavailableError) as error:
        queue.send(RetryMessage(transaction_id=transaction_id, payment=payment))
        raise PaymentQueuedError(transaction_id) from error
