"""The scheduled run: DLQ redrive only when safe, one SNS message per state change,
dry run changes nothing. Move tasks are answered by a botocore Stubber (moto has
neither StartMessageMoveTask nor ListMessageMoveTasks); everything else is moto."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time

import pytest

from handlers.monitoring.checks import HealthReport, State
from handlers.monitoring.recovery import HealthState, decide_redrive
from tests.handlers.conftest import failing

COOLDOWN = 900
NOW = 1_800_000_000


def report(dlq=3, **states):
    components = {
        name: State.OK
        for name in ("database", "retryQueue", "deadLetterQueue", "alarms", "processing")
    }
    components.update({name: State(value) for name, value in states.items()})
    return HealthReport(components=components, checked_at="now", dlq_depth=dlq, retry_depth=0)


@pytest.mark.parametrize(
    ("case", "health_report", "state", "running", "start", "reason"),
    [
        ("healthy", report(), HealthState(), False, True, "start"),
        ("empty dlq", report(dlq=0), HealthState(), False, False, "dlq-empty"),
        ("table down", report(database="unavailable"), HealthState(), False, False, "unhealthy"),
        ("errors high", report(processing="degraded"), HealthState(), False, False, "unhealthy"),
        ("alarms unknown", report(alarms="unavailable"), HealthState(), False, False, "unhealthy"),
        (
            "cool-down",
            report(),
            HealthState(last_redrive_at=NOW - COOLDOWN + 1),
            False,
            False,
            "cooldown",
        ),
        (
            "cool-down over",
            report(),
            HealthState(last_redrive_at=NOW - COOLDOWN),
            False,
            True,
            "start",
        ),
        ("already running", report(), HealthState(), True, False, "already-running"),
    ],
)
def test_redrive_rule(case, health_report, state, running, start, reason):
    decision = decide_redrive(health_report, state, NOW, COOLDOWN, running, rejected=0)
    assert (decision.start, decision.reason) == (start, reason), case


def test_a_rejection_since_the_last_redrive_is_poison_and_halts():
    after = HealthState(last_redrive_at=NOW - COOLDOWN)
    assert decide_redrive(report(), after, NOW, COOLDOWN, None).reason == "check-rejections"
    assert decide_redrive(report(), after, NOW, COOLDOWN, None, rejected=2).reason == "poison"
    assert decide_redrive(report(), HealthState(), NOW, COOLDOWN, False).start  # no redrive yet
    halted = dataclasses.replace(after, redrive_halted=True)
    assert decide_redrive(report(), halted, NOW, COOLDOWN, False, 0).reason == "halted"
    lifted = dataclasses.replace(after, halt_lifted_at=NOW - 10)
    assert lifted.rejections_since == NOW - 10  # only rejections after the halt was lifted


def test_blocking_alarm_makes_the_path_unhealthy():
    blocked = dataclasses.replace(report(alarms="degraded"), blocking_alarms=1)
    assert decide_redrive(blocked, HealthState(), NOW, COOLDOWN, False).reason == "unhealthy"
    dlq_alarm_only = report(alarms="degraded")  # firing, but only the DLQ's own alarm
    assert decide_redrive(dlq_alarm_only, HealthState(), NOW, COOLDOWN, False).start


# ---- the scheduled handler against moto, move tasks stubbed ----------------------


def fill_dlq(health, count=3):
    sqs = health.aws.client("sqs")
    for i in range(count):
        sqs.send_message(
            QueueUrl=health.aws.queue_url("FailedTransactionsQueueDlq"), MessageBody=f'{{"n":{i}}}'
        )


def subscribe_probe(health):
    """A queue subscribed to the alarm topic, to count what the function publishes."""
    sqs, sns = health.aws.client("sqs"), health.aws.client("sns")
    url = sqs.create_queue(QueueName="probe")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=health.module.CONFIG.alarm_topic_arn, Protocol="sqs", Endpoint=arn)

    def published():
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return [json.loads(json.loads(m["Body"])["Message"]) for m in messages]

    return published


def expect_list(health, running=False):
    status = "RUNNING" if running else "COMPLETED"
    health.stubber.add_response(
        "list_message_move_tasks",
        {"Results": [{"Status": status, "SourceArn": health.module.CONFIG.dlq_arn}]},
        {"SourceArn": health.module.CONFIG.dlq_arn, "MaxResults": 10},
    )


def expect_start(health):
    config = health.module.CONFIG
    health.stubber.add_response(
        "start_message_move_task",
        {"TaskHandle": "handle-1"},
        {
            "SourceArn": config.dlq_arn,
            "DestinationArn": config.failed_queue_arn,
            "MaxNumberOfMessagesPerSecond": config.redrive_max_messages_per_second,
        },
    )


def state_item(health):
    item = health.aws.client("dynamodb").get_item(
        TableName=health.aws.table, Key={"id": {"S": health.module.CONFIG.state_item_id}}
    )
    return item.get("Item")


def redrive_action(result):
    (action,) = [a for a in result["actions"] if a["action"] == "redrive"]
    return action


@pytest.mark.requirement("S001-SELF-HEALING", "S001-HEALTH-FUNCTION")
def test_healthy_with_dlq_messages_starts_one_capped_redrive(health):
    fill_dlq(health)
    health.aws.client("cloudwatch").set_alarm_state(
        AlarmName="platform-dlq-not-empty-test",
        StateValue="ALARM",
        StateReason="the DLQ holds messages",
    )
    expect_list(health)
    expect_start(health)
    result = health.scheduled()
    assert redrive_action(result) == {
        "action": "redrive",
        "decision": "start",
        "done": True,
        "maxMessagesPerSecond": 10,
    }
    health.stubber.assert_no_pending_responses()  # exactly the expected calls, with the cap
    assert int(state_item(health)["lastRedriveAt"]["N"]) == pytest.approx(time.time(), abs=60)


@pytest.mark.requirement("S001-SELF-HEALING")
def test_unhealthy_path_never_redrives(health):
    fill_dlq(health)
    health.aws.client("cloudwatch").set_alarm_state(
        AlarmName="platform-table-write-throttles-test", StateValue="ALARM", StateReason="throttled"
    )
    result = health.scheduled()  # the stubber has no answers queued: any move call would fail
    assert redrive_action(result)["decision"] == "unhealthy"
    health.stubber.assert_no_pending_responses()


def test_cool_down_blocks_a_second_redrive(health):
    fill_dlq(health)
    expect_list(health)
    expect_start(health)
    assert redrive_action(health.scheduled())["done"] is True
    second = health.scheduled()  # the DLQ still holds messages (the stub moved nothing)
    assert redrive_action(second) == {"action": "redrive", "decision": "cooldown", "done": False}
    health.stubber.assert_no_pending_responses()


def test_already_running_task_is_left_alone(health):
    fill_dlq(health)
    expect_list(health, running=True)
    result = health.scheduled()
    assert redrive_action(result)["decision"] == "already-running"
    assert state_item(health) is None or "lastRedriveAt" not in state_item(health)
    health.stubber.assert_no_pending_responses()


def test_empty_dlq_makes_no_move_calls(health):
    result = health.scheduled()
    assert redrive_action(result)["decision"] == "dlq-empty"


def test_dry_run_reports_and_changes_nothing(health, monkeypatch):
    monkeypatch.setattr(
        health.runtime, "config", dataclasses.replace(health.runtime.config, dry_run=True)
    )
    published = subscribe_probe(health)
    fill_dlq(health)
    expect_list(health)  # read-only, so dry run still asks
    result = health.scheduled()
    assert result["dryRun"] is True
    assert redrive_action(result) == {
        "action": "redrive",
        "decision": "start",
        "done": False,
        "reason": "dry-run",
    }
    notify = result["actions"][0]
    assert notify["done"] is False and notify["reason"] == "dry-run"
    assert state_item(health) is None
    assert published() == []
    health.stubber.assert_no_pending_responses()


def test_one_sns_message_per_state_change(health):
    published = subscribe_probe(health)
    for _ in range(3):
        health.scheduled()
    assert published() == []  # healthy from the start: nothing to announce

    health.aws.client("cloudwatch").set_alarm_state(
        AlarmName="platform-api-5xx-test", StateValue="ALARM", StateReason="5xx"
    )
    for _ in range(3):
        health.scheduled()
    (message,) = published()
    assert (message["previous"], message["current"]) == ("healthy", "degraded")

    health.aws.client("cloudwatch").set_alarm_state(
        AlarmName="platform-api-5xx-test", StateValue="OK", StateReason="recovered"
    )
    for _ in range(3):
        health.scheduled()
    (message,) = published()
    assert (message["previous"], message["current"]) == ("degraded", "healthy")


def test_failed_publish_is_retried_by_the_next_run(health):
    published = subscribe_probe(health)
    health.aws.client("cloudwatch").set_alarm_state(
        AlarmName="platform-api-5xx-test", StateValue="ALARM", StateReason="5xx"
    )
    with (
        failing(health.aws.client("sns"), "Publish", code="Throttled"),
        pytest.raises(Exception, match="Throttled"),
    ):
        health.scheduled()
    assert published() == []
    health.scheduled()
    (message,) = published()
    assert message["current"] == "degraded"


def test_scheduled_run_emits_the_health_metric(health, capsys):
    health.scheduled()
    emf = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if line.startswith('{"_aws"')
    ]
    assert any(line.get("Healthy") == [1.0] for line in emf)


ALLOWED_HEALTH_CALLS = {
    "dynamodb": {"DescribeTable", "GetItem", "PutItem", "UpdateItem", "Query"},
    "sqs": {"GetQueueAttributes", "StartMessageMoveTask", "ListMessageMoveTasks", "SendMessage"},
    "cloudwatch": {"DescribeAlarms", "GetMetricData"},
    "sns": {"Publish"},
}


def test_health_makes_only_the_calls_its_role_grants(health):
    """Never a purge, a restore, an IAM call, or anything outside docs/contract.md."""
    made = set()
    clients = [health.aws.client(s) for s in ("dynamodb", "sqs", "cloudwatch", "sns")]
    clients.append(health.runtime.recovery.move_tasks._sqs)

    def record(model, **_):
        made.add((model.service_model.service_name, model.name))

    for client in clients:
        client.meta.events.register("before-call", record, unique_id="allow-list")
    try:
        fill_dlq(health)
        made.clear()
        expect_list(health)
        expect_start(health)
        health.scheduled()
        health.get()
    finally:
        for client in clients:
            client.meta.events.unregister("before-call", unique_id="allow-list")
    assert made
    for service, operation in made:
        assert operation in ALLOWED_HEALTH_CALLS[service], (service, operation)


def test_state_change_uses_a_conditional_write(health):
    """Two overlapping runs: the second sees the change already announced."""
    runtime = health.runtime
    state = runtime.recovery.state
    assert state.swap_status(HealthState(), report().status, dt.datetime.now(dt.UTC))
    assert not state.swap_status(HealthState(), report().status, dt.datetime.now(dt.UTC))


def rejected_metric(health, minutes_ago, value=3):
    """The processing function's own RetryMessageRejected metric, as its EMF lines publish it."""
    health.aws.client("cloudwatch").put_metric_data(
        Namespace=health.module.CONFIG.common.metrics_namespace,
        MetricData=[
            {
                "MetricName": "RetryMessageRejected",
                "Dimensions": [{"Name": "service", "Value": "processing"}],
                "Timestamp": dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago),
                "Value": value,
            }
        ],
    )


