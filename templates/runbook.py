"""The on-call runbook: for every alarm, what it means, the first thing to do, and more.

One source for two outputs: `alarm_description` is what monitoring.py puts in each alarm's
AlarmDescription (the text the person paged reads in the notification), and `render` turns
the same entries, with each alarm's metric and threshold read from the generated template,
into docs/runbook.md. An alarm is matched to its entry by its name without the suffix
(`fnmatch` patterns allowed, for alarms made per function or per index); a test fails when an
alarm has no entry or an entry matches no alarm.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from templates.cfnread import display, read_path

RUNBOOK_PATH = "docs/runbook.md"
DESCRIPTION_LIMIT = 1024  # CloudWatch's AlarmDescription maximum
SUFFIX_PLACEHOLDER = "<suffix>"  # in entries; an alarm's description names its own suffix

# Log messages an entry tells the on-call person to look for: each is a message the handlers
# write (tests/evidence/test_runbook.py reads them from src/handlers), quoted through logged().
UNEXPECTED_ERROR = "unexpected error"  # handlers/api.py: the exception, its errorType
SCHEDULED_RUN = "scheduled health run"  # handlers/health.py: after every scheduled run
MISSING_ENV = "missing required environment variable"  # handlers/config.py: cold start
NEEDS_REVIEW_LOGGED = "payment needs review"  # handlers/processing.py: with its reason
MESSAGE_REJECTED = "queue message rejected"  # handlers/processing.py: with the reason only
STATE_UNKNOWN = "payment state unknown"  # handlers/processing.py: a 500 that promises nothing
LOGGED = (
    UNEXPECTED_ERROR, SCHEDULED_RUN, MISSING_ENV, NEEDS_REVIEW_LOGGED, MESSAGE_REJECTED,
    STATE_UNKNOWN,
)  # fmt: skip
LAMBDA_TIMEOUT = "Task timed out"  # Lambda's own line, not ours


def logged(message: str) -> str:
    """A log message as the runbook quotes it."""
    return f"'{message}'"


def metric(namespace: str, name: str, *dimensions: str) -> str:
    """A CloudWatch metric an entry sends the reader to, by its dimensions (the test checks
    each against the dimensions the service publishes it with)."""
    return f"{namespace} {name} by {' and '.join(dimensions)}"


THROTTLED_BY_OPERATION = metric("AWS/DynamoDB", "ThrottledRequests", "TableName", "Operation")
THROTTLED_BY_INDEX = metric(
    "AWS/DynamoDB", "WriteThrottleEvents", "TableName", "GlobalSecondaryIndexName"
)


DRY_RUN = (
    "Set the stack parameter HealthDryRun=true (a stack update, nothing else changes) to "
    "keep the health monitor from redriving the DLQ or re-queuing stuck payments while you "
    "investigate; it still reports what it would do. Set it back to false when done."
)
READ_HEALTH = "Read GET /health (no key): which component is degraded or unavailable."
REPLAY_SAFE = (
    "Retrying a payment with the same Idempotency-Key is always safe: the same key never "
    "charges twice, and a different body under it is refused (422)."
)
NEEDS_REVIEW = (
    "A payment the platform cannot finish on its own (MAX_PAYMENT_ATTEMPTS provider calls, or "
    "the acquirer refusing its id) ends in the terminal NEEDS_REVIEW state, visible through "
    "GET /payments/{id}: settle it with the acquirer's records, never by charging again."
)
NEVER = (
    "Never purge the failed-transactions queue or its DLQ: each message is an accepted "
    "payment a client was promised (202).",
    "Never restore a backup over the live transactions table: restore point-in-time into a "
    "new table and compare; the live table holds payments accepted since.",
    "Never delete a transaction's item or its idempotency record to 'unstick' it: the same "
    "key would then charge again.",
)


@dataclass(frozen=True)
class Entry:
    """The runbook entry of one alarm (or of each alarm a pattern matches)."""

    alarm: str  # AlarmName without `-<suffix>`; fnmatch pattern
    first: str  # the first thing to do, in the AlarmDescription too
    causes: tuple[str, ...]
    safe: tuple[str, ...]
    never: tuple[str, ...] = NEVER


def _function_entries(
    fn: str, impact: str, extra_safe: tuple[str, ...], server_error_causes: tuple[str, ...] = ()
) -> list[Entry]:
    """Errors, throttles and handled server errors of one function (the same three alarms
    monitoring.add_function_alarms makes for every function)."""
    logs = f"the function's log group /aws/lambda/payment-{fn}-<suffix>"
    return [
        Entry(
            alarm=f"platform-{fn}-errors",
            first=f"Open {logs} (Logs Insights: filter level = 'ERROR') and read the newest "
            f"failed invocation. {impact}",
            causes=(
                "A deployment with a bug or a missing environment variable (cold start fails "
                f"with {logged(MISSING_ENV)}).",
                f"A timeout (the log line {logged(LAMBDA_TIMEOUT)}): a dependency slower than "
                "usual.",
                "An AWS error the code does not retry (AccessDenied after a role change).",
            ),
            safe=(
                "Roll back to the previous code zip (deploy.py with the last good commit).",
                *extra_safe,
                REPLAY_SAFE,
            ),
        ),
        Entry(
            alarm=f"platform-{fn}-throttles",
            first="Check the account's Lambda concurrency (Lambda console, Concurrent "
            f"executions) and whether traffic spiked. {impact}",
            causes=(
                "The account-wide concurrency limit is reached (other functions share it; no "
                "function here reserves concurrency, as the seed requires).",
                "A burst above the usage plan's expectation, or a retry storm from a client.",
            ),
            safe=(
                "Ask AWS for a higher account concurrency limit, or lower the usage plan "
                "throttle for the offending key.",
                *extra_safe,
            ),
        ),
        Entry(
            alarm=f"platform-{fn}-server-errors",
            first=f"Search {logs} for the correlation id the client got (the field "
            f"correlation_id) or the message {logged(UNEXPECTED_ERROR)}: the exception and its "
            f"type are logged there. {impact}",
            causes=(
                "An unexpected exception the handler turned into a 500 (a bug, or an AWS "
                "answer the code does not expect).",
                *server_error_causes,
                "Invisible to Lambda's Errors metric: the invocation itself succeeded.",
            ),
            safe=("Roll back to the previous code zip.", *extra_safe, REPLAY_SAFE),
        ),
    ]


ENTRIES: tuple[Entry, ...] = (
    Entry(
        alarm="platform-api-latency-p99",
        first="Compare API latency with the functions' duration on the dashboard: if the "
        "functions are slow too, the cause is behind them (table, provider).",
        causes=(
            "The processor waits on a slow acquirer (provider timeouts then queue payments).",
            "DynamoDB throttling or errors (see the table alarms).",
            "Cold starts after a deployment or a burst (brief; clears by itself).",
        ),
        safe=(READ_HEALTH, "Nothing needs undoing: slow requests still complete or queue."),
    ),
    Entry(
        alarm="platform-api-5xx",
        first="Check which function alarms fire with it (errors, server errors, throttles): "
        "API Gateway's 5XX are the functions' failures or its own 502/504.",
        causes=(
            "A function failing (its errors/server-errors alarm fires too).",
            "503 from the processor: the table refused the payment's first write; nothing "
            "was recorded, clients retry with the same key.",
            "504: the integration timed out (29 s).",
        ),
        safe=(READ_HEALTH, REPLAY_SAFE, "Roll back the last deployment if it started then."),
    ),
    *_function_entries(
        "validator",
        "Validation has no side effects: no payment is at risk, clients cannot validate.",
        (),
    ),
    *_function_entries(
        "processor",
        "Payments hit by a transient failure are queued (202) and retried; none is lost.",
        (DRY_RUN, NEEDS_REVIEW),
        (
            f"{logged(STATE_UNKNOWN)}: DynamoDB refused even the reads that settle whether a "
            "payment was recorded; the client was told nothing is promised and retries with the "
            "same key and body (a recorded payment replays, never charges twice).",
        ),
    ),
    *_function_entries(
        "health-monitor",
        "Payments are not affected; the DLQ redrive, the stuck-payment sweep and state "
        "notifications pause until it runs again.",
        (DRY_RUN,),
    ),
    Entry(
        alarm="platform-table-*-throttles",
        first="Look at the table's consumed capacity on the dashboard, which operation "
        f"throttles (CloudWatch: {THROTTLED_BY_OPERATION}) and which index ("
        f"{THROTTLED_BY_INDEX}, or the Read metric).",
        causes=(
            "A traffic spike beyond what on-demand has adapted to (it doubles over ~30 min).",
            "A hot partition (one merchant or key hammered).",
        ),
        safe=(
            "Nothing to undo: throttled payments are queued (202) and retried from the queue.",
            DRY_RUN,
        ),
    ),
    Entry(
        alarm="platform-table-system-errors",
        first="Check the AWS Health Dashboard for DynamoDB in the stack's region: system "
        "errors are "
        "DynamoDB's own (HTTP 500).",
        causes=("A DynamoDB service event.",),
        safe=(
            "Wait it out: the functions retry, a payment that still fails is queued (202).",
            DRY_RUN,
        ),
    ),
    Entry(
        alarm="platform-dlq-not-empty",
        first="Read one message in the DLQ (SQS console, Poll for messages, without deleting "
        "it) and the processor's log for its transactionId: why did 5 attempts fail?",
        causes=(
            "The acquirer is down or refusing for longer than the retries last (~15 min).",
            "A bug that fails every attempt for some payments.",
            "A message the consumer rejects (platform-queue-message-rejected fires too).",
        ),
        safe=(
            "Fix the cause, then let the health monitor redrive the DLQ on its own (it does "
            "once processing is healthy, rate-capped), or start a redrive from the SQS "
            "console (Start DLQ redrive) to the failed-transactions queue.",
            DRY_RUN,
            NEEDS_REVIEW,
        ),
    ),
    Entry(
        alarm="platform-payment-needs-review",
        first="Find the payments: the transactions table's items with status NEEDS_REVIEW "
        f"(or GET /payments/{{id}} for the transactionId in the processor's log line "
        f"{logged(NEEDS_REVIEW_LOGGED)}), and read each one's reason.",
        causes=(
            "attempts_exhausted: the acquirer did not answer in MAX_PAYMENT_ATTEMPTS attempts "
            "(an outage longer than the retries, or a token that always times out).",
            "provider_conflict: the acquirer holds a different charge under the transaction "
            "id (a bug or tampering; never expected).",
        ),
        safe=(
            "Ask the acquirer for the charge under the transaction id (the simulated one: the "
            "acquirer-ledger item with idempotencyKey = the transaction id). Charged: tell the "
            "merchant it succeeded and record the reference; not charged: tell the merchant to "
            "pay again with a new Idempotency-Key.",
            NEEDS_REVIEW,
        ),
    ),
    Entry(
        alarm="platform-queue-message-rejected",
        first=f"Read the processor's log lines {logged(MESSAGE_REJECTED)} (they give the "
        "reason only) and poll the DLQ without deleting: which messages are not retries of ours?",
        causes=(
            "A message this release does not write (an older version's format, a hand-sent "
            "test message), or one naming a transaction the table does not hold.",
            "Tampering with the queue (its policy allows this stack's functions only).",
        ),
        safe=(
            "Keep a copy of the rejected messages for the incident, then delete exactly those "
            "from the DLQ: the health monitor halts its automatic redrive while they are there "
            "(one SNS message says so) and resumes once the DLQ is empty. Real payments never "
            "wait on the DLQ: the sweeper re-queues every pending transaction from the table.",
            DRY_RUN,
        ),
    ),
    Entry(
        alarm="platform-queue-oldest-message",
        first="Check that the processor consumes the queue (its errors and throttles, and the "
        "event source mapping's state in the Lambda console: Enabled).",
        causes=(
            "The consumer fails every batch (processor errors alarm), so messages wait.",
            "The event source mapping is disabled, or the acquirer keeps timing out.",
        ),
        safe=(
            "Re-enable the event source mapping if it was disabled.",
            DRY_RUN,
            REPLAY_SAFE,
        ),
    ),
    Entry(
        alarm="platform-waf-blocked-spike",
        first="Open the WAF log group aws-waf-logs-payment-platform-api-<suffix> (Logs "
        "Insights: stats count(*) by terminatingRuleId, httpRequest.clientIp) and see which "
        "rule blocks whom.",
        causes=(
            "A scan or flood from a few addresses (RequestsPerIp, IP reputation list).",
            "A client that broke and sends oversized or malformed bodies (BodySizeLimit, "
            "the common rule set): then the app team, not an attacker, is the cause.",
        ),
        safe=(
            "Nothing to undo: blocked requests never reached a function or a payment.",
            "If a legitimate client is blocked, raise WafRequestsPerIpPer5Minutes (a stack "
            "update) rather than removing a rule.",
        ),
        never=(
            *NEVER,
            "Never disable the web ACL or set a managed rule group to Count to stop a page: "
            "it is the PCI DSS 6.6 control.",
        ),
    ),
    Entry(
        alarm="platform-health-schedule-dlq-not-empty",
        first="Read one message in payment-health-schedule-dlq-<suffix> (SQS console, Poll "
        "for messages): its attributes say why the scheduled health run failed every "
        "attempt (ErrorCode, ErrorMessage: Lambda's) or was not delivered (ERROR_CODE, "
        "ERROR_MESSAGE: EventBridge's).",
        causes=(
            "The health function failed three times on one run (its errors alarm fires too).",
            "EventBridge could not invoke it: the function throttled or its permission for "
            "the rule was removed.",
        ),
        safe=(
            "Fix the cause; the next run (every 5 minutes) does all the work again, so the "
            "message only records what happened: delete it once read.",
            DRY_RUN,
        ),
    ),
    Entry(
        alarm="platform-health-monitor-runs-stopped",
        first="Check the rule payment-health-schedule-<suffix> (EventBridge console: "
        "Enabled, its target and its FailedInvocations metric) and the health function's "
        f"recent log lines {logged(SCHEDULED_RUN)}.",
        causes=(
            "The rule was disabled or its target or permission removed (FailedInvocations).",
            "Every run fails or times out (the health monitor's errors alarm fires too).",
            "Right after the stack was created: no run recorded yet (clears within 15 minutes).",
        ),
        safe=(
            "Re-enable the rule or redeploy the stack (it restores the target and the "
            "permission); a run can also be started by invoking the function with the "
            "schedule's event.",
            "Until it runs: the DLQ is not redriven and stuck payments are not re-queued; "
            "no payment is lost, they wait.",
        ),
    ),
)


def entry_for(alarm_base: str, entries: tuple[Entry, ...] = ENTRIES) -> Entry | None:
    """The entry whose pattern matches the alarm's name without its suffix."""
    found = [entry for entry in entries if fnmatchcase(alarm_base, entry.alarm)]
    return found[0] if len(found) == 1 else None


