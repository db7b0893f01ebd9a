"""An EventBridge rule that runs a function on a fixed rate."""

from __future__ import annotations

from troposphere import Template
from troposphere.awslambda import Permission
from troposphere.events import Rule, Target

from templates.functions import LambdaFunction
from templates.naming import Kind, Naming


def add_schedule(
    t: Template,
    naming: Naming,
    fn: LambdaFunction,
    *,
    base_name: str,
    every_minutes: int,
    component: str,
) -> Rule:
    """Invoke `fn` every `every_minutes` minutes; only this rule may invoke it this way."""
    rule = t.add_resource(
        Rule(
            f"{fn.spec.logical_id}Schedule",
            Name=naming.name(base_name, Kind.RULE),
            Description=f"Runs {fn.name} every {every_minutes} minutes",
            ScheduleExpression=f"rate({every_minutes} minutes)",
            State="ENABLED",
            Targets=[Target(Id=fn.spec.base_name, Arn=fn.arn)],
            Tags=naming.tags(component),
        )
    )
    t.add_resource(
        Permission(
            f"{fn.spec.logical_id}SchedulePermission",
            Action="lambda:InvokeFunction",
            FunctionName=fn.ref(),
            Principal="events.amazonaws.com",
            SourceArn=rule.get_att("Arn"),
        )
    )
    return rule
