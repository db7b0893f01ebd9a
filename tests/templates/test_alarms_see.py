"""Issue 9, "alarms that see": the platform's alarms watch the metrics DynamoDB, EventBridge
and the health monitor really publish, and the recovery schedule cannot stop silently."""

from __future__ import annotations

import re

import pytest

from tests.templates.cfn import as_list, props, refs_to, resources, role_statements
from tests.templates.platform_rules import target

# The DynamoDB operations CloudWatch publishes SystemErrors for (dimension Operation).
# TransactWriteItems has no IAM action: a role may call it when granted any of these.
TRANSACTION_AUTHORISED_BY = {"PutItem", "UpdateItem", "DeleteItem", "ConditionCheckItem"}
DATA_OPERATIONS = {
    "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem",
    "BatchWriteItem", "TransactGetItems", "TransactWriteItems", "ExecuteStatement",
    "BatchExecuteStatement", "ExecuteTransaction",
}  # fmt: skip


@pytest.fixture(scope="module")
def platform(all_templates) -> dict:
    return all_templates["payment-platform"]


def metric_stats(alarm: dict) -> list[dict]:
    """Every metric an alarm reads: its own, or each MetricStat of its metric math."""
    p = props(alarm)
    if "MetricName" in p:
        return [{k: p.get(k) for k in ("Namespace", "MetricName", "Dimensions")}]
    return [q["MetricStat"]["Metric"] for q in p.get("Metrics", []) if "MetricStat" in q]


def dims(metric: dict) -> dict:
    return {d["Name"]: d["Value"] for d in metric.get("Dimensions") or []}


