"""The scheduled run of the health function: report state changes, redrive the DLQ,
re-enqueue stuck payments.

Only safe actions: `StartMessageMoveTask` from the DLQ back into the
failed-transactions queue (capped rate, one task at a time, a cool-down
between tasks), one SNS message per change of the platform's status, and a
retry message for each transaction left RECEIVED too long (bounded per run).
Never a purge, a restore or an IAM change. With dry run on, the same
decisions are made and reported, and nothing is changed.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from handlers.config import HealthConfig
from handlers.monitoring.checks import HealthReport, Status
from handlers.payments.service import (
    QueueUnavailableError,
    RetryMessage,
    RetryQueue,
)
from handlers.payments.store import (
    PENDING_INDEX,
    PENDING_SHARD,
    PENDING_SHARD_ATTRIBUTE,
    PENDING_SORT_ATTRIBUTE,
    timestamp,
)
from handlers.payments.validation import (
    ISO_4217_MINOR_UNITS,
    PaymentValidationError,
    ValidationRules,
    payment_from_dict,
)


@dataclass(frozen=True)
class HealthState:
    """The state item: the last announced status and the last redrive."""

    status: Status = Status.HEALTHY
    version: int = 0
    last_redrive_at: int | None = None


class HealthStateStore:
    """The one item the health function owns in the table, written conditionally."""

    def __init__(self, client: Any, table_name: str, item_id: str) -> None:
        self._client = client
        self._table = table_name
        self._key = {"id": {"S": item_id}}

    def load(self) -> HealthState:
        """The stored state; a fresh deployment starts healthy with no redrive."""
        item = self._client.get_item(TableName=self._table, Key=self._key, ConsistentRead=True)
        item = item.get("Item")
        if item is None:
            return HealthState()
        last = item.get("lastRedriveAt", {}).get("N")
        return HealthState(
            status=Status(item.get("status", {}).get("S", Status.HEALTHY.value)),
            version=int(item.get("version", {}).get("N", "0")),
            last_redrive_at=int(last) if last is not None else None,
        )

    def _conditional_update(self, expression: str, condition: str, values: dict[str, Any]) -> bool:
        params: dict[str, Any] = {}
        if "#status" in expression:
            params["ExpressionAttributeNames"] = {"#status": "status"}
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key,
                UpdateExpression=expression,
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                **params,
            )
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def swap_status(self, expected: HealthState, status: Status, now: dt.datetime) -> bool:
        """Record a new status if nobody changed the item since `expected` was read."""
        condition = (
            "attribute_not_exists(version) OR version = :expected"
            if expected.version == 0
            else "version = :expected"
        )
        return self._conditional_update(
            "SET #status = :status, statusSince = :since, version = :next",
            condition,
            {
                ":status": {"S": status.value},
                ":since": {"S": now.isoformat(timespec="seconds")},
                ":expected": {"N": str(expected.version)},
                ":next": {"N": str(expected.version + 1)},
            },
        )

    def claim_redrive(self, now: int, cooldown_seconds: int) -> bool:
        """Take the cool-down slot (only one invocation wins it per cool-down)."""
        return self._conditional_update(
            "SET lastRedriveAt = :now",
            "attribute_not_exists(lastRedriveAt) OR lastRedriveAt <= :cutoff",
            {":now": {"N": str(now)}, ":cutoff": {"N": str(now - cooldown_seconds)}},
        )


@dataclass(frozen=True)
class RedriveDecision:
    """Whether to start a redrive now, and why."""

    start: bool
    reason: str


def decide_redrive(
    report: HealthReport,
    state: HealthState,
    now: int,
    cooldown_seconds: int,
    task_running: bool | None,
) -> RedriveDecision:
    """The redrive rule, pure: DLQ not empty, processing path healthy, cool-down over,
    no move task running. `task_running` None means "not asked yet"."""
    if not report.dlq_depth:
        return RedriveDecision(False, "dlq-empty")
    if not report.processing_path_healthy:
        return RedriveDecision(False, "unhealthy")
    if state.last_redrive_at is not None and now - state.last_redrive_at < cooldown_seconds:
        return RedriveDecision(False, "cooldown")
    if task_running is None:
        return RedriveDecision(False, "check-running-tasks")
    if task_running:
        return RedriveDecision(False, "already-running")
    return RedriveDecision(True, "start")


class MoveTasks:
    """SQS message move tasks (its own object so tests can stub what moto lacks)."""

    def __init__(self, sqs_client: Any) -> None:
        self._sqs = sqs_client

    def running(self, source_arn: str) -> bool:
        """True when a move task out of the queue is running."""
        tasks = self._sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=10)
        return any(task.get("Status") == "RUNNING" for task in tasks.get("Results", []))

    def start(self, source_arn: str, destination_arn: str, rate: int) -> str:
        """Start moving messages at a capped rate; the task handle."""
        response = self._sqs.start_message_move_task(
            SourceArn=source_arn,
            DestinationArn=destination_arn,
            MaxNumberOfMessagesPerSecond=rate,
        )
        return response["TaskHandle"]


class PendingTransactions:
    """The sparse index `pending-by-age`: transactions still RECEIVED, oldest first."""

    # What a retry message carries (the index projects exactly these, never card data).
    PAYMENT_FIELDS = ("amount", "currency", "paymentToken", "merchantId", "description")

    def __init__(self, client: Any, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def received_before(self, cutoff: str, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` RECEIVED transactions with `receivedAt` < cutoff, oldest first, as
        {"transactionId", "payment": {...}}. The index is eventually consistent: a transaction
        completed a moment ago may still appear (re-enqueueing it is harmless)."""
        response = self._client.query(
            TableName=self._table,
            IndexName=PENDING_INDEX,
            KeyConditionExpression="#shard = :shard AND #received < :cutoff",
            ExpressionAttributeNames={
                "#shard": PENDING_SHARD_ATTRIBUTE,
                "#received": PENDING_SORT_ATTRIBUTE,
            },
            ExpressionAttributeValues={":shard": {"S": PENDING_SHARD}, ":cutoff": {"S": cutoff}},
            ScanIndexForward=True,
            Limit=limit,
        )
        return [
            {
                "transactionId": item["id"]["S"],
                "payment": {name: item[name]["S"] for name in self.PAYMENT_FIELDS if name in item},
            }
            for item in response.get("Items", [])
        ]