def anchor(alarm_base: str) -> str:
    """The alarm's section anchor in docs/runbook.md (its heading is the base name)."""
    return alarm_base.lower()


def alarm_description(alarm_base: str, meaning: str, suffix: str) -> str:
    """What the alarm means, the first thing to do (with the deployment's own names) and
    where the runbook entry is; the meaning alone for an alarm without an entry (the runbook
    test fails on it)."""
    entry = entry_for(alarm_base)
    if entry is None:
        return meaning
    first = entry.first.replace(SUFFIX_PLACEHOLDER, suffix)
    text = f"{meaning.rstrip('.')}. First: {first} Runbook: {RUNBOOK_PATH}#{anchor(alarm_base)}"
    if len(text) > DESCRIPTION_LIMIT:
        raise ValueError(f"{alarm_base}: AlarmDescription is {len(text)} characters (max 1024)")
    return text


def alarm_base(alarm_name: str, suffix: str) -> str:
    """An alarm's name without `-<suffix>`."""
    return alarm_name.removesuffix(f"-{suffix}")


def _metric(template: dict, props: Mapping[str, Any]) -> str:
    """The watched metric as one line: statistic, namespace/name, dimensions."""
    if "Metrics" in props:
        parts = []
        for query in props["Metrics"]:
            if "Expression" in query:
                parts.append(f"`{query['Expression']}` of")
            else:
                stat = query["MetricStat"]
                metric = stat["Metric"]
                dims = ", ".join(
                    f"{d['Name']}={display(template, d['Value'])}" for d in metric["Dimensions"]
                )
                parts.append(
                    f"{stat['Stat']} of {metric['Namespace']} {metric['MetricName']} "
                    f"({dims}) per {stat['Period']} s"
                )
        return " ".join(parts[:1]) + " " + "; ".join(parts[1:])
    stat = props.get("ExtendedStatistic") or props.get("Statistic")
    dims = ", ".join(
        f"{d['Name']}={display(template, d['Value'])}" for d in props.get("Dimensions", [])
    )
    return f"{stat} of {props['Namespace']} {props['MetricName']} ({dims}) per {props['Period']} s"


