"""Every alarm has a runbook entry, its description says what to do, docs/runbook.md is current."""

from __future__ import annotations

import copy
import html
import re
from pathlib import Path

import pytest

from templates import reports, runbook
from templates.naming import Naming
from templates.registry import build_templates

from .conftest import SUFFIX

ROOT = Path(__file__).resolve().parents[2]


def every_alarm(built):
    return [a for t in built.values() for a in runbook.alarms(t).values()]


def test_every_alarm_has_exactly_one_entry_and_every_entry_an_alarm(built):
    assert every_alarm(built)
    lonely, unused = runbook.unmatched(built, SUFFIX)
    assert lonely == [], f"alarms without a runbook entry (templates/runbook.py): {lonely}"
    assert unused == [], f"runbook entries that match no alarm: {unused}"


def test_the_check_sees_an_alarm_without_entry_and_an_entry_without_alarm(built):
    changed = copy.deepcopy(built)
    platform = changed[f"payment-platform-{SUFFIX}"]["Resources"]
    extra = copy.deepcopy(platform["DlqNotEmptyAlarm"])
    extra["Properties"]["AlarmName"] = f"platform-something-new-{SUFFIX}"
    platform["NewAlarm"] = extra
    del platform["QueueOldestMessageAlarm"]
    lonely, unused = runbook.unmatched(changed, SUFFIX)
    assert lonely == ["platform-something-new"]
    assert unused == ["platform-queue-oldest-message"]


@pytest.mark.requirement("S001-ALARM-NOTIFY", "S001-ALARMS")
def test_each_description_says_what_it_means_the_first_step_and_where_to_read_on(built):
    for alarm in every_alarm(built):
        props = alarm["Properties"]
        base = runbook.alarm_base(props["AlarmName"], SUFFIX)
        description = props["AlarmDescription"]
        assert len(description) <= 1024
        meaning, _, rest = description.partition(" First: ")
        assert meaning and rest, description
        assert rest.endswith(f"Runbook: docs/runbook.md#{runbook.anchor(base)}")


def test_docs_runbook_is_current_and_the_same_for_every_suffix(built):
    expected = reports.docs_files(built, SUFFIX)[reports.DOCS_RUNBOOK]
    committed = (ROOT / reports.DOCS_RUNBOOK).read_text(encoding="utf-8")
    assert committed == expected, "run: python generate.py --suffix qa --docs"
    prod = build_templates(Naming("prod"))
    assert runbook.render(prod, "prod") == expected


def test_every_entry_is_complete_and_names_the_safe_switches_and_the_forbidden_moves(built):
    text = runbook.render(built, SUFFIX)
    for alarm in every_alarm(built):
        base = runbook.alarm_base(alarm["Properties"]["AlarmName"], SUFFIX)
        heading = f"### {base}\n"
        assert heading in text
        entry_text = text.split(heading, 1)[1].split("\n### ", 1)[0]
        for part in (
            "**Metric:**",
            "**Alarm when:**",
            "**Dashboard:** section",
            "Likely causes:",
            "Safe actions:",
            "Never:",
        ):
            assert part in entry_text, (base, part)
        assert "Never purge" in entry_text and "Never restore a backup over the live" in entry_text
    assert "HealthDryRun=true" in text and "NEEDS_REVIEW" in text


def test_thresholds_in_the_runbook_are_the_templates(built):
    text = runbook.render(built, SUFFIX)
    assert "### platform-api-latency-p99" in text
    latency = text.split("### platform-api-latency-p99\n", 1)[1].split("###", 1)[0]
    assert "p99 of AWS/ApiGateway Latency" in latency
    assert "> 2000 in 3 of 5 period(s)" in latency


LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical"}


