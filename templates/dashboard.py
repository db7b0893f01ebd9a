"""The platform's CloudWatch dashboard: the runbook link and every alarm on top, then each
component's metrics beside the graphs of the alarms that watch it.

The alarm widgets are derived from the alarms the stack has (`Alarms.alarms`), so an alarm
added anywhere appears here without a list to keep in step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from troposphere import Equals, If, Not, Parameter, Sub, Template
from troposphere.cloudwatch import Alarm, Dashboard
from troposphere.dynamodb import Table
from troposphere.sqs import Queue

from templates.cfnread import references
from templates.common import add_output, add_parameter, json_sub, var
from templates.functions import LambdaFunction
from templates.monitoring import Alarms
from templates.naming import Kind, Naming
from templates.queues import QueueWithDlq
from templates.runbook import RUNBOOK_PATH
from templates.waf import WebAcl

HAS_RUNBOOK_URL = "HasRunbookUrl"

# Dashboard grid: CloudWatch's is 24 columns wide; graphs are a quarter of it.
GRID_WIDTH = 24
WIDGET_WIDTH, WIDGET_HEIGHT = 6, 6


@dataclass(frozen=True)
class Section:
    """A dashboard row: metric widgets for some resources, then the graph of every alarm
    that watches them (matched by the Ref/GetAtt or literal values in its dimensions)."""

    title: str
    widgets: list[dict]
    watches: set[str]


def alarm_watches(alarm: Alarm) -> set[str]:
    """The logical ids and literal dimension values an alarm's metrics name."""
    found: set[str] = set()

    def visit(value) -> None:
        if isinstance(value, dict):
            if {"Name", "Value"} <= set(value):
                dimension = value["Value"]
                found.update(references(dimension) if isinstance(dimension, dict) else [dimension])
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    visit(alarm.to_dict().get("Properties", {}))
    return found


