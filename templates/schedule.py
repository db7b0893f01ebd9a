"""An EventBridge rule that runs a function on a fixed rate, and never fails silently.

A run EventBridge cannot deliver (function throttled, deleted, permission gone) is retried for
as long as it is worth anything, then lands in the schedule's dead-letter queue; a delivered run
that fails every Lambda retry lands in the same queue (the function's DeadLetterConfig, set by
the composer). Whether runs happen at all is watched by `monitoring.add_heartbeat_alarm`.
"""

from __future__ import annotations

from awacs import sqs
from awacs.aws import Allow, ArnEquals, Condition, Principal, Statement
from troposphere import Sub, Template
from troposphere.awslambda import Permission
from troposphere.events import DeadLetterConfig, RetryPolicy, Rule, Target
from troposphere.sqs import Queue

from templates.functions import LambdaFunction
from templates.keys import StackKey
from templates.naming import Kind, Naming
from templates.queues import add_tls_only_policy

# EventBridge retries an undeliverable event with backoff; a run older than the next one is
# worth nothing, so it stops retrying a little before the next run is due.
RETRY_ATTEMPTS = 3


def add_schedule(
    t: Template,
    naming: Naming,
    fn: LambdaFunction,
    *,
    base_name: str,
    every_minutes: int,
    dead_letter_queue: Queue,
    key: StackKey,
    component: str,
) -> Rule:
    """Invoke `fn` every `every_minutes` minutes; only this rule may invoke it this way, and
    what it cannot deliver goes to `dead_letter_queue`."""
    name = naming.name(base_name, Kind.RULE)
    rule = t.add_resource(
        Rule(
            f"{fn.spec.logical_id}Schedule",
            Name=name,
            Description=f"Runs {fn.name} every {every_minutes} minutes",
            ScheduleExpression=f"rate({every_minutes} minutes)",
            State="ENABLED",
            Targets=[
                Target(
                    Id=fn.spec.base_name,
                    Arn=fn.arn,
                    RetryPolicy=RetryPolicy(
                        MaximumRetryAttempts=RETRY_ATTEMPTS,
                        MaximumEventAgeInSeconds=every_minutes * 60 - 60,
                    ),
                    DeadLetterConfig=DeadLetterConfig(Arn=dead_letter_queue.get_att("Arn")),
                )
            ],
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
    # EventBridge writes to the encrypted queue for this rule only.
    add_tls_only_policy(
        t,
        f"{dead_letter_queue.title}Policy",
        [dead_letter_queue],
        [
            Statement(
                Sid="ScheduleKeepsUndeliverableRuns",
                Effect=Allow,
                Principal=Principal("Service", "events.amazonaws.com"),
                Action=[sqs.SendMessage],
                Resource=[dead_letter_queue.get_att("Arn")],
                Condition=Condition(ArnEquals("aws:SourceArn", rule.get_att("Arn"))),
            )
        ],
    )
    # By name: the key encrypts the queue the rule refers to, so a reference would be a cycle.
    key.allow_service_source(
        "EventBridgeWritesScheduleDeadLetters",
        "events.amazonaws.com",
        Sub("arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/" + name),
    )
    return rule
