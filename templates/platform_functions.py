"""The platform's three functions: sizing, environment and role, as docs/contract.md states.

Each `add_*` below lists the AWS calls that function's code makes; its role grants exactly
those, on this stack's own resources, besides writing its own log group and X-Ray traces
(`functions.base_statements`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from awacs import cloudwatch, dynamodb, kms, sns, sqs
from awacs.aws import (
    Condition,
    ForAllValuesStringEquals,
    ForAllValuesStringLike,
    Statement,
    StringEquals,
)
from troposphere import Parameter, Sub, Template
from troposphere.awslambda import Code
from troposphere.dynamodb import Table
from troposphere.iam import ManagedPolicy
from troposphere.sns import Topic
from troposphere.sqs import Queue

from handlers.config import PROCESSING_SERVICE
from handlers.payments.store import PENDING_SORT_ATTRIBUTE, TRANSACTION_PREFIX
from templates.data import pending_index_arn
from templates.functions import FunctionSpec, LambdaFunction, add_function
from templates.iam import allow, policy
from templates.keys import StackKey
from templates.monitoring import Alarms
from templates.naming import Naming
from templates.network import Network
from templates.queues import QueueWithDlq

COMPONENT = "functions"
CORS_ORIGIN = "https://app.example.com"
# Lambda log groups are kept a month: long enough to investigate a disputed payment's
# request path, short enough that logs are not an archive (the table is the record).
LOG_RETENTION_DAYS = 30
# docs/contract.md values that are not parameters.
HEALTH_STATE_ITEM_ID = "health#state"
# Idempotency-key bindings are kept 24 h (the contract's minimum; Stripe keeps keys 24 h).
IDEMPOTENCY_TTL_SECONDS = "86400"
# Provider calls per payment before it moves to NEEDS_REVIEW: the API's first attempt, the
# retry message's 5 receives, and a sweeper re-queue's before the last (docs/handlers.md).
MAX_PAYMENT_ATTEMPTS = "10"
# What the sweeper's conditional re-queue touches (handlers/payments/store.py: requeue).
SWEEPER_ATTRIBUTES = ["id", "status", "updatedAt", PENDING_SORT_ATTRIBUTE]
# The condition under which the simulated acquirer's ledger table exists.
USE_SIMULATED_ACQUIRER = "UseSimulatedAcquirer"
REDRIVE_MAX_MESSAGES_PER_SECOND = "10"
REDRIVE_COOLDOWN_SECONDS = "900"
# A transaction RECEIVED this long has nobody finishing it (the health function re-enqueues it):
# far above the processor's 25 s timeout and the queue's 150 s visibility timeout.
STUCK_AFTER_SECONDS = "900"

VALIDATION = FunctionSpec(
    logical_id="Validation",
    base_name="payment-validator",
    handler="handlers.validation.handler",
    description="Checks a payment request without side effects (POST /validate-payment)",
    # Pure CPU on one small body, no AWS call: 10 s only bounds a runaway; 256 MB keeps the
    # Powertools import (cold start) fast, since it answers an API call.
    timeout=10,
    memory=256,
)
PROCESSING = FunctionSpec(
    logical_id="Processing",
    base_name="payment-processor",
    handler="handlers.processing.handler",
    description="Records and processes payments (POST /process-payment, GET /payments/{id}) "
    "and retries the failed-transactions queue",
    # 25 s: under API Gateway's 29 s integration limit, so the function's own timeout fires
    # (and is logged) before the client's 504; it also covers a 10-message queue batch at
    # the provider's timeout. 512 MB: more CPU for TLS and JSON on the payment path.
    timeout=25,
    memory=512,
)
HEALTH = FunctionSpec(
    logical_id="Health",
    base_name="payment-health-monitor",
    handler="handlers.health.handler",
    description="Checks table, queues, alarms and error rates (GET /health, every 5 "
    "minutes), redrives the DLQ and re-enqueues stuck payments when healthy, reports state "
    "changes",
    # About ten sequential AWS calls plus starting a DLQ move task and at most 50 retry
    # messages for stuck payments (well under a second each), off the request path:
    # 60 s leaves room for SDK retries when a service is the thing that is unhealthy.
    timeout=60,
    memory=256,
)


@dataclass(frozen=True)
class PlatformSettings:
    """Template parameters the functions read through their environment."""

    code_bucket: Parameter
    code_key: Parameter
    max_payment_amount: Parameter
    allowed_currencies: Parameter
    health_dry_run: Parameter
    payment_provider: Parameter
    # The private network the functions run in (None: outside any VPC).
    network: Network | None = None

    @property
    def code(self) -> Code:
        return Code(S3Bucket=self.code_bucket.ref(), S3Key=self.code_key.ref())


def common_environment(naming: Naming, service: str) -> dict[str, object]:
    """What every function reads (docs/contract.md, all functions)."""
    return {
        "POWERTOOLS_SERVICE_NAME": service,
        "POWERTOOLS_METRICS_NAMESPACE": f"PaymentPlatform/{naming.suffix}",
        "POWERTOOLS_LOG_LEVEL": "INFO",
        "CORS_ALLOWED_ORIGIN": CORS_ORIGIN,
        "ENVIRONMENT": naming.suffix,
    }


def payment_rules(settings: PlatformSettings) -> dict[str, object]:
    """The payment limits validation and processing both enforce."""
    return {
        "MAX_PAYMENT_AMOUNT": settings.max_payment_amount.ref(),
        "ALLOWED_CURRENCIES": settings.allowed_currencies.ref(),
    }


def _add(
    t, naming, spec, settings, key, environment: Mapping, statements, **placement
) -> LambdaFunction:
    return add_function(
        t,
        naming,
        spec,
        code=settings.code,
        key=key,
        environment=environment,
        statements=statements,
        log_retention_days=LOG_RETENTION_DAYS,
        component=COMPONENT,
        network=settings.network,
        **placement,
    )


def use_stack_key(key: StackKey, why: str) -> Statement:
    """Encrypt and decrypt with the stack key (messages on encrypted queues and topics)."""
    return allow([kms.GenerateDataKey, kms.Decrypt], [key.arn], why)


def add_validation(
    t: Template, naming: Naming, *, settings: PlatformSettings, key: StackKey
) -> LambdaFunction:
    """The validation function. AWS calls: none (it only writes logs)."""
    environment = common_environment(naming, "validation") | payment_rules(settings)
    return _add(t, naming, VALIDATION, settings, key, environment, [])


def add_processing(
    t: Template,
    naming: Naming,
    *,
    settings: PlatformSettings,
    key: StackKey,
    table: Table,
    ledger: Table,
    queues: QueueWithDlq,
) -> LambdaFunction:
    """The processing function (`payment-processor-<suffix>`); `grant_ledger` gives it the
    acquirer's ledger.

    AWS calls: dynamodb:GetItem, PutItem, UpdateItem on the table (transactions and key
    bindings; the binding's TransactWriteItems is authorised as its two PutItems);
    dynamodb:GetItem, UpdateItem on the simulated acquirer's ledger (a policy of its own,
    only while the ledger exists); sqs:SendMessage on the failed queue; sqs:ReceiveMessage,
    DeleteMessage, GetQueueAttributes, ChangeMessageVisibility on it (the event source
    mapping polls with this role); kms:GenerateDataKey, Decrypt on the stack key (the queue
    and the tables are encrypted with it).
    """
    environment = (
        common_environment(naming, PROCESSING_SERVICE)
        | payment_rules(settings)
        | {
            "TRANSACTIONS_TABLE": table.ref(),
            "FAILED_TRANSACTIONS_QUEUE_URL": queues.url,
            "IDEMPOTENCY_TTL_SECONDS": IDEMPOTENCY_TTL_SECONDS,
            "PAYMENT_PROVIDER": settings.payment_provider.ref(),
            # The ledger's name, not a Ref: the table exists only under USE_SIMULATED_ACQUIRER,
            # and the function reads the variable only when PAYMENT_PROVIDER is simulated.
            "ACQUIRER_LEDGER_TABLE": ledger.TableName,
            "MAX_PAYMENT_ATTEMPTS": MAX_PAYMENT_ATTEMPTS,
        }
    )
    statements = [
        allow(
            [dynamodb.GetItem, dynamodb.PutItem, dynamodb.UpdateItem],
            [table.get_att("Arn")],
            "RecordTransactionsAndKeyBindings",
        ),
        allow([sqs.SendMessage], [queues.arn], "ParkTransientFailures"),
        allow(
            [
                sqs.ReceiveMessage,
                sqs.DeleteMessage,
                sqs.GetQueueAttributes,
                sqs.ChangeMessageVisibility,
            ],
            [queues.arn],
            "ConsumeFailedTransactions",
        ),
        use_stack_key(key, "UseEncryptedQueue"),
    ]
    return _add(t, naming, PROCESSING, settings, key, environment, statements)


def grant_ledger(t: Template, processing: LambdaFunction, ledger: Table) -> Statement:
    """The processing role's access to the acquirer's ledger: read and conditionally update its
    items, nothing else, by nobody else; a managed policy of its own that attaches itself to
    the role (`Roles`) and exists only while the ledger does (a statement of the role's own
    policy cannot sit under a condition). The statement names the table by the ARN its name
    gives, valid whether or not the table exists, so the VPC endpoint's policy carries it
    too (returned)."""
    statement = allow(
        [dynamodb.GetItem, dynamodb.UpdateItem],
        [
            Sub(
                "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/"
                + ledger.TableName
            )
        ],
        "ChargeThroughTheSimulatedAcquirerLedger",
    )
    t.add_resource(
        ManagedPolicy(
            "AcquirerLedgerPolicy",
            Condition=USE_SIMULATED_ACQUIRER,
            Description=f"{processing.name} charges through the simulated acquirer's ledger",
            PolicyDocument=policy([statement]),
            Roles=[processing.role.role.ref()],
        )
    )
    return statement


def add_health_monitor(
    t: Template,
    naming: Naming,
    *,
    settings: PlatformSettings,
    key: StackKey,
    table: Table,
    queues: QueueWithDlq,
    topic: Topic,
    processing: LambdaFunction,
    dead_letter_queue: Queue,
) -> LambdaFunction:
    """The health monitor (its scheduled runs that fail every retry end in `dead_letter_queue`).

    AWS calls: dynamodb:DescribeTable on the table; dynamodb:GetItem, PutItem, UpdateItem
    on the state item only; dynamodb:Query on the `pending-by-requeue` index only and
    dynamodb:UpdateItem of `txn_` items' re-queue attributes only (stuck payments);
    sqs:GetQueueAttributes on both queues; sqs:StartMessageMoveTask,
    ListMessageMoveTasks, ReceiveMessage, DeleteMessage on the DLQ and sqs:SendMessage on
    the failed queue (what a move task needs, and the stuck payments' retry messages);
    cloudwatch:GetMetricData (no resource-level
    form: `*`); sns:Publish on the topic; kms:GenerateDataKey, Decrypt on the stack key;
    cloudwatch:DescribeAlarms on the stack's alarms (added by `watch_alarms`, once they exist).
    """
    environment = common_environment(naming, "health") | {
        "TRANSACTIONS_TABLE": table.ref(),
        "HEALTH_STATE_ITEM_ID": HEALTH_STATE_ITEM_ID,
        "FAILED_TRANSACTIONS_QUEUE_URL": queues.url,
        "FAILED_TRANSACTIONS_QUEUE_ARN": queues.arn,
        "FAILED_TRANSACTIONS_DLQ_URL": queues.dlq_url,
        "FAILED_TRANSACTIONS_DLQ_ARN": queues.dlq_arn,
        "ALARM_TOPIC_ARN": topic.ref(),
        "PROCESSING_FUNCTION_NAME": processing.ref(),
        "REDRIVE_MAX_MESSAGES_PER_SECOND": REDRIVE_MAX_MESSAGES_PER_SECOND,
        "REDRIVE_COOLDOWN_SECONDS": REDRIVE_COOLDOWN_SECONDS,
        "HEALTH_DRY_RUN": settings.health_dry_run.ref(),
        "STUCK_AFTER_SECONDS": STUCK_AFTER_SECONDS,
    }
    statements = [
        allow([dynamodb.DescribeTable], [table.get_att("Arn")], "CheckTableStatus"),
        allow(
            [dynamodb.GetItem, dynamodb.PutItem, dynamodb.UpdateItem],
            [table.get_att("Arn")],
            "KeepOwnStateItemOnly",
            condition=Condition(
                ForAllValuesStringEquals("dynamodb:LeadingKeys", [HEALTH_STATE_ITEM_ID])
            ),
        ),
        # The sparse index of pending transactions only (keys only): never the table's items.
        allow([dynamodb.Query], [pending_index_arn(table)], "FindStuckPayments"),
        # Re-queueing a stuck payment: transaction items only, the three attributes the
        # sweeper writes (and the two its condition reads), returning nothing.
        allow(
            [dynamodb.UpdateItem],
            [table.get_att("Arn")],
            "RequeueStuckPayments",
            condition=Condition(
                [
                    ForAllValuesStringLike("dynamodb:LeadingKeys", [f"{TRANSACTION_PREFIX}*"]),
                    ForAllValuesStringEquals("dynamodb:Attributes", SWEEPER_ATTRIBUTES),
                    StringEquals("dynamodb:ReturnValues", ["NONE"]),
                ]
            ),
        ),
        allow([sqs.GetQueueAttributes], [queues.arn, queues.dlq_arn], "ReadQueueDepths"),
        allow(
            [
                sqs.StartMessageMoveTask,
                sqs.ListMessageMoveTasks,
                sqs.ReceiveMessage,
                sqs.DeleteMessage,
            ],
            [queues.dlq_arn],
            "RedriveDlq",
        ),
        # The move task's writes, and the retry messages of stuck payments.
        allow([sqs.SendMessage], [queues.arn], "RedriveIntoFailedQueue"),
        # GetMetricData has no resource-level permissions: "*" is the only form AWS accepts.
        allow([cloudwatch.GetMetricData], ["*"], "ReadErrorRates"),
        allow([sns.Publish], [topic.ref()], "ReportStateChanges"),
        use_stack_key(key, "UseEncryptedQueuesAndTopic"),
    ]
    return _add(
        t,
        naming,
        HEALTH,
        settings,
        key,
        environment,
        statements,
        dead_letter_queue=dead_letter_queue,
    )


def watch_alarms(health: LambdaFunction, alarms: Alarms) -> None:
    """Give the health monitor the stack's alarm names and cloudwatch:DescribeAlarms on them.

    By name, not by reference: alarms watch the health function, so a reference back
    would be a dependency cycle.
    """
    health.environment["ALARM_NAMES"] = ",".join(alarms.watched_names)
    health.grant(
        allow(
            [cloudwatch.DescribeAlarms],
            [
                Sub(
                    "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:"
                    + name
                )
                for name in alarms.watched_names
            ],
            "ReadOwnAlarmStates",
        )
    )
