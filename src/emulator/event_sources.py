"""The deployed event sources, run locally: SQS event source mappings and scheduled rules.

An SQS mapping is polled as Lambda polls it: up to its batch size per receive, the batch
given to the function in the SQS event shape, and afterwards only the messages the function
did not report failed are deleted (`ReportBatchItemFailures`); a failed or crashed batch
stays on the queue, to be received again after the visibility timeout and moved to the DLQ
by the queue's redrive policy. A scheduled rule (`rate(...)`) invokes its Lambda target with
EventBridge's "Scheduled Event" at its rate, first one period after start, as EventBridge does.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from emulator.functions import FunctionRunner, Functions

POLL_WAIT_SECONDS = 1  # long-poll slice: short so that stopping is prompt
RATE = re.compile(r"rate\((?P<n>[0-9]+) (?P<unit>minutes?|hours?|days?)\)")
UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float | None:
    """The period of a `rate(N unit)` expression; None for cron() and anything else."""
    match = RATE.fullmatch(expression.strip())
    if match is None:
        return None
    return int(match["n"]) * UNIT_SECONDS[match["unit"].rstrip("s")]


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda gives a function for a batch received from SQS."""
    records = []
    for message in messages:
        attributes = message.get("Attributes", {})
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": {
                    name: attributes[name]
                    for name in (
                        "ApproximateReceiveCount",
                        "SentTimestamp",
                        "SenderId",
                        "ApproximateFirstReceiveTimestamp",
                    )
                    if name in attributes
                },
                "messageAttributes": {
                    name: {
                        "stringValue": value.get("StringValue"),
                        "binaryValue": value.get("BinaryValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": value.get("DataType"),
                    }
                    for name, value in (message.get("MessageAttributes") or {}).items()
                },
                "md5OfBody": message.get("MD5OfBody")
                or hashlib.md5(message["Body"].encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


def failed_ids(result: Any, messages: list[dict[str, Any]]) -> set[str]:
    """The message ids a partial batch response reports failed (all, if it is malformed)."""
    every = {m["MessageId"] for m in messages}
    if result is None:
        return set()
    if not isinstance(result, dict):
        return every
    items = result.get("batchItemFailures") or []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        return every  # Lambda treats an invalid partial response as the whole batch failed
    ids = {item.get("itemIdentifier") for item in items}
    if None in ids or "" in ids or not ids <= every:
        return every
    return ids  # type: ignore[return-value]


@dataclass
class SqsMapping:
    """One SQS event source mapping, polled in a thread of its own."""

    uuid: str
    queue_arn: str
    queue_url: str
    runner: FunctionRunner
    batch_size: int
    report_failures: bool
    sqs: Any
    region: str
    log: Callable[[str], None]
    stop_event: threading.Event = field(default_factory=threading.Event)
    batches: int = 0

    def poll_once(self) -> int:
        """Receive one batch, invoke, delete what succeeded; returns the batch size."""
        received = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(self.batch_size, 10),
            WaitTimeSeconds=POLL_WAIT_SECONDS,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = received.get("Messages", [])
        if not messages:
            return 0
        outcome = self.runner.invoke(sqs_event(messages, self.queue_arn, self.region))
        if not outcome.ok:
            failed = {m["MessageId"] for m in messages}
        elif self.report_failures:
            failed = failed_ids(outcome.result, messages)
        else:
            failed = set()
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        self.batches += 1
        self.log(
            f"sqs {self.queue_arn.rsplit(':', 1)[-1]} -> {self.runner.spec.name}: "
            f"{len(messages)} message(s), {len(failed)} left for redelivery"
        )
        return len(messages)

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.poll_once()
            except Exception as error:  # noqa: BLE001 - a poller keeps polling, as Lambda's
                self.log(f"sqs poller {self.uuid}: {type(error).__name__}: {error}")
                self.stop_event.wait(1)


@dataclass
class Schedule:
    """One scheduled rule with a Lambda target."""

    rule_name: str
    rule_arn: str
    period: float
    runner: FunctionRunner
    account_id: str
    region: str
    log: Callable[[str], None]
    stop_event: threading.Event = field(default_factory=threading.Event)
    runs: int = 0

    def event(self) -> dict[str, Any]:
        """EventBridge's Scheduled Event for this rule, now."""
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self.account_id,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "region": self.region,
            "resources": [self.rule_arn],
            "detail": {},
        }

    def fire(self) -> Any:
        """Invoke the target once now; returns the function's result (or its error)."""
        outcome = self.runner.invoke(self.event())
        self.runs += 1
        state = "ok" if outcome.ok else f"error {outcome.error}"
        self.log(f"schedule {self.rule_name} -> {self.runner.spec.name}: {state}")
        return outcome.result if outcome.ok else outcome.error

    def run(self) -> None:
        while not self.stop_event.wait(self.period):
            self.fire()


class EventSources:
    """Every SQS mapping and scheduled rule that targets one of the local functions."""

    def __init__(
        self,
        functions: Functions,
        *,
        lambda_client: Any,
        sqs: Any,
        events: Any,
        account_id: str,
        region: str,
        log: Callable[[str], None] = print,
    ) -> None:
        self.log = log
        self.mappings: list[SqsMapping] = []
        self.schedules: list[Schedule] = []
        self.skipped: list[str] = []
        self.threads: list[threading.Thread] = []
        for mapping in lambda_client.list_event_source_mappings().get("EventSourceMappings", []):
            runner = functions.runner(mapping.get("FunctionArn", ""))
            source = mapping.get("EventSourceArn", "")
            if runner is None or ":sqs:" not in source:
                continue
            if mapping.get("State", "Enabled") not in ("Enabled", "Creating", "Enabling"):
                self.skipped.append(f"mapping {mapping['UUID']} is {mapping.get('State')}")
                continue
            account, name = source.split(":")[4], source.split(":")[5]
            url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
            self.mappings.append(
                SqsMapping(
                    uuid=mapping["UUID"],
                    queue_arn=source,
                    queue_url=url,
                    runner=runner,
                    batch_size=int(mapping.get("BatchSize") or 10),
                    report_failures="ReportBatchItemFailures"
                    in (mapping.get("FunctionResponseTypes") or []),
                    sqs=sqs,
                    region=region,
                    log=log,
                )
            )
        for rule in events.list_rules().get("Rules", []):
            expression = rule.get("ScheduleExpression")
            if not expression or rule.get("State") == "DISABLED":
                continue
            targets = events.list_targets_by_rule(Rule=rule["Name"]).get("Targets", [])
            for target in targets:
                runner = functions.runner(target.get("Arn", ""))
                if runner is None:
                    continue
                period = rate_seconds(expression)
                if period is None:
                    self.skipped.append(
                        f"rule {rule['Name']}: {expression} is not run locally "
                        "(only rate() expressions are)"
                    )
                    continue
                self.schedules.append(
                    Schedule(rule["Name"], rule["Arn"], period, runner, account_id, region, log)
                )

    def start(self) -> None:
        for source in [*self.mappings, *self.schedules]:
            thread = threading.Thread(target=source.run, daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self) -> None:
        for source in [*self.mappings, *self.schedules]:
            source.stop_event.set()
        for thread in self.threads:
            thread.join(timeout=POLL_WAIT_SECONDS + 30)
