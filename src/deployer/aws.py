"""Sessions and clients: retries with jitter, time-based timeouts, credentials checked first."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import boto3
import botocore.exceptions
import botocore.parsers
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
    max_attempts: int = 10  # in all, the first try included
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    access_key: str | None = None
    secret_key: str | None = None


# The first call (sts:GetCallerIdentity) tells "AWS is unreachable" within PROBE_BOUND
# seconds: 2 attempts of at most max(connect, read) seconds each plus botocore's first
# backoff (at most 1 s). The other clients keep the patient settings above.
PROBE = AwsSettings(max_attempts=2, connect_timeout=4.0, read_timeout=5.0)
PROBE_BOUND = 15.0
# Errors a failed call can raise besides ClientError: transport, parameter validation,
# and a response botocore cannot parse (ResponseParserError is not a BotoCoreError).
AWS_ERRORS = (
    botocore.exceptions.ClientError,
    botocore.exceptions.BotoCoreError,
    botocore.parsers.ResponseParserError,
)


# A configuration file botocore cannot use: local input, refused with exit 2.
CONFIG_ERRORS = (
    botocore.exceptions.ConfigParseError,
    botocore.exceptions.InvalidConfigError,
    botocore.exceptions.ConfigNotFound,
)
# Credentials that exist but cannot be obtained (raised on the first call, often).
CREDENTIAL_ERRORS = (
    botocore.exceptions.PartialCredentialsError,
    botocore.exceptions.CredentialRetrievalError,
    botocore.exceptions.SSOError,
    botocore.exceptions.TokenRetrievalError,
)


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
    # Only to check that the payment API's processor function exists.
    lambda_: Any = None
    # Only to find the stack's alarms for the rollback configuration.
    cloudwatch: Any = None
    # --profile, named in the advice when its credentials cannot be obtained.
    profile: str | None = None
    # Clients with the PROBE settings, by service, to check it answers at all (see reachable).
    probes: Mapping[str, Any] = field(default_factory=dict)


def client_config(settings: AwsSettings) -> Config:
    """Retries (standard/adaptive, jittered), connect/read timeouts, our user agent."""
    return Config(
        # total_max_attempts counts the first try (max_attempts would add one to it).
        retries={"mode": settings.retry_mode, "total_max_attempts": settings.max_attempts},
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        user_agent_extra=USER_AGENT,
    )


def region_setting(settings: AwsSettings, environ: Mapping[str, str]) -> str | None:
    """--region, else AWS_REGION (boto3 itself reads only AWS_DEFAULT_REGION and the profile)."""
    return settings.region or environ.get("AWS_REGION") or None


def make_clients(settings: AwsSettings, environ: Mapping[str, str] = os.environ) -> Clients:
    """Build the clients, failing early with a clear message on no credentials or region."""
    try:
        return _make_clients(settings, environ)
    except botocore.exceptions.ProfileNotFound as error:
        raise InvalidInputError(
            reason=f"{error}: pick one of `aws configure list-profiles` or drop --profile"
        ) from None
    except botocore.exceptions.InvalidRegionError:
        region = settings.region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
        shown = f" {region!r}" if region else " of the profile"
        raise InvalidInputError(
            reason=f"the region{shown} is not a region name (such as us-east-1): fix --region, "
            "AWS_REGION, AWS_DEFAULT_REGION or the profile's region"
        ) from None
    except CONFIG_ERRORS as error:
        raise InvalidInputError(
            reason=f"the AWS configuration cannot be read ({error}): fix the file "
            "(AWS_CONFIG_FILE, default ~/.aws/config) or point AWS_CONFIG_FILE at another"
        ) from None
    except CREDENTIAL_ERRORS as error:
        raise credentials_failure(error, settings.profile) from None
    except AWS_ERRORS as error:
        raise call_failure("creating the AWS clients", error) from None


def credentials_failure(error: Exception, profile: str | None) -> NoCredentialsError:
    """A credential provider's failure (an SSO session not logged in, a broken process...)."""
    login = f"aws sso login --profile {profile}" if profile else "aws sso login"
    return NoCredentialsError(
        reason=f"{type(error).__name__}: {error}; for an SSO profile run {login}"
    )


