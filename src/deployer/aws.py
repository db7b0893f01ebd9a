"""Sessions and clients: retries with jitter, time-based timeouts, credentials checked first."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
import botocore.exceptions
from botocore.config import Config

from deployer.errors import AwsCallError, InvalidInputError, NoCredentialsError, NoRegionError

USER_AGENT = "payment-infrastructure-deployer"
# Codes STS and other services return for credentials that exist but do not work.
BAD_CREDENTIAL_CODES = {
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "InvalidAccessKeyId",
}
THROTTLING_CODES = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
}


@dataclass(frozen=True)
class AwsSettings:
    """Where and how to call AWS; None means the standard boto3 lookup (env, profile)."""

    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    # Adaptive adds client-side rate limiting on top of standard's jittered backoff:
    # worth it when one account runs several deploys at once.
    retry_mode: str = "standard"
    max_attempts: int = 10
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    access_key: str | None = None
    secret_key: str | None = None


@dataclass(frozen=True)
class Clients:
    """The clients the deployer uses, created once and injected everywhere."""

    cloudformation: Any
    s3: Any
    sts: Any
    apigateway: Any
    region: str
    # Only to check that the account's API Gateway logging role still exists.
    iam: Any = None


def client_config(settings: AwsSettings) -> Config:
    """Retries (standard/adaptive, jittered), connect/read timeouts, our user agent."""
    return Config(
        retries={"mode": settings.retry_mode, "max_attempts": settings.max_attempts},
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        user_agent_extra=USER_AGENT,
    )


def make_clients(settings: AwsSettings) -> Clients:
    """Build the clients, failing early with a clear message on no credentials or region."""
    try:
        session = boto3.Session(
            profile_name=settings.profile,
            region_name=settings.region,
            aws_access_key_id=settings.access_key,
            aws_secret_access_key=settings.secret_key,
        )
    except botocore.exceptions.ProfileNotFound as error:
        raise InvalidInputError(
            reason=f"{error}: pick one of `aws configure list-profiles` or drop --profile"
        ) from None
    if session.get_credentials() is None:
        raise NoCredentialsError(reason="none found in the environment, profile or instance role")
    if not session.region_name:
        raise NoRegionError()
    config = client_config(settings)

    def client(service: str) -> Any:
        return session.client(service, config=config, endpoint_url=settings.endpoint_url)

    return Clients(
        cloudformation=client("cloudformation"),
        s3=client("s3"),
        sts=client("sts"),
        apigateway=client("apigateway"),
        region=session.region_name,
        iam=client("iam"),
    )


def error_code(error: botocore.exceptions.ClientError) -> str:
    """The AWS error code of a ClientError."""
    return str(error.response.get("Error", {}).get("Code", ""))


def error_message(error: botocore.exceptions.ClientError) -> str:
    """The AWS error message of a ClientError."""
    return str(error.response.get("Error", {}).get("Message", error))


def caller_account(sts: Any) -> str:
    """The account id of these credentials; the first call, so bad credentials fail here."""
    try:
        return str(sts.get_caller_identity()["Account"])
    except botocore.exceptions.NoCredentialsError:
        raise NoCredentialsError(reason="none found") from None
    except botocore.exceptions.ClientError as error:
        if error_code(error) in BAD_CREDENTIAL_CODES:
            raise NoCredentialsError(
                reason=f"{error_code(error)}: {error_message(error)}"
            ) from None
        raise AwsCallError(
            operation="sts:GetCallerIdentity",
            code=error_code(error),
            message=error_message(error),
            next_step="check the credentials and the endpoint",
        ) from None
    except botocore.exceptions.EndpointConnectionError as error:
        raise AwsCallError(
            operation="sts:GetCallerIdentity",
            code="EndpointConnectionError",
            message=str(error),
            next_step="check the network, the region and AWS_ENDPOINT_URL",
        ) from None
