"""Environment of each function, read and validated once at cold start.

A missing or malformed variable stops the function at init with a message
naming the variable: a misconfigured deployment fails loudly on its first
invocation instead of answering requests with made-up defaults.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from handlers.payments.idempotency import MIN_RETENTION_SECONDS
from handlers.payments.validation import ISO_4217_MINOR_UNITS, ValidationRules

PROVIDERS = ("simulated",)
# POWERTOOLS_SERVICE_NAME of the processing function: the dimension of its own metrics,
# which the health gate reads (templates/platform_functions.py sets the same).
PROCESSING_SERVICE = "processing"
# The largest MAX_PAYMENT_ATTEMPTS accepted: beyond it a stuck payment hammers the acquirer.
MAX_ATTEMPTS_LIMIT = 100
# StartMessageMoveTask accepts at most 500 messages per second.
MAX_REDRIVE_RATE = 500
_ORIGIN = re.compile(r"https://[A-Za-z0-9.-]+(?::[0-9]{1,5})?")
_QUEUE_URL = re.compile(r"https://\S+/[0-9]{12}/[A-Za-z0-9_-]{1,80}")
_ARN = re.compile(r"arn:aws[a-z-]*:[a-z0-9-]+:[a-z0-9-]*:[0-9]{12}:\S+")


# The console constraints of MAX_PAYMENT_AMOUNT and ALLOWED_CURRENCIES (templates/ builds the
# parameters from them): every value they accept, load_api accepts. A positive decimal with at
# most two decimals and twelve integer digits; a comma-separated list of known ISO 4217 codes.
MAX_PAYMENT_AMOUNT_PATTERN = r"^(?:[1-9][0-9]{0,11}(?:\.[0-9]{1,2})?|0\.(?:[1-9][0-9]?|0[1-9]))$"


def allowed_currencies_pattern() -> str:
    """The AllowedPattern of ALLOWED_CURRENCIES: only codes `load_api` knows."""
    codes = "|".join(sorted(ISO_4217_MINOR_UNITS))
    return rf"^(?:{codes})(?:,(?:{codes}))*$"


class ConfigError(RuntimeError):
    """The function's environment is missing a variable or has an invalid value."""


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(f"missing required environment variable {name}")
    return value


def _invalid(name: str, why: str) -> ConfigError:
    return ConfigError(f"environment variable {name} is invalid: {why}")


def _positive_int(env: Mapping[str, str], name: str) -> int:
    text = _required(env, name)
    if not text.isdigit() or int(text) <= 0:
        raise _invalid(name, "expected a positive whole number")
    return int(text)


def _matching(env: Mapping[str, str], name: str, pattern: re.Pattern[str], shape: str) -> str:
    value = _required(env, name)
    if not pattern.fullmatch(value):
        raise _invalid(name, f"expected {shape}")
    return value


def _boolean(env: Mapping[str, str], name: str) -> bool:
    value = _required(env, name).lower()
    if value not in ("true", "false"):
        raise _invalid(name, "expected 'true' or 'false'")
    return value == "true"


@dataclass(frozen=True)
class CommonConfig:
    """What every function reads."""

    service: str
    metrics_namespace: str
    cors_allowed_origin: str
    environment: str


@dataclass(frozen=True)
class ApiConfig:
    """Validation and processing: common settings plus the payment rules."""

    common: CommonConfig
    rules: ValidationRules


@dataclass(frozen=True)
class ProcessingConfig:
    """The processing function's settings."""

    api: ApiConfig
    transactions_table: str
    failed_queue_url: str
    idempotency_ttl_seconds: int
    provider: str
    # The simulated acquirer's durable ledger (empty when another provider is selected).
    acquirer_ledger_table: str
    # Attempts (provider calls) per payment before it moves to NEEDS_REVIEW.
    max_payment_attempts: int


@dataclass(frozen=True)
class HealthConfig:
    """The health function's settings."""

    common: CommonConfig
    transactions_table: str
    state_item_id: str
    failed_queue_url: str
    failed_queue_arn: str
    dlq_url: str
    dlq_arn: str
    alarm_topic_arn: str
    alarm_names: tuple[str, ...]
    processing_function_name: str
    redrive_max_messages_per_second: int
    redrive_cooldown_seconds: int
    dry_run: bool
    # A transaction RECEIVED for longer than this has nobody finishing it: re-enqueue it.
    stuck_after_seconds: int
    # At most this many stuck transactions are re-enqueued per scheduled run.
    stuck_requeue_limit: int = 50


def load_common(env: Mapping[str, str]) -> CommonConfig:
    """The variables every function needs."""
    return CommonConfig(
        service=_required(env, "POWERTOOLS_SERVICE_NAME"),
        metrics_namespace=_required(env, "POWERTOOLS_METRICS_NAMESPACE"),
        cors_allowed_origin=_matching(
            env, "CORS_ALLOWED_ORIGIN", _ORIGIN, "one https origin such as https://app.example.com"
        ),
        environment=_required(env, "ENVIRONMENT"),
    )


