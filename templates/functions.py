"""Lambda functions, each with its own role, pre-created log group and X-Ray tracing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from awacs import logs, sqs, xray
from awacs.aws import Statement
from troposphere import GetAtt, Ref, Template
from troposphere.awslambda import (
    Code,
    DeadLetterConfig,
    Environment,
    EventSourceMapping,
    Function,
    LoggingConfig,
    Permission,
    TracingConfig,
)
from troposphere.logs import LogGroup
from troposphere.sqs import Queue

from templates import cfnread
from templates.findings import Accepted, accept
from templates.iam import ServiceRole, add_service_role, allow
from templates.keys import StackKey
from templates.logs import add_log_group
from templates.naming import Kind, Naming
from templates.network import WHEN_VPC_IS_OFF, Network
from templates.queues import VISIBILITY_PER_CONSUMER_TIMEOUT, QueueWithDlq

# docs/contract.md: one zip, Python 3.12 (supported until 2028) on Graviton (cheaper per ms).
RUNTIME = "python3.12"
ARCHITECTURE = "arm64"

# Findings accepted for every function (templates/findings.py).
TESTED_RUNTIME = Accepted(
    "python3.12 is a supported Lambda runtime (deprecation scheduled for October 2028). The "
    "test suite, the Powertools copy in the zip and the template are verified on exactly this "
    "version; moving to a newer runtime is a tested change of its own, not an automatic one.",
    cdk_nag=("AwsSolutions-L1",),
)
NO_SECRET_IN_ENVIRONMENT = Accepted(
    "The environment holds no secret (resource names, URLs and payment limits only), and "
    "Lambda encrypts it at rest with an AWS managed key; a customer key would protect nothing "
    "more.",
    checkov=("CKV_AWS_173",),
)
# What invokes a function (the principal of a Lambda permission, or an event source mapping)
# and what bounds it: the reasons of the two findings that depend on the invokers.
QUEUE_TRIGGER = "sqs"
INVOKERS = {
    "apigateway.amazonaws.com": (
        "API Gateway requests (Lambda proxy, synchronous: the caller gets the error), throttled "
        "by the stage (and by the usage plan on routes that require the key) and rate-limited "
        "per client IP by the web ACL"
    ),
    QUEUE_TRIGGER: (
        "the SQS event source mapping (it polls synchronously and leaves a failed message to "
        "the queue's redrive policy and dead-letter queue), whose backlog is payments the API "
        "accepted and the health monitor's rate-limited redrive"
    ),
    "events.amazonaws.com": (
        "its EventBridge schedule (asynchronous, one run per period; failed runs end in the "
        "function's dead-letter queue)"
    ),
}
SYNCHRONOUS = {"apigateway.amazonaws.com", QUEUE_TRIGGER}


@dataclass(frozen=True)
class FunctionSpec:
    """What differs between functions: identity, handler and sizing."""

    logical_id: str
    base_name: str
    handler: str
    description: str
    timeout: int
    memory: int


@dataclass(frozen=True)
class LambdaFunction:
    """A function with the role and log group that belong to it."""

    function: Function
    role: ServiceRole
    log_group: LogGroup
    name: str
    spec: FunctionSpec

    def ref(self) -> Ref:
        return self.function.ref()

    @property
    def arn(self) -> GetAtt:
        return self.function.get_att("Arn")

    @property
    def environment(self) -> dict:
        """The function's environment variables (mutable until the template is rendered)."""
        return self.function.Environment.Variables

    @property
    def statements(self) -> list[Statement]:
        """What the function's role allows (its managed policy's statements)."""
        return self.role.statements

    def grant(self, *statements: Statement) -> None:
        """Add statements to the function's own role policy."""
        self.role.statements.extend(statements)


def add_function(
    t: Template,
    naming: Naming,
    spec: FunctionSpec,
    *,
    code: Code,
    key: StackKey,
    environment: Mapping[str, object],
    statements: Sequence[Statement],
    log_retention_days: int,
    component: str,
    network: Network | None = None,
    dead_letter_queue: Queue | None = None,
) -> LambdaFunction:
    """A function, its log group `/aws/lambda/<name>` and its role with `statements`
    plus writing its own logs and traces; in the network's private subnets when given, and
    with `dead_letter_queue` for the asynchronous invocations that failed every retry."""
    name = naming.name(spec.base_name, Kind.FUNCTION)
    log_group = add_log_group(
        t,
        naming,
        f"{spec.logical_id}LogGroup",
        name=f"/aws/lambda/{name}",
        retention_days=log_retention_days,
        component=component,
        key=key,
    )
    granted = [*base_statements(log_group), *statements]
    if dead_letter_queue is not None:
        granted.append(
            allow([sqs.SendMessage], [dead_letter_queue.get_att("Arn")], "KeepFailedAsyncEvents")
        )
    role = add_service_role(
        t,
        naming,
        f"{spec.logical_id}Role",
        base_name=f"{spec.base_name}-role",
        service="lambda.amazonaws.com",
        statements=granted,
        component=component,
        description=f"Runs {name}: exactly the AWS calls its code makes",
    )
    accept(role.policy, star_resource_finding(granted))
    extra: dict = {}
    if network is not None:
        network.attach(role)
        extra["VpcConfig"] = network.vpc_config()
    if dead_letter_queue is not None:
        extra["DeadLetterConfig"] = DeadLetterConfig(TargetArn=dead_letter_queue.get_att("Arn"))
    function = t.add_resource(
        Function(
            f"{spec.logical_id}Function",
            FunctionName=name,
            Description=spec.description,
            Runtime=RUNTIME,
            Architectures=[ARCHITECTURE],
            Handler=spec.handler,
            Code=code,
            Role=role.arn,
            Timeout=spec.timeout,
            MemorySize=spec.memory,
            Environment=Environment(Variables=dict(environment)),
            LoggingConfig=LoggingConfig(LogGroup=log_group.ref()),
            TracingConfig=TracingConfig(Mode="Active"),
            Tags=naming.tags(component),
            **extra,
        )
    )
    accept(function, TESTED_RUNTIME, NO_SECRET_IN_ENVIRONMENT)
    if network is not None:
        accept(function, WHEN_VPC_IS_OFF)
    return LambdaFunction(function=function, role=role, log_group=log_group, name=name, spec=spec)


