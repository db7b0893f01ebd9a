"""Stack events streamed while waiting, and the failures kept for the final summary.

Only the events of the operation being waited on count. CloudFormation stamps each event
with the ClientRequestToken of the call that caused it, so an event carrying another token
belongs to an earlier operation; an event without a token (moto's) counts when it is not
older than the operation's start. History therefore never comes back as this run's
failures, whatever happened to earlier polls (a throttled one just prints nothing).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from deployer.aws import AWS_ERRORS
from deployer.output import StackLog

# Resource states that end a resource's part in an operation, for the progress line.
DONE_SUFFIXES = ("_COMPLETE", "DELETE_SKIPPED")


@dataclass(frozen=True)
class Failure:
    """One resource that failed, with CloudFormation's reason."""

    stack: str
    logical_id: str
    resource_type: str
    status: str
    reason: str

    def line(self) -> str:
        """The failure as one log line."""
        return f"{self.status} {self.resource_type} {self.logical_id}: {self.reason}"


def format_event(event: dict[str, Any]) -> str:
    """One event as one line: time, status, type, logical id, reason."""
    when = event.get("Timestamp")
    stamp = when.strftime("%H:%M:%S") if isinstance(when, dt.datetime) else str(when or "")
    parts = [
        stamp,
        event.get("ResourceStatus", ""),
        event.get("ResourceType", ""),
        event.get("LogicalResourceId", ""),
    ]
    reason = event.get("ResourceStatusReason")
    line = " ".join(str(part) for part in parts if part)
    return f"{line}: {reason}" if reason else line


@dataclass
class EventStream:
    """Prints each event of one operation once, oldest first, with a progress line.

    `token` is the operation's ClientRequestToken; without one (waiting on someone else's
    operation) the events are commentary: printed, never counted as failures.
    """

    cloudformation: Any
    stack_id: str
    log: StackLog
    since: dt.datetime
    token: str | None = None
    # Resources the operation touches, for "n/N resources complete" (None: unknown).
    total: int | None = None
    failures: list[Failure] = field(default_factory=list)
    # Resources a delete left in place (DeletionPolicy Retain), as "Type LogicalId".
    retained: list[str] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set)
    _done: set[str] = field(default_factory=set)
    _reported: int = 0

    @property
    def ours(self) -> bool:
        """True when the stream follows an operation this run started."""
        return self.token is not None

    def belongs(self, event: dict[str, Any]) -> bool:
        """True when the event was caused by the operation followed."""
        token = event.get("ClientRequestToken")
        if self.token and token:
            return bool(token == self.token)
        return bool(event["Timestamp"] >= self.since)

    def poll(self) -> None:
        """Print the operation's events since the last poll; remember failures."""
        fresh: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = self._page(token)
            if page is None:
                return
            older = False
            for event in page.get("StackEvents", []):  # newest first
                if (event["EventId"] in self._seen) or (
                    (event["Timestamp"] < self.since) and not self.belongs(event)
                ):
                    older = True  # everything after this was seen or predates the operation
                    break
                self._seen.add(event["EventId"])
                if self.belongs(event):
                    fresh.append(event)
            token = page.get("NextToken")
            if older or not token:
                break
        for event in reversed(fresh):
            self.log(format_event(event))
            if self.ours:
                self._record(event)
        self._progress()

    def _record(self, event: dict[str, Any]) -> None:
        status = event.get("ResourceStatus", "")
        kind, logical = event.get("ResourceType", ""), event.get("LogicalResourceId", "")
        if event.get("PhysicalResourceId") != self.stack_id and status.endswith(DONE_SUFFIXES):
            self._done.add(logical)
        if status == "DELETE_SKIPPED":
            self.retained.append(f"{kind} {logical}")
        if status.endswith("_FAILED"):
            self.failures.append(
                Failure(
                    stack=self.log.stack,
                    logical_id=logical,
                    resource_type=kind,
                    status=status,
                    reason=event.get("ResourceStatusReason") or "(no reason given)",
                )
            )

    def _progress(self) -> None:
        done = len(self._done)
        if self.total and (done != self._reported):
            self._reported = done
            self.log(f"{min(done, self.total)}/{self.total} resources complete")

    def _page(self, token: str | None) -> dict[str, Any] | None:
        kwargs = {"StackName": self.stack_id}
        if token:
            kwargs["NextToken"] = token
        try:
            return dict(self.cloudformation.describe_stack_events(**kwargs))
        except AWS_ERRORS as error:
            # Events are commentary: a throttled or vanished event feed must not fail the deploy.
            first = (str(error).splitlines() or [type(error).__name__])[0]
            self.log(f"(events unavailable: {first}; polling again)")
            return None