@dataclass(frozen=True)
class Recovery:
    """What the scheduled run needs besides the checks."""

    state: HealthStateStore
    move_tasks: MoveTasks
    sns: Any
    pending: PendingTransactions
    retry_queue: RetryQueue


def notify_change(
    recovery: Recovery,
    config: HealthConfig,
    report: HealthReport,
    state: HealthState,
    now: dt.datetime,
) -> dict[str, Any]:
    """Publish one SNS message when the status changed since the last announced one."""
    if report.status == state.status:
        return {"action": "notify", "done": False, "reason": "unchanged"}
    if config.dry_run:
        return {"action": "notify", "done": False, "reason": "dry-run", "status": report.status}
    # Claim the change first so two overlapping runs cannot both announce it.
    if not recovery.state.swap_status(state, report.status, now):
        return {"action": "notify", "done": False, "reason": "announced-by-another-run"}
    message = {
        "environment": config.common.environment,
        "previous": state.status.value,
        "current": report.status.value,
        **report.public(),
        "deadLetterQueueDepth": report.dlq_depth,
        "retryQueueDepth": report.retry_depth,
        "problems": report.problems,
    }
    subject = f"Payment platform {config.common.environment}: {report.status.value}"
    try:
        recovery.sns.publish(
            TopicArn=config.alarm_topic_arn,
            Subject=subject[:100],
            Message=json.dumps(message, sort_keys=True),
        )
    except Exception:
        # Give the change back so the next run announces it; then fail loudly.
        claimed = HealthState(report.status, state.version + 1, state.last_redrive_at)
        recovery.state.swap_status(claimed, state.status, now)
        raise
    return {"action": "notify", "done": True, "status": report.status.value}


def maybe_redrive(
    recovery: Recovery, config: HealthConfig, report: HealthReport, state: HealthState, now: int
) -> dict[str, Any]:
    """Start a DLQ redrive when the rule allows; report the decision either way."""
    cooldown = config.redrive_cooldown_seconds
    decision = decide_redrive(report, state, now, cooldown, task_running=None)
    if decision.reason == "check-running-tasks":
        running = recovery.move_tasks.running(config.dlq_arn)
        decision = decide_redrive(report, state, now, cooldown, task_running=running)
    result: dict[str, Any] = {"action": "redrive", "decision": decision.reason, "done": False}
    if not decision.start:
        return result
    if config.dry_run:
        result["reason"] = "dry-run"
        return result
    if not recovery.state.claim_redrive(now, cooldown):
        result["decision"] = "cooldown"
        return result
    recovery.move_tasks.start(
        config.dlq_arn, config.failed_queue_arn, config.redrive_max_messages_per_second
    )
    result["done"] = True
    result["maxMessagesPerSecond"] = config.redrive_max_messages_per_second
    return result


# A stored payment was validated when it was accepted: check its shape and card data again
# (never trust the table either), but not today's configurable limits.
_STORED_PAYMENT_RULES = ValidationRules(
    max_amount=Decimal("Infinity"), allowed_currencies=frozenset(ISO_4217_MINOR_UNITS)
)


def requeue_stuck(
    recovery: Recovery, config: HealthConfig, report: HealthReport, now: dt.datetime
) -> dict[str, Any]:
    """Re-enqueue a retry for each transaction RECEIVED for over STUCK_AFTER_SECONDS.

    Such a transaction has nobody finishing it: the function timed out or crashed between the
    charge and the completion, or its retry message aged out of the DLQ. Only when the
    processing path is healthy (the redrive's gate), at most `stuck_requeue_limit` per run.

    Re-enqueueing a transaction whose message is also still in the queue is harmless: the
    consumer charges with the transaction id as the provider's idempotency key and completes
    with a conditional write (`status = RECEIVED`), so a duplicate message finds the
    transaction completed, or completes it with the same result, and never charges twice.
    """
    result: dict[str, Any] = {"action": "requeue-stuck", "done": False, "requeued": 0}
    if not report.processing_path_healthy:
        result["decision"] = "unhealthy"
        return result
    cutoff = timestamp(now - dt.timedelta(seconds=config.stuck_after_seconds))
    stuck = recovery.pending.received_before(cutoff, config.stuck_requeue_limit)
    result["found"] = len(stuck)
    if not stuck:
        result["decision"] = "none-stuck"
        return result
    result["decision"] = "requeue"
    if config.dry_run:
        result["reason"] = "dry-run"
        return result
    skipped = 0
    for entry in stuck:
        try:
            payment = payment_from_dict(entry["payment"], _STORED_PAYMENT_RULES)
        except PaymentValidationError:
            skipped += 1  # not a retry this platform can send; left for an operator
            continue
        message = RetryMessage(transaction_id=entry["transactionId"], payment=payment)
        try:
            recovery.retry_queue.send(message)
        except QueueUnavailableError:
            result["reason"] = "queue-unavailable"  # the next run picks up the rest
            break
        result["requeued"] += 1
    if skipped:
        result["skipped"] = skipped
    result["done"] = result["requeued"] > 0
    return result