def invokers(t: Template, fn: LambdaFunction) -> list[str]:
    """What invokes the function in this template: each Lambda permission's principal, and
    QUEUE_TRIGGER for an event source mapping."""
    found = set()
    for resource in t.resources.values():
        if isinstance(resource, (Permission, EventSourceMapping)):
            named = set(cfnread.references(resource.to_dict()["Properties"]["FunctionName"]))
            if fn.function.title in named:
                found.add(getattr(resource, "Principal", QUEUE_TRIGGER))
    return sorted(found)


def accept_invocation_findings(t: Template, functions: Sequence[LambdaFunction]) -> None:
    """Once every invoker is in the template: accept the missing reserved concurrency with what
    bounds each invoker, and the missing Lambda DLQ only where nothing invokes asynchronously
    (an asynchronous invoker without a DLQ is refused)."""
    for fn in functions:
        paths = invokers(t, fn)
        unknown = [path for path in paths if path not in INVOKERS]
        if unknown or not paths:
            raise ValueError(f"{fn.name}: invoked by {unknown or 'nothing'}: say what bounds it")
        invoked_by = "; ".join(INVOKERS[path] for path in paths)
        accept(
            fn.function,
            Accepted(
                "The seed forbids reserved concurrency: it would take from the account's shared "
                f"pool and block other deployments. What invokes this function: {invoked_by}. "
                "A Throttles alarm reports any refusal.",
                checkov=("CKV_AWS_115",),
                cdk_nag=("NIST.800.53.R5-LambdaConcurrency",),
                guard=("LAMBDA_CONCURRENCY_CHECK",),
            ),
        )
        if hasattr(fn.function, "DeadLetterConfig"):
            continue
        if not set(paths) <= SYNCHRONOUS:
            raise ValueError(f"{fn.name} is invoked asynchronously but has no dead-letter queue")
        accept(
            fn.function,
            Accepted(
                f"Invoked only synchronously, by {invoked_by}. A Lambda dead-letter queue "
                "captures only asynchronous invocations, which this function never receives.",
                checkov=("CKV_AWS_116",),
                cdk_nag=("NIST.800.53.R5-LambdaDLQ",),
                guard=("LAMBDA_DLQ_CHECK",),
            ),
        )


def base_statements(log_group: LogGroup) -> list[Statement]:
    """What every function needs: write to its own log group, send X-Ray traces.

    No logs:CreateLogGroup: the group is pre-created, so none reappears after delete.
    """
    return [
        allow(
            [logs.CreateLogStream, logs.PutLogEvents],
            # The group's Arn attribute ends in `:*`, which covers its log streams.
            [log_group.get_att("Arn")],
            "WriteOwnLogGroup",
        ),
        # X-Ray has no resource-level permissions for these actions: "*" is the only form.
        allow([xray.PutTraceSegments, xray.PutTelemetryRecords], ["*"], "SendTraces"),
    ]


def star_resource_finding(statements: Sequence[Statement]) -> Accepted:
    """The accepted `Resource: "*"` of a role policy, naming the actions that need it."""
    actions = sorted(
        {str(action.JSONrepr()) for st in statements if "*" in st.Resource for action in st.Action}
    )
    return Accepted(
        "Resource '*' only for actions AWS authorises on nothing narrower (no resource-level "
        f"permissions exist for {', '.join(actions)}); every other statement names this stack's "
        "own resources.",
        cdk_nag=("AwsSolutions-IAM5",),
        applies_to=("Resource::*",),
    )


def add_queue_trigger(
    t: Template,
    naming: Naming,
    fn: LambdaFunction,
    queues: QueueWithDlq,
    *,
    batch_size: int,
    component: str,
) -> EventSourceMapping:
    """Feed the queue to the function with partial batch responses (one bad message
    does not make the whole batch retry)."""
    if queues.visibility_timeout < VISIBILITY_PER_CONSUMER_TIMEOUT * fn.spec.timeout:
        raise ValueError(
            f"queue visibility timeout {queues.visibility_timeout}s is under "
            f"{VISIBILITY_PER_CONSUMER_TIMEOUT}x the {fn.name} timeout ({fn.spec.timeout}s)"
        )
    return t.add_resource(
        EventSourceMapping(
            f"{fn.spec.logical_id}QueueTrigger",
            EventSourceArn=queues.arn,
            FunctionName=fn.ref(),
            BatchSize=batch_size,
            FunctionResponseTypes=["ReportBatchItemFailures"],
            Tags=naming.tags(component),
        )
    )
