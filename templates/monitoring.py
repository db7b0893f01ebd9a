"""Alarms that notify an encrypted SNS topic (the dashboard is in templates/dashboard.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from awacs import sns
from awacs.aws import (
    Allow,
    AWSPrincipal,
    Bool,
    Condition,
    Deny,
    Principal,
    Statement,
    StringEquals,
)
from troposphere import Equals, Not, Parameter, Ref, Template
from troposphere.cloudwatch import (
    Alarm,
    Metric,
    MetricDataQuery,
    MetricDimension,
    MetricStat,
)
from troposphere.dynamodb import Table
from troposphere.sns import SubscriptionResource, Topic, TopicPolicy

from templates.common import add_output
from templates.functions import LambdaFunction
from templates.iam import policy
from templates.keys import StackKey
from templates.naming import Kind, Naming
from templates.queues import QueueWithDlq
from templates.runbook import alarm_description
from templates.waf import WebAcl

FIVE_MINUTES = 300
ONE_MINUTE = 60
# API p99 latency (ms) that pages someone when it lasts 3 of 5 minutes: far above a healthy
# validate/process call, far below API Gateway's 29 s integration limit.
API_P99_LATENCY_MS = 2000
# Server errors tolerated in five minutes before paging (one is noise, five is a pattern).
API_5XX_PER_5_MINUTES = 5
# A failed payment retried 5 times with a 180 s visibility timeout reaches the DLQ after
# 15 minutes; one still waiting after 10 minutes means the consumer is not draining.
OLDEST_FAILED_MESSAGE_SECONDS = 600
# The DynamoDB operations CloudWatch publishes SystemErrors for (dimension Operation); the
# alarm sums those the functions' roles grant (DescribeTable and other control-plane calls
# have no SystemErrors metric).
DATA_OPERATIONS = (
    "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem",
    "BatchWriteItem", "TransactGetItems", "TransactWriteItems", "ExecuteStatement",
    "BatchExecuteStatement", "ExecuteTransaction",
)  # fmt: skip
# TransactWriteItems is no IAM action: a role granted any of these may call it.
TRANSACTION_AUTHORISED_BY = ("PutItem", "UpdateItem", "DeleteItem", "ConditionCheckItem")
# A scheduled run completes every few minutes; none in this many runs' time means the
# schedule, the function or its permissions broke (a single late run is not a page).
MISSED_RUNS_BEFORE_ALARM = 3
# Blocked requests in five minutes that mean an attack or a broken client, not noise: a
# legitimate app is never blocked, a scanner is blocked hundreds of times.
WAF_BLOCKED_PER_5_MINUTES = 100
HAS_EMAIL = "HasAlarmEmail"


@dataclass(frozen=True)
class Alarms:
    """The alarm topic and every alarm of the stack; each alarm notifies the topic."""

    t: Template
    naming: Naming
    topic: Topic
    component: str
    alarms: list[Alarm] = field(default_factory=list)
    # Alarms about the health monitor's own runs: for the on-call person, not for the monitor
    # (it cannot report its own silence, and they must not block its redrive decisions).
    about_monitor: list[Alarm] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        """Every alarm name of the stack."""
        return [alarm.AlarmName for alarm in self.alarms]

    @property
    def watched_names(self) -> list[str]:
        """The alarms the health monitor reads (all but those about itself)."""
        return [alarm.AlarmName for alarm in self.alarms if alarm not in self.about_monitor]

    def add(self, logical_id: str, base_name: str, description: str, **props) -> Alarm:
        """An alarm named `<base>-<suffix>` that notifies the topic on ALARM and on OK."""
        # Every metric alarmed on here is absent while nothing is wrong: an idle API has no
        # latency, an idle function no errors, an unthrottled table no throttle events, and
        # SQS stops reporting on an empty idle queue. So missing data is healthy.
        props.setdefault("TreatMissingData", "notBreaching")
        alarm = self.t.add_resource(
            Alarm(
                logical_id,
                AlarmName=self.naming.name(base_name, Kind.ALARM),
                # What it means and the first thing to do, from the runbook's entry.
                AlarmDescription=alarm_description(base_name, description, self.naming.suffix),
                AlarmActions=[self.topic.ref()],
                OKActions=[self.topic.ref()],
                Tags=self.naming.tags(self.component),
                **props,
            )
        )
        self.alarms.append(alarm)
        return alarm

    def add_any_in_five_minutes(
        self,
        logical_id: str,
        base_name: str,
        description: str,
        *,
        namespace: str,
        metric: str,
        metric_dimensions: list[MetricDimension],
    ) -> Alarm:
        """An alarm on any occurrence (a five-minute Sum of at least 1) of a count metric."""
        return self.add(
            logical_id,
            base_name,
            description,
            Namespace=namespace,
            MetricName=metric,
            Dimensions=metric_dimensions,
            Statistic="Sum",
            Period=FIVE_MINUTES,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
        )


def dimensions(**values) -> list[MetricDimension]:
    """CloudWatch dimensions from keyword arguments."""
    return [MetricDimension(Name=name, Value=value) for name, value in values.items()]


def add_alarm_topic(
    t: Template, naming: Naming, *, key: StackKey, email: Parameter, component: str
) -> Alarms:
    """The `payment-alarms-<suffix>` topic (stack key, TLS only), an e-mail subscription
    when `email` is not empty, and the Alarms collection that publishes to it."""
    # CloudWatch cannot publish to a topic under alias/aws/sns: the stack key lets it.
    key.allow_cloudwatch_alarms()
    topic = t.add_resource(
        Topic(
            "AlarmTopic",
            TopicName=naming.name("payment-alarms", Kind.TOPIC),
            DisplayName="Payment platform alarms",
            KmsMasterKeyId=key.arn,
            Tags=naming.tags(component),
        )
    )
    t.add_resource(
        TopicPolicy(
            "AlarmTopicPolicy",
            Topics=[topic.ref()],
            PolicyDocument=policy(
                [
                    Statement(
                        Sid="CloudWatchAlarmsOfThisAccountPublish",
                        Effect=Allow,
                        Principal=Principal("Service", "cloudwatch.amazonaws.com"),
                        Action=[sns.Publish],
                        Resource=[topic.ref()],
                        Condition=Condition(
                            StringEquals("aws:SourceAccount", Ref("AWS::AccountId"))
                        ),
                    ),
                    # Every action: a list of some would leave the rest open to plain HTTP.
                    Statement(
                        Sid="DenyInsecureTransport",
                        Effect=Deny,
                        Principal=AWSPrincipal("*"),
                        Action=[sns.Action("*")],
                        Resource=[topic.ref()],
                        Condition=Condition(Bool("aws:SecureTransport", "false")),
                    ),
                ]
            ),
        )
    )
    t.add_condition(HAS_EMAIL, Not(Equals(email.ref(), "")))
    t.add_resource(
        SubscriptionResource(
            "AlarmEmailSubscription",
            Condition=HAS_EMAIL,
            TopicArn=topic.ref(),
            Protocol="email",
            Endpoint=email.ref(),
        )
    )
    add_output(t, "AlarmTopicArn", topic.ref(), "SNS topic every alarm notifies")
    return Alarms(t=t, naming=naming, topic=topic, component=component)


def add_api_alarms(alarms: Alarms, *, api_name: str, stage) -> list[Alarm]:
    """p99 latency and 5XX errors of one API stage."""
    api = dimensions(ApiName=api_name, Stage=stage)
    return [
        alarms.add(
            "ApiLatencyAlarm",
            "platform-api-latency-p99",
            f"API p99 latency above {API_P99_LATENCY_MS} ms in 3 of 5 minutes",
            Namespace="AWS/ApiGateway",
            MetricName="Latency",
            Dimensions=api,
            ExtendedStatistic="p99",
            Period=ONE_MINUTE,
            EvaluationPeriods=5,
            DatapointsToAlarm=3,
            Threshold=API_P99_LATENCY_MS,
            ComparisonOperator="GreaterThanThreshold",
        ),
        alarms.add(
            "Api5xxAlarm",
            "platform-api-5xx",
            f"API answered {API_5XX_PER_5_MINUTES} or more 5XX in 5 minutes",
            Namespace="AWS/ApiGateway",
            MetricName="5XXError",
            Dimensions=api,
            Statistic="Sum",
            Period=FIVE_MINUTES,
            EvaluationPeriods=1,
            Threshold=API_5XX_PER_5_MINUTES,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
        ),
    ]


def add_function_alarms(alarms: Alarms, fn: LambdaFunction) -> list[Alarm]:
    """Any error, throttle or handled server error of the function in five minutes.

    Lambda's Errors counts only invocations that fail; an API handler that turns an
    unexpected exception into a 500 succeeds as far as Lambda knows, so the function's
    own `ServerError` metric (Powertools EMF, dimension `service`) is alarmed on too.
    """
    base = fn.spec.base_name.removeprefix("payment-")
    made = []
    for metric, what in (("Errors", "errors"), ("Throttles", "throttles")):
        made.append(
            alarms.add_any_in_five_minutes(
                f"{fn.spec.logical_id}{metric}Alarm",
                f"platform-{base}-{what}",
                f"{fn.name} reported {what} (a payment path failed or was refused)",
                namespace="AWS/Lambda",
                metric=metric,
                metric_dimensions=dimensions(FunctionName=fn.ref()),
            )
        )
    made.append(
        alarms.add_any_in_five_minutes(
            f"{fn.spec.logical_id}ServerErrorsAlarm",
            f"platform-{base}-server-errors",
            f"{fn.name} answered an unexpected error (500) to a caller",
            namespace=fn.environment["POWERTOOLS_METRICS_NAMESPACE"],
            metric="ServerError",
            metric_dimensions=dimensions(service=fn.environment["POWERTOOLS_SERVICE_NAME"]),
        )
    )
    return made


def add_payment_alarms(alarms: Alarms, processing: LambdaFunction) -> list[Alarm]:
    """A payment moved to NEEDS_REVIEW, and a queue message the consumer rejected (it goes to
    the DLQ; a repeat after a redrive halts the automatic redrive): each needs an operator
    (docs/handlers.md, runbook). The processing function's own metrics (EMF, `service`)."""
    own = {
        "namespace": processing.environment["POWERTOOLS_METRICS_NAMESPACE"],
        "metric_dimensions": dimensions(service=processing.environment["POWERTOOLS_SERVICE_NAME"]),
    }
    return [
        alarms.add_any_in_five_minutes(
            "PaymentNeedsReviewAlarm",
            "platform-payment-needs-review",
            "A payment ran out of attempts (or the acquirer refused its key) and waits in "
            "NEEDS_REVIEW: reconcile it with the acquirer (runbook)",
            metric="PaymentNeedsReview",
            **own,
        ),
        alarms.add_any_in_five_minutes(
            "RetryMessageRejectedAlarm",
            "platform-queue-message-rejected",
            "The processing function rejected a queue message it cannot process (it goes to "
            "the DLQ): inspect it (runbook: poison messages)",
            metric="RetryMessageRejected",
            **own,
        ),
    ]


