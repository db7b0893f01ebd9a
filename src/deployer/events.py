"""Stack events streamed while waiting, and the failures kept for the final summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions

from deployer.output import StackLog


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
    stamp = when.strftime("%H:%M:%S") if hasattr(when, "strftime") else str(when or "")
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
    """Prints each new event of one stack once, oldest first."""

    cloudformation: Any
    stack_id: str
    log: StackLog
    failures: list[Failure] = field(default_factory=list)
    # Resources a delete left in place (DeletionPolicy Retain), as "Type LogicalId".
    retained: list[str] = field(default_factory=list)
    _last_seen: str | None = None

    def mark(self) -> None:
        """Remember the newest event so only later ones are printed."""
        page = self._page(None)
        events = page.get("StackEvents", []) if page else []
        self._last_seen = events[0]["EventId"] if events else None

    def poll(self) -> None:
        """Print the events since the last poll; remember failures."""
        fresh: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            page = self._page(token)
            if page is None:
                return
            for event in page.get("StackEvents", []):  # newest first
                if event["EventId"] == self._last_seen:
                    break
                fresh.append(event)
            else:
                token = page.get("NextToken")
                if token:
                    continue
            break
        if fresh:
            self._last_seen = fresh[0]["EventId"]
        for event in reversed(fresh):
            self.log(format_event(event))
            status = event.get("ResourceStatus", "")
            if status == "DELETE_SKIPPED":
                self.retained.append(
                    f"{event.get('ResourceType', '')} {event.get('LogicalResourceId', '')}"
                )
            if status.endswith("_FAILED"):
                self.failures.append(
                    Failure(
                        stack=self.log.stack,
                        logical_id=event.get("LogicalResourceId", ""),
                        resource_type=event.get("ResourceType", ""),
                        status=status,
                        reason=event.get("ResourceStatusReason") or "(no reason given)",
                    )
                )

    def _page(self, token: str | None) -> dict[str, Any] | None:
        kwargs = {"StackName": self.stack_id}
        if token:
            kwargs["NextToken"] = token
        try:
            return self.cloudformation.describe_stack_events(**kwargs)
        except botocore.exceptions.ClientError as error:
            # Events are commentary: a throttled or vanished event feed must not fail the deploy.
            self.log(f"(events unavailable: {error})")
            return None
