"""Transactions and idempotency-key bindings in DynamoDB, moved only by conditional writes.

The state machine (docs/handlers.md draws it with what moves each transition):

    RECEIVED --outcome stored--> SUCCEEDED | DECLINED
    RECEIVED --transient failure (re-queued) / sweeper--> QUEUED
    QUEUED   --retry attempt, outcome stored--> SUCCEEDED | DECLINED
    RECEIVED | QUEUED --attempts exhausted, or the acquirer refused the key--> NEEDS_REVIEW

A transaction is created once, together with the binding of its idempotency key, in one
`TransactWriteItems` (`attribute_not_exists` on both items): a payment is never recorded
without its key bound, nor a key bound without its payment. It leaves RECEIVED/QUEUED once
(every terminal write is conditional on a pending status), so concurrent attempts cannot both
win; the loser reads the winner. Each attempt is claimed first (`attempts < :max`), so the
provider is called a bounded number of times, whatever delivers the retries. No locks.

While pending, a transaction carries `pendingShard`, the partition key of the sparse index
`pending-by-requeue` whose sort key is `requeuedAt` (the time it was last re-queued, first
its creation): the sweeper reads the least recently re-queued first, and every terminal write
removes `pendingShard`, so the index holds exactly the unfinished transactions.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from handlers.aws_errors import AWS_CALL_ERRORS, error_code, is_transient
from handlers.payments.idempotency import KeyScope
from handlers.payments.provider import ChargeRequest, ChargeResult, ChargeStatus
from handlers.payments.validation import Payment, format_amount


class TransactionStatus(StrEnum):
    """States of a transaction (docs/handlers.md)."""

    RECEIVED = "RECEIVED"
    QUEUED = "QUEUED"
    SUCCEEDED = "SUCCEEDED"
    DECLINED = "DECLINED"
    NEEDS_REVIEW = "NEEDS_REVIEW"

    @property
    def pending(self) -> bool:
        """True while the platform is still working on it."""
        return self in (TransactionStatus.RECEIVED, TransactionStatus.QUEUED)

    @property
    def outcome(self) -> bool:
        """True when the acquirer's decision is recorded (answered 201)."""
        return self in (TransactionStatus.SUCCEEDED, TransactionStatus.DECLINED)


# The acquirer's decision -> the terminal state. A permanent failure (an invalid token) is a
# decline: nothing was charged and retrying cannot change it.
_OUTCOME = {
    ChargeStatus.APPROVED: TransactionStatus.SUCCEEDED,
    ChargeStatus.DECLINED: TransactionStatus.DECLINED,
    ChargeStatus.FAILED: TransactionStatus.DECLINED,
}
REVIEW_ATTEMPTS_EXHAUSTED = "attempts_exhausted"
REVIEW_PROVIDER_CONFLICT = "provider_conflict"

# The sparse index of unfinished transactions (templates/data.py declares the same).
PENDING_INDEX = "pending-by-requeue"
PENDING_SHARD_ATTRIBUTE = "pendingShard"
PENDING_SHARD = "pending"
PENDING_SORT_ATTRIBUTE = "requeuedAt"
TRANSACTION_RECORD = "transaction"
KEY_RECORD = "idempotency-key"
# A transaction id voided after a lost binding answer (see TransactionStore.bind).
VOID_RECORD = "void"
TRANSACTION_PREFIX = "txn_"
# Codes DynamoDB gives a cancelled transaction when retrying it may succeed.
_TRANSIENT_CANCELLATIONS = frozenset(
    {"ThrottlingError", "ProvisionedThroughputExceeded", "TransactionConflict",
     "RequestLimitExceeded", "InternalServerError"}
)  # fmt: skip
_PENDING_CONDITION = "#status IN (:received, :queued)"


class StoreUnavailableError(Exception):
    """DynamoDB throttled or failed transiently; the same write may be retried."""


class KeyInUseError(Exception):
    """Another request's binding transaction holds the key's item right now: the key is being
    bound, its outcome not known yet (neither free nor another body's): Stripe's 409."""


class OutcomeUnknownError(Exception):
    """A payment's binding may or may not have been recorded (or is, and cannot be read), and
    DynamoDB cannot say: never answered 503 (which promises nothing was kept); a retry with the
    same key and body finds out."""


