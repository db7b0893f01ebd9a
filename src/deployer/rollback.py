"""Rollback on alarm: an update watches the stack's own critical alarms while it runs.

CloudFormation rolls an update back when a rollback trigger alarm goes to ALARM during the
update or the monitoring time after it. Only alarms that exist can be triggers (a missing
one fails the whole operation), so a first create has none, and one already in ALARM is
left out: a deploy meant to fix it must not be rolled back by it. CloudFormation keeps a
stack's last rollback configuration, so every update sends one, empty when no alarm
qualifies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from deployer.aws import AWS_ERRORS, call_failure

# Logical ids of the alarms that mean "this deploy broke payments": API 5XX, the
# processor's errors (unhandled and handled 500s), a non-empty dead-letter queue.
CRITICAL_ALARMS = (
    "Api5xxAlarm",
    "ProcessingErrorsAlarm",
    "ProcessingServerErrorsAlarm",
    "DlqNotEmptyAlarm",
)
TRIGGER_TYPE = "AWS::CloudWatch::Alarm"
# CloudFormation's limits: at most 5 triggers, 0-180 minutes of monitoring.
MAX_TRIGGERS = 5
MAX_MONITOR_MINUTES = 180
DEFAULT_MONITOR_MINUTES = 5


def critical_alarms(template: Mapping[str, Any]) -> list[str]:
    """The critical alarms this template declares."""
    resources = template.get("Resources", {})
    return [
        logical
        for logical in CRITICAL_ALARMS
        if resources.get(logical, {}).get("Type") == TRIGGER_TYPE
    ][:MAX_TRIGGERS]


@dataclass(frozen=True)
class RollbackPlan:
    """The triggers an update uses, and the alarms left out because they already fire."""

    triggers: dict[str, str] = field(default_factory=dict)  # alarm name -> ARN
    firing: list[str] = field(default_factory=list)  # alarm names in ALARM
    minutes: int = DEFAULT_MONITOR_MINUTES

    def configuration(self) -> dict[str, Any]:
        """The CreateChangeSet RollbackConfiguration (an empty one removes old triggers)."""
        triggers = [{"Arn": arn, "Type": TRIGGER_TYPE} for _, arn in sorted(self.triggers.items())]
        # Without triggers a monitoring time would only delay the cleanup: send zero.
        minutes = self.minutes if triggers else 0
        return {"RollbackTriggers": triggers, "MonitoringTimeInMinutes": minutes}

    def lines(self) -> list[str]:
        """What the preview says about rollback."""
        said = []
        if self.triggers:
            after = f" or the {self.minutes} minute(s) after it" if self.minutes else ""
            said.append(
                f"rolls back if any of {', '.join(sorted(self.triggers))} goes to ALARM during "
                f"the update{after}"
            )
        else:
            said.append("no rollback alarm: none of the stack's critical alarms exists yet")
        for name in self.firing:
            said.append(f"alarm {name} is already in ALARM: left out of the rollback triggers")
        return said


def plan_rollback(
    cloudwatch: Any, resources: Mapping[str, str], template: Mapping[str, Any], minutes: int
) -> RollbackPlan:
    """The triggers from the deployed stack's critical alarms (resources: logical -> physical)."""
    names = [resources[logical] for logical in critical_alarms(template) if resources.get(logical)]
    if (not names) or (cloudwatch is None):
        return RollbackPlan(minutes=minutes)
    try:
        found = cloudwatch.describe_alarms(AlarmNames=names, AlarmTypes=["MetricAlarm"])
    except AWS_ERRORS as error:
        raise call_failure("cloudwatch:DescribeAlarms", error) from None
    triggers, firing = {}, []
    for alarm in found.get("MetricAlarms", []):
        if alarm.get("StateValue") == "ALARM":
            firing.append(alarm["AlarmName"])
        else:
            triggers[alarm["AlarmName"]] = alarm["AlarmArn"]
    return RollbackPlan(triggers=triggers, firing=sorted(firing), minutes=minutes)
