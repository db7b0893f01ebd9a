"""SQS message move tasks (the DLQ redrive the health monitor starts), which moto lacks.

Adds StartMessageMoveTask, ListMessageMoveTasks and CancelMessageMoveTask to moto's SQS
backend and its HTTP responses. One difference from AWS, on purpose: a task moves every
visible message at once when it starts (AWS moves them in the background at up to
MaxNumberOfMessagesPerSecond), so it is COMPLETED by the time ListMessageMoveTasks is called.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from moto.core.responses import ActionResult
from moto.moto_api._internal import mock_random
from moto.sqs.exceptions import InvalidParameterValue, SQSException
from moto.sqs.models import Queue, SQSBackend
from moto.sqs.responses import SQSResponse

MAX_RATE = 500  # messages per second, the API's limit
MAX_LISTED = 10  # ListMessageMoveTasks returns at most this many


class UnsupportedOperation(SQSException):
    """The error SQS answers for a move it cannot start (not a DLQ, a task running)."""

    def __init__(self, message: str) -> None:
        super().__init__("UnsupportedOperation", message)


class ResourceNotFound(SQSException):
    """The error SQS answers for an unknown queue ARN or task handle."""

    def __init__(self, message: str) -> None:
        super().__init__("ResourceNotFoundException", message)


@dataclass
class MoveTask:
    """One StartMessageMoveTask and what it did."""

    handle: str
    source_arn: str
    destination_arn: str | None
    rate: int | None
    started_ms: int
    to_move: int
    moved: int = 0
    status: str = "RUNNING"
    failure_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The task as ListMessageMoveTasks shows it (the handle only while it runs)."""
        result: dict[str, Any] = {
            "Status": self.status,
            "SourceArn": self.source_arn,
            "ApproximateNumberOfMessagesMoved": self.moved,
            "ApproximateNumberOfMessagesToMove": self.to_move,
            "StartedTimestamp": self.started_ms,
        }
        if self.status == "RUNNING":
            result["TaskHandle"] = self.handle
        if self.destination_arn:
            result["DestinationArn"] = self.destination_arn
        if self.rate is not None:
            result["MaxNumberOfMessagesPerSecond"] = self.rate
        if self.failure_reason:
            result["FailureReason"] = self.failure_reason
        return result


def tasks_of(backend: SQSBackend) -> list[MoveTask]:
    """The backend's move tasks, oldest first (kept on the backend, so a reset clears them)."""
    if not hasattr(backend, "message_move_tasks"):
        backend.message_move_tasks = []  # type: ignore[attr-defined]
    return backend.message_move_tasks  # type: ignore[attr-defined,no-any-return]


def queue_by_arn(backend: SQSBackend, arn: str) -> Queue:
    """The queue with this ARN in this backend."""
    for queue in backend.queues.values():
        if queue.queue_arn == arn:
            return queue
    raise ResourceNotFound(
        f"The resource that you specified for the SourceArn parameter doesn't exist: {arn}"
    )


def start_message_move_task(
    backend: SQSBackend, source_arn: str, destination_arn: str | None, rate: int | None
) -> MoveTask:
    """Move the DLQ's visible messages to the destination (default: the queue it serves)."""
    if rate is not None and not 1 <= rate <= MAX_RATE:
        raise InvalidParameterValue(
            f"Value {rate} for parameter MaxNumberOfMessagesPerSecond is invalid: 1 to {MAX_RATE}"
        )
    source = queue_by_arn(backend, source_arn)
    origins = [q for q in backend.queues.values() if q.dead_letter_queue is source]
    if not origins:
        raise UnsupportedOperation("Source queue must be configured as a Dead Letter Queue.")
    if any(t.source_arn == source_arn and t.status == "RUNNING" for t in tasks_of(backend)):
        raise UnsupportedOperation(
            "There is already a task running. Only one active task is allowed for a source "
            "queue arn at a given time."
        )
    if destination_arn:
        destination = queue_by_arn(backend, destination_arn)
    elif len(origins) == 1:
        destination = origins[0]
    else:
        # SQS remembers each message's source queue; moto does not, so it cannot choose.
        raise UnsupportedOperation("emulator: this DLQ serves several queues; give DestinationArn")
    messages = list(source.messages)
    task = MoveTask(
        handle=mock_random.get_random_hex(32),
        source_arn=source_arn,
        destination_arn=destination_arn,
        rate=rate,
        started_ms=int(time.time() * 1000),
        to_move=len(messages),
    )
    tasks_of(backend).append(task)
    for message in messages:
        backend.send_message(
            destination.name,
            message.body,
            message_attributes=dict(message.message_attributes) or None,
            deduplication_id=message.deduplication_id,
            group_id=message.group_id,
        )
        source._messages.remove(message)
        task.moved += 1
    task.status = "COMPLETED"
    return task


def cancel_message_move_task(backend: SQSBackend, handle: str) -> int:
    """Cancel a running task; the number of messages it moved."""
    for task in tasks_of(backend):
        if task.handle == handle:
            if task.status != "RUNNING":
                raise UnsupportedOperation("Only a running task can be cancelled.")
            task.status = "CANCELLED"
            return task.moved
    raise ResourceNotFound(f"Task does not exist: {handle}")


def list_message_move_tasks(
    backend: SQSBackend, source_arn: str, max_results: int
) -> list[MoveTask]:
    """The most recent tasks of the source queue, newest first."""
    queue_by_arn(backend, source_arn)
    if not 1 <= max_results <= MAX_LISTED:
        raise InvalidParameterValue(
            f"Value {max_results} for parameter MaxResults is invalid: 1 to {MAX_LISTED}"
        )
    own = [task for task in tasks_of(backend) if task.source_arn == source_arn]
    return list(reversed(own))[:max_results]


def _start(self: SQSResponse) -> ActionResult:
    rate = self._get_param("MaxNumberOfMessagesPerSecond")
    task = start_message_move_task(
        self.sqs_backend,
        self._get_param("SourceArn"),
        self._get_param("DestinationArn"),
        int(rate) if rate is not None else None,
    )
    return ActionResult({"TaskHandle": task.handle})


def _list(self: SQSResponse) -> ActionResult:
    tasks = list_message_move_tasks(
        self.sqs_backend, self._get_param("SourceArn"), int(self._get_param("MaxResults") or 1)
    )
    return ActionResult({"Results": [task.to_dict() for task in tasks]})


def _cancel(self: SQSResponse) -> ActionResult:
    moved = cancel_message_move_task(self.sqs_backend, self._get_param("TaskHandle"))
    return ActionResult({"ApproximateNumberOfMessagesMoved": moved})


def install() -> list[str]:
    """Add the three operations to moto's SQS responses; the names of what was added."""
    SQSResponse.start_message_move_task = _start  # type: ignore[attr-defined]
    SQSResponse.list_message_move_tasks = _list  # type: ignore[attr-defined]
    SQSResponse.cancel_message_move_task = _cancel  # type: ignore[attr-defined]
    return ["SQS StartMessageMoveTask", "SQS ListMessageMoveTasks", "SQS CancelMessageMoveTask"]