def table_operations(table: Table, functions: Sequence[LambdaFunction]) -> list[str]:
    """The DynamoDB data operations any function's role may call on `table` or its indexes."""
    granted: set[str] = set()
    for fn in functions:
        for statement in fn.statements:
            if not any(refers_to(resource, table) for resource in statement.Resource):
                continue
            for action in statement.Action:
                service, _, operation = str(action.JSONrepr()).partition(":")
                if service == "dynamodb" and operation in DATA_OPERATIONS:
                    granted.add(operation)
                if service == "dynamodb" and operation in TRANSACTION_AUTHORISED_BY:
                    granted.add("TransactWriteItems")  # the processing function's key binding
    return [operation for operation in DATA_OPERATIONS if operation in granted]


def refers_to(value, resource) -> bool:
    """Whether a policy Resource entry names `resource` (by GetAtt, Ref or inside a Sub)."""
    text = json.dumps(value.to_dict() if hasattr(value, "to_dict") else value, default=str)
    return f'"{resource.title}"' in text or "${" + resource.title + "." in text


def add_table_alarms(
    alarms: Alarms, table: Table, functions: Sequence[LambdaFunction]
) -> list[Alarm]:
    """Read and write throttles of the table and of each of its global secondary indexes,
    and DynamoDB-side errors of every operation the functions make on it."""
    made = [
        alarms.add_any_in_five_minutes(
            f"Table{metric}Alarm",
            f"platform-table-{what}",
            f"{what.replace('-', ' ')} on the transactions table",
            namespace="AWS/DynamoDB",
            metric=metric,
            metric_dimensions=dimensions(TableName=table.ref()),
        )
        for metric, what in (
            ("ReadThrottleEvents", "read-throttles"),
            ("WriteThrottleEvents", "write-throttles"),
        )
    ]
    per_operation = [
        MetricDataQuery(
            Id=f"m{index}",
            MetricStat=MetricStat(
                Metric=Metric(
                    Namespace="AWS/DynamoDB",
                    MetricName="SystemErrors",
                    Dimensions=dimensions(TableName=table.ref(), Operation=operation),
                ),
                Period=FIVE_MINUTES,
                Stat="Sum",
            ),
            ReturnData=False,
        )
        for index, operation in enumerate(table_operations(table, functions))
    ]
    made.append(
        alarms.add(
            "TableSystemErrorsAlarm",
            "platform-table-system-errors",
            "DynamoDB returned HTTP 500 on the transactions table",
            Metrics=[
                MetricDataQuery(Id="errors", Expression="SUM(METRICS())", ReturnData=True),
                *per_operation,
            ],
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
        )
    )
    # DynamoDB publishes an index's throttling under GlobalSecondaryIndexName only.
    for index in getattr(table, "GlobalSecondaryIndexes", []):
        name = index.IndexName
        per_metric = [
            MetricDataQuery(
                Id=f"{kind.lower()}",
                MetricStat=MetricStat(
                    Metric=Metric(
                        Namespace="AWS/DynamoDB",
                        MetricName=f"{kind}ThrottleEvents",
                        Dimensions=dimensions(TableName=table.ref(), GlobalSecondaryIndexName=name),
                    ),
                    Period=FIVE_MINUTES,
                    Stat="Sum",
                ),
                ReturnData=False,
            )
            for kind in ("Read", "Write")
        ]
        made.append(
            alarms.add(
                f"TableIndex{logical_name(name)}ThrottlesAlarm",
                f"platform-table-{name}-throttles",
                f"read or write throttles on the {name} index of the transactions table",
                Metrics=[
                    MetricDataQuery(Id="throttles", Expression="SUM(METRICS())", ReturnData=True),
                    *per_metric,
                ],
                EvaluationPeriods=1,
                Threshold=1,
                ComparisonOperator="GreaterThanOrEqualToThreshold",
            )
        )
    return made