def load_api(env: Mapping[str, str]) -> ApiConfig:
    """Settings of the validation function (and the API part of processing)."""
    text = _required(env, "MAX_PAYMENT_AMOUNT")
    try:
        max_amount = Decimal(text)
    except InvalidOperation as error:
        raise _invalid("MAX_PAYMENT_AMOUNT", "expected a decimal such as 10000.00") from error
    if not max_amount.is_finite() or max_amount <= 0:
        raise _invalid("MAX_PAYMENT_AMOUNT", "expected a positive decimal such as 10000.00")
    codes = [code.strip() for code in _required(env, "ALLOWED_CURRENCIES").split(",")]
    unknown = [code for code in codes if code not in ISO_4217_MINOR_UNITS]
    if unknown or not codes:
        raise _invalid("ALLOWED_CURRENCIES", f"not ISO 4217 codes: {', '.join(unknown)}")
    return ApiConfig(
        common=load_common(env),
        rules=ValidationRules(max_amount=max_amount, allowed_currencies=frozenset(codes)),
    )


def load_processing(env: Mapping[str, str]) -> ProcessingConfig:
    """Settings of the processing function."""
    provider = _required(env, "PAYMENT_PROVIDER")
    if provider not in PROVIDERS:
        raise _invalid("PAYMENT_PROVIDER", f"expected one of {', '.join(PROVIDERS)}")
    retention = _positive_int(env, "IDEMPOTENCY_TTL_SECONDS")
    if retention < MIN_RETENTION_SECONDS:
        raise _invalid("IDEMPOTENCY_TTL_SECONDS", f"keys are kept at least {MIN_RETENTION_SECONDS}")
    attempts = _positive_int(env, "MAX_PAYMENT_ATTEMPTS")
    if attempts > MAX_ATTEMPTS_LIMIT:
        raise _invalid("MAX_PAYMENT_ATTEMPTS", f"at most {MAX_ATTEMPTS_LIMIT}")
    return ProcessingConfig(
        api=load_api(env),
        transactions_table=_required(env, "TRANSACTIONS_TABLE"),
        failed_queue_url=_matching(env, "FAILED_TRANSACTIONS_QUEUE_URL", _QUEUE_URL, "an SQS URL"),
        idempotency_ttl_seconds=retention,
        provider=provider,
        acquirer_ledger_table=(
            _required(env, "ACQUIRER_LEDGER_TABLE") if provider == "simulated" else ""
        ),
        max_payment_attempts=attempts,
    )


def _redrive_rate(env: Mapping[str, str]) -> int:
    rate = _positive_int(env, "REDRIVE_MAX_MESSAGES_PER_SECOND")
    if rate > MAX_REDRIVE_RATE:
        raise _invalid("REDRIVE_MAX_MESSAGES_PER_SECOND", f"SQS allows at most {MAX_REDRIVE_RATE}")
    return rate


def load_health(env: Mapping[str, str]) -> HealthConfig:
    """Settings of the health function."""
    alarm_names = tuple(
        name.strip() for name in env.get("ALARM_NAMES", "").split(",") if name.strip()
    )
    if "ALARM_NAMES" not in env:
        raise ConfigError("missing required environment variable ALARM_NAMES")
    return HealthConfig(
        common=load_common(env),
        transactions_table=_required(env, "TRANSACTIONS_TABLE"),
        state_item_id=_required(env, "HEALTH_STATE_ITEM_ID"),
        failed_queue_url=_matching(env, "FAILED_TRANSACTIONS_QUEUE_URL", _QUEUE_URL, "an SQS URL"),
        failed_queue_arn=_matching(env, "FAILED_TRANSACTIONS_QUEUE_ARN", _ARN, "an ARN"),
        dlq_url=_matching(env, "FAILED_TRANSACTIONS_DLQ_URL", _QUEUE_URL, "an SQS URL"),
        dlq_arn=_matching(env, "FAILED_TRANSACTIONS_DLQ_ARN", _ARN, "an ARN"),
        alarm_topic_arn=_matching(env, "ALARM_TOPIC_ARN", _ARN, "an ARN"),
        alarm_names=alarm_names,
        processing_function_name=_required(env, "PROCESSING_FUNCTION_NAME"),
        redrive_max_messages_per_second=_redrive_rate(env),
        redrive_cooldown_seconds=_positive_int(env, "REDRIVE_COOLDOWN_SECONDS"),
        dry_run=_boolean(env, "HEALTH_DRY_RUN"),
        stuck_after_seconds=_positive_int(env, "STUCK_AFTER_SECONDS"),
    )