COMPARISONS = {
    "GreaterThanThreshold": ">",
    "GreaterThanOrEqualToThreshold": ">=",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "<=",
}


def _threshold(props: Mapping[str, Any]) -> str:
    periods = props["EvaluationPeriods"]
    datapoints = props.get("DatapointsToAlarm", periods)
    comparison = COMPARISONS.get(props["ComparisonOperator"], props["ComparisonOperator"])
    return (
        f"{comparison} {props['Threshold']} in {datapoints} of {periods} period(s); "
        f"missing data: {props.get('TreatMissingData', 'missing')}"
    )


def dashboard_places(template: dict) -> dict[str, str]:
    """Alarm logical id -> where the dashboard shows it (its section and widget)."""
    places: dict[str, str] = {}
    for resource in template.get("Resources", {}).values():
        if resource["Type"] != "AWS::CloudWatch::Dashboard":
            continue
        text, _ = resource["Properties"]["DashboardBody"]["Fn::Sub"]
        section = ""
        for widget in json.loads(text)["widgets"]:
            props = widget.get("properties", {})
            if widget["type"] == "text" and props.get("markdown", "").startswith("## "):
                section = props["markdown"].splitlines()[0][3:]
            for placeholder in props.get("annotations", {}).get("alarms", []):
                # `${<alarm logical id>Arn}`, a variable holding that alarm's ARN.
                logical_id = placeholder[2:-1].removesuffix("Arn")
                places[logical_id] = f"section *{section}*, graph *{props.get('title')}*"
    return places