def _place(widgets: list[dict], y: int) -> int:
    """Lay widgets out left to right in rows from row y; the next free row."""
    per_row = GRID_WIDTH // WIDGET_WIDTH
    for index, widget in enumerate(widgets):
        widget.update(
            x=(index % per_row) * WIDGET_WIDTH,
            y=y + (index // per_row) * WIDGET_HEIGHT,
            width=WIDGET_WIDTH,
            height=WIDGET_HEIGHT,
        )
    return y + -(-len(widgets) // per_row) * WIDGET_HEIGHT


def alarm_arn_of(alarm: Alarm) -> Sub:
    """The alarm's ARN from its name: moto's CloudFormation skips alarms, so a GetAtt on one
    fails there (the health monitor's IAM statement names alarms the same way)."""
    return Sub(
        "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:" + alarm.AlarmName
    )


def dashboard_layout(sections: Sequence[Section], alarms: Sequence[Alarm], intro: str) -> dict:
    """The dashboard body: the runbook text and every alarm's state on top, then each
    section's metrics followed by the graphs of the alarms that watch them; an alarm no
    section watches gets a section of its own, so every alarm is on the dashboard."""

    def alarm_arn(alarm: Alarm) -> str:
        # `<logical id>Arn`: the runbook finds each alarm's graph by this placeholder.
        return var(f"{alarm.title}Arn")

    def alarm_graph(alarm: Alarm) -> dict:
        return {
            "type": "metric",
            "properties": {
                "title": alarm.AlarmName,
                "region": var("AWS::Region"),
                "annotations": {"alarms": [alarm_arn(alarm)]},
            },
        }

    unplaced = list(alarms)
    rows: list[tuple[str, list[dict]]] = []
    for section in sections:
        mine = [a for a in unplaced if alarm_watches(a) & section.watches]
        unplaced = [a for a in unplaced if a not in mine]
        rows.append((section.title, section.widgets + [alarm_graph(a) for a in mine]))
    if unplaced:
        rows.append(("Other alarms", [alarm_graph(a) for a in unplaced]))
    widgets: list[dict] = [
        {
            "type": "text",
            "x": 0,
            "y": 0,
            "width": GRID_WIDTH,
            "height": 3,
            "properties": {"markdown": intro},
        },
        {
            "type": "alarm",
            "x": 0,
            "y": 3,
            "width": GRID_WIDTH,
            "height": 4,
            "properties": {
                "title": "Every alarm",
                "alarms": [alarm_arn(a) for a in alarms],
                "sortBy": "stateUpdatedTimestamp",
            },
        },
    ]
    y = 7
    for title, row in rows:
        widgets.append(
            {
                "type": "text",
                "x": 0,
                "y": y,
                "width": GRID_WIDTH,
                "height": 1,
                "properties": {"markdown": f"## {title}"},
            }
        )
        y = _place(row, y + 1)
        widgets += row
    return {"widgets": widgets}


def add_dashboard(
    t: Template,
    naming: Naming,
    *,
    api_name: str,
    stage,
    functions: Sequence[LambdaFunction],
    table: Table,
    queues: QueueWithDlq,
    alarms: Alarms,
    runbook_url: Parameter,
    web_acl: WebAcl,
    schedule_dlq: Queue,
    component: str,
) -> Dashboard:
    """`payment-platform-<suffix>`: a link to the runbook (`runbook_url`, or the file's
    name when empty), every alarm's state, then the API, functions, table and queues, each
    beside the alarms that watch it; and its URL output."""
    fn_vars = {f"Fn{i}": fn.ref() for i, fn in enumerate(functions)}

    def api(metric: str) -> list:
        return ["AWS/ApiGateway", metric, "ApiName", api_name, "Stage", var("Stage")]

    def per_function(metric: str) -> list[list]:
        return [["AWS/Lambda", metric, "FunctionName", var(name)] for name in fn_vars]

    def table_metric(metric: str) -> list:
        return ["AWS/DynamoDB", metric, "TableName", var("Table")]

    def queue_metric(metric: str, queue: str) -> list:
        return ["AWS/SQS", metric, "QueueName", var(queue)]

    def waf_metric(metric: str) -> list:
        # A REGIONAL web ACL's metrics: its metric name, the region, `ALL` for every rule.
        return ["AWS/WAFV2", metric, "WebACL", web_acl.metric_name, "Region",
                var("AWS::Region"), "Rule", "ALL"]  # fmt: skip

    def widget(title: str, metrics: list, stat: str) -> dict:
        # Defaults left out on purpose: time series, 5-minute period.
        return {
            "type": "metric",
            "properties": {
                "title": title,
                "region": var("AWS::Region"),
                "metrics": metrics,
                "stat": stat,
            },
        }

    visible, oldest = "ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"
    sections = [
        Section(
            "API",
            [
                widget(
                    "API requests and errors",
                    [api("Count"), api("4XXError"), api("5XXError")],
                    "Sum",
                ),
                widget("API latency p99 (ms)", [api("Latency")], "p99"),
            ],
            {api_name, stage.data["Ref"]},
        ),
        Section(
            "Web application firewall",
            [
                widget(
                    "WAF blocked and allowed requests",
                    [waf_metric("BlockedRequests"), waf_metric("AllowedRequests")],
                    "Sum",
                )
            ],
            {web_acl.metric_name},
        ),
        Section(
            "Functions",
            [
                widget(
                    "Function errors and throttles",
                    per_function("Errors") + per_function("Throttles"),
                    "Sum",
                ),
                widget("Function duration p99 (ms)", per_function("Duration"), "p99"),
            ],
            {fn.function.title for fn in functions}
            | {fn.environment["POWERTOOLS_SERVICE_NAME"] for fn in functions},
        ),
        Section(
            "Transactions table",
            [
                widget(
                    "Table capacity and throttles",
                    [
                        table_metric("ConsumedReadCapacityUnits"),
                        table_metric("ConsumedWriteCapacityUnits"),
                        table_metric("ReadThrottleEvents"),
                        table_metric("WriteThrottleEvents"),
                    ],
                    "Sum",
                )
            ],
            {table.title},
        ),
        Section(
            "Failed-transactions queue and its DLQ",
            [
                widget(
                    "Queue depth and age",
                    [
                        queue_metric(visible, "Queue"),
                        queue_metric(oldest, "Queue"),
                        queue_metric(visible, "Dlq"),
                    ],
                    "Maximum",
                )
            ],
            {queues.queue.title, queues.dlq.title},
        ),
        Section(
            "Health monitor's schedule",
            [
                widget(
                    "Runs kept in the schedule's dead-letter queue",
                    [queue_metric(visible, "ScheduleDlq")],
                    "Maximum",
                )
            ],
            {schedule_dlq.title},
        ),
    ]
    t.add_condition(HAS_RUNBOOK_URL, Not(Equals(runbook_url.ref(), "")))
    intro = (
        f"# {naming.name('payment-platform', Kind.DASHBOARD)}\n"
        f"On call? Every alarm has an entry in the runbook, {var('RunbookLink')}, under its "
        "name without the suffix: what it means, likely causes, safe actions and what never "
        "to do. Alarm states first, then each component's metrics beside its alarms."
    )
    body = dashboard_layout(sections, alarms.alarms, intro)
    dashboard = t.add_resource(
        Dashboard(
            "Dashboard",
            DashboardName=naming.name("payment-platform", Kind.DASHBOARD),
            DashboardBody=json_sub(
                body,
                {
                    "Stage": stage,
                    "Table": table.ref(),
                    "Queue": queues.queue.get_att("QueueName"),
                    "Dlq": queues.dlq.get_att("QueueName"),
                    "ScheduleDlq": schedule_dlq.get_att("QueueName"),
                    "RunbookLink": If(
                        HAS_RUNBOOK_URL,
                        Sub(f"[{RUNBOOK_PATH}](${{RunbookUrl}})", RunbookUrl=runbook_url.ref()),
                        f"{RUNBOOK_PATH} in the infrastructure repository",
                    ),
                    **fn_vars,
                    **{f"{a.title}Arn": alarm_arn_of(a) for a in alarms.alarms},
                },
            ),
            Tags=naming.tags(component),
        )
    )
    add_output(
        t,
        "DashboardUrl",
        Sub(
            "https://${AWS::Region}.console.aws.amazon.com/cloudwatch/home"
            "?region=${AWS::Region}#dashboards:name=${Dashboard}",
            Dashboard=dashboard.ref(),
        ),
        "CloudWatch dashboard of the platform",
    )
    return dashboard


def add_runbook_url(t: Template) -> Parameter:
    """The optional web address of the runbook, linked from the dashboard."""
    return add_parameter(
        t,
        "RunbookUrl",
        description=f"Web address of {RUNBOOK_PATH} in your repository host, linked from the "
        "dashboard; empty: the dashboard names the file instead",
        default="",
        allowed_pattern=r"^$|^https://[^\s]+$",
        constraint="an https:// URL, or empty",
        label="Runbook URL",
    )
