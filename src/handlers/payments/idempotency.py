"""Idempotency keys as a payments API people trust does them (Stripe's model).

A key is scoped to the caller (API Gateway's `requestContext.identity.apiKeyId`, the id of
the API key, never its value) and the merchant of the request: two callers, or two merchants
of one caller, never collide. The first request with a key binds it, atomically with the
transaction row it creates (`TransactionStore.bind`); from then on the same key with the same
body replays the payment's current state and runs nothing again, and with a different body
is refused (422), whatever state the payment is in. A binding is kept
`IDEMPOTENCY_TTL_SECONDS` (at least 24 h); the transaction itself is kept for good.

Powertools' idempotency utility is not used: it deletes its record when the function raises
and replays a stored response, where this contract binds a key to a durable transaction and
replays that transaction's current state.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass

from handlers.payments import cards

KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{8,128}")
# Keys are at least a day old before they can be bound again (docs/handlers.md).
MIN_RETENTION_SECONDS = 24 * 3600
KEY_ITEM_PREFIX = "idem_"


class KeyReusedError(Exception):
    """The key is bound to a request with a different body."""


def valid_idempotency_key(key: str) -> bool:
    """True for 8-128 letters, digits, '_' or '-' (a UUID fits) that are not a card number."""
    return bool(KEY_PATTERN.fullmatch(key)) and not cards.contains_pan(key)


@dataclass(frozen=True)
class KeyScope:
    """An idempotency key within its scope: the caller and the merchant."""

    caller: str
    merchant_id: str
    key: str

    @property
    def item_id(self) -> str:
        """The binding's item id: a hash of the scope, so the table never holds a client's key
        (base32, digits 2-7 only, so an id never resembles a card number)."""
        scope = "\x1f".join((self.caller, self.merchant_id, self.key)).encode()
        digest = hashlib.sha256(b"payment-platform/idempotency-key\x1f" + scope).digest()
        return KEY_ITEM_PREFIX + base64.b32encode(digest).decode().rstrip("=").lower()