def _make_clients(settings: AwsSettings, environ: Mapping[str, str]) -> Clients:
    session = boto3.Session(
        profile_name=settings.profile,
        region_name=region_setting(settings, environ),
        aws_access_key_id=settings.access_key,
        aws_secret_access_key=settings.secret_key,
    )
    if session.get_credentials() is None:
        raise NoCredentialsError(reason="none found in the environment, profile or instance role")
    if not session.region_name:
        raise NoRegionError()
    config = client_config(settings)
    probe = client_config(
        replace(
            settings,
            max_attempts=PROBE.max_attempts,
            connect_timeout=PROBE.connect_timeout,
            read_timeout=PROBE.read_timeout,
        )
    )

    def client(service: str, chosen: Config = config) -> Any:
        return session.client(service, config=chosen, endpoint_url=settings.endpoint_url)

    return Clients(
        cloudformation=client("cloudformation"),
        s3=client("s3"),
        sts=client("sts", probe),
        apigateway=client("apigateway"),
        region=session.region_name,
        iam=client("iam"),
        lambda_=client("lambda"),
        cloudwatch=client("cloudwatch"),
        profile=settings.profile,
        probes={"cloudformation": client("cloudformation", probe)},
    )


def error_code(error: botocore.exceptions.ClientError) -> str:
    """The AWS error code of a ClientError."""
    return str(error.response.get("Error", {}).get("Code", ""))


def error_message(error: botocore.exceptions.ClientError) -> str:
    """The AWS error message of a ClientError."""
    return str(error.response.get("Error", {}).get("Message", error))


def caller_account(sts: Any, profile: str | None = None) -> str:
    """The account id of these credentials; the first call, so bad credentials fail here."""
    try:
        return str(sts.get_caller_identity()["Account"])
    except botocore.exceptions.NoCredentialsError:
        raise NoCredentialsError(reason="none found") from None
    except CREDENTIAL_ERRORS as error:
        raise credentials_failure(error, profile) from None
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
    except (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError) as error:
        raise AwsCallError(
            operation=f"sts:GetCallerIdentity at {sts.meta.endpoint_url}",
            code=type(error).__name__,
            message=f"no answer after {PROBE.max_attempts} attempts",
            next_step="check the network, the region and AWS_ENDPOINT_URL",
        ) from None


# One cheap read per probed service; any answer, an error included, means it is reachable.
PROBE_CALLS = {"cloudformation": lambda client: client.list_exports()}


def check_reachable(probes: Mapping[str, Any]) -> None:
    """Each service the run depends on answers within PROBE_BOUND seconds.

    STS answering is not enough: where only STS is reachable (a private subnet with an STS
    endpoint and none for CloudFormation, a mistyped AWS_ENDPOINT_URL_CLOUDFORMATION) the
    first CloudFormation call took a minute or more through its 10 patient attempts.
    """
    for service, client in probes.items():
        try:
            PROBE_CALLS[service](client)
        except (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError) as error:
            raise AwsCallError(
                operation=f"{service} at {client.meta.endpoint_url}",
                code=type(error).__name__,
                message=f"no answer after {PROBE.max_attempts} attempts",
                next_step="check the network (a proxy or VPC endpoint for this service), the "
                "region and AWS_ENDPOINT_URL",
            ) from None
        except AWS_ERRORS:
            continue  # it answered (AccessDenied is an answer); the run reports the rest


def call_failure(operation: str, error: Exception) -> AwsCallError:
    """Any failed AWS call (see AWS_ERRORS) as one line with the next step."""
    if isinstance(error, botocore.exceptions.ClientError):
        code, message = error_code(error), error_message(error)
        next_step = (
            f"grant {operation} to this identity"
            if code in {"AccessDenied", "AccessDeniedException", "AuthorizationError"}
            else "see the message; rerun once the cause is fixed"
        )
    else:
        code, message = type(error).__name__, (str(error).splitlines() or [""])[0]
        next_step = "check the network, the region and AWS_ENDPOINT_URL, then rerun"
    return AwsCallError(operation=operation, code=code, message=message, next_step=next_step)