def handler_messages() -> set[str]:
    """What the Lambda code logs (the first argument of logger.<level>(...)) and the fixed
    start of every error it raises (a cold start fails with that text in the log)."""
    import ast

    found = set()
    for path in (ROOT / "src" / "handlers").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            call = node.exc if isinstance(node, ast.Raise) else node
            if not (isinstance(call, ast.Call) and call.args):
                continue
            is_log = isinstance(call.func, ast.Attribute) and call.func.attr in LOG_METHODS
            if not (is_log or isinstance(node, ast.Raise)):
                continue
            first = call.args[0]
            if isinstance(first, ast.JoinedStr) and first.values:
                first = first.values[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.add(first.value.strip())
    return found


def test_every_log_message_the_runbook_names_is_one_the_handlers_write():
    messages = handler_messages()
    assert "unexpected error" in messages  # the reader works
    for message in runbook.LOGGED:
        assert message in messages, f"the runbook sends on-call to {message!r}; nothing logs it"


def test_every_quoted_phrase_in_an_entry_is_a_known_log_message(built):
    """A phrase in quotes tells the on-call person what to search for: ours (LOGGED), or
    Lambda's and Logs Insights' own words."""
    allowed = set(runbook.LOGGED) | {runbook.LAMBDA_TIMEOUT, "ERROR", "unstick"}
    for entry in runbook.ENTRIES:
        for text in (entry.first, *entry.causes, *entry.safe, *entry.never):
            for phrase in re.findall(r"(?<![A-Za-z])'([^']+)'(?![A-Za-z])", text):
                assert phrase in allowed, (entry.alarm, phrase)


def test_every_name_the_runbook_gives_is_a_name_in_the_templates(built):
    """Log groups, queues, rules, functions: what the runbook tells you to open exists."""
    values: set[str] = set(built)

    def visit(value) -> None:
        if isinstance(value, str):
            values.add(value)
        elif isinstance(value, dict):
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    visit(list(built.values()))
    text = html.unescape((ROOT / reports.DOCS_RUNBOOK).read_text(encoding="utf-8"))
    names = set(re.findall(r"[\w/.-]+-<suffix>|PaymentPlatform/<suffix>", text))
    assert "/aws/lambda/payment-processor-<suffix>" in names
    missing = sorted(n for n in names if n.replace("<suffix>", SUFFIX) not in values)
    assert missing == [], f"the runbook names what the templates do not have: {missing}"


def test_each_description_names_the_deployment_s_own_resources(built):
    """The person paged reads the description in the notification: no placeholder in it."""
    for alarm in every_alarm(built):
        description = alarm["Properties"]["AlarmDescription"]
        assert runbook.SUFFIX_PLACEHOLDER not in description, description


# The dimensions each service publishes a metric with, from its CloudWatch documentation
# (DynamoDB: "DynamoDB Metrics and dimensions"; ThrottledRequests is per Operation, the
# throttle events per table or index).
PUBLISHED_DIMENSIONS = {
    ("AWS/DynamoDB", "ThrottledRequests"): {"TableName", "Operation"},
    ("AWS/DynamoDB", "ReadThrottleEvents"): {"TableName", "GlobalSecondaryIndexName"},
    ("AWS/DynamoDB", "WriteThrottleEvents"): {"TableName", "GlobalSecondaryIndexName"},
    ("AWS/DynamoDB", "SystemErrors"): {"TableName", "Operation"},
}


def test_every_metric_the_runbook_sends_you_to_exists_with_those_dimensions(built):
    text = runbook.render(built, SUFFIX)
    named = re.findall(r"(AWS/\w+) (\w+) by (\w+(?: and \w+)*)", text)
    assert named, "the throttle entry names the metrics to look at"
    for namespace, name, dimensions in named:
        published = PUBLISHED_DIMENSIONS.get((namespace, name))
        assert published is not None, f"{namespace} {name}: add it with its documented dimensions"
        assert set(dimensions.split(" and ")) <= published, (namespace, name, dimensions)


def test_the_safe_switch_the_runbook_names_is_a_parameter_of_the_platform(built):
    """'Set HealthDryRun=true ... set it back to false': the parameter exists, takes those
    values, defaults to off, and reaches the health function."""
    platform = built[f"payment-platform-{SUFFIX}"]
    parameter = platform["Parameters"]["HealthDryRun"]
    assert set(parameter["AllowedValues"]) == {"true", "false"}
    assert parameter["Default"] == "false"
    health = platform["Resources"]["HealthFunction"]["Properties"]["Environment"]["Variables"]
    assert health["HEALTH_DRY_RUN"] == {"Ref": "HealthDryRun"}
    assert "HealthDryRun=true" in runbook.DRY_RUN and "back to false" in runbook.DRY_RUN


def test_names_read_whole_once_the_runbook_is_rendered():
    """On the repository host the runbook is read rendered: `<suffix>` outside a code span
    would be taken for an HTML tag and dropped (Python-Markdown does what GitHub does)."""
    import markdown

    text = (ROOT / reports.DOCS_RUNBOOK).read_text(encoding="utf-8")
    shown = html.unescape(re.sub(r"<[^>]+>", "", markdown.markdown(text)))
    for name in ("/aws/lambda/payment-processor-<suffix>", "payment-health-schedule-<suffix>"):
        assert name in shown, name
    assert "payment-alarms-<suffix>" in shown  # in a code span it was always fine


def test_the_numbers_an_entry_states_are_the_template_s(built):
    """Retries, schedule and heartbeat window are written in the entries' prose: each must
    be what the template configures (change both together)."""
    platform = built[f"payment-platform-{SUFFIX}"]["Resources"]
    text = runbook.render(built, SUFFIX)
    receives = platform["FailedTransactionsQueue"]["Properties"]["RedrivePolicy"]
    assert f"why did {receives['maxReceiveCount']} attempts fail?" in text
    schedule = platform["HealthSchedule"]["Properties"]["ScheduleExpression"]
    assert schedule == "rate(5 minutes)" and "every 5 minutes" in text
    heartbeat = platform["HealthHeartbeatAlarm"]["Properties"]
    window = heartbeat["Period"] * heartbeat["EvaluationPeriods"] // 60
    assert f"clears within {window} minutes" in text
    # Lambda's asynchronous invocation: one attempt and two retries unless configured.
    assert not [r for r in platform.values() if r["Type"] == "AWS::Lambda::EventInvokeConfig"]
    assert "failed three times on one run" in text
