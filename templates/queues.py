"""SQS queues that never lose a message: every queue has a DLQ, all encrypted, TLS only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from awacs import sqs
from awacs.aws import AWSPrincipal, Bool, Condition, Deny, Statement
from troposphere import GetAtt, Sub, Template
from troposphere.sqs import Queue, QueuePolicy, RedrivePolicy

from templates.common import add_output
from templates.iam import policy
from templates.keys import StackKey
from templates.naming import Kind, Naming

# AWS guidance for Lambda consumers: visibility timeout at least six times the
# function timeout, so a batch retried after throttling is not redelivered mid-run.
VISIBILITY_PER_CONSUMER_TIMEOUT = 6
# The DLQ keeps messages as long as SQS allows: a standard queue keeps each message's
# original enqueue time, so the DLQ must outlive the source queue's retention.
DLQ_RETENTION_SECONDS = 14 * 24 * 3600


@dataclass(frozen=True)
class QueueWithDlq:
    """A work queue and its dead-letter queue."""

    queue: Queue
    dlq: Queue

    @property
    def url(self):
        return self.queue.ref()

    @property
    def arn(self) -> GetAtt:
        return self.queue.get_att("Arn")

    @property
    def dlq_url(self):
        return self.dlq.ref()

    @property
    def dlq_arn(self) -> GetAtt:
        return self.dlq.get_att("Arn")

    @property
    def visibility_timeout(self) -> int:
        return self.queue.VisibilityTimeout


def queue_arn(name: str) -> Sub:
    """The ARN of a queue of this stack by name (breaks the queue <-> DLQ reference cycle)."""
    return Sub(f"arn:${{AWS::Partition}}:sqs:${{AWS::Region}}:${{AWS::AccountId}}:{name}")


def add_queue_with_dlq(
    t: Template,
    naming: Naming,
    logical_id: str,
    *,
    base_name: str,
    key: StackKey,
    consumer_timeout: int,
    retention_seconds: int,
    max_receive_count: int,
    component: str,
    description: str,
) -> QueueWithDlq:
    """`<base>-<suffix>` and `<base>-dlq-<suffix>`, a TLS-only policy and URL outputs."""
    name = naming.name(base_name, Kind.QUEUE)
    dlq_name = naming.name(f"{base_name}-dlq", Kind.QUEUE)
    dlq = t.add_resource(
        Queue(
            f"{logical_id}Dlq",
            QueueName=dlq_name,
            KmsMasterKeyId=key.arn,
            MessageRetentionPeriod=DLQ_RETENTION_SECONDS,
            # Only its own source queue may use this DLQ (by name: the queue refers to the DLQ).
            RedriveAllowPolicy={
                "redrivePermission": "byQueue",
                "sourceQueueArns": [queue_arn(name)],
            },
            Tags=naming.tags(component),
            # Messages are transient work: the seed wants every resource destroyable.
            DeletionPolicy="Delete",
            UpdateReplacePolicy="Delete",
        )
    )
    queue = t.add_resource(
        Queue(
            logical_id,
            QueueName=name,
            KmsMasterKeyId=key.arn,
            MessageRetentionPeriod=retention_seconds,
            VisibilityTimeout=VISIBILITY_PER_CONSUMER_TIMEOUT * consumer_timeout,
            RedrivePolicy=RedrivePolicy(
                deadLetterTargetArn=dlq.get_att("Arn"), maxReceiveCount=max_receive_count
            ),
            Tags=naming.tags(component),
            # Messages are transient work: the seed wants every resource destroyable.
            DeletionPolicy="Delete",
            UpdateReplacePolicy="Delete",
        )
    )
    pair = QueueWithDlq(queue=queue, dlq=dlq)
    add_tls_only_policy(t, f"{logical_id}Policy", [queue, dlq])
    add_output(t, f"{logical_id}Url", pair.url, description)
    add_output(t, f"{logical_id}DlqUrl", pair.dlq_url, f"Dead-letter queue of: {description}")
    return pair


def add_tls_only_policy(
    t: Template, logical_id: str, queues: list[Queue], allowed: Sequence[Statement] = ()
) -> QueuePolicy:
    """Refuse every request to the queues that does not arrive over TLS (every action:
    a list of some would leave the rest open), besides the `allowed` statements."""
    return t.add_resource(
        QueuePolicy(
            logical_id,
            Queues=[q.ref() for q in queues],
            PolicyDocument=policy(
                [
                    *allowed,
                    Statement(
                        Sid="DenyInsecureTransport",
                        Effect=Deny,
                        Principal=AWSPrincipal("*"),
                        Action=[sqs.Action("*")],
                        Resource=[q.get_att("Arn") for q in queues],
                        Condition=Condition(Bool("aws:SecureTransport", "false")),
                    ),
                ]
            ),
        )
    )


def add_dead_letter_queue(
    t: Template,
    naming: Naming,
    logical_id: str,
    *,
    base_name: str,
    key: StackKey,
    component: str,
) -> Queue:
    """`<base>-<suffix>`: where events that could not be delivered or processed end, kept
    14 days; the end of the line (nothing consumes it but an operator).

    Its TLS-only policy is added by what sends to it (`schedule.add_schedule`), since that
    policy also names the sender.
    """
    queue = t.add_resource(
        Queue(
            logical_id,
            QueueName=naming.name(base_name, Kind.QUEUE),
            KmsMasterKeyId=key.arn,
            MessageRetentionPeriod=DLQ_RETENTION_SECONDS,
            Tags=naming.tags(component),
            DeletionPolicy="Delete",
            UpdateReplacePolicy="Delete",
        )
    )
    return queue
