"""SQS message move tasks (the health monitor's redrive) and the moto pin the emulator needs."""

from __future__ import annotations

import configparser
import inspect
import json
from pathlib import Path
from typing import Any

import botocore.exceptions
import moto
import pytest

import emulator
from emulator.handlers import apigateway, cloudwatch, policies, wafv2

ROOT = Path(__file__).resolve().parents[2]


def queues(aws: Any) -> tuple[Any, str, str, str]:
    sqs = aws("sqs")
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
    source = sqs.create_queue(QueueName="source", Attributes={"RedrivePolicy": redrive})["QueueUrl"]
    return sqs, dlq, dlq_arn, source


def test_move_task_redrives_the_dlq_to_its_source(aws: Any) -> None:
    sqs, dlq, dlq_arn, source = queues(aws)
    source_arn = sqs.get_queue_attributes(QueueUrl=source, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    for n in range(3):
        sqs.send_message(QueueUrl=dlq, MessageBody=f"payment-{n}")
    handle = sqs.start_message_move_task(
        SourceArn=dlq_arn, DestinationArn=source_arn, MaxNumberOfMessagesPerSecond=10
    )
    assert handle["TaskHandle"]
    (task,) = sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=10)["Results"]
    assert task["Status"] == "COMPLETED" and task["ApproximateNumberOfMessagesMoved"] == 3
    bodies = {
        m["Body"] for m in sqs.receive_message(QueueUrl=source, MaxNumberOfMessages=10)["Messages"]
    }
    assert bodies == {"payment-0", "payment-1", "payment-2"}
    assert "Messages" not in sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)
    # Without a destination the messages go back to the queue the DLQ serves.
    sqs.send_message(QueueUrl=dlq, MessageBody="again")
    sqs.start_message_move_task(SourceArn=dlq_arn)
    assert (
        sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=1)["Results"][0][
            "ApproximateNumberOfMessagesMoved"
        ]
        == 1
    )


def test_move_task_errors_are_the_api_errors(aws: Any) -> None:
    sqs, _dlq, dlq_arn, source = queues(aws)
    source_arn = sqs.get_queue_attributes(QueueUrl=source, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    with pytest.raises(botocore.exceptions.ClientError, match="UnsupportedOperation"):
        sqs.start_message_move_task(SourceArn=source_arn)  # not a dead-letter queue
    with pytest.raises(botocore.exceptions.ClientError, match="InvalidParameterValue"):
        sqs.start_message_move_task(SourceArn=dlq_arn, MaxNumberOfMessagesPerSecond=501)
    with pytest.raises(botocore.exceptions.ClientError, match="ResourceNotFound"):
        sqs.list_message_move_tasks(SourceArn=dlq_arn.replace("dlq", "nope"))


def test_moto_is_pinned_to_the_version_the_emulator_was_written_for() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    pins = [
        line
        for line in config["options.extras_require"]["dev"].splitlines()
        if line.startswith("moto")
    ]
    assert pins == [f"moto[server]=={emulator.MOTO_VERSION}"]
    assert moto.__version__ == emulator.MOTO_VERSION


@pytest.mark.parametrize(
    ("owner", "method", "keywords"),
    [
        (
            apigateway.apigateway_backends["123456789012"]["us-east-1"],
            "create_stage",
            {
                "deploymentId",
                "variables",
                "description",
                "cacheClusterEnabled",
                "cacheClusterSize",
                "tags",
                "tracing_enabled",
            },
        ),
        (
            apigateway.apigateway_backends["123456789012"]["us-east-1"],
            "put_method",
            {
                "authorization_type",
                "api_key_required",
                "request_parameters",
                "request_models",
                "request_validator_id",
            },
        ),
        (
            apigateway.apigateway_backends["123456789012"]["us-east-1"],
            "put_integration",
            {
                "integration_type",
                "uri",
                "integration_method",
                "request_templates",
                "passthrough_behavior",
            },
        ),
        (
            cloudwatch.cloudwatch_backends["123456789012"]["us-east-1"],
            "put_metric_alarm",
            {
                "name",
                "namespace",
                "metric_name",
                "metric_data_queries",
                "dimensions",
                "alarm_actions",
                "ok_actions",
                "treat_missing_data",
                "tags",
            },
        ),
        (
            wafv2.wafv2_backends["123456789012"]["us-east-1"],
            "create_web_acl",
            {"name", "scope", "tags", "default_action", "rules", "visibility_config"},
        ),
        (
            policies.sns_backends["123456789012"]["us-east-1"],
            "set_topic_attribute",
            {"topic_arn", "attribute_name", "attribute_value"},
        ),
    ],
)
def test_moto_backend_methods_the_handlers_call_keep_their_parameters(
    owner: Any, method: str, keywords: set[str]
) -> None:
    # A moto upgrade that renames one fails here, not as a half-created stack.
    assert keywords <= set(inspect.signature(getattr(owner, method)).parameters)


def test_every_handler_is_the_one_moto_uses() -> None:
    from moto.cloudformation.parsing import get_model_map

    emulator.install()
    for handler in emulator.handler_classes():
        assert get_model_map()[handler.TYPE] is handler
