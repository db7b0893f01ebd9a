"""Health checks: each component of the platform reduced to ok / degraded / unavailable.

The public report carries only those words: no names, ARNs, depths or error
messages an attacker could use. The depths stay inside, for the recovery
decision and the operators' SNS message.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from handlers.aws_errors import AWS_CALL_ERRORS, error_code
from handlers.config import PROCESSING_SERVICE, HealthConfig

# A few retries waiting is normal operation; beyond this the backlog is news.
RETRY_BACKLOG_LIMIT = 100
# Share of failed invocations (or of deferred retries) of the processing function that marks
# it degraded, and closes the gate of the DLQ redrive and the stuck-payment sweeper.
ERROR_RATE_LIMIT = 0.05
ERROR_RATE_WINDOW = dt.timedelta(minutes=15)


class State(StrEnum):
    """The state of one component."""

    OK = "ok"
    DEGRADED = "degraded"
    UNAVAILABLE = "unavailable"


class Status(StrEnum):
    """The state of the whole platform."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"


@dataclass(frozen=True)
class HealthReport:
    """Component states, plus the internal figures the recovery decision needs."""

    components: dict[str, State]
    checked_at: str
    dlq_depth: int | None = None
    retry_depth: int | None = None
    blocking_alarms: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def status(self) -> Status:
        """Unhealthy when a component cannot be reached, degraded when one is not ok."""
        states = set(self.components.values())
        if State.UNAVAILABLE in states or self.components.get("database") != State.OK:
            return Status.UNHEALTHY
        if State.DEGRADED in states:
            return Status.DEGRADED
        return Status.HEALTHY

    @property
    def processing_path_healthy(self) -> bool:
        """True when retried payments would go through: the condition for a redrive."""
        required_ok = ("database", "retryQueue", "processing")
        return (
            all(self.components.get(name) == State.OK for name in required_ok)
            # Alarm states that could not be read block too: no redrive on a guess.
            and self.components.get("alarms") in (State.OK, State.DEGRADED)
            and self.blocking_alarms == 0
        )

    def public(self) -> dict[str, Any]:
        """What GET /health shows anyone: states only."""
        return {
            "status": self.status.value,
            "components": {name: state.value for name, state in sorted(self.components.items())},
            "checkedAt": self.checked_at,
        }


@dataclass(frozen=True)
class Clients:
    """The AWS clients the checks use."""

    dynamodb: Any
    sqs: Any
    cloudwatch: Any


def _problem(component: str, error: Exception) -> str:
    return f"{component}:{error_code(error) or type(error).__name__}"


def check_database(clients: Clients, config: HealthConfig) -> State:
    """ACTIVE table: ok; any other status (UPDATING, ...): degraded."""
    table = clients.dynamodb.describe_table(TableName=config.transactions_table)["Table"]
    return State.OK if table.get("TableStatus") == "ACTIVE" else State.DEGRADED


def queue_depth(clients: Clients, url: str) -> int:
    """Messages waiting to be received."""
    attributes = clients.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def blocking_and_firing_alarms(clients: Clients, config: HealthConfig) -> tuple[int, int]:
    """(alarms in ALARM that block a redrive, all alarms in ALARM).

    Asked for by name and as metric alarms only: the role may DescribeAlarms on the stack's
    alarm ARNs, and AWS authorises a request that includes composite alarms only when the
    permission is granted on `*` (the stack has no composite alarm to miss). Alarms on the
    DLQ's own metrics do not block: they fire because the DLQ holds messages, which is
    exactly what a redrive resolves.
    """
    dlq_name = config.dlq_arn.rsplit(":", 1)[-1]
    firing = blocking = 0
    names = list(config.alarm_names)
    for start in range(0, len(names), 100):  # DescribeAlarms takes at most 100 names
        pages = clients.cloudwatch.get_paginator("describe_alarms").paginate(
            AlarmNames=names[start : start + 100], AlarmTypes=["MetricAlarm"]
        )
        for page in pages:
            for alarm in page.get("MetricAlarms", []):
                if alarm.get("StateValue") != "ALARM":
                    continue
                firing += 1
                watches_dlq = any(
                    dimension.get("Name") == "QueueName" and dimension.get("Value") == dlq_name
                    for dimension in alarm.get("Dimensions", [])
                )
                blocking += 0 if watches_dlq else 1
    return blocking, firing


def _sums(
    clients: Clients,
    queries: dict[str, tuple[str, str, list[dict[str, str]]]],
    start: dt.datetime,
    end: dt.datetime,
) -> dict[str, float]:
    """Id -> Sum over [start, end) of each (namespace, metric, dimensions), one call."""
    period = max(60, -(-int((end - start).total_seconds()) // 60) * 60)
    response = clients.cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": query_id,
                "MetricStat": {
                    "Metric": {"Namespace": namespace, "MetricName": metric, "Dimensions": dims},
                    "Period": period,
                    "Stat": "Sum",
                },
            }
            for query_id, (namespace, metric, dims) in queries.items()
        ],
        StartTime=start,
        EndTime=end,
    )
    return {
        result["Id"]: sum(result.get("Values", [])) for result in response["MetricDataResults"]
    }  # fmt: skip