def utc_now() -> dt.datetime:
    """The current time in UTC."""
    return dt.datetime.now(dt.UTC)


def timestamp(moment: dt.datetime) -> str:
    """ISO 8601 UTC with milliseconds, as stored (sorts as it reads)."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_transaction_id() -> str:
    """A random id (160 bits), unrelated to anything the client sent.

    base32: letters and the digits 2-7, so an id never resembles a card number in a log.
    """
    return TRANSACTION_PREFIX + base64.b32encode(secrets.token_bytes(20)).decode().lower()


@dataclass(frozen=True)
class Transaction:
    """One stored transaction."""

    id: str
    status: TransactionStatus
    caller: str
    amount: str
    currency: str
    merchant_id: str
    payment_token: str
    request_hash: str
    attempts: int
    received_at: str
    updated_at: str
    requeued_at: str
    description: str | None = None
    completed_at: str | None = None
    provider_reference: str | None = None
    reason: str | None = None

    def public(self) -> dict[str, Any]:
        """What the caller that owns it may see (no token, hash or attempt count)."""
        data: dict[str, Any] = {
            "transactionId": self.id,
            "status": self.status.value,
            "amount": self.amount,
            "currency": self.currency,
            "merchantId": self.merchant_id,
            "receivedAt": self.received_at,
            "updatedAt": self.updated_at,
        }
        optional = {
            "description": self.description,
            "completedAt": self.completed_at,
            "providerReference": self.provider_reference,
            "reason": self.reason,
        }
        data.update({key: value for key, value in optional.items() if value is not None})
        return data

    def charge_request(self) -> ChargeRequest:
        """The charge for this transaction; its id is the acquirer's idempotency key."""
        return ChargeRequest(
            idempotency_key=self.id,
            amount=Decimal(self.amount),
            currency=self.currency,
            payment_token=self.payment_token,
            merchant_id=self.merchant_id,
        )


_STRINGS = {
    "id": "id",
    "status": "status",
    "caller": "caller",
    "amount": "amount",
    "currency": "currency",
    "merchant_id": "merchantId",
    "payment_token": "paymentToken",
    "request_hash": "requestHash",
    "received_at": "receivedAt",
    "updated_at": "updatedAt",
    "requeued_at": "requeuedAt",
    "description": "description",
    "completed_at": "completedAt",
    "provider_reference": "providerReference",
    "reason": "reason",
}


def _from_item(item: dict[str, Any]) -> Transaction:
    values: dict[str, Any] = {
        name: item[attr]["S"] for name, attr in _STRINGS.items() if attr in item
    }
    values["status"] = TransactionStatus(values["status"])
    values["attempts"] = int(item["attempts"]["N"])
    return Transaction(**values)


def _expired(binding: dict[str, Any], now: dt.datetime) -> bool:
    """As the binding write's condition judges it (`#exp < :now`; no expiration: never)."""
    return "expiration" in binding and int(binding["expiration"]["N"]) < int(now.timestamp())


def _is_transaction(item: dict[str, Any] | None) -> bool:
    return item is not None and item.get("recordType", {}).get("S") == TRANSACTION_RECORD


@dataclass(frozen=True)
class BoundKey:
    """An idempotency key that was already bound: to which transaction, for which body."""

    transaction_id: str
    request_hash: str


def _bound_key_of(binding: dict[str, Any]) -> BoundKey:
    return BoundKey(binding["transactionId"]["S"], binding["requestHash"]["S"])


@dataclass(frozen=True)
class Claim:
    """The result of claiming an attempt: the transaction (None if there is none), and
    whether the attempt may run (`claimed`) or why not (`finished`, `exhausted`)."""

    transaction: Transaction | None
    claimed: bool

    @property
    def missing(self) -> bool:
        return self.transaction is None

    @property
    def finished(self) -> bool:
        return self.transaction is not None and not self.transaction.status.pending

    @property
    def exhausted(self) -> bool:
        return not self.claimed and self.transaction is not None and not self.finished


