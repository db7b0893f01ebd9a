"""One stack through its states: settle what is there, then change set, preview, execute."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from deployer.changeset import ChangeSetRequest, Deployer
from deployer.errors import (
    ChangeSetFailedError,
    DeclinedError,
    DeployError,
    InvalidInputError,
    StackNotOursError,
    StackUnusableError,
    UpdateRollbackFailedError,
)
from deployer.events import Failure
from deployer.output import table
from deployer.stackspec import MAX_TEMPLATE_BODY, StackSpec, carries_tags

Confirm = Callable[[str], bool]
# Stable states an update can start from.
UPDATABLE = {
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_COMPLETE",
}
NEXT_STEP = {
    "ROLLBACK_FAILED": "a failed create could not roll back: see its events, delete it "
    "(aws cloudformation delete-stack --stack-name {stack}, with --retain-resources for what "
    "cannot be deleted) and rerun",
    "DELETE_FAILED": "a delete did not finish: see the failed resources, fix them or delete "
    "with --retain-resources (aws cloudformation delete-stack --stack-name {stack}) and rerun",
    "IMPORT_ROLLBACK_FAILED": "an import could not roll back: see its events and repair it "
    "in the console, then rerun",
}


@dataclass
class Outcome:
    """What happened to one stack, for the summary and for tests."""

    stack: str
    result: str = "not started"
    change_sets: int = 0
    changes: list[dict[str, Any]] = field(default_factory=list)
    stack_description: dict[str, Any] | None = None


@dataclass
class StackFlow:
    """Deploys or deletes one stack with the change-set steps of a `Deployer`."""

    deployer: Deployer
    failures: list[Failure]
    outcomes: list[Outcome]
    confirm: Confirm
    yes: bool = False
    no_execute: bool = False
    region: str = "us-east-1"

    @property
    def log(self) -> Any:
        """The stack-prefixed writer."""
        return self.deployer.log

    def settle(self, spec: StackSpec) -> dict[str, Any] | None:
        """The stack ready for a change set: None to create, else its description."""
        d = self.deployer
        while True:
            stack = d.describe_stack(spec.name)
            if stack is None:
                return None
            status = stack["StackStatus"]
            if (status == "REVIEW_IN_PROGRESS") or (status in UPDATABLE):
                return stack
            if status.endswith("_IN_PROGRESS"):
                # Someone else's operation (or our interrupted one): wait, never delete.
                self.log(f"{status}: an operation is running; waiting for it to finish")
                self._wait(stack["StackId"], None)
                continue
            if status == "ROLLBACK_COMPLETE":
                if not carries_tags(stack, spec.tags):
                    raise StackNotOursError(stack=spec.name, status=status, tags=_tags(spec.tags))
                self.log(
                    "ROLLBACK_COMPLETE (a first create failed) and tagged as ours: "
                    "deleting it so it can be created again"
                )
                self._wait(stack["StackId"], "DELETE_COMPLETE", delete=True)
                return None
            if status == "UPDATE_ROLLBACK_FAILED":
                raise UpdateRollbackFailedError(stack=spec.name, region=self.region)
            if status in NEXT_STEP:
                raise StackUnusableError(
                    stack=spec.name,
                    status=status,
                    next_step=NEXT_STEP[status].format(stack=spec.name),
                )
            raise StackUnusableError(
                stack=spec.name, status=status, next_step="unexpected state; inspect it and rerun"
            )

    def deploy(self, spec: StackSpec, template_url: str | None = None) -> Outcome:
        """Create or update the stack; skip without a change set when it is up to date."""
        return self._tracked(spec, lambda outcome: self._deploy(spec, template_url, outcome))

    def destroy(self, spec: StackSpec) -> Outcome:
        """Delete the stack when it exists and is ours; wait and report retained resources."""
        return self._tracked(spec, lambda outcome: self._destroy(spec, outcome))

    def _tracked(self, spec: StackSpec, step: Callable[[Outcome], None]) -> Outcome:
        # Recorded before the first call, so the summary names a stack that failed midway.
        outcome = Outcome(spec.name)
        self.outcomes.append(outcome)
        try:
            step(outcome)
        except DeclinedError:
            outcome.result = "declined"
            raise
        except DeployError as error:
            outcome.result = f"failed ({type(error).__name__})"
            raise
        return outcome

    def _deploy(self, spec: StackSpec, template_url: str | None, outcome: Outcome) -> None:
        d = self.deployer
        missing = spec.missing_parameters()
        if missing:
            raise InvalidInputError(
                reason=f"stack {spec.name} needs parameters {', '.join(missing)} that have no "
                "default and no value from the deployer"
            )
        stack = self.settle(spec)
        exists = (stack is not None) and (stack["StackStatus"] != "REVIEW_IN_PROGRESS")
        spec = spec.settled(stack if exists else None)
        if exists:
            difference = spec.difference(stack, d.deployed_template(spec.name))
            if difference is None:
                self.log("up to date: template, parameters and tags match; no change set created")
                outcome.result, outcome.stack_description = "up to date", stack
                return
            self.log(f"update needed: {difference}")
        change_set_type = (
            "UPDATE"
            if (stack is not None) and (stack["StackStatus"] != "REVIEW_IN_PROGRESS")
            else "CREATE"
        )
        if (template_url is None) and (len(spec.body.encode()) > MAX_TEMPLATE_BODY):
            raise InvalidInputError(
                reason=f"template of {spec.name} is over {MAX_TEMPLATE_BODY} bytes and no "
                "artifact bucket is available to send it through S3"
            )
        request = ChangeSetRequest(
            stack_name=spec.name,
            change_set_type=change_set_type,
            parameters=spec.parameters,
            tags=spec.tags,
            capabilities=spec.capabilities,
            template_body=None if template_url else spec.body,
            template_url=template_url,
        )
        created = d.create_change_set(request)
        if created is None:
            self.log("no changes: CloudFormation refused an empty update; no change set left")
            outcome.result, outcome.stack_description = "no changes", stack
            return
        change_set_id, stack_id = created
        outcome.change_sets += 1
        self.log(f"change set {request.change_set_name} ({change_set_type}) created; computing")
        try:
            change_set = d.wait_for_change_set(change_set_id, spec.name)
        except ChangeSetFailedError:
            # A failed change set is useless to the next run: remove it, keep the stack.
            d.delete_change_set(change_set_id)
            self.log("failed change set deleted; the stack itself is unchanged")
            raise
        if change_set.empty:
            d.delete_change_set(change_set_id)
            self.log("no changes: CloudFormation found nothing to change; empty change set deleted")
            outcome.result = "no changes"
            outcome.stack_description = stack
            return
        outcome.changes = change_set.changes
        self.preview(change_set.changes, change_set_type)
        if self.no_execute:
            self.log(
                f"not executed (--no-execute); run: aws cloudformation execute-change-set "
                f"--change-set-name {change_set_id}"
            )
            outcome.result = "change set ready"
            return
        if (not self.yes) and (not self.confirm(f"Execute the change set on {spec.name}? [y/N] ")):
            d.delete_change_set(change_set_id)
            raise DeclinedError(stack=spec.name)
        expected = "CREATE_COMPLETE" if change_set_type == "CREATE" else "UPDATE_COMPLETE"
        events = d.events(stack_id)
        d.execute_change_set(change_set_id)
        try:
            outcome.stack_description = d.wait_for_status(stack_id, events, expected)
        finally:
            self.failures.extend(events.failures)
        outcome.result = "created" if change_set_type == "CREATE" else "updated"
        self.log(f"{expected}")
        return

    def _destroy(self, spec: StackSpec, outcome: Outcome) -> None:
        d = self.deployer
        stack = d.describe_stack(spec.name)
        if (
            (stack is not None)
            and stack["StackStatus"].endswith("_IN_PROGRESS")
            and (stack["StackStatus"] != "REVIEW_IN_PROGRESS")
        ):
            self.log(f"{stack['StackStatus']}: an operation is running; waiting for it to finish")
            self._wait(stack["StackId"], None)
            stack = d.describe_stack(spec.name)
        if stack is None:
            self.log("does not exist; nothing to delete")
            outcome.result = "absent"
            return
        if not carries_tags(stack, spec.tags):
            raise StackNotOursError(
                stack=spec.name, status=stack["StackStatus"], tags=_tags(spec.tags)
            )
        if (not self.yes) and (
            not self.confirm(f"Delete stack {spec.name} and its resources? [y/N] ")
        ):
            raise DeclinedError(stack=spec.name)
        retained = self._wait(stack["StackId"], "DELETE_COMPLETE", delete=True)
        for resource in retained:
            self.log(f"retained (DeletionPolicy Retain): {resource}")
        outcome.result = "deleted"
        return

    def preview(self, changes: list[dict[str, Any]], change_set_type: str) -> None:
        """The change set as a table: action, logical id, type, replacement highlighted."""
        if not changes:
            # CloudFormation lists no resource changes when only stack-level settings change
            # (moto also lists none for parameter-only updates); the execution still applies them.
            self.log(f"{change_set_type}: no resource changes listed")
            return
        rows = []
        for change in changes:
            rc = change.get("ResourceChange", change)
            replacement = rc.get("Replacement", "")
            mark = {"True": "REPLACE !!", "Conditional": "MAY REPLACE !"}.get(replacement, "-")
            rows.append(
                [
                    rc.get("Action", ""),
                    rc.get("LogicalResourceId", ""),
                    rc.get("ResourceType", ""),
                    mark,
                ]
            )
        rows.sort(key=lambda row: (row[0], row[1]))
        self.log(f"{change_set_type}: {len(rows)} resource change(s)")
        for line in table(rows, ["Action", "LogicalId", "Type", "Replacement"]):
            self.log(f"  {line}")

    def _wait(self, stack_id: str, expected: str | None, *, delete: bool = False) -> list[str]:
        d = self.deployer
        events = d.events(stack_id)
        if delete:
            d.delete_stack(stack_id)
        try:
            if expected is None:
                d.wait_for_stack(stack_id, events)
            else:
                d.wait_for_status(stack_id, events, expected)
        finally:
            self.failures.extend(events.failures)
        return events.retained


def _tags(tags: dict[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(tags.items()))
