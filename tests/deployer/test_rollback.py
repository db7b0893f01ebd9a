"""Rollback on alarm, against botocore's Stubber (moto's CloudFormation skips alarms).

Updates watch the stack's own critical alarms that exist; one already in ALARM is named
and left out; a first create has none; --disable-rollback keeps a failed stack.
"""

from __future__ import annotations

from botocore.stub import ANY

from deployer.rollback import CRITICAL_ALARMS, MAX_TRIGGERS, TRIGGER_TYPE, critical_alarms
from templates import registry
from templates.common import to_json
from templates.naming import Naming
from tests.deployer.stubbed import CS_ID, NAME, Harness, event, spec

ALARM = {"Type": "AWS::CloudWatch::Alarm", "Properties": {}}
TEMPLATE = {
    "Resources": {
        "Topic": {"Type": "AWS::SNS::Topic"},
        "Api5xxAlarm": ALARM,
        "ProcessingErrorsAlarm": ALARM,
        "DlqNotEmptyAlarm": ALARM,
    }
}
ARN = "arn:aws:cloudwatch:us-east-1:123456789012:alarm:{}"
NO_TRIGGERS = {"RollbackTriggers": [], "MonitoringTimeInMinutes": 0}


def deployed(h: Harness, resources: dict[str, str], status: str = "UPDATE_COMPLETE") -> None:
    h.describe(status, parameters={})
    h.add("get_template", {"TemplateBody": to_json({**TEMPLATE, "Description": "older"})})
    summaries = [
        {"LogicalResourceId": logical, "PhysicalResourceId": physical, "ResourceType": "x",
         "LastUpdatedTimestamp": "2026-01-01T00:00:00Z", "ResourceStatus": "UPDATE_COMPLETE"}
        for logical, physical in resources.items()
    ]  # fmt: skip
    h.add("list_stack_resources", {"StackResourceSummaries": summaries}, {"StackName": NAME})


def test_an_update_watches_existing_alarms_and_leaves_out_one_in_alarm() -> None:
    h = Harness(monitor_minutes=7)
    # DlqNotEmptyAlarm is new in this template: it does not exist yet, so it cannot watch.
    deployed(h, {"Topic": "t", "Api5xxAlarm": "api-5xx", "ProcessingErrorsAlarm": "errors"})
    h.cw.add_response(
        "describe_alarms",
        {
            "MetricAlarms": [
                {"AlarmName": "api-5xx", "AlarmArn": ARN.format("api-5xx"), "StateValue": "OK"},
                {"AlarmName": "errors", "AlarmArn": ARN.format("errors"), "StateValue": "ALARM"},
            ]
        },
        {"AlarmNames": ["api-5xx", "errors"], "AlarmTypes": ["MetricAlarm"]},
    )
    h.change_set(
        "UPDATE",
        changes=[],
        RollbackConfiguration={
            "RollbackTriggers": [{"Arn": ARN.format("api-5xx"), "Type": TRIGGER_TYPE}],
            "MonitoringTimeInMinutes": 7,
        },
    )
    h.execute("UPDATE_COMPLETE", [event(1, "UPDATE_COMPLETE")])
    assert h.run(wanted=spec(template=TEMPLATE)).result == "updated"
    text = h.text()
    assert "rollback: rolls back if any of api-5xx goes to ALARM" in text
    assert "the 7 minute(s) after it" in text
    assert "alarm errors is already in ALARM: left out of the rollback triggers" in text


def test_an_update_without_existing_alarms_clears_the_old_triggers() -> None:
    h = Harness()
    deployed(h, {"Topic": "t"})  # no DescribeAlarms: nothing to ask about
    h.change_set("UPDATE", changes=[], RollbackConfiguration=NO_TRIGGERS)
    h.execute("UPDATE_COMPLETE", [event(1, "UPDATE_COMPLETE")])
    assert h.run(wanted=spec(template=TEMPLATE)).result == "updated"
    assert "no rollback alarm: none of the stack's critical alarms exists yet" in h.text()


def test_a_first_create_has_no_rollback_configuration() -> None:
    h = Harness()
    h.no_stack()
    h.change_set("CREATE", changes=[])  # the Stubber refuses a RollbackConfiguration here
    h.execute("CREATE_COMPLETE", [event(1, "CREATE_COMPLETE")])
    assert h.run(wanted=spec(template=TEMPLATE)).result == "created"


def test_disable_rollback_reaches_execute_and_a_kept_failure_is_updated_again() -> None:
    h = Harness(disable_rollback=True)
    h.describe("UPDATE_FAILED", parameters={})
    h.add("get_template", {"TemplateBody": to_json(TEMPLATE)})  # same template: still updated
    h.add("list_stack_resources", {"StackResourceSummaries": []}, {"StackName": NAME})
    h.change_set("UPDATE", changes=[], RollbackConfiguration=NO_TRIGGERS)
    h.add(
        "execute_change_set",
        {},
        {"ChangeSetName": CS_ID, "ClientRequestToken": ANY, "DisableRollback": True},
    )
    h.describe("UPDATE_COMPLETE")
    h.add("describe_stack_events", {"StackEvents": [event(1, "UPDATE_COMPLETE")]})
    assert h.run(wanted=spec(template=TEMPLATE)).result == "updated"
    assert (
        "update needed: UPDATE_FAILED (a failed operation kept by --disable-rollback)" in h.text()
    )


def test_the_platform_declares_every_critical_alarm() -> None:
    naming = Naming("qa")
    platform = registry.build_templates(naming, ["payment-platform"])[
        naming.stack("payment-platform")
    ]
    assert critical_alarms(platform) == list(CRITICAL_ALARMS)
    assert len(CRITICAL_ALARMS) <= MAX_TRIGGERS  # CloudFormation's limit
    api = registry.build_templates(naming, ["payment-api"])[naming.stack("payment-api")]
    assert critical_alarms(api) == []  # it has no alarms: its updates have no triggers