class TransactionStore:
    """Reads and conditional writes of transaction items and key bindings."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        key_ttl_seconds: int = 0,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self._client = client
        self._table = table_name
        self._key_ttl = key_ttl_seconds
        self._clock = clock

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        try:
            return getattr(self._client, operation)(**params)
        except AWS_CALL_ERRORS as error:
            if is_transient(error):
                raise StoreUnavailableError(f"DynamoDB {operation} failed transiently") from error
            raise

    def bind(
        self, scope: KeyScope, payment: Payment, transaction_id: str
    ) -> Transaction | BoundKey:
        """Bind the key and record the transaction RECEIVED (first attempt counted), in one
        transaction; or, when the key is already bound, what it is bound to.

        StoreUnavailableError means nothing was recorded, for certain: when the write's answer
        was lost (throttled after it, a timeout), the outcome is settled first
        (`_settle_lost_binding`): a write that did happen carries on as if answered, one that
        did not is made impossible; OutcomeUnknownError when neither can be established."""
        now = self._clock()
        stamp = timestamp(now)
        request_hash = payment.fingerprint()
        item = {
            "id": {"S": transaction_id},
            "recordType": {"S": TRANSACTION_RECORD},
            "status": {"S": TransactionStatus.RECEIVED.value},
            "caller": {"S": scope.caller},
            "amount": {"S": format_amount(payment.amount, payment.currency)},
            "currency": {"S": payment.currency},
            "merchantId": {"S": payment.merchant_id},
            # A provider token (validated, never a card number): what a retry charges.
            "paymentToken": {"S": payment.payment_token},
            "requestHash": {"S": request_hash},
            "attempts": {"N": "1"},
            "receivedAt": {"S": stamp},
            "updatedAt": {"S": stamp},
            PENDING_SORT_ATTRIBUTE: {"S": stamp},
            PENDING_SHARD_ATTRIBUTE: {"S": PENDING_SHARD},
        }
        if payment.description is not None:
            item["description"] = {"S": payment.description}
        binding = {
            "id": {"S": scope.item_id},
            "recordType": {"S": KEY_RECORD},
            "transactionId": {"S": transaction_id},
            "requestHash": {"S": request_hash},
            "createdAt": {"S": stamp},
            "expiration": {"N": str(int(now.timestamp()) + self._key_ttl)},
        }
        epoch = {"N": str(int(now.timestamp()))}
        try:
            self._call(
                "transact_write_items",
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": binding,
                            # An expired binding (TTL deletes lazily) no longer holds the key.
                            "ConditionExpression": "attribute_not_exists(id) OR #exp < :now",
                            "ExpressionAttributeNames": {"#exp": "expiration"},
                            "ExpressionAttributeValues": {":now": epoch},
                            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table,
                            "Item": item,
                            "ConditionExpression": "attribute_not_exists(id)",
                        }
                    },
                ],
            )
        except StoreUnavailableError:
            existing = self._settle_lost_binding(scope, transaction_id, binding["expiration"])
            if existing is not None:
                return existing
        except ClientError as error:
            if error_code(error) != "TransactionCanceledException":
                raise
            return self._bound_key(scope, error)
        return _from_item(item)

    def _settle_lost_binding(
        self, scope: KeyScope, transaction_id: str, expiration: dict[str, str]
    ) -> BoundKey | None:
        """After the binding's answer was lost: None when it was written (carry on), the
        binding another request holds, or StoreUnavailableError when it is certain that nothing
        was recorded. An unanswered write may still commit after a read that did not see it
        (or the read fails too, or saw another binding that TTL then deletes by DynamoDB's
        clock), so anything but our own binding is made final by voiding the transaction id:
        the binding transaction's Put requires `attribute_not_exists(id)` on it and can no
        longer commit. OutcomeUnknownError when even that cannot be written."""
        with contextlib.suppress(StoreUnavailableError):  # unread: the void decides
            existing = self._read_binding(scope)
            if existing is not None and existing.transaction_id == transaction_id:
                return None
        try:
            self._call(
                "put_item",
                TableName=self._table,
                Item={
                    "id": {"S": transaction_id},
                    "recordType": {"S": VOID_RECORD},
                    # Kept as long as a binding: far longer than a write can stay in flight.
                    "expiration": expiration,
                },
                ConditionExpression="attribute_not_exists(id)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except StoreUnavailableError as error:
            raise OutcomeUnknownError("the binding's outcome could not be settled") from error
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            if self._holds_transaction(transaction_id, error.response.get("Item")):
                return None  # the transaction row is there: the binding was written with it
            # Our own marker: the SDK retried a put that had landed (its answer was lost).
        return self._binding_after_nothing_written(scope)

    def _holds_transaction(self, transaction_id: str, found: dict[str, Any] | None) -> bool:
        """Whether the item that refused the void is the transaction row (else the marker)."""
        if found is None:  # not every path returns the old item: read it
            try:
                found = self._read_item(transaction_id)
            except StoreUnavailableError as error:
                raise OutcomeUnknownError("the voided id could not be read") from error
        return _is_transaction(found)

    def _binding_after_nothing_written(self, scope: KeyScope) -> BoundKey:
        """This request wrote nothing, and never will: the binding another request holds, or
        StoreUnavailableError (503) once the key is seen free. A 503 promises both nothing
        kept and a free key, so a key that cannot be read is OutcomeUnknownError instead."""
        try:
            bound = self._read_binding(scope)
        except StoreUnavailableError as error:
            raise OutcomeUnknownError("the key's binding could not be read") from error
        if bound is None:
            raise StoreUnavailableError("nothing was written and the key is free")
        return bound

    def _read_binding(self, scope: KeyScope) -> BoundKey | None:
        """The key's binding, or None when there is none or it expired (TTL deletes lazily;
        an expired binding holds nothing, as the binding write's condition says)."""
        found = self._read_item(scope.item_id)
        if found is None or _expired(found, self._clock()):
            return None
        return _bound_key_of(found)

    def _bound_key(self, scope: KeyScope, error: ClientError) -> BoundKey:
        reasons = error.response.get("CancellationReasons") or []
        codes = {reason.get("Code") for reason in reasons}
        key_code = reasons[0].get("Code") if reasons else None
        key_taken = key_code == "ConditionalCheckFailed"
        if key_code == "TransactionConflict":
            # Another request's transaction holds the key's item: it is being bound, and a
            # read now may not see it yet. Not free, not known: never the 503.
            raise KeyInUseError("another request is binding the key") from error
        if not key_taken and codes & _TRANSIENT_CANCELLATIONS:
            # Cancelled before the key's condition told anything: it may be bound already.
            return self._binding_after_nothing_written(scope)
        if not key_taken:
            raise error  # a colliding transaction id: 160 random bits, never in practice
        existing = reasons[0].get("Item")
        if existing is not None:
            return _bound_key_of(existing)
        # Not every SDK path returns the old item. A binding gone by the read expired
        # meanwhile: the key is free and this request wrote nothing.
        return self._binding_after_nothing_written(scope)

    def get(self, transaction_id: str) -> Transaction | None:
        """The transaction, read consistently, or None."""
        item = self._read_item(transaction_id)
        return _from_item(item) if _is_transaction(item) else None

    def _read_item(self, item_id: str) -> dict[str, Any] | None:
        """Any item of the table by id (a transaction, a binding, a marker), read consistently."""
        return self._call(
            "get_item", TableName=self._table, Key={"id": {"S": item_id}}, ConsistentRead=True
        ).get("Item")

    def _update(
        self,
        transaction_id: str,
        update: str,
        values: dict[str, Any],
        condition: str = _PENDING_CONDITION,
        *,
        old_on_failure: bool = False,
        return_new: bool = True,
    ) -> tuple[Transaction | None, dict[str, Any] | None]:
        """(the updated transaction, None), or (None, the item as it was) when the condition
        failed (the item only if asked for and it exists). `return_new=False` asks for
        nothing back (ReturnValues NONE) and answers (None, None) on success."""
        params: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"id": {"S": transaction_id}},
            "UpdateExpression": update,
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {
                ":received": {"S": TransactionStatus.RECEIVED.value},
                ":queued": {"S": TransactionStatus.QUEUED.value},
                ":now": {"S": timestamp(self._clock())},
                **values,
            },
            "ReturnValues": "ALL_NEW" if return_new else "NONE",
        }
        if old_on_failure:
            params["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            response = self._call("update_item", **params)
        except ClientError as error:
            if error_code(error) != "ConditionalCheckFailedException":
                raise
            return None, error.response.get("Item") or {}
        return (_from_item(response["Attributes"]) if return_new else None), None

    def claim_attempt(self, transaction_id: str, max_attempts: int) -> Claim:
        """Count one more attempt, if the transaction is pending and has attempts left."""
        claimed, old = self._update(
            transaction_id,
            "SET attempts = attempts + :one, updatedAt = :now",
            {
                ":one": {"N": "1"},
                ":max": {"N": str(max_attempts)},
                ":txn": {"S": TRANSACTION_RECORD},
            },
            f"recordType = :txn AND {_PENDING_CONDITION} AND attempts < :max",
            old_on_failure=True,
        )
        if claimed is not None:
            return Claim(claimed, claimed=True)
        return Claim(_from_item(old) if old and _is_transaction(old) else None, claimed=False)

    def complete(self, transaction_id: str, result: ChargeResult) -> Transaction | None:
        """Pending -> the acquirer's outcome; None when it already left pending."""
        values = {
            ":status": {"S": _OUTCOME[result.status].value},
            ":ref": {"S": result.provider_reference},
        }
        update = (
            "SET #status = :status, updatedAt = :now, completedAt = :now, providerReference = :ref"
        )
        if result.reason is not None:
            values[":reason"] = {"S": result.reason}
            update += ", reason = :reason"
        # Removing the index's partition key takes the transaction out of the sparse index.
        done, _ = self._update(transaction_id, f"{update} REMOVE {PENDING_SHARD_ATTRIBUTE}", values)
        return done

    def mark_queued(self, transaction_id: str) -> Transaction:
        """Pending -> QUEUED, re-queued now (a retry message is about to be sent); or the
        transaction as it is when it already left pending."""
        queued, old = self._update(
            transaction_id,
            f"SET #status = :queued, updatedAt = :now, {PENDING_SORT_ATTRIBUTE} = :now",
            {},
            old_on_failure=True,
        )
        if queued is not None:
            return queued
        if not old or not _is_transaction(old):
            raise RuntimeError("a transaction vanished while it was being queued")
        return _from_item(old)

    def requeue(self, transaction_id: str, seen_requeued_at: str) -> bool:
        """The sweeper's re-queue: QUEUED, re-queued now, if nobody re-queued it since it was
        read (`seen_requeued_at`), so two overlapping sweeps send one message, not two.

        Touches only `status`, `updatedAt`, `requeuedAt` and returns nothing: the health role
        may update exactly those attributes of `txn_` items (templates/platform_functions.py).
        """
        _, failed = self._update(
            transaction_id,
            f"SET #status = :queued, updatedAt = :now, {PENDING_SORT_ATTRIBUTE} = :now",
            {":seen": {"S": seen_requeued_at}},
            f"{_PENDING_CONDITION} AND {PENDING_SORT_ATTRIBUTE} = :seen",
            return_new=False,
        )
        return failed is None

    def to_review(self, transaction_id: str, reason: str) -> Transaction | None:
        """Pending -> NEEDS_REVIEW (terminal for the platform: no more provider calls)."""
        done, _ = self._update(
            transaction_id,
            f"SET #status = :review, updatedAt = :now, completedAt = :now, reason = :reason "
            f"REMOVE {PENDING_SHARD_ATTRIBUTE}",
            {
                ":review": {"S": TransactionStatus.NEEDS_REVIEW.value},
                ":reason": {"S": reason},
            },
        )
        return done

    def requeue_candidates(self, cutoff: str, limit: int) -> list[tuple[str, str]]:
        """(id, requeuedAt) of up to `limit` pending transactions re-queued before `cutoff`,
        least recently re-queued first. The index is eventually consistent: one finished a
        moment ago may still appear, and `requeue`'s condition then leaves it alone."""
        response = self._call(
            "query",
            TableName=self._table,
            IndexName=PENDING_INDEX,
            KeyConditionExpression="#shard = :shard AND #requeued < :cutoff",
            ExpressionAttributeNames={
                "#shard": PENDING_SHARD_ATTRIBUTE,
                "#requeued": PENDING_SORT_ATTRIBUTE,
            },
            ExpressionAttributeValues={":shard": {"S": PENDING_SHARD}, ":cutoff": {"S": cutoff}},
            ScanIndexForward=True,
            Limit=limit,
        )
        return [
            (item["id"]["S"], item[PENDING_SORT_ATTRIBUTE]["S"])
            for item in response.get("Items", [])
        ]
