"""The payment flows: accepting a request (the API) and retrying one (the queue consumer).

Both run the same attempt: charge the acquirer with the transaction id as its idempotency
key, then record the outcome with a conditional write. Crash anywhere and nothing is lost or
doubled: the row exists before the first charge (no charge without a stored transaction), the
acquirer's ledger returns its first decision to whoever asks again, and the sweeper re-queues
any pending row nobody has touched for a while. Every attempt is claimed in the row first,
so the provider is called at most `max_attempts` times per payment, after which the payment
waits in NEEDS_REVIEW for an operator.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from handlers.payments.idempotency import KeyReusedError, KeyScope
from handlers.payments.provider import (
    PaymentProvider,
    ProviderConflictError,
    ProviderUnavailableError,
)
from handlers.payments.retry_queue import QueueUnavailableError, RetryMessage, RetryQueue
from handlers.payments.store import (
    REVIEW_ATTEMPTS_EXHAUSTED,
    REVIEW_PROVIDER_CONFLICT,
    BoundKey,
    OutcomeUnknownError,
    StoreUnavailableError,
    Transaction,
    TransactionStatus,
    TransactionStore,
    new_transaction_id,
)
from handlers.payments.validation import Payment


class NotAcceptedError(Exception):
    """Nothing was recorded and the key was seen free: 503, retry with the same key."""


class AttemptDeferredError(Exception):
    """An attempt hit a transient failure (acquirer or table); the payment stays pending."""


class RetryDeferredError(Exception):
    """A queued retry failed transiently: the message must be delivered again."""


class UnknownTransactionError(Exception):
    """A retry message for a transaction this table does not hold."""


@dataclass(frozen=True)
class Payments:
    """What the flows need: the table, the acquirer, the retry queue, the attempt cap."""

    store: TransactionStore
    provider: PaymentProvider
    queue: RetryQueue
    max_attempts: int


@dataclass(frozen=True)
class PaymentRequest:
    """A validated payment and the idempotency key it came with, from one caller."""

    caller: str
    key: str
    payment: Payment

    @property
    def scope(self) -> KeyScope:
        return KeyScope(caller=self.caller, merchant_id=self.payment.merchant_id, key=self.key)


@dataclass(frozen=True)
class Accepted:
    """The answer to a request: the transaction as it stands, and how it got there."""

    transaction: Transaction
    replayed: bool = False  # the key was bound already: nothing ran again
    queued: bool = False  # a transient failure: waiting for a retry
    message_sent: bool = False  # the retry message went out (else the sweeper sends one)


def accept_payment(request: PaymentRequest, payments: Payments) -> Accepted:
    """Bind the key and record the payment, then make the first attempt.

    NotAcceptedError when nothing could be recorded (the client retries: the key is free);
    KeyReusedError when the key is bound to another body. A key bound to this body replays
    the transaction's current state and runs nothing.
    """
    try:
        bound = payments.store.bind(request.scope, request.payment, new_transaction_id())
    except StoreUnavailableError as error:
        raise NotAcceptedError("the payment could not be recorded") from error
    if isinstance(bound, BoundKey):
        return _replay(bound, request, payments.store)
    try:
        return Accepted(run_attempt(bound, payments))
    except AttemptDeferredError:
        return park(bound, payments)
    except ProviderConflictError:
        try:
            return Accepted(_review(bound, REVIEW_PROVIDER_CONFLICT, payments.store))
        except StoreUnavailableError:
            return park(bound, payments)  # the consumer's attempt will meet the same refusal


def _replay(bound: BoundKey, request: PaymentRequest, store: TransactionStore) -> Accepted:
    if bound.request_hash != request.payment.fingerprint():
        raise KeyReusedError("the key is bound to a different request")
    try:
        transaction = store.get(bound.transaction_id)
    except StoreUnavailableError as error:
        # The key is bound, the payment exists: never the 503 that says nothing was kept.
        raise OutcomeUnknownError("the bound payment could not be read") from error
    if transaction is None:
        raise RuntimeError("a bound key without its transaction (they are written together)")
    return Accepted(transaction, replayed=True)


def run_attempt(transaction: Transaction, payments: Payments) -> Transaction:
    """Charge once and record the outcome. AttemptDeferredError on a transient failure
    (nothing is lost: the row stays pending and the acquirer remembers any charge)."""
    try:
        result = payments.provider.charge(transaction.charge_request())
    except ProviderUnavailableError as error:
        raise AttemptDeferredError("the acquirer did not answer") from error
    try:
        completed = payments.store.complete(transaction.id, result)
        if completed is not None:
            return completed
        # Another attempt finished it first (same acquirer key, so the same decision).
        winner = payments.store.get(transaction.id)
    except StoreUnavailableError as error:
        raise AttemptDeferredError("the outcome could not be recorded") from error
    if winner is None:
        raise RuntimeError("a transaction vanished after it was completed")
    return winner


def park(transaction: Transaction, payments: Payments) -> Accepted:
    """Mark the payment QUEUED and send its retry message. Either may fail: the row is
    pending either way, so the sweeper re-queues it once it has waited STUCK_AFTER_SECONDS.
    A payment another path finished meanwhile (its outcome was written, the answer lost) is
    answered as it stands, with no message."""
    current = transaction
    try:
        current = payments.store.mark_queued(transaction.id)
    except StoreUnavailableError:
        pass  # still send the message: it is what gets the payment retried soonest
    if not current.status.pending:
        return Accepted(current)
    try:
        payments.queue.send(RetryMessage(transaction.id))
        sent = True
    except QueueUnavailableError:
        sent = False
    return Accepted(current, queued=True, message_sent=sent)


class RetryResult(StrEnum):
    """What a queued retry did."""

    COMPLETED = "completed"  # the outcome is recorded now
    ALREADY_FINAL = "already-final"  # another path finished it; nothing ran
    REVIEW = "review"  # attempts exhausted (or the acquirer refused the key): NEEDS_REVIEW


@dataclass(frozen=True)
class RetryOutcome:
    """The result of one retry and the transaction after it."""

    result: RetryResult
    transaction: Transaction


def retry_payment(transaction_id: str, payments: Payments) -> RetryOutcome:
    """Claim an attempt and run it. RetryDeferredError: redeliver the message later;
    UnknownTransactionError: no such transaction (the message goes to the DLQ)."""
    store = payments.store
    try:
        claim = store.claim_attempt(transaction_id, payments.max_attempts)
    except StoreUnavailableError as error:
        raise RetryDeferredError("the attempt could not be claimed") from error
    if claim.transaction is None:
        raise UnknownTransactionError("no such transaction")
    if claim.finished:
        return RetryOutcome(RetryResult.ALREADY_FINAL, claim.transaction)
    if claim.exhausted:
        return _review_outcome(claim.transaction, REVIEW_ATTEMPTS_EXHAUSTED, store)
    try:
        return RetryOutcome(RetryResult.COMPLETED, run_attempt(claim.transaction, payments))
    except AttemptDeferredError as error:
        if claim.transaction.attempts < payments.max_attempts:
            raise RetryDeferredError("the attempt failed transiently") from error
        return _review_outcome(claim.transaction, REVIEW_ATTEMPTS_EXHAUSTED, store)
    except ProviderConflictError:
        return _review_outcome(claim.transaction, REVIEW_PROVIDER_CONFLICT, store)


def _review_outcome(transaction: Transaction, reason: str, store: TransactionStore) -> RetryOutcome:
    try:
        reviewed = _review(transaction, reason, store)
    except StoreUnavailableError as error:
        raise RetryDeferredError("the review state could not be recorded") from error
    done = RetryResult.REVIEW if reviewed.status is TransactionStatus.NEEDS_REVIEW else None
    return RetryOutcome(done or RetryResult.ALREADY_FINAL, reviewed)


def _review(transaction: Transaction, reason: str, store: TransactionStore) -> Transaction:
    """Move to NEEDS_REVIEW, or the transaction as another path left it."""
    reviewed = store.to_review(transaction.id, reason)
    if reviewed is not None:
        return reviewed
    current = store.get(transaction.id)
    return current if current is not None else transaction
