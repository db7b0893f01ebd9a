"""The health function: GET /health (200 or 503, states only) and, on its
EventBridge schedule, the safe recovery actions.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from handlers import api
from handlers.config import HealthConfig, load_health
from handlers.lazy import Lazy
from handlers.monitoring import SCHEDULED_RUN_METRIC
from handlers.monitoring.checks import (
    Clients,
    HealthReport,
    Status,
    check_health,
    rejected_messages,
)
from handlers.monitoring.recovery import (
    HealthStateStore,
    MoveTasks,
    Recovery,
    maybe_redrive,
    notify_change,
    requeue_stuck,
)
from handlers.observability import build_logger, build_metrics
from handlers.payments.retry_queue import RetryQueue
from handlers.payments.store import TransactionStore

CONFIG: HealthConfig = load_health(os.environ)
logger = build_logger(CONFIG.common)
metrics = build_metrics(CONFIG.common)
router = api.Router(logger, metrics, CONFIG.common.cors_allowed_origin)
# /health needs no API key: cache the answer briefly so a flood of requests
# cannot turn into a flood of DescribeTable / DescribeAlarms calls.
CACHE_SECONDS = 15.0


@dataclass
class Runtime:
    """The clients and collaborators of one execution environment."""

    config: HealthConfig
    clients: Clients
    recovery: Recovery
    cached: tuple[float, HealthReport] | None = field(default=None)

    def report(self, fresh: bool = False) -> HealthReport:
        """The health report, reused for CACHE_SECONDS unless `fresh`."""
        now = time.monotonic()
        if not fresh and self.cached is not None and now - self.cached[0] < CACHE_SECONDS:
            return self.cached[1]
        report = check_health(self.clients, self.config, dt.datetime.now(dt.UTC))
        self.cached = (now, report)
        return report


def build_runtime(
    config: HealthConfig,
    dynamodb: Any = None,
    sqs: Any = None,
    cloudwatch: Any = None,
    sns: Any = None,
    move_tasks_sqs: Any = None,
) -> Runtime:
    """Wire the checks and the recovery actions (clients made if not given)."""
    import boto3
    from botocore.config import Config

    client_config = Config(
        connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3}
    )
    dynamodb = dynamodb or boto3.client("dynamodb", config=client_config)
    sqs = sqs or boto3.client("sqs", config=client_config)
    clients = Clients(
        dynamodb=dynamodb,
        sqs=sqs,
        cloudwatch=cloudwatch or boto3.client("cloudwatch", config=client_config),
    )
    recovery = Recovery(
        state=HealthStateStore(dynamodb, config.transactions_table, config.state_item_id),
        move_tasks=MoveTasks(move_tasks_sqs or sqs),
        sns=sns or boto3.client("sns", config=client_config),
        transactions=TransactionStore(dynamodb, config.transactions_table),
        retry_queue=RetryQueue(sqs, config.failed_queue_url),
        rejected_since=lambda since, now: rejected_messages(clients, config, since, now),
    )
    return Runtime(config=config, clients=clients, recovery=recovery)


# The execution environment's runtime, built on first use (not at import).
runtime: Lazy[Runtime] = Lazy(lambda: build_runtime(CONFIG))


def _emit(report: HealthReport) -> None:
    metrics.add_metric(
        name="Healthy", unit=MetricUnit.Count, value=1 if report.status is Status.HEALTHY else 0
    )


@router.route("GET", "/health")
def get_health(request: api.Request) -> api.Response:
    """200 when the platform can take payments, 503 when it cannot; states only."""
    report = runtime().report()
    _emit(report)
    if report.problems:
        logger.warning("health checks failed", extra={"problems": report.problems})
    status = 503 if report.status is Status.UNHEALTHY else 200
    return api.Response(status, report.public(), {"Cache-Control": "no-store"})


def run_scheduled(rt: Runtime, now: dt.datetime) -> dict[str, Any]:
    """Check everything afresh, announce a status change, redrive the DLQ and re-enqueue
    stuck payments if safe."""
    config = rt.config
    report = rt.report(fresh=True)
    _emit(report)
    state = rt.recovery.state.load()
    notified = notify_change(rt.recovery, config, report, state, now)
    redrive = maybe_redrive(rt.recovery, config, report, state, int(now.timestamp()))
    requeued = requeue_stuck(rt.recovery, config, report, now)
    if notified["done"]:
        metrics.add_metric(name="HealthStateChanged", unit=MetricUnit.Count, value=1)
    if redrive["done"]:
        metrics.add_metric(name="DlqRedriveStarted", unit=MetricUnit.Count, value=1)
    if redrive.get("halted"):
        metrics.add_metric(name="DlqRedriveHalted", unit=MetricUnit.Count, value=1)
    metrics.add_metric(
        name="StuckPaymentsRequeued", unit=MetricUnit.Count, value=requeued["requeued"]
    )
    metrics.add_metric(name=SCHEDULED_RUN_METRIC, unit=MetricUnit.Count, value=1)
    result = {
        "status": report.status.value,
        "dryRun": config.dry_run,
        "stuckPaymentsRequeued": requeued["requeued"],
        "actions": [notified, redrive, requeued],
    }
    logger.info(
        "scheduled health run",
        extra={
            "status": report.status.value,
            "problems": report.problems,
            "actions": result["actions"],
        },
    )
    return result


def is_scheduled_event(event: Any) -> bool:
    """True for the EventBridge schedule's event."""
    return (
        isinstance(event, dict)
        and event.get("source") == "aws.events"
        and event.get("detail-type") == "Scheduled Event"
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: Any, context: Any) -> dict[str, Any]:
    """Lambda entry point: the scheduled check-and-recover run, or an API request
    (GET /health; any other event gets a JSON answer too)."""
    if is_scheduled_event(event):
        logger.set_correlation_id(event.get("id"))
        return run_scheduled(runtime(), dt.datetime.now(dt.UTC))
    return router.handle(event, context)
