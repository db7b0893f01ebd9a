"""AWS::CloudWatch::Alarm, which moto's CloudFormation skips, through moto's CloudWatch backend."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from moto.cloudwatch.models import (
    CloudWatchBackend,
    Dimension,
    Metric,
    MetricDataQuery,
    MetricStat,
    cloudwatch_backends,
)
from moto.core.common_models import CloudFormationModel

from emulator.handlers.base import Emulated, tag_list, truthy


def metric_queries(metrics: list[Mapping[str, Any]]) -> list[MetricDataQuery] | None:
    """The template's `Metrics` (metric math) as moto's MetricDataQuery objects."""
    if not metrics:
        return None
    queries = []
    for metric in metrics:
        stat = metric.get("MetricStat")
        metric_stat = None
        if stat:
            inner = stat["Metric"]
            metric_stat = MetricStat(
                metric=Metric(
                    metric_name=inner["MetricName"],
                    namespace=inner.get("Namespace"),
                    dimensions=[
                        Dimension(d["Name"], d["Value"]) for d in inner.get("Dimensions", [])
                    ],
                ),
                period=stat.get("Period"),
                stat=stat.get("Stat"),
                unit=stat.get("Unit"),
            )
        queries.append(
            MetricDataQuery(
                query_id=metric["Id"],
                label=metric.get("Label"),
                period=metric.get("Period"),
                return_data=metric.get("ReturnData"),
                expression=metric.get("Expression"),
                metric_stat=metric_stat,
            )
        )
    return queries


class AlarmHandler(Emulated, CloudFormationModel):
    """A metric alarm: metric, dimensions, threshold and actions, as PutMetricAlarm sets them."""

    TYPE = "AWS::CloudWatch::Alarm"
    NAME_PROPERTY = "AlarmName"
    ATTRIBUTES = ("Arn",)

    @property
    def backend(self) -> CloudWatchBackend:
        return cloudwatch_backends[self.account_id][self.region_name]

    def create(self, name: str) -> None:
        self.physical_id = str(self.properties.get("AlarmName") or name)
        self.put(self.properties)

    def update(self, properties: Mapping[str, Any]) -> None:
        self.put(properties)

    def put(self, p: Mapping[str, Any]) -> None:
        """PutMetricAlarm with the whole definition (it creates or overwrites by name)."""
        threshold = p.get("Threshold")
        self.alarm = self.backend.put_metric_alarm(
            name=self.physical_id,
            namespace=p.get("Namespace"),
            metric_name=p.get("MetricName"),
            metric_data_queries=metric_queries(p.get("Metrics", [])),
            comparison_operator=p["ComparisonOperator"],
            evaluation_periods=int(p["EvaluationPeriods"]),
            datapoints_to_alarm=int(p["DatapointsToAlarm"]) if "DatapointsToAlarm" in p else None,
            period=int(p["Period"]) if "Period" in p else None,
            threshold=float(threshold) if threshold is not None else None,
            statistic=p.get("Statistic"),
            extended_statistic=p.get("ExtendedStatistic"),
            description=p.get("AlarmDescription"),
            dimensions=[
                {"Name": d["Name"], "Value": str(d["Value"])} for d in p.get("Dimensions", [])
            ],
            alarm_actions=[str(a) for a in p.get("AlarmActions", [])],
            ok_actions=[str(a) for a in p.get("OKActions", [])],
            insufficient_data_actions=[str(a) for a in p.get("InsufficientDataActions", [])],
            unit=p.get("Unit"),
            actions_enabled=truthy(p.get("ActionsEnabled", True)),
            treat_missing_data=p.get("TreatMissingData"),
            evaluate_low_sample_count_percentile=p.get("EvaluateLowSampleCountPercentile"),
            threshold_metric_id=p.get("ThresholdMetricId"),
            tags=tag_list(p),
        )

    def remove(self) -> None:
        self.backend.delete_alarms([self.physical_id])

    def attribute(self, name: str) -> Any:
        return self.alarm.alarm_arn


HANDLERS = (AlarmHandler,)
