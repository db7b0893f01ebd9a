"""Which AWS errors are transient: the same call may succeed if made again later.

Anything else (access denied, validation, a missing resource) is a bug or a
misconfiguration and must surface as an error, not be retried forever.
"""

from __future__ import annotations

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

AWS_CALL_ERRORS = (ClientError, ConnectionError, HTTPClientError)

TRANSIENT_ERROR_CODES = frozenset(
    {
        # DynamoDB
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
        # The SDK's retry met its own first attempt still running (ClientRequestToken): the
        # call's outcome is not known yet, like a lost answer.
        "TransactionInProgressException",
        # SQS (and KMS behind an encrypted queue)
        "RequestThrottled",
        "InternalError",
        "KMS.ThrottlingException",
        "KmsThrottled",
    }
)


def error_code(error: Exception) -> str | None:
    """The AWS error code of a ClientError, else None."""
    if isinstance(error, ClientError):
        return error.response.get("Error", {}).get("Code")
    return None


def is_transient(error: Exception) -> bool:
    """True for throttling, AWS 5xx (whatever code the body gives, even none) and
    connection problems."""
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return error_code(error) in TRANSIENT_ERROR_CODES or status >= 500
    return isinstance(error, (ConnectionError, HTTPClientError))
