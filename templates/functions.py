"""Lambda functions, each with its own role, pre-created log group and X-Ray tracing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from awacs import logs, xray
from awacs.aws import Statement
from troposphere import GetAtt, Ref, Template
from troposphere.awslambda import (
    Code,
    Environment,
    EventSourceMapping,
    Function,
    LoggingConfig,
    TracingConfig,
)
from troposphere.iam import Role
from troposphere.logs import LogGroup

from templates.common import skip_checkov
from templates.iam import add_service_role, allow
from templates.keys import StackKey
from templates.logs import add_log_group
from templates.naming import Kind, Naming
from templates.queues import VISIBILITY_PER_CONSUMER_TIMEOUT, QueueWithDlq

# docs/contract.md: one zip, Python 3.12 (supported until 2028) on Graviton (cheaper per ms).
RUNTIME = "python3.12"
ARCHITECTURE = "arm64"

CHECKOV_SKIPS = {
    "CKV_AWS_115": "The seed forbids reserved concurrency (account limits).",
    "CKV_AWS_116": "No async event is dropped: API calls are synchronous, queue batches "
    "end in the queue's DLQ, a failed health run is redone 5 minutes later.",
    "CKV_AWS_117": "Calls only AWS APIs (TLS, IAM); a VPC adds NAT cost, no isolation.",
    "CKV_AWS_173": "The environment holds no secret; Lambda encrypts it at rest anyway.",
}


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
    role: Role
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

    def grant(self, *statements: Statement) -> None:
        """Add statements to the function's own role policy."""
        self.role.Policies[0].PolicyDocument.Statement.extend(statements)


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
) -> LambdaFunction:
    """A function, its log group `/aws/lambda/<name>` and its role with `statements`
    plus writing its own logs and traces."""
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
    role = add_service_role(
        t,
        naming,
        f"{spec.logical_id}Role",
        base_name=f"{spec.base_name}-role",
        service="lambda.amazonaws.com",
        statements=[*base_statements(log_group), *statements],
        component=component,
        description=f"Runs {name}: exactly the AWS calls its code makes",
    )
    function = t.add_resource(
        Function(
            f"{spec.logical_id}Function",
            FunctionName=name,
            Description=spec.description,
            Runtime=RUNTIME,
            Architectures=[ARCHITECTURE],
            Handler=spec.handler,
            Code=code,
            Role=role.get_att("Arn"),
            Timeout=spec.timeout,
            MemorySize=spec.memory,
            Environment=Environment(Variables=dict(environment)),
            LoggingConfig=LoggingConfig(LogGroup=log_group.ref()),
            TracingConfig=TracingConfig(Mode="Active"),
            Tags=naming.tags(component),
        )
    )
    skip_checkov(function, CHECKOV_SKIPS)
    return LambdaFunction(function=function, role=role, log_group=log_group, name=name, spec=spec)


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
