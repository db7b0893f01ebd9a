"""The change-set steps, one method each, on an injected CloudFormation client.

The shape of aws-cli's `deployer.py` (client injected, one method per step,
errors with message templates), with a request dataclass instead of eight
positional arguments and our own polling loop instead of botocore's waiters:
the loop streams events, sleeps through an injected function, gives up on a
time budget rather than an attempt count, and checks the final status
(botocore's stack_create_complete waiter also accepts some UPDATE states).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions

from deployer.aws import AWS_ERRORS, THROTTLING_CODES, call_failure, error_code, error_message
from deployer.errors import (
    AwsCallError,
    ChangeSetFailedError,
    StackOperationFailedError,
    WaitTimeoutError,
)
from deployer.events import EventStream
from deployer.output import StackLog

# Both wordings CloudFormation uses for a change set with nothing in it.
EMPTY_CHANGE_SET_REASONS = (
    "The submitted information didn't contain changes",
    "No updates are to be performed",
)
CHANGE_SET_PENDING = {"CREATE_PENDING", "CREATE_IN_PROGRESS"}
# An operation's events are those not older than its start, taken a little early: the
# server's Date header has one-second resolution and the first event is written while
# the request is still being answered.
START_MARGIN = dt.timedelta(seconds=2)


def utc_now() -> dt.datetime:
    """The local wall clock, in UTC."""
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class WaitConfig:
    """How often to poll and for how long: time budgets, not attempt counts."""

    # Change sets usually compute in 2-10 s; 2 s notices them quickly at little cost.
    change_set_delay: float = 2.0
    # The target: notice a finished deploy within 5 s.
    stack_delay: float = 5.0
    change_set_timeout: float = 10 * 60
    stack_timeout: float = 60 * 60


def client_token(action: str) -> str:
    """An idempotency token: botocore reuses it on retries, so a retried call acts once."""
    return f"payment-deploy-{action}-{uuid.uuid4().hex}"


def resource_change(change: Mapping[str, Any]) -> Mapping[str, Any]:
    """The ResourceChange of one entry of DescribeChangeSet's Changes."""
    inner: Mapping[str, Any] = change.get("ResourceChange", change)
    return inner


def is_empty_change_set(status: str, reason: str) -> bool:
    """True for a FAILED change set whose reason says there was nothing to change."""
    return (status == "FAILED") and any(text in reason for text in EMPTY_CHANGE_SET_REASONS)


def is_throttling(error: botocore.exceptions.ClientError) -> bool:
    """True when botocore's own retries were exhausted by throttling."""
    return error_code(error) in THROTTLING_CODES


@dataclass(frozen=True)
class ChangeSetRequest:
    """Everything one change set needs."""

    stack_name: str
    change_set_type: str  # CREATE or UPDATE
    parameters: Mapping[str, str]
    tags: Mapping[str, str]
    capabilities: tuple[str, ...]
    template_body: str | None = None
    template_url: str | None = None
    # Declared parameters that keep their deployed value (UsePreviousValue).
    previous: Sequence[str] = ()
    role_arn: str | None = None
    # None keeps the stack's notification topics; a tuple replaces them.
    notification_arns: Sequence[str] | None = None
    # CloudFormation keeps a stack's last rollback configuration: updates always send one.
    rollback: Mapping[str, Any] | None = None
    change_set_name: str = field(
        default_factory=lambda: f"payment-deploy-{time.strftime('%Y%m%d-%H%M%S')}"
    )
    token: str = field(default_factory=lambda: client_token("changeset"))
    description: str = "Created by python deploy.py"

    def api_kwargs(self) -> dict[str, Any]:
        """The CreateChangeSet arguments."""
        kwargs: dict[str, Any] = {
            "StackName": self.stack_name,
            "ChangeSetName": self.change_set_name,
            "ChangeSetType": self.change_set_type,
            "Parameters": [
                {"ParameterKey": key, "ParameterValue": value}
                for key, value in sorted(self.parameters.items())
            ]
            + [{"ParameterKey": key, "UsePreviousValue": True} for key in sorted(self.previous)],
            "Tags": [{"Key": key, "Value": value} for key, value in sorted(self.tags.items())],
            "Capabilities": list(self.capabilities),
            "ClientToken": self.token,
            "Description": self.description,
        }
        if self.template_url is not None:
            kwargs["TemplateURL"] = self.template_url
        else:
            kwargs["TemplateBody"] = self.template_body
        if self.role_arn:
            kwargs["RoleARN"] = self.role_arn
        if self.notification_arns is not None:
            kwargs["NotificationARNs"] = list(self.notification_arns)
        if self.rollback is not None:
            kwargs["RollbackConfiguration"] = dict(self.rollback)
        return kwargs


@dataclass(frozen=True)
class Operation:
    """A stack operation this run started: its token marks its events, from `since` on."""

    token: str
    since: dt.datetime


