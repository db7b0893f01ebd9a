"""The scheduled run of the health function: report state changes, redrive the DLQ,
re-enqueue stuck payments.

Only safe actions: `StartMessageMoveTask` from the DLQ back into the
failed-transactions queue (capped rate, one task at a time, a cool-down
between tasks), one SNS message per change of the platform's status, and a
retry message for each pending transaction nobody has re-queued for a while
(least recently re-queued first, bounded per run). Never a purge, a restore
or an IAM change. With dry run on, the same decisions are made and reported,
and nothing is changed.

Poison messages and the redrive: a message the consumer rejects (malformed, not a
retry of ours, naming no transaction) is reported failed and reaches the DLQ after
maxReceiveCount receives; a redrive would bring it back, to fail again, forever. So
when the consumer rejected any message since the last redrive, the automatic redrive
halts (recorded in the state item, announced once on the alarm topic, metric
`DlqRedriveHalted`) until the DLQ is seen empty: an operator inspects the DLQ
(docs/handlers.md, runbook). The payments themselves never wait on it: each one is a
row the sweeper re-queues.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from handlers.config import HealthConfig
from handlers.monitoring.checks import HealthReport, Status
from handlers.payments.retry_queue import QueueUnavailableError, RetryMessage, RetryQueue
from handlers.payments.store import TransactionStore, timestamp


@dataclass(frozen=True)
class HealthState:
    """The state item: the last announced status, the last redrive, the redrive halt."""

    status: Status = Status.HEALTHY
    version: int = 0
    last_redrive_at: int | None = None
    redrive_halted: bool = False
    halt_lifted_at: int | None = None

    @property
    def rejections_since(self) -> int | None:
        """Epoch seconds from which a rejected message means a redrive brought poison back
        (None: no redrive yet, nothing to look for)."""
        if self.last_redrive_at is None:
            return None
        return max(self.last_redrive_at, self.halt_lifted_at or 0)


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
        lifted = item.get("haltLiftedAt", {}).get("N")
        return HealthState(
            status=Status(item.get("status", {}).get("S", Status.HEALTHY.value)),
            version=int(item.get("version", {}).get("N", "0")),
            last_redrive_at=int(last) if last is not None else None,
            redrive_halted=item.get("redriveHalted", {}).get("BOOL", False),
            halt_lifted_at=int(lifted) if lifted is not None else None,
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

    def halt_redrive(self, now: int) -> bool:
        """Halt the automatic redrive; True for the one run that halted it."""
        return self._conditional_update(
            "SET redriveHalted = :true, redriveHaltedAt = :now",
            "attribute_not_exists(redriveHalted) OR redriveHalted = :false",
            {":true": {"BOOL": True}, ":false": {"BOOL": False}, ":now": {"N": str(now)}},
        )

    def lift_halt(self, now: int) -> bool:
        """Lift the halt (the DLQ was seen empty); True for the one run that lifted it."""
        return self._conditional_update(
            "SET redriveHalted = :false, haltLiftedAt = :now",
            "redriveHalted = :true",
            {":true": {"BOOL": True}, ":false": {"BOOL": False}, ":now": {"N": str(now)}},
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
    rejected: float | None = None,
) -> RedriveDecision:
    """The redrive rule, pure: DLQ not empty, not halted, processing path healthy, cool-down
    over, no message rejected since the last redrive, no move task running. `task_running`
    and `rejected` None mean "not asked yet"."""
    if not report.dlq_depth:
        return RedriveDecision(False, "dlq-empty")
    if state.redrive_halted:
        return RedriveDecision(False, "halted")
    if not report.processing_path_healthy:
        return RedriveDecision(False, "unhealthy")
    if state.last_redrive_at is not None and now - state.last_redrive_at < cooldown_seconds:
        return RedriveDecision(False, "cooldown")
    if state.rejections_since is not None:
        if rejected is None:
            return RedriveDecision(False, "check-rejections")
        if rejected > 0:
            return RedriveDecision(False, "poison")
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


@dataclass(frozen=True)
class Recovery:
    """What the scheduled run needs besides the checks."""

    state: HealthStateStore
    move_tasks: MoveTasks
    sns: Any
    transactions: TransactionStore
    retry_queue: RetryQueue
    # Rejected queue messages in [since, now) (checks.rejected_messages, bound to the clients).
    rejected_since: Callable[[dt.datetime, dt.datetime], float]


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
        "previous": state.status.value,
        "current": report.status.value,
        **report.public(),
        "deadLetterQueueDepth": report.dlq_depth,
        "retryQueueDepth": report.retry_depth,
        "problems": report.problems,
    }
    try:
        _publish(recovery, config, report.status.value, message)
    except Exception:
        # Give the change back so the next run announces it; then fail loudly.
        claimed = dataclasses.replace(state, status=report.status, version=state.version + 1)
        recovery.state.swap_status(claimed, state.status, now)
        raise
    return {"action": "notify", "done": True, "status": report.status.value}


def _publish(recovery: Recovery, config: HealthConfig, subject: str, message: dict) -> None:
    full_subject = f"Payment platform {config.common.environment}: {subject}"
    recovery.sns.publish(
        TopicArn=config.alarm_topic_arn,
        Subject=full_subject[:100],
        Message=json.dumps({"environment": config.common.environment, **message}, sort_keys=True),
    )


def maybe_redrive(
    recovery: Recovery, config: HealthConfig, report: HealthReport, state: HealthState, now: int
) -> dict[str, Any]:
    """Start a DLQ redrive when the rule allows, halt it when the last one brought poison
    back, lift the halt once the DLQ is empty; report the decision either way."""
    cooldown = config.redrive_cooldown_seconds
    result: dict[str, Any] = {"action": "redrive", "done": False}
    if not report.dlq_depth and state.redrive_halted:
        result["decision"] = "dlq-empty"
        if config.dry_run:
            result["reason"] = "dry-run"
        elif recovery.state.lift_halt(now):
            result["haltLifted"] = True
        return result
    decision = decide_redrive(report, state, now, cooldown, task_running=None)
    rejected = None
    if decision.reason == "check-rejections" and state.rejections_since is not None:
        since = dt.datetime.fromtimestamp(state.rejections_since, dt.UTC)
        rejected = recovery.rejected_since(since, dt.datetime.fromtimestamp(now, dt.UTC))
        decision = decide_redrive(report, state, now, cooldown, None, rejected)
    if decision.reason == "check-running-tasks":
        running = recovery.move_tasks.running(config.dlq_arn)
        decision = decide_redrive(report, state, now, cooldown, running, rejected or 0)
    result["decision"] = decision.reason
    if decision.reason == "poison":
        return _halt(recovery, config, report, now, result)
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


def _halt(
    recovery: Recovery, config: HealthConfig, report: HealthReport, now: int, result: dict
) -> dict[str, Any]:
    """Halt the automatic redrive and say so once on the alarm topic."""
    if config.dry_run:
        result["reason"] = "dry-run"
        return result
    if recovery.state.halt_redrive(now):
        result["halted"] = True
        _publish(
            recovery,
            config,
            "automatic DLQ redrive halted",
            {
                "event": "dlq-redrive-halted",
                "deadLetterQueueDepth": report.dlq_depth,
                "why": "the consumer rejected queue messages since the last redrive: the DLQ "
                "holds messages no retry can process. Inspect them (runbook: poison messages); "
                "the automatic redrive resumes once the DLQ is empty.",
            },
        )
    return result


def requeue_stuck(
    recovery: Recovery, config: HealthConfig, report: HealthReport, now: dt.datetime
) -> dict[str, Any]:
    """Re-queue each pending transaction nobody re-queued for STUCK_AFTER_SECONDS, least
    recently re-queued first, at most `stuck_requeue_limit` per run, only while the
    processing path is healthy.

    Such a transaction has nobody finishing it: the function crashed or timed out mid-attempt,
    its retry message was never sent or sits in the DLQ. Re-queueing moves its `requeuedAt` to
    now (conditionally, so overlapping runs send one message), which puts it at the back of
    the line: no payment waits behind others that keep failing, and one that keeps failing
    runs out of attempts (the consumer's cap) and leaves the index in NEEDS_REVIEW. A second
    message for a payment whose first one is still queued is harmless: each delivery claims
    an attempt, the acquirer charges a transaction id once, and a finished payment ignores it.
    """
    result: dict[str, Any] = {"action": "requeue-stuck", "done": False, "requeued": 0}
    if not report.processing_path_healthy:
        result["decision"] = "unhealthy"
        return result
    cutoff = timestamp(now - dt.timedelta(seconds=config.stuck_after_seconds))
    stuck = recovery.transactions.requeue_candidates(cutoff, config.stuck_requeue_limit)
    result["found"] = len(stuck)
    if not stuck:
        result["decision"] = "none-stuck"
        return result
    result["decision"] = "requeue"
    if config.dry_run:
        result["reason"] = "dry-run"
        return result
    for transaction_id, seen_requeued_at in stuck:
        if not recovery.transactions.requeue(transaction_id, seen_requeued_at):
            continue  # finished, or re-queued by an overlapping run, since the index was read
        try:
            recovery.retry_queue.send(RetryMessage(transaction_id))
        except QueueUnavailableError:
            # Its requeuedAt moved: it comes round again after STUCK_AFTER_SECONDS.
            result["reason"] = "queue-unavailable"
            break
        result["requeued"] += 1
    result["done"] = result["requeued"] > 0
    return result
