"""Resource policies moto's CloudFormation skips: SQS QueuePolicy, SNS TopicPolicy, S3 BucketPolicy.

Each sets the policy through the owning service's backend (SetQueueAttributes Policy,
SetTopicAttributes Policy, PutBucketPolicy), so GetQueueAttributes, GetTopicAttributes and
GetBucketPolicy show it as on AWS. moto stores these policies; it does not evaluate them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from moto.core.common_models import CloudFormationModel
from moto.s3.models import s3_backends
from moto.sns.models import SNSBackend, sns_backends
from moto.sqs.models import SQSBackend, sqs_backends

from emulator.handlers.base import Emulated, as_list, generated_id


def policy_text(document: Any) -> str:
    """A policy document as the APIs take it: JSON text."""
    return document if isinstance(document, str) else json.dumps(document)


class QueuePolicyHandler(Emulated, CloudFormationModel):
    """AWS::SQS::QueuePolicy: the same policy on each queue URL in `Queues`."""

    TYPE = "AWS::SQS::QueuePolicy"

    @property
    def backend(self) -> SQSBackend:
        return sqs_backends[self.account_id][self.region_name]

    def create(self, name: str) -> None:
        self.physical_id = generated_id(name)
        self.apply(self.properties)

    def update(self, properties: Mapping[str, Any]) -> None:
        kept = {str(q) for q in as_list(properties.get("Queues"))}
        self.clear([q for q in as_list(self.properties.get("Queues")) if str(q) not in kept])
        self.apply(properties)

    def apply(self, p: Mapping[str, Any]) -> None:
        text = policy_text(p["PolicyDocument"])
        for url in as_list(p.get("Queues")):
            self.backend.set_queue_attributes(queue_name(url), {"Policy": text})

    def clear(self, urls: list[Any]) -> None:
        for url in urls:
            self.backend.set_queue_attributes(queue_name(url), {"Policy": ""})

    def remove(self) -> None:
        self.clear(as_list(self.properties.get("Queues")))


def queue_name(url: Any) -> str:
    """A queue's name from its URL (what `Ref` of a queue gives)."""
    return str(url).rstrip("/").rsplit("/", 1)[-1]


class TopicPolicyHandler(Emulated, CloudFormationModel):
    """AWS::SNS::TopicPolicy: the policy of each topic in `Topics`; delete restores the default."""

    TYPE = "AWS::SNS::TopicPolicy"

    @property
    def backend(self) -> SNSBackend:
        return sns_backends[self.account_id][self.region_name]

    def create(self, name: str) -> None:
        self.physical_id = generated_id(name)
        self.apply(self.properties)

    def update(self, properties: Mapping[str, Any]) -> None:
        kept = {str(t) for t in as_list(properties.get("Topics"))}
        self.reset([t for t in as_list(self.properties.get("Topics")) if str(t) not in kept])
        self.apply(properties)

    def apply(self, p: Mapping[str, Any]) -> None:
        text = policy_text(p["PolicyDocument"])
        for arn in as_list(p.get("Topics")):
            self.backend.set_topic_attribute(str(arn), "policy", text)

    def reset(self, arns: list[Any]) -> None:
        for arn in arns:
            topic = self.backend.get_topic(str(arn))
            default = topic._create_default_topic_policy(
                self.region_name, self.account_id, topic.name
            )
            self.backend.set_topic_attribute(str(arn), "policy", json.dumps(default))

    def remove(self) -> None:
        self.reset(as_list(self.properties.get("Topics")))


class BucketPolicyHandler(Emulated, CloudFormationModel):
    """AWS::S3::BucketPolicy."""

    TYPE = "AWS::S3::BucketPolicy"

    @property
    def backend(self) -> Any:
        return s3_backends[self.account_id][self.partition]

    def create(self, name: str) -> None:
        self.physical_id = generated_id(name)
        self.update(self.properties)

    def update(self, properties: Mapping[str, Any]) -> None:
        text = policy_text(properties["PolicyDocument"])
        self.backend.put_bucket_policy(str(properties["Bucket"]), text.encode())

    def remove(self) -> None:
        self.backend.delete_bucket_policy(str(self.properties["Bucket"]))


HANDLERS = (QueuePolicyHandler, TopicPolicyHandler, BucketPolicyHandler)
