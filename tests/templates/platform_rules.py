"""Rules every platform template must keep, written over whatever it contains.

Each rule returns its violations (empty = holds), so a test can show both that the
platform keeps the rule and that adding a bare queue or function breaks it.
"""

from __future__ import annotations

from typing import Any

from tests.templates.cfn import props, resources, supports_tags, tag_value

# AWS guidance for Lambda consumers of SQS: visibility timeout >= 6x function timeout.
VISIBILITY_FACTOR = 6


def target(value: Any) -> str | None:
    """The logical id a Ref or GetAtt points to (None for anything else)."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            return value["Fn::GetAtt"][0]
    return None


def dead_letter_queues(template: dict) -> set[str]:
    """Queues some other queue's RedrivePolicy points to."""
    return {
        target(props(queue)["RedrivePolicy"]["deadLetterTargetArn"])
        for queue in resources(template, "AWS::SQS::Queue").values()
        if "RedrivePolicy" in props(queue)
    }


def event_dead_letter_queues(template: dict) -> set[str]:
    """Queues that are the end of the line for events: an EventBridge target's or a
    function's DeadLetterConfig (undeliverable or failed asynchronous invocations)."""
    found = set()
    for rule in resources(template, "AWS::Events::Rule").values():
        for rule_target in props(rule).get("Targets", []):
            found.add(target(rule_target.get("DeadLetterConfig", {}).get("Arn")))
    for fn in resources(template, "AWS::Lambda::Function").values():
        found.add(target(props(fn).get("DeadLetterConfig", {}).get("TargetArn")))
    return found - {None}


def queues_without_dlq(template: dict) -> list[str]:
    """Every queue that is not itself a DLQ redrives to a queue of this template."""
    queues = resources(template, "AWS::SQS::Queue")
    dlqs = dead_letter_queues(template) | event_dead_letter_queues(template)
    problems = []
    for logical_id, queue in queues.items():
        if logical_id in dlqs:
            continue
        redrive = props(queue).get("RedrivePolicy")
        if not redrive:
            problems.append(f"{logical_id}: no RedrivePolicy")
        elif target(redrive.get("deadLetterTargetArn")) not in queues:
            problems.append(f"{logical_id}: DLQ is not a queue of this stack")
        elif not redrive.get("maxReceiveCount"):
            problems.append(f"{logical_id}: no maxReceiveCount")
    return problems


def queues_not_protected(template: dict) -> list[str]:
    """Every queue: stack-key encryption, a retention set on purpose, a TLS-only policy."""
    keys = resources(template, "AWS::KMS::Key")
    tls_only: set[str] = set()
    for policy in resources(template, "AWS::SQS::QueuePolicy").values():
        denies = [
            s
            for s in props(policy)["PolicyDocument"]["Statement"]
            if s["Effect"] == "Deny"
            and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
        ]
        if denies:
            tls_only |= {target(q) for q in props(policy)["Queues"]}
    problems = []
    for logical_id, queue in resources(template, "AWS::SQS::Queue").items():
        p = props(queue)
        if target(p.get("KmsMasterKeyId")) not in keys:
            problems.append(f"{logical_id}: not encrypted with a key of this stack")
        if "MessageRetentionPeriod" not in p:
            problems.append(f"{logical_id}: retention left to the default")
        if logical_id not in tls_only:
            problems.append(f"{logical_id}: no TLS-only queue policy")
    return problems


def dlqs_open_to_other_sources(template: dict) -> list[str]:
    """Every DLQ allows redrive only from the queues that use it."""
    queues = resources(template, "AWS::SQS::Queue")
    problems = []
    for dlq_id in dead_letter_queues(template):
        sources = {
            props(q)["QueueName"]
            for q in queues.values()
            if target(props(q).get("RedrivePolicy", {}).get("deadLetterTargetArn")) == dlq_id
        }
        allow = props(queues[dlq_id]).get("RedriveAllowPolicy", {})
        allowed = {_sub_text(arn).rsplit(":", 1)[-1] for arn in allow.get("sourceQueueArns", [])}
        if allow.get("redrivePermission") != "byQueue" or allowed != sources:
            problems.append(f"{dlq_id}: redrive allowed from {allowed or 'anyone'}, not {sources}")
    return problems


def _sub_text(value: Any) -> str:
    sub = value.get("Fn::Sub") if isinstance(value, dict) else value
    return sub[0] if isinstance(sub, list) else str(sub)


def functions_without_log_group(template: dict) -> list[str]:
    """Every function writes to a pre-created `/aws/lambda/<name>` group with retention and key."""
    groups = resources(template, "AWS::Logs::LogGroup")
    # Names given as intrinsics (the API's execution logs) cannot be a function's group.
    by_name = {
        props(g)["LogGroupName"]: lid
        for lid, g in groups.items()
        if isinstance(props(g)["LogGroupName"], str)
    }
    problems = []
    for logical_id, fn in resources(template, "AWS::Lambda::Function").items():
        name = props(fn).get("FunctionName")
        group_id = by_name.get(f"/aws/lambda/{name}")
        if group_id is None:
            problems.append(f"{logical_id}: no log group /aws/lambda/{name}")
            continue
        group = props(groups[group_id])
        if not group.get("RetentionInDays") or "KmsKeyId" not in group:
            problems.append(f"{logical_id}: log group without retention or key")
        if target(props(fn).get("LoggingConfig", {}).get("LogGroup")) != group_id:
            problems.append(f"{logical_id}: LoggingConfig does not point at {group_id}")
    return problems


