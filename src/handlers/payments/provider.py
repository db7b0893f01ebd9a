"""The payment provider seam: one interface, and the simulated acquirer behind it.

Every charge carries an idempotency key (the transaction id); a provider must
return the first result for a key it has seen instead of charging again, whichever
execution environment asks. That, with the conditional status transitions in the
store, is what makes a retry after a timeout or a crash safe. A real acquirer plugs
in as another `PaymentProvider` selected by `PAYMENT_PROVIDER`.

Test tokens of the simulated acquirer (`PAYMENT_PROVIDER=simulated`):

| token                          | result                                                |
| ------------------------------ | ----------------------------------------------------- |
| `tok_test_approve`             | authorised                                            |
| `tok_test_decline`             | declined, `card_declined`                             |
| `tok_test_insufficient_funds`  | declined, `insufficient_funds`                        |
| `tok_test_invalid`             | refused permanently, `invalid_token` (a decline)      |
| `tok_test_timeout`             | times out on every attempt (ends in NEEDS_REVIEW)     |
| `tok_test_flaky`               | times out on the first attempt for a key, then authorised |
| any other valid token          | authorised                                            |
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any, Protocol

from botocore.exceptions import ClientError

from handlers.aws_errors import AWS_CALL_ERRORS, is_transient


class ChargeStatus(Enum):
    """What the provider decided."""

    APPROVED = "approved"
    DECLINED = "declined"
    FAILED = "failed"


@dataclass(frozen=True)
class ChargeRequest:
    """One charge; `idempotency_key` is the transaction id."""

    idempotency_key: str
    amount: Decimal
    currency: str
    payment_token: str
    merchant_id: str


@dataclass(frozen=True)
class ChargeResult:
    """The provider's answer; `reason` is a short code for declines and failures."""

    status: ChargeStatus
    provider_reference: str
    reason: str | None = None


class ProviderUnavailableError(Exception):
    """A transient provider failure (timeout, 5xx): the same charge may be retried."""


class ProviderTimeoutError(ProviderUnavailableError):
    """The provider did not answer in time; the charge may or may not have happened."""


class ProviderConflictError(Exception):
    """The idempotency key was reused for a different charge: a bug, never retried."""


class PaymentProvider(Protocol):
    """What the processing code needs from an acquirer."""

    def charge(self, request: ChargeRequest) -> ChargeResult:
        """Charge once per idempotency key; raise ProviderUnavailableError when transient."""
        ...


TIMEOUT_TOKEN = "tok_test_timeout"  # noqa: S105 - a documented test token, not a secret
FLAKY_TOKEN = "tok_test_flaky"  # noqa: S105 - a documented test token, not a secret
_DECLINES = {
    "tok_test_decline": (ChargeStatus.DECLINED, "card_declined"),
    "tok_test_insufficient_funds": (ChargeStatus.DECLINED, "insufficient_funds"),
    "tok_test_invalid": (ChargeStatus.FAILED, "invalid_token"),
}
LEDGER_KEY = "idempotencyKey"


class SimulatedAcquirer:
    """A simulated acquirer with documented test tokens, idempotent per key across every
    execution environment: its ledger is a DynamoDB table (`ACQUIRER_LEDGER_TABLE`), as a
    real acquirer keeps its idempotency server-side.

    A charge is two conditional writes on the key's ledger item: count the attempt (and pin
    the request the key belongs to), then record the decision if none is recorded yet. A
    decision already recorded is returned as it is, to any environment that asks again; a
    different request under the same key is refused (ProviderConflictError). Talking to the
    ledger can fail transiently like talking to an acquirer can: ProviderUnavailableError,
    and the next attempt finds whatever was recorded.
    """

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        try:
            return getattr(self._client, operation)(TableName=self._table, **params)
        except AWS_CALL_ERRORS as error:
            if is_transient(error):
                raise ProviderTimeoutError("the acquirer did not answer") from error
            raise

    def charge(self, request: ChargeRequest) -> ChargeResult:
        """Decide by test token; the first decision for a key is final."""
        key = {LEDGER_KEY: {"S": request.idempotency_key}}
        counted = self._call(
            "update_item",
            Key=key,
            UpdateExpression="ADD attempts :one "
            "SET chargeRequest = if_not_exists(chargeRequest, :request)",
            ExpressionAttributeValues={":one": {"N": "1"}, ":request": {"S": _canonical(request)}},
            ReturnValues="ALL_NEW",
        )["Attributes"]
        if counted["chargeRequest"]["S"] != _canonical(request):
            raise ProviderConflictError("idempotency key reused for a different charge")
        if "outcome" in counted:
            return _result(counted)
        token = request.payment_token
        if token == TIMEOUT_TOKEN or (token == FLAKY_TOKEN and counted["attempts"]["N"] == "1"):
            raise ProviderTimeoutError("simulated acquirer timed out")
        status, reason = _DECLINES.get(token, (ChargeStatus.APPROVED, None))
        decision = ChargeResult(status, _reference(request.idempotency_key), reason)
        values = {":outcome": {"S": status.value}, ":ref": {"S": decision.provider_reference}}
        update = "SET outcome = :outcome, providerReference = :ref"
        if reason is not None:
            values[":reason"] = {"S": reason}
            update += ", reason = :reason"
        try:
            self._call(
                "update_item",
                Key=key,
                UpdateExpression=update,
                ConditionExpression="attribute_not_exists(outcome)",
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            # Another environment decided first: its decision is the one.
            item = self._call("get_item", Key=key, ConsistentRead=True)["Item"]
            return _result(item)
        return decision


def _canonical(request: ChargeRequest) -> str:
    """The request as the ledger pins it (amount normalised, so 12.5 and 12.50 agree)."""
    return json.dumps(
        {
            "amount": str(request.amount.normalize()),
            "currency": request.currency,
            "merchantId": request.merchant_id,
            "paymentToken": request.payment_token,
        },
        sort_keys=True,
        separators=(",", ":"),
    )


def _result(item: dict[str, Any]) -> ChargeResult:
    reason = item.get("reason", {}).get("S")
    return ChargeResult(ChargeStatus(item["outcome"]["S"]), item["providerReference"]["S"], reason)


def _reference(key: str) -> str:
    # base32 (letters and 2-7) so a reference never looks like a card number in a log.
    digest = hashlib.sha256(key.encode()).digest()[:15]
    return "sim_" + base64.b32encode(digest).decode().lower()


def build_provider(name: str, dynamodb_client: Any, ledger_table: str) -> PaymentProvider:
    """The provider named by PAYMENT_PROVIDER."""
    if name == "simulated":
        return SimulatedAcquirer(dynamodb_client, ledger_table)
    raise ValueError(f"unknown payment provider {name!r}")