def logical_name(name: str) -> str:
    """`pending-by-age` -> `PendingByAge` (for logical IDs)."""
    return "".join(part.title() for part in re.split(r"[^A-Za-z0-9]+", name) if part)


def add_dead_letter_alarm(
    alarms: Alarms,
    logical_id: str,
    base_name: str,
    queue,
    description: str,
    *,
    about_monitor: bool = False,
) -> Alarm:
    """A message waiting in a dead-letter queue."""
    alarm = alarms.add(
        logical_id,
        base_name,
        description,
        Namespace="AWS/SQS",
        MetricName="ApproximateNumberOfMessagesVisible",
        Dimensions=dimensions(QueueName=queue.get_att("QueueName")),
        Statistic="Maximum",
        Period=FIVE_MINUTES,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )
    if about_monitor:
        alarms.about_monitor.append(alarm)
    return alarm


def add_heartbeat_alarm(alarms: Alarms, fn: LambdaFunction, metric: str, every_minutes: int):
    """Fires when `fn`'s scheduled runs stop completing: its own `metric` (one per completed
    run) is missing for MISSED_RUNS_BEFORE_ALARM runs' time. Missing data is breaching here:
    silence is exactly the failure (a disabled rule, a broken permission, a crashing run)."""
    alarm = alarms.add(
        f"{fn.spec.logical_id}HeartbeatAlarm",
        f"platform-{fn.spec.base_name.removeprefix('payment-')}-runs-stopped",
        f"{fn.name} completed no scheduled run in {MISSED_RUNS_BEFORE_ALARM * every_minutes} "
        "minutes (schedule, permission or function broken)",
        Namespace=fn.environment["POWERTOOLS_METRICS_NAMESPACE"],
        MetricName=metric,
        Dimensions=dimensions(service=fn.environment["POWERTOOLS_SERVICE_NAME"]),
        Statistic="SampleCount",
        Period=MISSED_RUNS_BEFORE_ALARM * every_minutes * 60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="LessThanThreshold",
        TreatMissingData="breaching",
    )
    alarms.about_monitor.append(alarm)
    return alarm


