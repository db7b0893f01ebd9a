"""Stack `payment-platform-<suffix>`: the resilient payment platform of seed 001."""

from __future__ import annotations

import dataclasses

from troposphere import Equals, Parameter, Template

from handlers.config import MAX_PAYMENT_AMOUNT_PATTERN, PROVIDERS, allowed_currencies_pattern
from handlers.monitoring import SCHEDULED_RUN_METRIC
from templates.api import GatewaySpec, LambdaTarget, Route, add_gateway
from templates.common import (
    add_output,
    add_parameter,
    group_parameters,
    new_template,
    require_region,
)
from templates.contract import PAYMENT_REQUEST_SCHEMA
from templates.dashboard import add_dashboard, add_runbook_url
from templates.data import add_acquirer_ledger, add_transactions_table
from templates.functions import LambdaFunction, accept_invocation_findings, add_queue_trigger
from templates.keys import add_stack_key
from templates.monitoring import (
    add_alarm_topic,
    add_api_alarms,
    add_dead_letter_alarm,
    add_function_alarms,
    add_heartbeat_alarm,
    add_payment_alarms,
    add_queue_alarms,
    add_table_alarms,
    add_waf_alarm,
)
from templates.naming import Naming
from templates.network import add_endpoints, add_network
from templates.platform_functions import (
    CORS_ORIGIN,
    PROCESSING,
    USE_SIMULATED_ACQUIRER,
    PlatformSettings,
    add_health_monitor,
    add_processing,
    add_validation,
    grant_ledger,
    watch_alarms,
)
from templates.queues import add_dead_letter_queue, add_queue_with_dlq
from templates.schedule import add_schedule

STACK = "payment-platform"
# The seed: "Deploy to us-east-1 region only (single region deployment)".
REGION = "us-east-1"
# Four days: a provider outage over a long weekend is retried, not lost (DLQ keeps 14).
FAILED_QUEUE_RETENTION_SECONDS = 4 * 24 * 3600
# docs/contract.md: after 5 receives a failed transaction moves to the DLQ; batches of 10.
MAX_RECEIVE_COUNT = 5
QUEUE_BATCH_SIZE = 10
HEALTH_EVERY_MINUTES = 5


def build_payment_platform(naming: Naming) -> Template:
    """The whole payment-platform stack (seed 001)."""
    t = new_template(
        f"{naming.stack(STACK)}: payment API, validation/processing/health functions, "
        "DynamoDB transactions table, failed-transactions queue with DLQ, alarms, dashboard"
    )
    require_region(t, REGION, "the platform is a single-region deployment")
    settings = add_settings(t)
    key = add_stack_key(
        t,
        naming,
        alias_base=STACK,
        description=f"Encrypts the table, queues, topic and log groups of {naming.stack(STACK)}",
        component="security",
    )
    network = add_network(t, naming, base_name=STACK, key=key, component="network")
    settings = dataclasses.replace(settings, network=network)
    table = add_transactions_table(t, naming, key=key, component="data")
    t.add_condition(USE_SIMULATED_ACQUIRER, Equals(settings.payment_provider.ref(), "simulated"))
    ledger = add_acquirer_ledger(
        t, naming, key=key, component="data", condition=USE_SIMULATED_ACQUIRER
    )
    failed = add_queue_with_dlq(
        t,
        naming,
        "FailedTransactionsQueue",
        base_name="failed-transactions",
        key=key,
        consumer_timeout=PROCESSING.timeout,
        retention_seconds=FAILED_QUEUE_RETENTION_SECONDS,
        max_receive_count=MAX_RECEIVE_COUNT,
        component="queues",
        description="Queue of payments that hit a transient failure",
    )
    alarm_email = add_alarm_email(t)
    alarms = add_alarm_topic(t, naming, key=key, email=alarm_email, component="monitoring")

    # Scheduled runs EventBridge could not deliver, and delivered runs that failed every retry.
    schedule_dlq = add_dead_letter_queue(
        t,
        naming,
        "HealthScheduleDlq",
        base_name="payment-health-schedule-dlq",
        key=key,
        component="functions",
    )
    validation = add_validation(t, naming, settings=settings, key=key)
    processing = add_processing(
        t, naming, settings=settings, key=key, table=table, ledger=ledger, queues=failed
    )
    ledger_grant = grant_ledger(t, processing, ledger)
    add_queue_trigger(
        t, naming, processing, failed, batch_size=QUEUE_BATCH_SIZE, component="queues"
    )
    health = add_health_monitor(
        t,
        naming,
        settings=settings,
        key=key,
        table=table,
        queues=failed,
        topic=alarms.topic,
        processing=processing,
        dead_letter_queue=schedule_dlq,
    )
    add_schedule(
        t,
        naming,
        health,
        base_name="payment-health-schedule",
        every_minutes=HEALTH_EVERY_MINUTES,
        dead_letter_queue=schedule_dlq,
        key=key,
        component="functions",
    )
    gateway = add_gateway(t, naming, gateway_spec(validation, processing, health), key=key)

    add_api_alarms(alarms, api_name=gateway.api.Name, stage=gateway.stage.ref())
    functions = [validation, processing, health]
    accept_invocation_findings(t, functions)
    for fn in functions:
        add_function_alarms(alarms, fn)
    add_payment_alarms(alarms, processing)
    add_table_alarms(alarms, table, functions)
    add_queue_alarms(alarms, failed)
    add_waf_alarm(alarms, gateway.web_acl)
    add_dead_letter_alarm(
        alarms,
        "HealthScheduleDlqNotEmptyAlarm",
        "platform-health-schedule-dlq-not-empty",
        schedule_dlq,
        "A scheduled health run could not be delivered or failed every retry (see the message)",
        about_monitor=True,
    )
    add_heartbeat_alarm(alarms, health, SCHEDULED_RUN_METRIC, HEALTH_EVERY_MINUTES)
    watch_alarms(health, alarms)
    # Last: the endpoints follow every grant the functions were given.
    add_endpoints(
        t,
        naming,
        network,
        [*(s for fn in functions for s in fn.statements), ledger_grant],
        component="network",
    )
    runbook_url = add_runbook_url(t)
    add_dashboard(
        t,
        naming,
        api_name=gateway.api.Name,
        stage=gateway.stage.ref(),
        functions=functions,
        table=table,
        queues=failed,
        alarms=alarms,
        runbook_url=runbook_url,
        web_acl=gateway.web_acl,
        schedule_dlq=schedule_dlq,
        component="monitoring",
    )

    add_output(
        t,
        "InvokeUrl",
        gateway.invoke_url("/process-payment"),
        "Full HTTPS URL of POST /process-payment on the prod stage",
    )
    add_output(t, "HealthUrl", gateway.invoke_url("/health"), "GET /health (no API key)")
    add_output(
        t,
        "ProcessorFunctionName",
        processing.ref(),
        "Name of the processing function (the payment-api stack can front it)",
    )
    group_parameters(
        t,
        [
            ("Function code", [settings.code_bucket, settings.code_key]),
            (
                "Payment rules",
                [
                    settings.max_payment_amount,
                    settings.allowed_currencies,
                    settings.payment_provider,
                ],
            ),
            ("Operations", [alarm_email, settings.health_dry_run, runbook_url]),
            ("Network and request protection", [network.parameter, *gateway.protection_parameters]),
            ("Account-wide settings", gateway.parameters),
        ],
    )
    return t


