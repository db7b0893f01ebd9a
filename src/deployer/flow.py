"""One stack through its states: settle what is there, then change set, preview, execute."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from deployer.account_logging import PARAMETER as ACCOUNT_LOGGING
from deployer.changeset import ChangeSet, ChangeSetRequest, Deployer, Operation
from deployer.errors import (
    ChangeSetFailedError,
    DataLossError,
    DeclinedError,
    DeployError,
    InvalidInputError,
    StackNotOursError,
    StackOperationFailedError,
    StackUnusableError,
    UpdateRollbackFailedError,
)
from deployer.events import EventStream, Failure
from deployer.preview import render
from deployer.rollback import (
    DEFAULT_MONITOR_MINUTES,
    RollbackPlan,
    critical_alarms,
    plan_rollback,
)
from deployer.safety import (
    ALLOW_UPDATES,
    data_losses,
    protected_resources,
    stack_policy,
    with_operator_statements,
)
from deployer.stackspec import MAX_TEMPLATE_BODY, StackSpec, deployed_parameters

Confirm = Callable[[str], bool]
# A check run just before a change set is created (e.g. the processor function exists).
Check = Callable[[StackSpec], None]
# Stable states an update can start from.
UPDATABLE = {
    "CREATE_COMPLETE",
    "UPDATE_COMPLETE",
    "UPDATE_ROLLBACK_COMPLETE",
    "IMPORT_COMPLETE",
    "IMPORT_ROLLBACK_COMPLETE",
}
# A failed operation kept by --disable-rollback: CloudFormation lets it be updated again
# (or rolled back with rollback-stack); never "up to date", since it did not finish.
KEPT_FAILED = {"CREATE_FAILED", "UPDATE_FAILED"}
NEXT_STEP = {
    "ROLLBACK_FAILED": "a failed create could not roll back: see its events, delete it "
    "(aws cloudformation delete-stack --stack-name {stack}, with --retain-resources for what "
    "cannot be deleted) and rerun",
    "DELETE_FAILED": "a delete did not finish: see the failed resources, fix them or delete "
    "with --retain-resources (aws cloudformation delete-stack --stack-name {stack}) and rerun",
    "IMPORT_ROLLBACK_FAILED": "an import could not roll back: see its events and repair it "
    "in the console, then rerun",
}
# IAM eventual consistency: API Gateway checks a role seconds old and may not see it yet.
ROLE_NOT_READY = "does not have required permissions"
ROLE_NOT_READY_TYPE = "AWS::ApiGateway::Account"
ACCOUNT_ATTEMPTS = 3
ACCOUNT_RETRY_DELAY = 30.0


@dataclass
class Outcome:
    """What happened to one stack, for the summary, Ctrl-C and tests."""

    stack: str
    result: str = "not started"
    change_sets: int = 0
    changes: list[dict[str, Any]] = field(default_factory=list)
    stack_description: dict[str, Any] | None = None
    # An operation this run started that has not finished (named on Ctrl-C).
    in_flight: str | None = None
    # A change set created and neither executed nor deleted yet.
    pending_change_set: str | None = None
    # Resources a successful operation could not delete (CloudFormation dropped them from
    # the stack after three attempts): warnings, not failures.
    left_behind: list[Failure] = field(default_factory=list)


def role_not_ready(failures: list[Failure]) -> bool:
    """True when the operation failed first on API Gateway not yet seeing a new IAM role."""
    return (
        bool(failures)
        and (failures[0].resource_type == ROLE_NOT_READY_TYPE)
        and (ROLE_NOT_READY in failures[0].reason)
    )


def operation_start(stack: Mapping[str, Any]) -> dt.datetime | None:
    """When the stack's current (or last) operation started."""
    times = [stack.get(key) for key in ("CreationTime", "LastUpdatedTime", "DeletionTime")]
    present = [when for when in times if when is not None]
    return max(present) if present else None


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
    disable_rollback: bool = False
    allow_replacement: frozenset[str] = frozenset()
    monitor_minutes: int = DEFAULT_MONITOR_MINUTES
    # Only to read the state of the stack's alarms for the rollback configuration.
    cloudwatch: Any = None
    attempts: int = ACCOUNT_ATTEMPTS
    retry_delay: float = ACCOUNT_RETRY_DELAY

    @property
    def log(self) -> Any:
        """The stack-prefixed writer."""
        return self.deployer.log

    def settle(self, spec: StackSpec, outcome: Outcome | None = None) -> dict[str, Any] | None:
        """The stack ready for a change set: None to create, else its (our) description."""
        d = self.deployer
        while True:
            stack = d.describe_stack(spec.name)
            if stack is None:
                return None
            status = stack["StackStatus"]
            if status.endswith("_IN_PROGRESS") and (status != "REVIEW_IN_PROGRESS"):
                # Someone else's operation (or our interrupted one): wait, never delete.
                self.log(f"{status}: an operation is running; waiting for it to finish")
                self._follow(stack)
                continue
            if status in {"REVIEW_IN_PROGRESS", "ROLLBACK_COMPLETE"} | UPDATABLE | KEPT_FAILED:
                self.check_ours(spec, stack)
            if (status == "REVIEW_IN_PROGRESS") or (status in UPDATABLE | KEPT_FAILED):
                return stack
            if status == "ROLLBACK_COMPLETE":
                self.log(
                    "ROLLBACK_COMPLETE (a first create failed) and tagged as ours: "
                    "deleting it so it can be created again"
                )
                self._delete(spec, stack, outcome or Outcome(spec.name))
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

    def check_ours(self, spec: StackSpec, stack: Mapping[str, Any]) -> None:
        """Refuse, before any change, a stack that does not carry our tags."""
        missing = spec.missing_tags(stack)
        if missing:
            raise StackNotOursError(
                stack=spec.name, status=stack["StackStatus"], missing=", ".join(missing)
            )

    def deploy(
        self, spec: StackSpec, template_url: str | None = None, check: Check | None = None
    ) -> Outcome:
        """Create or update the stack; skip without a change set when it is up to date."""
        return self._tracked(
            spec, lambda outcome: self._attempts(spec, template_url, check, outcome)
        )

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

    def _attempts(
        self, spec: StackSpec, template_url: str | None, check: Check | None, outcome: Outcome
    ) -> None:
        """Deploy, again when API Gateway refused a seconds-old role (bounded, rolled back)."""
        for attempt in range(1, self.attempts + 1):
            failures: list[Failure] = []
            try:
                self._deploy(spec, template_url, check, outcome, failures, attempt > 1)
                return
            except StackOperationFailedError:
                retry = (attempt < self.attempts) and (not self.disable_rollback)
                if not (retry and role_not_ready(failures)):
                    raise
                retried, failures = failures, []  # a failure retried is not the run's failure
            finally:
                self.failures.extend(failures)
            self.log(
                f"{ROLE_NOT_READY_TYPE} refused the new logging role ({retried[0].reason}): "
                f"IAM had not propagated it yet; retrying in {self.retry_delay:.0f} s "
                f"(attempt {attempt + 1} of {self.attempts})"
            )
            self.deployer.sleep(self.retry_delay)

    def _deploy(
        self,
        spec: StackSpec,
        template_url: str | None,
        check: Check | None,
        outcome: Outcome,
        failures: list[Failure],
        confirmed: bool,
    ) -> None:
        d = self.deployer
        stack = self.settle(spec, outcome)
        exists = (stack is not None) and (stack["StackStatus"] != "REVIEW_IN_PROGRESS")
        spec = spec.settled(stack if exists else None)
        missing = spec.missing_parameters()
        if missing:
            raise InvalidInputError(
                reason=f"stack {spec.name} needs parameters {', '.join(missing)} that have no "
                "default and no value: pass --parameter KEY=VALUE"
            )
        deployed_template = None
        if exists:
            assert stack is not None
            deployed_template = d.deployed_template(spec.name)
            status = stack["StackStatus"]
            difference = (
                f"{status} (a failed operation kept by --disable-rollback)"
                if status in KEPT_FAILED
                else spec.difference(stack, deployed_template)
            )
            if difference is None:
                self.ensure_policy(spec)
                self.log("up to date: template, parameters and tags match; no change set created")
                outcome.result, outcome.stack_description = "up to date", stack
                return
            self.log(f"update needed: {difference}")
            if not isinstance(deployed_template, dict):
                deployed_template = None  # not JSON (YAML from another tool): no property diff
        self.check_account_logging(spec, confirmed)
        if check is not None:
            check(spec)
        rollback = self.rollback_plan(spec) if exists else None
        change_set_type = "UPDATE" if exists else "CREATE"
        if (template_url is None) and (len(spec.body.encode()) > MAX_TEMPLATE_BODY):
            raise InvalidInputError(
                reason=f"template of {spec.name} is over {MAX_TEMPLATE_BODY} bytes and no "
                "artifact bucket is available to send it through S3"
            )
        request = ChangeSetRequest(
            stack_name=spec.name,
            change_set_type=change_set_type,
            parameters=spec.parameters,
            previous=spec.previous,
            tags=spec.tags,
            capabilities=spec.capabilities,
            template_body=None if template_url else spec.body,
            template_url=template_url,
            role_arn=spec.role_arn,
            notification_arns=spec.notification_arns,
            rollback=rollback.configuration() if rollback else None,
        )
        created = d.create_change_set(request)
        if created is None:
            self.log("no changes: CloudFormation refused an empty update; no change set left")
            outcome.result, outcome.stack_description = "no changes", stack
            return
        change_set_id, _ = created
        outcome.change_sets += 1
        outcome.pending_change_set = change_set_id
        self.log(f"change set {request.change_set_name} ({change_set_type}) created; computing")
        try:
            change_set = d.wait_for_change_set(change_set_id, spec.name)
        except ChangeSetFailedError:
            # A failed change set is useless to the next run: remove it, keep the stack.
            self._discard(outcome, change_set_id)
            self.log("failed change set deleted; the stack itself is unchanged")
            raise
        if change_set.empty:
            self._discard(outcome, change_set_id)
            self.log("no changes: CloudFormation found nothing to change; empty change set deleted")
            outcome.result, outcome.stack_description = "no changes", stack
            return
        outcome.changes = change_set.changes
        self.preview(spec, change_set, change_set_type, deployed_template, rollback)
        losses = [
            loss
            for loss in data_losses(change_set.changes, deployed_template)
            if loss.logical_id not in self.allow_replacement
        ]
        if self.no_execute:
            for loss in losses:
                self.log(f"WARNING: executing this change set would {loss.line()}")
            self.log(
                f"not executed (--no-execute); run: aws cloudformation execute-change-set "
                f"--change-set-name {change_set_id}"
            )
            outcome.result = "change set ready"
            return
        if losses:
            self._discard(outcome, change_set_id)
            raise DataLossError(
                stack=spec.name,
                losses="; ".join(loss.line() for loss in losses),
                flags=" ".join(f"--allow-replacement {loss.logical_id}" for loss in losses),
            )
        question = f"Execute the change set on {spec.name}? [y/N] "
        if (not self.yes) and (not confirmed) and (not self.confirm(question)):
            self._discard(outcome, change_set_id)
            raise DeclinedError(stack=spec.name, detail="change set deleted, nothing changed")
        expected = "CREATE_COMPLETE" if change_set_type == "CREATE" else "UPDATE_COMPLETE"
        self.execute(spec, change_set, deployed_template, expected, outcome, failures)
        outcome.result = "created" if change_set_type == "CREATE" else "updated"
        self.log(expected)

    def execute(
        self,
        spec: StackSpec,
        change_set: ChangeSet,
        deployed_template: Mapping[str, Any] | None,
        expected: str,
        outcome: Outcome,
        failures: list[Failure],
    ) -> None:
        """Execute, lifting the stack policy for the allowed replacements until it ends."""
        d = self.deployer
        lifted = self.lift_policy(spec, change_set.changes, deployed_template)
        succeeded = False
        try:
            operation = d.execute_change_set(
                change_set.change_set_id, disable_rollback=self.disable_rollback
            )
            outcome.pending_change_set = None
            events = d.events(change_set.stack_id, operation, total=len(change_set.changes))
            what = f"{expected.split('_')[0]} started by this run"
            outcome.stack_description = self._run(outcome, what, events, expected, failures)
            succeeded = True
        finally:
            if lifted:  # also when the update failed or was interrupted
                assert deployed_template is not None  # lift_policy lifts only on an update
                self.put_back_policy(spec, deployed_template, lifted, succeeded)
        if not lifted:
            self.ensure_policy(spec)

    def put_back_policy(
        self,
        spec: StackSpec,
        deployed_template: Mapping[str, Any],
        lifted: list[str],
        succeeded: bool,
    ) -> None:
        """The policy after a lifted update: the new template's once it succeeded, else
        every table of either template (a failed update rolls back to the old tables, an
        interrupted one may still end either way)."""
        if succeeded:
            policy = spec.stack_policy
        else:
            both = {**deployed_template.get("Resources", {}), **spec.template.get("Resources", {})}
            policy = stack_policy({"Resources": both})
        self.deployer.set_stack_policy(spec.name, policy or ALLOW_UPDATES)
        self.log(f"stack policy put back: {', '.join(lifted)} protected again")

    def _run(
        self,
        outcome: Outcome,
        what: str,
        events: EventStream,
        expected: str,
        failures: list[Failure],
    ) -> dict[str, Any]:
        """Wait for our operation to end in `expected`; while it runs it is in flight."""
        outcome.in_flight = what
        try:
            stack = self.deployer.wait_for_status(events.stack_id, events, expected)
        except StackOperationFailedError:
            outcome.in_flight = None  # it ended, just not as expected
            failures.extend(events.failures)
            raise
        except BaseException:
            failures.extend(events.failures)
            raise
        outcome.in_flight = None
        # The operation succeeded: a resource that failed on the way is one CloudFormation
        # could not delete in the cleanup (an old, replaced or removed one), which it then
        # dropped from the stack. The stack is as wanted; the old resource is left over.
        outcome.left_behind.extend(events.failures)
        for failure in events.failures:
            self.log(
                f"WARNING: {failure.line()}; the operation succeeded and CloudFormation "
                "removed the resource from the stack: delete the old resource yourself"
            )
        return stack

    def rollback_plan(self, spec: StackSpec) -> RollbackPlan:
        """The rollback triggers for an update of the deployed stack."""
        watched = bool(critical_alarms(spec.template)) and (self.cloudwatch is not None)
        resources = self.deployer.stack_resources(spec.name) if watched else {}
        return plan_rollback(self.cloudwatch, resources, spec.template, self.monitor_minutes)

    def ensure_policy(self, spec: StackSpec) -> None:
        """Give the stack its policy when it carries another one (or none)."""
        if spec.stack_policy is None:
            return
        deployed = self.deployer.stack_policy(spec.name)
        wanted = with_operator_statements(spec.stack_policy, deployed)
        if deployed == wanted:
            return
        tables = ", ".join(protected_resources(spec.template))
        denied = f"Update:Replace and Update:Delete denied on {tables}"
        if self.no_execute:  # executes nothing, sets nothing
            self.log(
                "the stack does not carry our stack policy; a run without --no-execute sets "
                f"it ({denied})"
            )
            return
        self.deployer.set_stack_policy(spec.name, wanted)
        kept = len(wanted["Statement"]) - len(spec.stack_policy["Statement"])
        also = f"; kept {kept} statement(s) of the stack's own policy" if kept else ""
        self.log(f"stack policy set: {denied}{also}")

    def lift_policy(
        self,
        spec: StackSpec,
        changes: Iterable[Mapping[str, Any]],
        deployed_template: Mapping[str, Any] | None,
    ) -> list[str]:
        """Allow, until the update ends, the replacements the operator named; return them."""
        if deployed_template is None:
            return []  # a create: the stack has no policy yet
        # Every replacement or removal of a stateful resource, whatever its DeletionPolicy.
        touched = {loss.logical_id for loss in data_losses(changes, None)}
        lifted = sorted(
            touched & set(self.allow_replacement) & set(protected_resources(deployed_template))
        )
        if lifted:
            temporary = stack_policy(deployed_template, allowed=lifted)
            assert temporary is not None
            self.deployer.set_stack_policy(spec.name, temporary)
            self.log(
                f"stack policy lifted for {', '.join(lifted)} (--allow-replacement) until "
                "this update ends"
            )
        return lifted

    def check_account_logging(self, spec: StackSpec, confirmed: bool) -> None:
        """A flip of ManageApiGatewayAccount true -> false stops logging region-wide: ask."""
        before = spec.deployed.get(ACCOUNT_LOGGING)
        after = spec.effective_parameters().get(ACCOUNT_LOGGING)
        if (before != "true") or (after != "false"):
            return
        warning = logging_stops(self.region, f"{ACCOUNT_LOGGING} true -> false deletes")
        self.log(f"WARNING: {warning}")
        if self.yes or self.no_execute or confirmed:
            return
        if not self.confirm(f"Stop API Gateway logging for every API in {self.region}? [y/N] "):
            raise DeclinedError(stack=spec.name, detail="no change set created, nothing changed")

    def preview(
        self,
        spec: StackSpec,
        change_set: ChangeSet,
        change_set_type: str,
        deployed_template: Mapping[str, Any] | None,
        rollback: RollbackPlan | None,
    ) -> None:
        """Parameters old -> new, resource and property changes, permissions, rollback."""
        changes = spec.parameter_changes()
        if changes:
            self.log(f"parameters: {len(changes)} change(s)")
            for change in changes:
                self.log(f"  {change.line()}")
        for line in render(change_set.changes, change_set_type, deployed_template, spec.template):
            self.log(line)
        for line in rollback.lines() if rollback else []:
            self.log(f"rollback: {line}")

    def _discard(self, outcome: Outcome, change_set_id: str) -> None:
        self.deployer.delete_change_set(change_set_id)
        outcome.pending_change_set = None

    def _destroy(self, spec: StackSpec, outcome: Outcome) -> None:
        d = self.deployer
        stack = d.describe_stack(spec.name)
        if (
            (stack is not None)
            and stack["StackStatus"].endswith("_IN_PROGRESS")
            and (stack["StackStatus"] != "REVIEW_IN_PROGRESS")
        ):
            self.log(f"{stack['StackStatus']}: an operation is running; waiting for it to finish")
            self._follow(stack)
            stack = d.describe_stack(spec.name)
        if stack is None:
            self.log("does not exist; nothing to delete")
            outcome.result = "absent"
            return
        self.check_ours(spec, stack)
        question = f"Delete stack {spec.name} and its resources? [y/N] "
        owns_logging = deployed_parameters(stack).get(ACCOUNT_LOGGING) == "true"
        if owns_logging:
            self.log(f"WARNING: {logging_stops(self.region, 'deleting this stack deletes')}")
            question = (
                f"Delete stack {spec.name} and stop API Gateway logging for every API in "
                f"{self.region}? [y/N] "
            )
        if (not self.yes) and (not self.confirm(question)):
            raise DeclinedError(stack=spec.name, detail="nothing deleted")
        retained = self._delete(spec, stack, outcome)
        for resource in retained:
            self.log(f"retained (DeletionPolicy Retain): {resource}")
        outcome.result = "deleted"

    def _delete(self, spec: StackSpec, stack: Mapping[str, Any], outcome: Outcome) -> list[str]:
        d = self.deployer
        total = len(d.stack_resources(stack["StackId"]))
        operation: Operation = d.delete_stack(stack["StackId"], spec.role_arn)
        events = d.events(stack["StackId"], operation, total=total or None)
        failures: list[Failure] = []
        try:
            self._run(outcome, "DELETE started by this run", events, "DELETE_COMPLETE", failures)
        finally:
            self.failures.extend(failures)
        return events.retained

    def _follow(self, stack: Mapping[str, Any]) -> None:
        """Wait for someone else's operation, printing its events as commentary."""
        d = self.deployer
        events = d.events(stack["StackId"], since=operation_start(stack))
        d.wait_for_stack(stack["StackId"], events)


def logging_stops(region: str, cause: str) -> str:
    """The warning for losing the account's API Gateway logging role."""
    return (
        f"{cause} the account's API Gateway CloudWatch logging role: logging stops for every "
        f"API Gateway API in {region} until another stack or an operator sets a role "
        "(API Gateway console, Settings, CloudWatch log role ARN)"
    )