def health_function(platform: dict) -> tuple[str, dict]:
    (found,) = [
        (logical_id, fn)
        for logical_id, fn in resources(platform, "AWS::Lambda::Function").items()
        if props(fn)["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == "health"
    ]
    return found


@pytest.mark.requirement("S001-TABLE-THROTTLE-ALARMS")
def test_every_global_secondary_index_has_a_throttle_alarm(platform):
    """DynamoDB publishes an index's throttling under GlobalSecondaryIndexName only: a
    TableName-only alarm never sees the sweeper's index being throttled."""
    watched: set[tuple[str, str, str]] = set()
    for alarm in resources(platform, "AWS::CloudWatch::Alarm").values():
        for metric in metric_stats(alarm):
            d = dims(metric)
            if metric["Namespace"] == "AWS/DynamoDB" and "GlobalSecondaryIndexName" in d:
                watched.add(
                    (target(d["TableName"]), d["GlobalSecondaryIndexName"], metric["MetricName"])
                )
    indexes = [
        (table_id, index["IndexName"])
        for table_id, table in resources(platform, "AWS::DynamoDB::Table").items()
        for index in props(table).get("GlobalSecondaryIndexes", [])
    ]
    assert indexes, "the platform table has its pending-by-age index"
    for table_id, index in indexes:
        for metric in ("ReadThrottleEvents", "WriteThrottleEvents"):
            assert (table_id, index, metric) in watched, (table_id, index, metric)


def granted_operations(platform: dict, table_id: str) -> set[str]:
    """DynamoDB data operations any role may call on the table or one of its indexes."""
    found = set()
    for role_id in resources(platform, "AWS::IAM::Role"):
        for statement in role_statements(platform, role_id):
            if not any(refs_to(r, table_id) for r in as_list(statement["Resource"])):
                continue
            for action in as_list(statement["Action"]):
                service, _, operation = action.partition(":")
                if service == "dynamodb" and operation in DATA_OPERATIONS:
                    found.add(operation)
                if service == "dynamodb" and operation in TRANSACTION_AUTHORISED_BY:
                    found.add("TransactWriteItems")  # no IAM action of its own
    return found


@pytest.mark.requirement("S001-TABLE-THROTTLE-ALARMS", "S001-ALARMS")
def test_system_errors_alarm_sums_every_operation_the_functions_make(platform):
    """SystemErrors exists only per TableName and Operation: an operation left out (the
    health monitor's Query) is invisible."""
    # The simulated acquirer's ledger stands in for the acquirer's own service: its failures
    # reach the platform as provider timeouts (RetryDeferred, which the health gate reads).
    tables = [t for t in resources(platform, "AWS::DynamoDB::Table") if t != "AcquirerLedgerTable"]
    assert tables == ["TransactionsTable"]
    for table_id in tables:
        expected = granted_operations(platform, table_id)
        assert "Query" in expected  # the sweeper's query of the pending-by-requeue index
        assert "TransactWriteItems" in expected  # the key binding
        alarms = [
            a
            for a in resources(platform, "AWS::CloudWatch::Alarm").values()
            if any(
                m["MetricName"] == "SystemErrors" and refs_to(m["Dimensions"], table_id)
                for m in metric_stats(a)
            )
        ]
        (alarm,) = alarms
        operations = {dims(m)["Operation"] for m in metric_stats(alarm)}
        assert operations == expected
        (expression,) = [q for q in props(alarm)["Metrics"] if q.get("ReturnData", True)]
        assert expression["Expression"] == "SUM(METRICS())"


@pytest.mark.requirement("S001-SELF-HEALING", "S001-DLQ")
def test_the_schedule_retries_briefly_and_keeps_what_it_cannot_deliver(platform):
    (rule,) = resources(platform, "AWS::Events::Rule").values()
    minutes = int(re.fullmatch(r"rate\((\d+) minutes?\)", props(rule)["ScheduleExpression"])[1])
    (rule_target,) = props(rule)["Targets"]
    # A run older than the next one is worth nothing: stop retrying before it is due.
    assert 0 < rule_target["RetryPolicy"]["MaximumEventAgeInSeconds"] < minutes * 60
    assert rule_target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    dlq = target(rule_target["DeadLetterConfig"]["Arn"])
    queue = props(platform["Resources"][dlq])
    assert queue["KmsMasterKeyId"] == {"Fn::GetAtt": ["StackKey", "Arn"]}
    # The function's failed asynchronous runs end in the same queue.
    _, health = health_function(platform)
    assert target(props(health)["DeadLetterConfig"]["TargetArn"]) == dlq


def test_only_this_rule_may_write_to_the_schedule_dlq_and_use_the_key_for_it(platform):
    ((rule_id, rule),) = resources(platform, "AWS::Events::Rule").items()
    dlq = target(props(rule)["Targets"][0]["DeadLetterConfig"]["Arn"])
    (policy,) = [
        p
        for p in resources(platform, "AWS::SQS::QueuePolicy").values()
        if {"Ref": dlq} in props(p)["Queues"]
    ]
    (allowed,) = [s for s in props(policy)["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert allowed["Principal"] == {"Service": "events.amazonaws.com"}
    assert allowed["Action"] == ["sqs:SendMessage"]
    source = {"Fn::GetAtt": [rule_id, "Arn"]}
    assert allowed["Condition"] == {"ArnEquals": {"aws:SourceArn": source}}
    (key,) = resources(platform, "AWS::KMS::Key").values()
    (for_events,) = [
        s
        for s in props(key)["KeyPolicy"]["Statement"]
        if s.get("Principal") == {"Service": "events.amazonaws.com"}
    ]
    source = for_events["Condition"]["ArnEquals"]["aws:SourceArn"]["Fn::Sub"]
    assert source.endswith(":rule/" + props(rule)["Name"])
    assert set(for_events["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey"}


@pytest.mark.requirement("S001-SELF-HEALING", "S001-ALARMS")
def test_an_alarm_fires_when_the_scheduled_runs_stop(platform):
    """Missing data is the failure here: the alarm reads the health monitor's own
    per-run metric (tests/handlers/test_heartbeat.py: every completed run emits it) and
    treats silence as breaching, within a few runs' time."""
    _, health = health_function(platform)
    variables = props(health)["Environment"]["Variables"]
    (rule,) = resources(platform, "AWS::Events::Rule").values()
    minutes = int(re.fullmatch(r"rate\((\d+) minutes?\)", props(rule)["ScheduleExpression"])[1])
    heartbeats = [
        props(a)
        for a in resources(platform, "AWS::CloudWatch::Alarm").values()
        if props(a).get("TreatMissingData") == "breaching"
    ]
    (alarm,) = heartbeats
    assert alarm["Namespace"] == variables["POWERTOOLS_METRICS_NAMESPACE"]
    assert dims(alarm) == {"service": variables["POWERTOOLS_SERVICE_NAME"]}
    assert alarm["Statistic"] == "SampleCount"
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("LessThanThreshold", 1)
    assert minutes * 60 < alarm["Period"] * alarm["EvaluationPeriods"] <= 4 * minutes * 60


def test_a_failed_scheduled_run_in_the_dlq_alarms(platform):
    _, health = health_function(platform)
    dlq = target(props(health)["DeadLetterConfig"]["TargetArn"])
    watching = [
        props(a)
        for a in resources(platform, "AWS::CloudWatch::Alarm").values()
        if props(a).get("MetricName") == "ApproximateNumberOfMessagesVisible"
        and refs_to(props(a)["Dimensions"], dlq)
    ]
    (alarm,) = watching
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