def add_waf_alarm(alarms: Alarms, web_acl: WebAcl) -> Alarm:
    """A spike of requests the web ACL blocked (an attack, or a client that broke)."""
    return alarms.add(
        "WafBlockedSpikeAlarm",
        "platform-waf-blocked-spike",
        f"WAF blocked {WAF_BLOCKED_PER_5_MINUTES} or more requests in 5 minutes",
        Namespace="AWS/WAFV2",
        MetricName="BlockedRequests",
        Dimensions=waf_dimensions(web_acl),
        Statistic="Sum",
        Period=FIVE_MINUTES,
        EvaluationPeriods=1,
        Threshold=WAF_BLOCKED_PER_5_MINUTES,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )


def waf_dimensions(web_acl: WebAcl) -> list[MetricDimension]:
    """A REGIONAL web ACL's metrics: its metric name, the region, `ALL` rules."""
    return dimensions(WebACL=web_acl.metric_name, Region=Ref("AWS::Region"), Rule="ALL")


def add_queue_alarms(alarms: Alarms, queues: QueueWithDlq) -> list[Alarm]:
    """A message in the DLQ, and the work queue not draining."""
    return [
        add_dead_letter_alarm(
            alarms,
            "DlqNotEmptyAlarm",
            "platform-dlq-not-empty",
            queues.dlq,
            "A failed transaction exhausted its retries and waits in the DLQ",
        ),
        alarms.add(
            "QueueOldestMessageAlarm",
            "platform-queue-oldest-message",
            f"A failed transaction waited over {OLDEST_FAILED_MESSAGE_SECONDS} s in the queue",
            Namespace="AWS/SQS",
            MetricName="ApproximateAgeOfOldestMessage",
            Dimensions=dimensions(QueueName=queues.queue.get_att("QueueName")),
            Statistic="Maximum",
            Period=FIVE_MINUTES,
            EvaluationPeriods=1,
            Threshold=OLDEST_FAILED_MESSAGE_SECONDS,
            ComparisonOperator="GreaterThanThreshold",
        ),
    ]
