"""The failed-transactions queue: what a retry message is, and sending one.

A message names a transaction and nothing else: the row is the record (amount, token,
merchant, attempts), so a message can never disagree with it, carry card data, or outlive
the payment's terminal state with any effect (a retry of a finished payment does nothing).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from handlers.aws_errors import AWS_CALL_ERRORS, is_transient

# base32 of 20 bytes: letters and the digits 2-7, so an id never resembles a card number.
TRANSACTION_ID_PATTERN = re.compile(r"txn_[a-z2-7]{32}")
RETRY_MESSAGE_VERSION = 2


class InvalidRetryMessageError(ValueError):
    """A queue message that is not a retry this platform writes."""


class QueueUnavailableError(Exception):
    """The retry queue refused the message transiently."""


@dataclass(frozen=True)
class RetryMessage:
    """`{"version": 2, "transactionId": ...}`: retry this transaction."""

    transaction_id: str

    def to_json(self) -> str:
        """The message body."""
        body = {"version": RETRY_MESSAGE_VERSION, "transactionId": self.transaction_id}
        return json.dumps(body, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, body: Any) -> RetryMessage:
        """Parse a message body; InvalidRetryMessageError says why it is not one of ours."""
        try:
            data = json.loads(body) if isinstance(body, str) else None
        except (ValueError, RecursionError) as error:
            raise InvalidRetryMessageError("not JSON") from error
        if not isinstance(data, dict):
            raise InvalidRetryMessageError("not a JSON object")
        if data.get("version") != RETRY_MESSAGE_VERSION:
            raise InvalidRetryMessageError("not a version 2 retry")
        if set(data) != {"version", "transactionId"}:
            raise InvalidRetryMessageError("fields other than version and transactionId")
        transaction_id = data["transactionId"]
        if not isinstance(transaction_id, str) or not TRANSACTION_ID_PATTERN.fullmatch(
            transaction_id
        ):
            raise InvalidRetryMessageError("no valid transaction id")
        return cls(transaction_id)


class RetryQueue:
    """Sends retry messages to the failed-transactions queue."""

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