def functions_without_alarms(template: dict) -> list[str]:
    """Every function has an Errors and a Throttles alarm on its FunctionName, and a
    ServerError alarm on its own EMF metric (namespace and service from its environment)."""
    watched: set[tuple[str, str]] = set()
    emf_watched: set[tuple[str, str]] = set()
    for alarm in resources(template, "AWS::CloudWatch::Alarm").values():
        p = props(alarm)
        for dimension in p.get("Dimensions", []):
            if p.get("Namespace") == "AWS/Lambda" and dimension["Name"] == "FunctionName":
                watched.add((target(dimension["Value"]) or dimension["Value"], p["MetricName"]))
            if p.get("MetricName") == "ServerError" and dimension["Name"] == "service":
                emf_watched.add((p.get("Namespace"), dimension["Value"]))
    problems = []
    for logical_id, fn in resources(template, "AWS::Lambda::Function").items():
        names = {logical_id, props(fn).get("FunctionName")}
        for metric in ("Errors", "Throttles"):
            if not any((name, metric) in watched for name in names):
                problems.append(f"{logical_id}: no {metric} alarm")
        env = props(fn).get("Environment", {}).get("Variables", {})
        emf = (env.get("POWERTOOLS_METRICS_NAMESPACE"), env.get("POWERTOOLS_SERVICE_NAME"))
        if emf not in emf_watched:
            problems.append(f"{logical_id}: no ServerError alarm")
    return problems


def functions_without_own_role(template: dict) -> list[str]:
    """Every function has a role of its own (no two functions share one)."""
    seen: dict[str, str] = {}
    problems = []
    roles = resources(template, "AWS::IAM::Role")
    for logical_id, fn in resources(template, "AWS::Lambda::Function").items():
        role = target(props(fn).get("Role"))
        if role not in roles:
            problems.append(f"{logical_id}: role is not a role of this stack")
        elif role in seen:
            problems.append(f"{logical_id}: shares {role} with {seen[role]}")
        else:
            seen[role] = logical_id
    return problems


def queue_consumers_misfit(template: dict) -> list[str]:
    """Every SQS event source: partial batch responses, visibility >= 6x function timeout."""
    queues = resources(template, "AWS::SQS::Queue")
    functions = resources(template, "AWS::Lambda::Function")
    problems = []
    for logical_id, mapping in resources(template, "AWS::Lambda::EventSourceMapping").items():
        p = props(mapping)
        queue_id, fn_id = target(p["EventSourceArn"]), target(p["FunctionName"])
        if queue_id not in queues:
            continue
        if "ReportBatchItemFailures" not in p.get("FunctionResponseTypes", []):
            problems.append(f"{logical_id}: no partial batch responses")
        timeout = props(functions[fn_id])["Timeout"]
        visibility = props(queues[queue_id]).get("VisibilityTimeout", 30)
        if visibility < VISIBILITY_FACTOR * timeout:
            problems.append(f"{logical_id}: visibility {visibility}s < 6 x {timeout}s")
    return problems


def alarms_not_notifying(template: dict) -> list[str]:
    """Every alarm notifies an SNS topic of this stack on ALARM and on OK, and says how
    it treats missing data."""
    topics = resources(template, "AWS::SNS::Topic")
    problems = []
    for logical_id, alarm in resources(template, "AWS::CloudWatch::Alarm").items():
        p = props(alarm)
        for actions in ("AlarmActions", "OKActions"):
            if not p.get(actions) or any(target(a) not in topics for a in p[actions]):
                problems.append(f"{logical_id}: {actions} is not the alarm topic")
        if "TreatMissingData" not in p:
            problems.append(f"{logical_id}: TreatMissingData left to the default")
    return problems


def resources_without_environment_tag(template: dict, suffix: str) -> list[str]:
    """Every resource whose type takes Tags carries Environment = suffix."""
    return [
        logical_id
        for logical_id, resource in resources(template).items()
        if supports_tags(resource["Type"]) and tag_value(resource, "Environment") != suffix
    ]


def schedules_that_can_fail_silently(template: dict) -> list[str]:
    """Every EventBridge target retries for a bounded time and keeps what it could not
    deliver in a queue of this stack, and a function it invokes (asynchronously) keeps the
    runs that failed every retry in one too."""
    queues = resources(template, "AWS::SQS::Queue")
    functions = resources(template, "AWS::Lambda::Function")
    problems = []
    for rule_id, rule in resources(template, "AWS::Events::Rule").items():
        for rule_target in props(rule).get("Targets", []):
            name = f"{rule_id}/{rule_target['Id']}"
            if target(rule_target.get("DeadLetterConfig", {}).get("Arn")) not in queues:
                problems.append(f"{name}: no dead-letter queue of this stack")
            retry = rule_target.get("RetryPolicy", {})
            if not retry.get("MaximumEventAgeInSeconds") or "MaximumRetryAttempts" not in retry:
                problems.append(f"{name}: retry policy left to the default (24 h, 185 tries)")
            fn_id = target(rule_target["Arn"])
            if fn_id in functions:
                dead_letters = props(functions[fn_id]).get("DeadLetterConfig", {})
                if target(dead_letters.get("TargetArn")) not in queues:
                    problems.append(f"{name}: {fn_id} keeps no failed asynchronous run")
    return problems