def set_last_redrive(health, seconds_ago):
    health.aws.client("dynamodb").put_item(
        TableName=health.aws.table,
        Item={
            "id": {"S": health.module.CONFIG.state_item_id},
            "status": {"S": "healthy"},
            "version": {"N": "1"},
            "lastRedriveAt": {"N": str(int(time.time()) - seconds_ago)},
        },
    )


def empty_dlq(health):
    sqs = health.aws.client("sqs")
    url = health.aws.queue_url("FailedTransactionsQueueDlq")
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


@pytest.mark.requirement("S001-SELF-HEALING", "S001-ERROR-HANDLING")
def test_poison_brought_back_by_a_redrive_halts_the_redrive_until_the_dlq_is_empty(health):
    """A message the consumer rejected after the last redrive means the DLQ holds poison: no
    more automatic redrives (one SNS message says so), until the DLQ has been seen empty."""
    published = subscribe_probe(health)
    set_last_redrive(health, COOLDOWN + 60)
    fill_dlq(health)
    rejected_metric(health, minutes_ago=10)  # after that redrive

    first = health.scheduled()  # the stubber has no answers: a move-task call would fail
    assert redrive_action(first) == {
        "action": "redrive", "decision": "poison", "done": False, "halted": True
    }  # fmt: skip
    (announcement,) = [m for m in published() if m.get("event") == "dlq-redrive-halted"]
    assert announcement["deadLetterQueueDepth"] == 3
    assert redrive_action(health.scheduled())["decision"] == "halted"
    assert [m for m in published() if m.get("event")] == []  # announced once
    health.stubber.assert_no_pending_responses()

    empty_dlq(health)  # an operator dealt with the poison
    health.runtime.cached = None
    lifted = health.scheduled()
    assert redrive_action(lifted)["haltLifted"] is True

    fill_dlq(health)  # new failures, long after: the old rejections do not count
    expect_list(health)
    expect_start(health)
    state = state_item(health)
    assert state["redriveHalted"]["BOOL"] is False
    assert redrive_action(health.scheduled())["done"] is True


def test_without_rejections_since_the_last_redrive_a_second_redrive_runs(health):
    set_last_redrive(health, COOLDOWN + 60)
    fill_dlq(health)
    rejected_metric(health, minutes_ago=COOLDOWN // 60 + 30)  # before the last redrive
    expect_list(health)
    expect_start(health)
    assert redrive_action(health.scheduled())["done"] is True
