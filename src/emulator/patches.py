"""Fixes to moto's CloudFormation and SQS where moto departs from AWS in ways our stacks hit.

Each fix is one wrapper around one moto function, installed once by `emulator.install()`:

- tagged AWS::KMS::Key: moto reads the KMS API's TagKey/TagValue from the template's Key/Value;
- `Fn::Cidr`, which moto's template parser lacks (a subnet's `Select` over it failed);
- a JSON template is parsed as JSON (moto ran PyYAML's pure-Python loader on it first);
- change sets: moto leaves Outputs empty after ExecuteChangeSet, lists no Replacement for a
  modified resource, creates added resources in template order ignoring DependsOn, reports
  no resource events, and on a failing
  resource answers HTTP 500 leaving the stack half-made; here every resource gets its
  IN_PROGRESS/COMPLETE (or FAILED) events, a failed create is rolled back (what was made is
  deleted, ROLLBACK_COMPLETE) and a failed update ends UPDATE_ROLLBACK_FAILED (the emulator
  cannot undo a partial update: destroy and deploy again);
- deletes: moto reports no resource event, deletes a retained resource removed from the
  template, and on a resource it cannot delete drops the stack (HTTP 500) or answers HTTP 500
  to the change set; here each resource gets DELETE_COMPLETE (DELETE_SKIPPED when retained),
  and a failed delete its DELETE_FAILED event with the reason, the stack DELETE_FAILED
  (or UPDATE_ROLLBACK_FAILED for a change set);
- SQS SetQueueAttributes without a Policy wipes the queue's policy in moto, not on AWS;
- S3 bucket policies: moto evaluates them without their Conditions, so a TLS-only Deny
  (aws:SecureTransport false) denies every request; the emulator stores resource policies and
  shows them through the APIs but evaluates none, as it evaluates no IAM policy;
- ListStackResources: moto lists each resource whose condition is false, with empty ids;
- DynamoDB item writes and transactions: moto checks a condition and then writes, without a
  lock, and rolls a failed TransactWriteItems back by restoring copies of whole tables taken
  before it ran, so under concurrent requests two conditional writes can both win and a
  cancelled transaction erases other requests' committed items; here item operations run
  one at a time (DynamoDB's per-item atomicity) and a failed transaction restores only the
  items it names.
"""

from __future__ import annotations

import copy
import functools
import ipaddress
import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

import yaml
from moto.cloudformation import models as cfn_models
from moto.cloudformation import parsing
from moto.cloudformation import responses as cfn_responses
from moto.dynamodb import models as dynamodb_models
from moto.iam.access_control import PermissionResult
from moto.kms.models import Key
from moto.s3.models import FakeBucket
from moto.sqs.models import Queue


def once(owner: Any, name: str, make: Callable[[Any], Any]) -> None:
    """Replace owner.name by make(original) unless this `make` did already (wraps copy marks)."""
    original = owner.__dict__[name]
    mark = "_emulator_" + make.__qualname__.replace(".", "_").replace("<", "").replace(">", "")
    if getattr(function_of(original), mark, False):
        return
    replacement = make(original)
    setattr(function_of(replacement), mark, True)
    setattr(owner, name, replacement)


def function_of(attribute: Any) -> Any:
    """The function behind a classmethod or property (the attribute itself otherwise)."""
    return getattr(attribute, "__func__", None) or getattr(attribute, "fget", None) or attribute


# -- KMS key tags --------------------------------------------------------------------------
def kms_tags(properties: dict[str, Any]) -> None:
    """Template tags (Key/Value) in the shape moto's KMS model reads (TagKey/TagValue)."""
    properties["Tags"] = [
        {
            "TagKey": tag.get("Key", tag.get("TagKey")),
            "TagValue": tag.get("Value", tag.get("TagValue")),
        }
        for tag in properties.get("Tags", [])
    ]


def patch_kms_key(original: classmethod) -> classmethod:  # type: ignore[type-arg]
    function = original.__func__

    @functools.wraps(function)
    def create(cls: Any, name: str, cloudformation_json: Any, *args: Any, **kwargs: Any) -> Any:
        kms_tags(cloudformation_json.setdefault("Properties", {}))
        return function(cls, name, cloudformation_json, *args, **kwargs)

    return classmethod(create)


