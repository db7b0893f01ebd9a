"""Transactions in DynamoDB: a status machine moved only by conditional writes.

RECEIVED -> AUTHORIZED | DECLINED | FAILED. A transaction is created once
(`attribute_not_exists(id)`) and leaves RECEIVED once (`status = RECEIVED`),
so concurrent or repeated attempts on the same id cannot both win; the loser
reads the winner's result. No lock, no read-modify-write.

While a transaction is RECEIVED it carries `pendingShard`, the partition key of
the sparse index `pending-by-age` (sort key `receivedAt`); the completing
update removes it, so the index holds exactly the unfinished transactions and
the health function's sweeper can find the ones nobody is finishing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from handlers.aws_errors import AWS_CALL_ERRORS, is_transient
from handlers.payments.provider import ChargeResult, ChargeStatus
from handlers.payments.validation import Payment, format_amount


class TransactionStatus(StrEnum):
    """States of a transaction."""

    RECEIVED = "RECEIVED"
    AUTHORIZED = "AUTHORIZED"
    DECLINED = "DECLINED"
    FAILED = "FAILED"

    @property
    def terminal(self) -> bool:
        """True once the outcome is final."""
        return self is not TransactionStatus.RECEIVED


_OUTCOME = {
    ChargeStatus.APPROVED: TransactionStatus.AUTHORIZED,
    ChargeStatus.DECLINED: TransactionStatus.DECLINED,
    ChargeStatus.FAILED: TransactionStatus.FAILED,
}


# The sparse index of unfinished transactions (templates/data.py declares the same).
PENDING_INDEX = "pending-by-age"
PENDING_SHARD_ATTRIBUTE = "pendingShard"
PENDING_SHARD = "pending"
PENDING_SORT_ATTRIBUTE = "receivedAt"


class StoreUnavailableError(Exception):
    """DynamoDB throttled or failed transiently; the same write may be retried."""


def utc_now() -> dt.datetime:
    """The current time in UTC."""
    return dt.datetime.now(dt.UTC)


def timestamp(moment: dt.datetime) -> str:
    """ISO 8601 UTC with milliseconds, as stored."""
    return moment.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Transaction:
    """One stored transaction."""

    id: str
    status: TransactionStatus
    amount: str
    currency: str
    merchant_id: str
    request_hash: str
    received_at: str
    updated_at: str
    description: str | None = None
    completed_at: str | None = None
    provider_reference: str | None = None
    reason: str | None = None

    def public(self) -> dict[str, Any]:
        """What an API client may see (no request hash)."""
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


_ATTRIBUTES = {
    "id": "id",
    "status": "status",
    "amount": "amount",
    "currency": "currency",
    "merchant_id": "merchantId",
    "request_hash": "requestHash",
    "received_at": "receivedAt",
    "updated_at": "updatedAt",
    "description": "description",
    "completed_at": "completedAt",
    "provider_reference": "providerReference",
    "reason": "reason",
}


def _from_item(item: dict[str, Any]) -> Transaction:
    values = {field: item[attr]["S"] for field, attr in _ATTRIBUTES.items() if attr in item}
    values["status"] = TransactionStatus(values["status"])
    return Transaction(**values)


class TransactionStore:
    """Reads and conditional writes of transaction items."""

    def __init__(
        self, client: Any, table_name: str, clock: Callable[[], dt.datetime] = utc_now
    ) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        try:
            return getattr(self._client, operation)(TableName=self._table, **params)
        except AWS_CALL_ERRORS as error:
            if is_transient(error):
                raise StoreUnavailableError(f"DynamoDB {operation} failed transiently") from error
            raise

    def create(self, transaction_id: str, payment: Payment, request_hash: str) -> bool:
        """Record a RECEIVED transaction; False when the id already exists."""
        now = timestamp(self._clock())
        item = {
            "id": {"S": transaction_id},
            "recordType": {"S": "transaction"},
            "status": {"S": TransactionStatus.RECEIVED.value},
            "amount": {"S": format_amount(payment.amount, payment.currency)},
            "currency": {"S": payment.currency},
            "merchantId": {"S": payment.merchant_id},
            # A provider token (validated, never a card number): what a sweeper's retry of a
            # transaction left RECEIVED needs, together with the fields above.
            "paymentToken": {"S": payment.payment_token},
            "requestHash": {"S": request_hash},
            "receivedAt": {"S": now},
            "updatedAt": {"S": now},
            # Puts the transaction in the sparse index until it is completed.
            PENDING_SHARD_ATTRIBUTE: {"S": PENDING_SHARD},
        }
        if payment.description is not None:
            item["description"] = {"S": payment.description}
        try:
            self._call("put_item", Item=item, ConditionExpression="attribute_not_exists(id)")
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def get(self, transaction_id: str) -> Transaction | None:
        """The transaction, read consistently, or None."""
        response = self._call("get_item", Key={"id": {"S": transaction_id}}, ConsistentRead=True)
        item = response.get("Item")
        if item is None or item.get("recordType", {}).get("S") != "transaction":
            return None
        return _from_item(item)

    def complete(self, transaction_id: str, result: ChargeResult) -> Transaction | None:
        """Move RECEIVED -> the outcome of the charge; None when it already left RECEIVED."""
        status = _OUTCOME[result.status]
        now = timestamp(self._clock())
        names = {"#status": "status"}
        values = {
            ":received": {"S": TransactionStatus.RECEIVED.value},
            ":status": {"S": status.value},
            ":now": {"S": now},
            ":ref": {"S": result.provider_reference},
        }
        assignments = "#status = :status, updatedAt = :now, completedAt = :now, "
        assignments += "providerReference = :ref"
        if result.reason is not None:
            values[":reason"] = {"S": result.reason}
            assignments += ", reason = :reason"
        try:
            response = self._call(
                "update_item",
                Key={"id": {"S": transaction_id}},
                # Removing the index's partition key takes the transaction out of the
                # sparse index; `receivedAt` (its sort key) stays, it is part of the record.
                UpdateExpression="SET " + assignments + " REMOVE " + PENDING_SHARD_ATTRIBUTE,
                ConditionExpression="#status = :received",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        return _from_item(response["Attributes"])