def alarms(template: dict) -> dict[str, dict]:
    """Logical id -> alarm resource, for every alarm of the template."""
    return {
        lid: r
        for lid, r in sorted(template.get("Resources", {}).items())
        if r["Type"] == "AWS::CloudWatch::Alarm"
    }


def render(templates: Mapping[str, dict], suffix: str) -> str:
    """docs/runbook.md: every alarm of every template, names shown with `<suffix>`."""
    lines = [
        "# Runbook: every alarm of the payment platform",
        "",
        "Generated by `python generate.py --suffix qa --docs` from `templates/runbook.py` and "
        "the generated templates; do not edit by hand (a test fails when it is stale). Names "
        "are shown as `<name>-<suffix>`. Each alarm notifies the topic `payment-alarms-<suffix>` "
        "on ALARM and on OK, and its description (what the notification says) is the first line "
        "of its entry below.",
        "",
        "## Before anything",
        "",
        f"- {READ_HEALTH}",
        f"- {DRY_RUN}",
        f"- {NEEDS_REVIEW}",
        f"- {REPLAY_SAFE}",
        "",
        "## Never",
        "",
        *(f"- {line}" for line in NEVER),
        "- Never change IAM or delete alarms to silence a page; the health monitor itself never "
        "purges, restores or touches IAM, and neither should a person in a hurry.",
        "",
    ]
    for stack, template in sorted(templates.items()):
        found = alarms(template)
        if not found:
            continue
        places = dashboard_places(template)
        lines += [f"## Stack `{stack.removesuffix('-' + suffix)}-<suffix>`", ""]
        for logical_id, alarm in found.items():
            props = alarm["Properties"]
            base = alarm_base(props["AlarmName"], suffix)
            entry = entry_for(base)
            lines += [f"### {base}", "", f"> {props['AlarmDescription']}", ""]
            lines += [
                f"- **Metric:** {_metric(template, props)}",
                f"- **Alarm when:** {_threshold(props)}",
                f"- **Dashboard:** {places.get(logical_id, 'not on the dashboard')}",
                f"- **Logical id:** `{logical_id}`",
            ]
            if entry is None:
                lines += ["", "**No runbook entry** (add one in templates/runbook.py).", ""]
                continue
            lines += ["", "Likely causes:", "", *(f"- {c}" for c in entry.causes), ""]
            lines += ["Safe actions:", "", *(f"- {s}" for s in entry.safe), ""]
            lines += ["Never:", "", *(f"- {n}" for n in entry.never), ""]
    # One runbook for every suffix: a name ending in the suffix (`payment-processor-qa`,
    # the namespace `PaymentPlatform/qa`) is shown with `<suffix>`.
    suffixed = rf"(?<=[A-Za-z0-9])([-/]){re.escape(suffix)}(?![a-z0-9-])"
    text = re.sub(suffixed, r"\1<suffix>", "\n".join(lines))
    return markdown_text(text).rstrip() + "\n"


def markdown_text(text: str) -> str:
    """`<` outside code spans written as `&lt;`: Markdown (GitHub's, Python-Markdown) reads
    `<suffix>` as an HTML tag and drops it, so a name would read `payment-processor-`."""
    parts = text.split("`")
    return "`".join(part if n % 2 else part.replace("<", "&lt;") for n, part in enumerate(parts))


def unmatched(templates: Mapping[str, dict], suffix: str) -> tuple[list[str], list[str]]:
    """(alarms without exactly one entry, entries that match no alarm)."""
    bases = [
        alarm_base(read_path(a, "Properties.AlarmName"), suffix)
        for t in templates.values()
        for a in alarms(t).values()
    ]
    lonely = [base for base in bases if entry_for(base) is None]
    unused = [e.alarm for e in ENTRIES if not any(fnmatchcase(b, e.alarm) for b in bases)]
    return lonely, unused