def gateway_spec(
    validation: LambdaFunction, processing: LambdaFunction, health: LambdaFunction
) -> GatewaySpec:
    """The routes of DESIGN.md on the shared gateway block."""

    def target(fn: LambdaFunction) -> LambdaTarget:
        return LambdaTarget(arn=fn.arn, name=fn.ref())

    return GatewaySpec(
        api_base="payment-platform-api",
        description="Payment platform API: validate and process payments, read a "
        "payment's status (API key), and a public health check",
        key_base="payment-platform-key",
        key_description="API key clients send in X-Api-Key (throttled and metered by the "
        "usage plan)",
        routes=(
            Route(
                path="/validate-payment",
                method="POST",
                target=target(validation),
                request_schema=PAYMENT_REQUEST_SCHEMA,
            ),
            Route(
                path="/process-payment",
                method="POST",
                target=target(processing),
                request_schema=PAYMENT_REQUEST_SCHEMA,
                # Retries must be safe: the processor answers a repeated key with the first result.
                required_headers=("Idempotency-Key",),
            ),
            Route(path="/payments/{transactionId}", method="GET", target=target(processing)),
            # A load balancer or uptime probe calls it without a key; it reveals states only.
            Route(path="/health", method="GET", target=target(health), api_key_required=False),
        ),
        cors_origin=CORS_ORIGIN,
    )


def add_settings(t: Template) -> PlatformSettings:
    """The parameters the functions are built from, with console constraints."""
    return PlatformSettings(
        code_bucket=add_parameter(
            t,
            "CodeBucket",
            description="S3 bucket (in this region) holding the functions' zip; the deployer "
            "uploads it there",
            allowed_pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
            constraint="an S3 bucket name: 3-63 lowercase letters, digits, '.' or '-'",
            label="Code bucket",
        ),
        code_key=add_parameter(
            t,
            "CodeKey",
            description="Object key of the functions' zip in the code bucket, such as "
            "qa/lambda/<sha256>.zip",
            allowed_pattern=r"^[A-Za-z0-9!_.*'()/-]{1,1020}\.zip$",
            constraint="an S3 key of letters, digits and !_.*'()/- ending in .zip",
            label="Code object key",
        ),
        max_payment_amount=add_parameter(
            t,
            "MaxPaymentAmount",
            description="Largest amount one payment may carry, in the currency's major unit",
            default="10000.00",
            allowed_pattern=MAX_PAYMENT_AMOUNT_PATTERN,
            constraint="a decimal above zero such as 10000.00 (at most two decimals and "
            "twelve digits before the point)",
            label="Maximum payment amount",
        ),
        allowed_currencies=add_parameter(
            t,
            "AllowedCurrencies",
            description="Comma-separated ISO 4217 codes the platform accepts",
            default="USD,EUR,GBP,CAD,AUD,JPY,CHF",
            allowed_pattern=allowed_currencies_pattern(),
            constraint="ISO 4217 currency codes (such as USD) separated by commas, no spaces",
            label="Allowed currencies",
        ),
        health_dry_run=add_parameter(
            t,
            "HealthDryRun",
            description="true: the health monitor reports but never redrives the DLQ",
            default="false",
            allowed_values=["true", "false"],
            label="Health monitor dry run",
        ),
        payment_provider=add_parameter(
            t,
            "PaymentProvider",
            description="The acquirer adapter payments are charged through. simulated: the "
            "built-in simulated acquirer (test tokens only, no real money), whose ledger table "
            "this stack then creates; a real acquirer adds its name here and in the code",
            default="simulated",
            allowed_values=list(PROVIDERS),
            label="Payment provider",
        ),
    )


def add_alarm_email(t: Template) -> Parameter:
    """The optional e-mail address subscribed to the alarm topic."""
    return add_parameter(
        t,
        "AlarmEmail",
        description="E-mail address that receives alarm notifications (confirm the "
        "subscription e-mail); empty for none",
        default="",
        allowed_pattern=r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$",
        constraint="an e-mail address, or empty",
        label="Alarm e-mail",
    )