@dataclass(frozen=True)
class ChangeSet:
    """A computed change set: its id, whether it is empty, and its resource changes."""

    change_set_id: str
    stack_id: str
    empty: bool
    changes: list[dict[str, Any]]


class Deployer:
    """Change-set steps against one CloudFormation client."""

    def __init__(
        self,
        cloudformation: Any,
        log: StackLog,
        wait: WaitConfig | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self.cloudformation = cloudformation
        self.log = log
        self.wait = wait or WaitConfig()
        self.sleep = sleep
        self.clock = clock
        self.now = now

    def describe_stack(self, stack: str) -> dict[str, Any] | None:
        """The stack's description, or None when it does not exist."""
        try:
            response = self._call(
                "DescribeStacks", self.cloudformation.describe_stacks, StackName=stack
            )
        except botocore.exceptions.ClientError as error:
            if (error_code(error) == "ValidationError") and (
                "does not exist" in error_message(error)
            ):
                return None
            raise self._error("DescribeStacks", error) from None
        stacks = response.get("Stacks", [])
        return stacks[0] if stacks else None

    def deployed_template(self, stack: str) -> Any:
        """The template the stack was last deployed with (parsed when JSON)."""
        response = self._call(
            "GetTemplate",
            self.cloudformation.get_template,
            StackName=stack,
            TemplateStage="Original",
        )
        body = response.get("TemplateBody")
        if isinstance(body, str):
            try:
                return json.loads(body)
            except ValueError:
                return body  # YAML: compared as text, so it always differs from ours
        return body

    def stack_policy(self, stack: str) -> dict[str, Any] | None:
        """The stack's policy, or None when it has none."""
        response = self._call(
            "GetStackPolicy", self.cloudformation.get_stack_policy, StackName=stack
        )
        body = response.get("StackPolicyBody")
        return json.loads(body) if body else None

    def set_stack_policy(self, stack: str, policy: Mapping[str, Any]) -> None:
        """Replace the stack's policy."""
        self._call(
            "SetStackPolicy",
            self.cloudformation.set_stack_policy,
            StackName=stack,
            StackPolicyBody=json.dumps(policy, sort_keys=True),
        )

    def stack_resources(self, stack: str) -> dict[str, str]:
        """Physical id of each deployed resource, by logical id."""
        resources: dict[str, str] = {}
        token = None
        while True:
            kwargs = {"StackName": stack, **({"NextToken": token} if token else {})}
            page = self._call(
                "ListStackResources", self.cloudformation.list_stack_resources, **kwargs
            )
            for item in page.get("StackResourceSummaries", []):
                resources[item["LogicalResourceId"]] = item.get("PhysicalResourceId", "")
            token = page.get("NextToken")
            if not token:
                return resources

    def create_change_set(self, request: ChangeSetRequest) -> tuple[str, str] | None:
        """Create the change set: (change set id, stack id), or None when refused as empty."""
        try:
            response = self.cloudformation.create_change_set(**request.api_kwargs())
        except botocore.exceptions.ClientError as error:
            # Some endpoints (moto among them) refuse an identical update up front instead
            # of returning a FAILED change set: the same "nothing to do", not an error.
            if is_empty_change_set("FAILED", error_message(error)):
                return None
            raise ChangeSetFailedError(
                change_set=request.change_set_name,
                stack=request.stack_name,
                reason=f"{error_code(error)}: {error_message(error)}",
            ) from None
        return response["Id"], response["StackId"]

    def wait_for_change_set(self, change_set_id: str, stack: str) -> ChangeSet:
        """Poll until the change set is computed; an empty one is a result, not an error."""
        deadline = self.clock() + self.wait.change_set_timeout
        while True:
            response = self._poll(
                "DescribeChangeSet",
                self.cloudformation.describe_change_set,
                ChangeSetName=change_set_id,
            )
            status = response.get("Status", "") if response else "CREATE_PENDING"
            if status not in CHANGE_SET_PENDING:
                break
            if self.clock() >= deadline:
                raise WaitTimeoutError(
                    what=f"change set for {stack}",
                    status=status,
                    seconds=self.wait.change_set_timeout,
                )
            self.sleep(self.wait.change_set_delay)
        reason = response.get("StatusReason", "") or ""
        if is_empty_change_set(status, reason):
            return ChangeSet(change_set_id, response.get("StackId", ""), empty=True, changes=[])
        if status != "CREATE_COMPLETE":
            raise ChangeSetFailedError(
                change_set=response.get("ChangeSetName", change_set_id),
                stack=stack,
                reason=f"{status}: {reason or 'no reason given'}",
            )
        changes = list(response.get("Changes", []))
        token = response.get("NextToken")
        while token:
            page = self._call(
                "DescribeChangeSet",
                self.cloudformation.describe_change_set,
                ChangeSetName=change_set_id,
                NextToken=token,
            )
            changes += page.get("Changes", [])
            token = page.get("NextToken")
        return ChangeSet(change_set_id, response.get("StackId", ""), empty=False, changes=changes)

    def execute_change_set(
        self, change_set_id: str, *, disable_rollback: bool = False
    ) -> Operation:
        """Start executing the change set (idempotent through its token)."""
        kwargs: dict[str, Any] = {"DisableRollback": True} if disable_rollback else {}
        return self._start(
            "ExecuteChangeSet",
            self.cloudformation.execute_change_set,
            ChangeSetName=change_set_id,
            **kwargs,
        )

    def delete_change_set(self, change_set_id: str) -> None:
        """Delete a change set that will not be executed."""
        self._call(
            "DeleteChangeSet", self.cloudformation.delete_change_set, ChangeSetName=change_set_id
        )

    def delete_stack(self, stack: str, role_arn: str | None = None) -> Operation:
        """Start deleting the stack (idempotent through its token)."""
        kwargs: dict[str, Any] = {"RoleARN": role_arn} if role_arn else {}
        return self._start(
            "DeleteStack", self.cloudformation.delete_stack, StackName=stack, **kwargs
        )

    def events(
        self,
        stack_id: str,
        operation: Operation | None = None,
        *,
        since: dt.datetime | None = None,
        total: int | None = None,
    ) -> EventStream:
        """The events of our `operation`, else commentary on whatever runs from `since` on."""
        if operation is not None:
            return EventStream(
                self.cloudformation,
                stack_id,
                self.log,
                since=operation.since,
                token=operation.token,
                total=total,
            )
        return EventStream(self.cloudformation, stack_id, self.log, since=since or self.now())

    def _start(self, operation: str, method: Callable[..., Any], **kwargs: Any) -> Operation:
        """Call an operation that starts stack work, with a token that marks its events."""
        token = client_token(operation.lower())
        sent = self.now()
        response = self._call(operation, method, ClientRequestToken=token, **kwargs)
        return Operation(token, min(sent, _server_time(response) or sent) - START_MARGIN)

    def wait_for_stack(self, stack_id: str, events: EventStream) -> dict[str, Any]:
        """Poll until the stack leaves *_IN_PROGRESS, streaming its events; return it."""
        deadline = self.clock() + self.wait.stack_timeout
        while True:
            response = self._poll(
                "DescribeStacks", self.cloudformation.describe_stacks, StackName=stack_id
            )
            events.poll()
            stack = (response or {}).get("Stacks", [None])[0]
            if stack is not None:
                status = stack["StackStatus"]
                if (not status.endswith("_IN_PROGRESS")) or (status == "REVIEW_IN_PROGRESS"):
                    return stack
            if self.clock() >= deadline:
                raise WaitTimeoutError(
                    what=f"stack {self.log.stack}",
                    status=stack["StackStatus"] if stack else "unknown",
                    seconds=self.wait.stack_timeout,
                )
            self.sleep(self.wait.stack_delay)

    def wait_for_status(self, stack_id: str, events: EventStream, expected: str) -> dict[str, Any]:
        """Wait, then insist on the expected final status (never trust the waiter alone)."""
        stack = self.wait_for_stack(stack_id, events)
        status = stack["StackStatus"]
        if status != expected:
            reason = stack.get("StackStatusReason")
            raise StackOperationFailedError(
                stack=self.log.stack,
                status=status,
                expected=expected,
                reason=f" ({reason})" if reason else "",
            )
        return stack

    def _poll(self, operation: str, method: Callable[..., Any], **kwargs: Any) -> Any:
        """One poll; throttling that outlasted botocore's retries just skips this poll."""
        try:
            return method(**kwargs)
        except AWS_ERRORS as error:
            if isinstance(error, botocore.exceptions.ClientError) and is_throttling(error):
                self.log(f"({operation} throttled; polling again)")
                return None
            raise self._error(operation, error) from None

    def _call(self, operation: str, method: Callable[..., Any], **kwargs: Any) -> Any:
        try:
            return method(**kwargs)
        except AWS_ERRORS as error:
            if (operation == "DescribeStacks") and isinstance(
                error, botocore.exceptions.ClientError
            ):
                raise  # describe_stack tells "does not exist" from the other errors
            raise self._error(operation, error) from None

    def _error(self, operation: str, error: Exception) -> AwsCallError:
        return call_failure(f"cloudformation:{operation} on {self.log.stack}", error)


def _server_time(response: Mapping[str, Any]) -> dt.datetime | None:
    """The server's clock from the response's Date header, when it sent one."""
    headers = (response or {}).get("ResponseMetadata", {}).get("HTTPHeaders", {})
    try:
        return email.utils.parsedate_to_datetime(headers["date"]).astimezone(dt.UTC)
    except (KeyError, TypeError, ValueError):
        return None