# -- intrinsic functions ---------------------------------------------------------------------
def cidr_blocks(ip_block: str, count: Any, cidr_bits: Any) -> list[str]:
    """Fn::Cidr: the first `count` blocks of `cidr_bits` host bits each inside `ip_block`."""
    network = ipaddress.ip_network(str(ip_block), strict=False)
    prefix = network.max_prefixlen - int(cidr_bits)
    wanted = int(count)
    if not (1 <= wanted <= 256 and network.prefixlen <= prefix <= network.max_prefixlen):
        raise ValueError(f"Template error: Fn::Cidr [{ip_block}, {count}, {cidr_bits}] is invalid")
    blocks = []
    for block in network.subnets(new_prefix=prefix):
        blocks.append(str(block))
        if len(blocks) == wanted:
            return blocks
    raise ValueError(f"Template error: {ip_block} holds fewer than {count} /{prefix} blocks")


def patch_clean_json(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def clean_json(resource_json: Any, resources_map: Any) -> Any:
        if isinstance(resource_json, dict) and "Fn::Cidr" in resource_json:
            # moto resolves nested functions through this module attribute, so they reach here.
            arguments = parsing.clean_json(resource_json["Fn::Cidr"], resources_map)
            return cidr_blocks(*arguments)
        return original(resource_json, resources_map)

    return clean_json


# -- template parsing -----------------------------------------------------------------------------
class JsonFirstYaml:
    """The `yaml` module as moto's CloudFormation sees it, reading a JSON template as JSON.

    moto parses every template with PyYAML's pure-Python loader first, 70 % of the time a
    platform deploy takes here; CloudFormation reads a JSON template as JSON, and for JSON the
    two agree. YAML templates still go to PyYAML.
    """

    def __getattr__(self, name: str) -> Any:
        return getattr(yaml, name)

    @staticmethod
    def load(stream: Any, Loader: Any) -> Any:
        if isinstance(stream, str | bytes):
            try:
                return json.loads(stream)
            except ValueError:
                pass
        return yaml.load(stream, Loader=Loader)  # noqa: S506 - moto's own call, unchanged


# -- change sets ------------------------------------------------------------------------------
def dependency_order(resources: Mapping[str, Any], names: list[str]) -> list[str]:
    """`names` reordered so each comes after the resources it names in DependsOn."""
    ordered: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in ordered or name in visiting or name not in names:
            return
        visiting.add(name)
        depends = resources[name].get("DependsOn", [])
        for dependency in [depends] if isinstance(depends, str) else depends:
            visit(dependency)
        visiting.discard(name)
        ordered.append(name)

    for name in names:
        visit(name)
    return ordered


def patch_resource_diff(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def build_resource_diff(
        self: Any, other_template: dict[str, Any], *args: Any, **kwargs: Any
    ) -> Any:
        diff = original(self, other_template, *args, **kwargs)
        diff["Add"] = dependency_order(other_template["Resources"], diff["Add"])
        return diff

    return build_resource_diff


def replacement(kind: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """DescribeChangeSet's Replacement for a modified resource: True when a create-only
    property of its registry schema changes, Conditional when that change goes through an
    intrinsic function (its value is known only when the change set runs), else False."""
    from emulator.handlers.base import create_only_properties, value_at

    changed = [
        (value_at(old.get("Properties", {}), path), value_at(new.get("Properties", {}), path))
        for path in create_only_properties(kind)
    ]
    changed = [pair for pair in changed if pair[0] != pair[1]]
    if not changed:
        return "False"
    if any("Ref" in json.dumps(pair) or "Fn::" in json.dumps(pair) for pair in changed):
        return "Conditional"
    return "True"


def patch_change_set_diff(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def diff(self: Any) -> Any:
        changes = original(self)
        old = self.stack.resource_map._resource_json_map
        new = self.template_dict.get("Resources", {})
        for change in changes:
            if change.action == "Modify":
                # moto lists no Replacement, so a preview never warned of one.
                name = change.logical_resource_id
                change.replacement = replacement(change.resource_type, old[name], new[name])
        return changes

    return diff


class ResourceFailed(Exception):
    """A resource CloudFormation could not create or update, with the service's reason."""

    def __init__(self, logical_id: str, resource_type: str, reason: str) -> None:
        super().__init__(reason)
        self.logical_id = logical_id
        self.resource_type = resource_type
        self.reason = reason


def stack_of(resources_map: Any) -> Any:
    """The moto Stack a ResourceMap belongs to, or None (a stack being created directly)."""
    deleting = resources_map.__dict__.get("_emulator_stack")
    if deleting is not None:  # moto takes a stack out of its list before deleting it
        return deleting
    backend = cfn_models.cloudformation_backends[resources_map._account_id][
        resources_map._region_name
    ]
    return backend.stacks.get(resources_map.stack_id)


def resource_event(
    stack: Any, logical_id: str, kind: str, physical: str, status: str, reason: str | None = None
) -> None:
    """Append one resource event to the stack, as DescribeStackEvents shows them."""
    if stack is None:
        return
    stack.events.append(
        cfn_models.Event(
            stack_id=stack.stack_id,
            stack_name=stack.name,
            logical_resource_id=logical_id,
            physical_resource_id=physical,
            resource_type=kind,
            resource_status=status,
            resource_status_reason=reason,
            resource_properties=None,
        )
    )


def with_events(action: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrap parse_and_create_resource / parse_and_update_resource with resource events."""

    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def run(
            logical_id: str,
            resource_json: dict[str, Any],
            resources_map: Any,
            *args: Any,
            **kwargs: Any,
        ) -> Any:
            kind = resource_json.get("Type", "")
            condition = resource_json.get("Condition")
            if condition and not resources_map.lazy_condition_map[condition]:
                return original(logical_id, resource_json, resources_map, *args, **kwargs)
            stack = stack_of(resources_map)
            resource_event(stack, logical_id, kind, "", f"{action}_IN_PROGRESS")
            try:
                resource = original(logical_id, resource_json, resources_map, *args, **kwargs)
            except ResourceFailed:
                # A resource it refers to failed first (created on the way, through Ref).
                resource_event(
                    stack, logical_id, kind, "", f"{action}_FAILED", "Resource creation cancelled"
                )
                raise
            except Exception as error:  # any service error: CloudFormation's failed event
                reason = str(error).strip() or type(error).__name__
                resource_event(stack, logical_id, kind, "", f"{action}_FAILED", reason)
                raise ResourceFailed(logical_id, kind, reason) from error
            physical = getattr(resource, "physical_resource_id", "") if resource is not None else ""
            resource_event(stack, logical_id, kind, str(physical or ""), f"{action}_COMPLETE")
            return resource

        return run

    return make


def refresh_outputs(stack: Any) -> None:
    """Outputs and description from the template the change set just applied."""
    stack._parse_template()
    stack.description = stack.template_dict.get("Description")
    stack.output_map = stack._create_output_map()


def roll_back_create(stack: Any, failure: ResourceFailed) -> None:
    """A failed create as CloudFormation ends it: what was made is deleted, ROLLBACK_COMPLETE."""
    stack._add_stack_event(
        "ROLLBACK_IN_PROGRESS",
        resource_status_reason=f"The following resource(s) failed to create: "
        f"[{failure.logical_id}]. Rollback requested by user.",
    )
    stack.resource_map._emulator_rolling_back = True  # RetainExceptOnCreate goes too
    try:
        stack.resource_map.delete()
    except Exception as error:  # noqa: BLE001 - moto raises any service error here
        stack._add_stack_event("ROLLBACK_FAILED", resource_status_reason=str(error))
        stack.status = "ROLLBACK_FAILED"
        return
    # Nothing of the template is left: listing its resources must not make them again
    # (moto's resource map creates whatever it is asked for).
    stack.resource_map._resource_json_map = {}
    stack._add_stack_event("ROLLBACK_COMPLETE")
    stack.status = "ROLLBACK_COMPLETE"


def patch_execute_change_set(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def execute_change_set(self: Any, change_set_name: str, stack_name: str | None = None) -> None:
        change_set = self.describe_change_set(change_set_name)
        stack = self.stacks[change_set.stack_id]
        try:
            original(self, change_set_name, stack_name)
        except ResourceFailed as failure:
            change_set.execution_status = "EXECUTE_FAILED"
            if change_set.change_set_type == "CREATE":
                roll_back_create(stack, failure)
                return
            update_failed(stack, failure.logical_id)
            return
        except Exception:  # a removed resource moto could not delete: its reason is kept
            failure = delete_failure(stack)
            if failure is None:
                raise
            change_set.execution_status = "EXECUTE_FAILED"
            update_failed(stack, failure)
            return
        refresh_outputs(stack)

    return execute_change_set


def update_failed(stack: Any, logical_id: str) -> None:
    """A failed update as the emulator ends it: UPDATE_ROLLBACK_FAILED, with the reason."""
    reason = (
        f"The following resource(s) failed to update: [{logical_id}]. The emulator cannot "
        "roll back an update: destroy the stack and deploy again."
    )
    stack._add_stack_event("UPDATE_ROLLBACK_FAILED", resource_status_reason=reason)
    stack.status = "UPDATE_ROLLBACK_FAILED"


# -- deletes -------------------------------------------------------------------------------------
def retained(resources_map: Any, resource_json: Mapping[str, Any]) -> bool:
    """True when CloudFormation leaves the resource in place instead of deleting it."""
    policy = resource_json.get("DeletionPolicy")
    rolling_back = resources_map.__dict__.get("_emulator_rolling_back", False)
    return policy == "Retain" or (policy == "RetainExceptOnCreate" and not rolling_back)


def patch_delete_resource(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def delete_resource(self: Any, resource: Any, resource_json: dict[str, Any]) -> None:
        stack = stack_of(self)
        logical = str(getattr(resource, "logical_resource_id", ""))
        kind = str(resource_json.get("Type", ""))
        physical = str(getattr(resource, "physical_resource_id", "") or "")
        if retained(self, resource_json):
            # moto deleted a retained resource removed from the template (and every
            # RetainExceptOnCreate one): CloudFormation keeps it.
            resource_event(stack, logical, kind, physical, "DELETE_SKIPPED")
            return
        try:
            original(self, resource, resource_json)
        except Exception as error:
            # moto tries again in a later pass; the last failure is the one it reports.
            reason = str(error).strip() or type(error).__name__
            self._emulator_delete_failure = (logical, kind, physical, reason)
            raise
        resource_event(stack, logical, kind, physical, "DELETE_COMPLETE")

    return delete_resource


def delete_failure(stack: Any) -> str | None:
    """The resource whose delete failed last (its DELETE_FAILED event added), or None."""
    failure = stack.resource_map.__dict__.pop("_emulator_delete_failure", None)
    if failure is None:
        return None
    logical, kind, physical, reason = failure
    resource_event(stack, logical, kind, physical, "DELETE_FAILED", reason)
    return str(logical)


def patch_stack_delete(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def delete(self: Any) -> None:
        self.resource_map._emulator_stack = self
        self.resource_map.__dict__.pop("_emulator_delete_failure", None)
        for logical, resource_json in self.resource_map._resource_json_map.items():
            # moto skips these without a word; CloudFormation reports each one.
            if resource_json.get("DeletionPolicy") == "Retain":
                resource = self.resource_map._parsed_resources.get(logical)
                if resource is not None and not isinstance(resource, str):
                    physical = str(getattr(resource, "physical_resource_id", "") or "")
                    kind = resource_json.get("Type", "")
                    resource_event(self, logical, kind, physical, "DELETE_SKIPPED")
        try:
            original(self)
        finally:
            del self.resource_map._emulator_stack

    return delete


def patch_delete_stack(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def delete_stack(self: Any, name_or_stack_id: str) -> None:
        before = dict(self.stacks)
        try:
            original(self, name_or_stack_id)
        except Exception:  # a resource moto could not delete: its reason is kept
            dropped = [
                (stack_id, stack)
                for stack_id, stack in before.items()
                if stack_id not in self.stacks and stack_id not in self.deleted_stacks
            ]
            failures = [(stack_id, stack, delete_failure(stack)) for stack_id, stack in dropped]
            if not failures or any(failure is None for _, _, failure in failures):
                raise
            for stack_id, stack, failure in failures:
                # moto dropped the half-deleted stack; CloudFormation keeps it DELETE_FAILED.
                self.stacks[stack_id] = stack
                stack._add_stack_event(
                    "DELETE_FAILED",
                    resource_status_reason=f"The following resource(s) failed to delete: "
                    f"[{failure}].",
                )
                stack.status = "DELETE_FAILED"

    return delete_stack


def patch_stack_resources(original: property) -> property:
    def stack_resources(self: Any) -> list[Any]:
        # moto lists a resource whose condition is false as an entry with empty ids.
        return [resource for resource in original.fget(self) if resource is not None]  # type: ignore[misc]

    return property(stack_resources)


def patch_create_resources(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def create_resources(self: Any) -> None:
        try:
            original(self)
        except ResourceFailed as failure:
            roll_back_create(self, failure)

    return create_resources


# -- SQS ----------------------------------------------------------------------------------------
def patch_queue_attributes(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def set_attributes(self: Any, attributes: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        if "Policy" not in attributes:
            attributes = {**attributes, "Policy": self.policy}
        return original(self, attributes, *args, **kwargs)

    return set_attributes


# -- S3 -------------------------------------------------------------------------------------------
def patch_bucket_permission(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def get_permission(self: Any, action: str, resource: str) -> Any:
        return PermissionResult.NEUTRAL  # stored, not evaluated (see the module docstring)

    return get_permission


# -- DynamoDB --------------------------------------------------------------------------------------
# One lock for every item operation of every table: coarser than DynamoDB's per-item
# atomicity, never weaker.
_ITEM_LOCK = threading.RLock()
ITEM_OPERATIONS = ("put_item", "update_item", "delete_item", "get_item", "query", "scan")


def patch_atomic(original: Callable[..., Any]) -> Callable[..., Any]:
    """One request at a time, answered with a copy: moto returns its live Item objects and
    serialises them after the call, so another thread's write could change (or break, with
    'dictionary changed size during iteration') an answer DynamoDB would have given whole."""

    @functools.wraps(original)
    def atomic(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _ITEM_LOCK:
            return copy.deepcopy(original(self, *args, **kwargs))

    return atomic


class _NoTableCopies:
    """moto's `copy` module while a transaction runs: tables are not copied (see below)."""

    @staticmethod
    def deepcopy(value: Any, *args: Any) -> Any:
        return value if isinstance(value, dynamodb_models.Table) else copy.deepcopy(value, *args)


def _touched_items(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple]:
    """(table, hash key, a copy of the item or None) for each item a transaction names."""
    saved = []
    for entry in transact_items:
        ((kind, operation),) = entry.items()
        table = backend.tables.get(operation.get("TableName"))
        if table is None:
            continue
        attributes = operation["Item"] if kind == "Put" else operation["Key"]
        if table.range_key_attr is not None:
            raise NotImplementedError("transactions on tables with a sort key are not emulated")
        key = dynamodb_models.DynamoType(attributes[table.hash_key_attr])
        saved.append((table, key, copy.deepcopy(table.items.get(key))))
    return saved


def patch_transact_write_items(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        with _ITEM_LOCK:
            saved = _touched_items(self, transact_items)
            dynamodb_models.copy = _NoTableCopies  # type: ignore[assignment]
            try:
                return original(self, transact_items)
            except Exception:
                for table, key, item in saved:
                    if item is None:
                        table.items.pop(key, None)
                    else:
                        table.items[key] = item
                raise
            finally:
                dynamodb_models.copy = copy

    return transact_write_items


def install_dynamodb_atomicity() -> None:
    """The DynamoDB fix alone (the handler tests install it for their in-process moto)."""
    backend = dynamodb_models.DynamoDBBackend
    for name in ITEM_OPERATIONS:
        once(backend, name, patch_atomic)
    once(backend, "transact_write_items", patch_transact_write_items)


def install() -> list[str]:
    """Install every fix (idempotent); what was fixed, one line each."""
    once(Key, "create_from_cloudformation_json", patch_kms_key)
    once(parsing, "clean_json", patch_clean_json)
    for module in (cfn_models, cfn_responses):
        module.yaml = JsonFirstYaml()  # type: ignore[attr-defined]
    once(parsing.ResourceMap, "build_resource_diff", patch_resource_diff)
    once(cfn_models.ChangeSet, "diff", patch_change_set_diff)
    once(parsing, "parse_and_create_resource", with_events("CREATE"))
    once(parsing, "parse_and_update_resource", with_events("UPDATE"))
    once(cfn_models.CloudFormationBackend, "execute_change_set", patch_execute_change_set)
    once(cfn_models.Stack, "create_resources", patch_create_resources)
    once(cfn_models.Stack, "stack_resources", patch_stack_resources)
    once(parsing.ResourceMap, "_delete_resource", patch_delete_resource)
    once(cfn_models.Stack, "delete", patch_stack_delete)
    once(cfn_models.CloudFormationBackend, "delete_stack", patch_delete_stack)
    once(Queue, "_set_attributes", patch_queue_attributes)
    once(FakeBucket, "get_permission", patch_bucket_permission)
    install_dynamodb_atomicity()
    return [
        "AWS::KMS::Key tags in the template's Key/Value shape",
        "Fn::Cidr",
        "JSON templates parsed as JSON",
        "change sets: DependsOn order, Replacement, resource events, Outputs, rollback of a "
        "failed create",
        "stack resources: none listed for a resource whose condition is false",
        "deletes: DELETE_COMPLETE/SKIPPED/FAILED events, DeletionPolicy Retain on removal, "
        "a failed delete leaves the stack DELETE_FAILED",
        "SQS SetQueueAttributes keeps the queue policy",
        "S3 bucket policies stored, not evaluated",
        "DynamoDB item operations atomic, transactions roll back only their own items",
    ]