def _own_metric(config: HealthConfig, metric: str) -> tuple[str, str, list[dict[str, str]]]:
    """One of the processing function's own (EMF) metrics."""
    dims = [{"Name": "service", "Value": PROCESSING_SERVICE}]
    return (config.common.metrics_namespace, metric, dims)


@dataclass(frozen=True)
class ProcessingRates:
    """Failure rates of the processing function over the recent window."""

    invocation_failures: float  # Lambda Errors + handled 5xx, per invocation
    retry_failures: float  # deferred retries, per retry attempt

    @property
    def healthy(self) -> bool:
        return max(self.invocation_failures, self.retry_failures) < ERROR_RATE_LIMIT


def processing_rates(clients: Clients, config: HealthConfig, now: dt.datetime) -> ProcessingRates:
    """What the gate sees of the processing path: Lambda's Errors (invocations that failed)
    and the function's own metrics, which Lambda never counts: the 500s and 503s it answered
    (ServerError, ServiceUnavailable) and the retries it deferred (RetryDeferred, reported as
    batch item failures, which Lambda's Errors does not count either)."""
    lambda_dims = [{"Name": "FunctionName", "Value": config.processing_function_name}]
    totals = _sums(
        clients,
        {
            "errors": ("AWS/Lambda", "Errors", lambda_dims),
            "invocations": ("AWS/Lambda", "Invocations", lambda_dims),
            "server": _own_metric(config, "ServerError"),
            "unavailable": _own_metric(config, "ServiceUnavailable"),
            "deferred": _own_metric(config, "RetryDeferred"),
            "completed": _own_metric(config, "RetryCompleted"),
        },
        now - ERROR_RATE_WINDOW,
        # EndTime is exclusive: reach past now so the current minute counts.
        now + dt.timedelta(minutes=1),
    )
    failures = (
        totals.get("errors", 0.0) + totals.get("server", 0.0) + totals.get("unavailable", 0.0)
    )
    invocations = max(totals.get("invocations", 0.0), failures)
    deferred = totals.get("deferred", 0.0)
    retries = deferred + totals.get("completed", 0.0)
    return ProcessingRates(
        invocation_failures=failures / invocations if invocations else 0.0,
        retry_failures=deferred / retries if retries else 0.0,
    )


def rejected_messages(
    clients: Clients, config: HealthConfig, since: dt.datetime, now: dt.datetime
) -> float:
    """How many queue messages the processing function rejected (RetryMessageRejected)."""
    totals = _sums(
        clients,
        {"rejected": _own_metric(config, "RetryMessageRejected")},
        since,
        now + dt.timedelta(minutes=1),
    )
    return totals.get("rejected", 0.0)


def check_health(clients: Clients, config: HealthConfig, now: dt.datetime) -> HealthReport:
    """Run every check; a check that fails to answer makes its component unavailable."""
    components: dict[str, State] = {}
    problems: list[str] = []
    dlq_depth = retry_depth = None
    blocking = 0

    try:
        components["database"] = check_database(clients, config)
    except AWS_CALL_ERRORS as error:
        components["database"] = State.UNAVAILABLE
        problems.append(_problem("database", error))
    try:
        retry_depth = queue_depth(clients, config.failed_queue_url)
        ok = retry_depth <= RETRY_BACKLOG_LIMIT
        components["retryQueue"] = State.OK if ok else State.DEGRADED
    except AWS_CALL_ERRORS as error:
        components["retryQueue"] = State.UNAVAILABLE
        problems.append(_problem("retryQueue", error))
    try:
        dlq_depth = queue_depth(clients, config.dlq_url)
        components["deadLetterQueue"] = State.OK if dlq_depth == 0 else State.DEGRADED
    except AWS_CALL_ERRORS as error:
        components["deadLetterQueue"] = State.UNAVAILABLE
        problems.append(_problem("deadLetterQueue", error))
    try:
        blocking, firing = blocking_and_firing_alarms(clients, config)
        components["alarms"] = State.OK if firing == 0 else State.DEGRADED
    except AWS_CALL_ERRORS as error:
        components["alarms"] = State.UNAVAILABLE
        problems.append(_problem("alarms", error))
    try:
        rates = processing_rates(clients, config, now)
        components["processing"] = State.OK if rates.healthy else State.DEGRADED
    except AWS_CALL_ERRORS as error:
        components["processing"] = State.UNAVAILABLE
        problems.append(_problem("processing", error))

    return HealthReport(
        components=components,
        checked_at=now.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        dlq_depth=dlq_depth,
        retry_depth=retry_depth,
        blocking_alarms=blocking,
        problems=problems,
    )
