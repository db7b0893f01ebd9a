"""The payment provider seam: one interface, and the simulated acquirer behind it.

Every charge carries an idempotency key (the transaction id); a provider must
return the first result for a key it has seen instead of charging again. That,
with the conditional status transitions in the store, is what makes a retry
after a timeout safe. A real acquirer plugs in as another `PaymentProvider`
selected by `PAYMENT_PROVIDER`.

Test tokens of the simulated acquirer (`PAYMENT_PROVIDER=simulated`):

| token                          | result                                                |
| ------------------------------ | ----------------------------------------------------- |
| `tok_test_approve`             | authorised                                            |
| `tok_test_decline`             | declined, `card_declined`                             |
| `tok_test_insufficient_funds`  | declined, `insufficient_funds`                        |
| `tok_test_invalid`             | failed permanently, `invalid_token`                   |
| `tok_test_timeout`             | times out on every attempt (ends in the DLQ)          |
| `tok_test_flaky`               | times out on the first attempt for a key, then authorised |
| any other valid token          | authorised                                            |
"""

from __future__ import annotations

import base64
import hashlib
import threading
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Protocol


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


class SimulatedAcquirer:
    """An in-memory acquirer with documented test tokens, idempotent per key.

    Its ledger lives in the execution environment's memory: enough to exercise
    every path, and why a real acquirer (which keeps idempotency server-side)
    replaces it in production.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ledger: dict[str, tuple[ChargeRequest, ChargeResult]] = {}
        self._attempts: dict[str, int] = {}

    @property
    def charges(self) -> dict[str, ChargeResult]:
        """Idempotency key -> the one result recorded for it."""
        with self._lock:
            return {key: result for key, (_, result) in self._ledger.items()}

    def attempts(self, idempotency_key: str) -> int:
        """How many times a charge with this key was requested."""
        with self._lock:
            return self._attempts.get(idempotency_key, 0)

    def charge(self, request: ChargeRequest) -> ChargeResult:
        """Decide by test token; the first decision for a key is final."""
        with self._lock:
            attempt = self._attempts.get(request.idempotency_key, 0) + 1
            self._attempts[request.idempotency_key] = attempt
            recorded = self._ledger.get(request.idempotency_key)
            if recorded is not None:
                if recorded[0] != request:
                    raise ProviderConflictError("idempotency key reused for a different charge")
                return recorded[1]
            token = request.payment_token
            if token == TIMEOUT_TOKEN or (token == FLAKY_TOKEN and attempt == 1):
                raise ProviderTimeoutError("simulated acquirer timed out")
            status, reason = _DECLINES.get(token, (ChargeStatus.APPROVED, None))
            result = ChargeResult(status, _reference(request.idempotency_key), reason)
            self._ledger[request.idempotency_key] = (request, result)
            return result


def _reference(key: str) -> str:
    # base32 (letters and 2-7) so a reference never looks like a card number in a log.
    digest = hashlib.sha256(key.encode()).digest()[:15]
    return "sim_" + base64.b32encode(digest).decode().lower()


def build_provider(name: str) -> PaymentProvider:
    """The provider named by PAYMENT_PROVIDER."""
    if name == "simulated":
        return SimulatedAcquirer()
    raise ValueError(f"unknown payment provider {name!r}")
