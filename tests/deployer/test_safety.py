"""Ownership and data loss (issue 10, defects 2 and 3), against botocore's Stubber.

No stack without our tags is ever changed; a change set that would replace or remove a
resource holding data stops even with --yes unless --allow-replacement names it; the
platform's tables carry a stack policy, lifted for a named replacement and put back
afterwards, also when the update fails (moto stores stack policies but never enforces
them, so the sequence of calls is what is tested here).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from deployer.errors import DataLossError, StackNotOursError, StackOperationFailedError
from deployer.safety import STATEFUL, data_losses, stack_policy
from templates import registry
from templates.common import to_json
from templates.naming import Naming
from tests.deployer.stubbed import CS_ID, NAME, Harness, event, spec

TABLE = {"Type": "AWS::DynamoDB::Table", "Properties": {"BillingMode": "PAY_PER_REQUEST"}}
TEMPLATE = {
    "Parameters": {"ProcessorFunctionName": {"Type": "String", "Default": "payment-processor"}},
    "Resources": {"TransactionsTable": TABLE, "Topic": {"Type": "AWS::SNS::Topic"}},
}
OURS = stack_policy(TEMPLATE)


def change(logical: str, kind: str, action: str = "Modify", replacement: str = "True") -> Any:
    rc = {"Action": action, "LogicalResourceId": logical, "ResourceType": kind}
    if action == "Modify":
        rc["Replacement"] = replacement
    return {"Type": "Resource", "ResourceChange": {**rc, "PhysicalResourceId": f"{logical}-qa"}}


TABLE_REPLACED = change("TransactionsTable", "AWS::DynamoDB::Table")


def policy_body(policy: Any) -> dict[str, Any]:
    return {"StackName": NAME, "StackPolicyBody": json.dumps(policy, sort_keys=True)}


def update_to(h: Harness, changes: list[Any], deployed: dict[str, Any] | None = None) -> None:
    """An UPDATE change set listing `changes` against the deployed template."""
    h.describe("UPDATE_COMPLETE")
    h.add("get_template", {"TemplateBody": to_json(deployed or {**TEMPLATE, "Description": "x"})})
    h.change_set("UPDATE", changes=changes)


@pytest.mark.parametrize("status", ["UPDATE_COMPLETE", "REVIEW_IN_PROGRESS", "CREATE_FAILED"])
@pytest.mark.parametrize(
    "tags",
    [[], [{"Key": "Project", "Value": "payment-infrastructure"}]],
    ids=["untagged", "no-environment"],
)
def test_i10_2_a_stack_without_our_tags_is_never_changed(
    status: str, tags: list[dict[str, str]]
) -> None:
    h = Harness()
    h.describe(status, tags=tags)  # nothing else queued: any further call fails the test
    with pytest.raises(StackNotOursError) as error:
        h.run()
    message = str(error.value)
    assert NAME in message and "Environment=qa" in message and "nothing was changed" in message


def test_i10_3_replacing_the_table_stops_even_with_yes() -> None:
    h = Harness(yes=True)
    update_to(h, [TABLE_REPLACED])
    h.add("delete_change_set", {}, {"ChangeSetName": CS_ID})  # and no ExecuteChangeSet
    with pytest.raises(DataLossError) as error:
        h.run(wanted=spec(template=TEMPLATE))
    message = str(error.value)
    assert "replace AWS::DynamoDB::Table TransactionsTable (TransactionsTable-qa)" in message
    assert "every item in the table would be lost" in message
    assert "--allow-replacement TransactionsTable" in message
    assert h.outcomes[0].pending_change_set is None


@pytest.mark.parametrize("kind", sorted(STATEFUL))
def test_every_stateful_type_removed_or_replaced_is_a_loss(kind: str) -> None:
    for action, replacement in [("Remove", ""), ("Modify", "True"), ("Modify", "Conditional")]:
        losses = data_losses([change("R", kind, action, replacement)], {"Resources": {}})
        assert [loss.resource_type for loss in losses] == [kind]
    assert data_losses([change("R", kind, "Modify", "False")], None) == []
    assert data_losses([change("R", kind, "Add")], None) == []


def test_a_resource_kept_by_its_policy_is_no_loss() -> None:
    kept = {"Resources": {"R": {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}}}
    for action in ("Remove", "Modify"):
        assert data_losses([change("R", "AWS::S3::Bucket", action)], kept) == []
    assert data_losses([change("R", "AWS::S3::Bucket", "Remove")], {"Resources": {}})


def test_no_execute_warns_about_the_loss_and_leaves_the_change_set() -> None:
    h = Harness(no_execute=True)
    update_to(h, [change("FailedTransactionsQueue", "AWS::SQS::Queue", "Remove")])
    assert h.run(wanted=spec(template=TEMPLATE)).result == "change set ready"
    assert "every message waiting in the queue would be lost" in h.text()


def test_allowed_replacement_lifts_the_policy_and_puts_it_back_after_success() -> None:
    h = Harness(yes=True, allow_replacement=frozenset({"TransactionsTable"}))
    update_to(h, [TABLE_REPLACED], deployed=TEMPLATE | {"Description": "x"})
    lifted = stack_policy(TEMPLATE, allowed=["TransactionsTable"])
    assert lifted == {"Statement": [OURS["Statement"][0]]}  # only the allow is left
    h.add("set_stack_policy", {}, policy_body(lifted))
    h.execute("UPDATE_COMPLETE", [event(1, "UPDATE_COMPLETE")])
    h.add("set_stack_policy", {}, policy_body(OURS))
    assert h.run(wanted=spec(template=TEMPLATE, stack_policy=OURS)).result == "updated"
    assert "stack policy put back: TransactionsTable protected again" in h.text()


def test_allowed_replacement_puts_the_policy_back_when_the_update_fails() -> None:
    h = Harness(yes=True, allow_replacement=frozenset({"TransactionsTable"}))
    update_to(h, [TABLE_REPLACED])
    h.add("set_stack_policy", {}, policy_body(stack_policy(TEMPLATE, ["TransactionsTable"])))
    h.execute("UPDATE_ROLLBACK_COMPLETE", [event(1, "UPDATE_ROLLBACK_COMPLETE")])
    h.add("set_stack_policy", {}, policy_body(OURS))
    with pytest.raises(StackOperationFailedError):
        h.run(wanted=spec(template=TEMPLATE, stack_policy=OURS))


def test_allowed_replacement_puts_the_policy_back_when_execute_is_refused() -> None:
    h = Harness(yes=True, allow_replacement=frozenset({"TransactionsTable"}))
    update_to(h, [TABLE_REPLACED])
    h.add("set_stack_policy", {}, policy_body(stack_policy(TEMPLATE, ["TransactionsTable"])))
    h.error("execute_change_set", "InvalidChangeSetStatus", "change set is not executable")
    h.add("set_stack_policy", {}, policy_body(OURS))
    with pytest.raises(Exception, match="InvalidChangeSetStatus"):
        h.run(wanted=spec(template=TEMPLATE, stack_policy=OURS))


def test_a_created_stack_gets_its_policy_and_an_up_to_date_one_keeps_it() -> None:
    h = Harness()
    h.no_stack()
    h.change_set("CREATE", changes=[change("TransactionsTable", "AWS::DynamoDB::Table", "Add")])
    h.execute("CREATE_COMPLETE", [event(1, "CREATE_COMPLETE")])
    h.add("get_stack_policy", {}, {"StackName": NAME})  # none yet
    h.add("set_stack_policy", {}, policy_body(OURS))
    assert h.run(wanted=spec(template=TEMPLATE, stack_policy=OURS)).result == "created"

    h = Harness()
    h.describe("UPDATE_COMPLETE")
    h.add("get_template", {"TemplateBody": to_json(TEMPLATE)})
    h.add("get_stack_policy", {"StackPolicyBody": json.dumps(OURS)}, {"StackName": NAME})
    assert h.run(wanted=spec(template=TEMPLATE, stack_policy=OURS)).result == "up to date"


def test_platform_policy_protects_every_table_and_only_updates() -> None:
    naming = Naming("qa")
    platform = registry.build_templates(naming, ["payment-platform"])[
        naming.stack("payment-platform")
    ]
    policy = stack_policy(platform)
    assert policy is not None
    tables = {
        logical
        for logical, resource in platform["Resources"].items()
        if resource["Type"] == "AWS::DynamoDB::Table"
    }
    deny = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert deny and set(deny[0]["Action"]) == {"Update:Replace", "Update:Delete"}
    assert {r.removeprefix("LogicalResourceId/") for r in deny[0]["Resource"]} == tables
    # Stack policies govern updates only: every action is Update:*, so the stack (and its
    # tables, DeletionPolicy Delete) can still be destroyed as the seeds require.
    actions = [
        a
        for s in policy["Statement"]
        for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    ]
    assert all(action.startswith("Update:") for action in actions)
    assert all(platform["Resources"][t].get("DeletionPolicy", "Delete") == "Delete" for t in tables)
    api = registry.build_templates(naming, ["payment-api"])[naming.stack("payment-api")]
    assert stack_policy(api) is None


def test_an_allowed_id_the_change_set_does_not_replace_lifts_nothing() -> None:
    # Only a replacement or removal of a protected resource lifts; else one policy check.
    h = Harness(yes=True, allow_replacement=frozenset({"TransactionsTable"}))
    update_to(h, [change("Topic", "AWS::SNS::Topic")])
    h.execute("UPDATE_COMPLETE", [event(1, "UPDATE_COMPLETE")])
    h.add("get_stack_policy", {"StackPolicyBody": json.dumps(OURS)}, {"StackName": NAME})
    assert h.run(wanted=spec(template=TEMPLATE, stack_policy=OURS)).result == "updated"
    assert "lifted" not in h.text()


def test_no_execute_changes_no_stack_policy() -> None:
    # --no-execute executes nothing: an up-to-date stack without our policy is only reported.
    h = Harness(no_execute=True)
    h.describe("UPDATE_COMPLETE")
    h.add("get_template", {"TemplateBody": to_json(TEMPLATE)})
    h.add("get_stack_policy", {}, {"StackName": NAME})  # and no SetStackPolicy
    assert h.run(wanted=spec(template=TEMPLATE, stack_policy=OURS)).result == "up to date"
    assert "does not carry our stack policy; a run without --no-execute sets it" in h.text()


def test_a_failed_removal_puts_back_the_policy_of_the_stack_rolled_back_to() -> None:
    # The update would remove OldTable (allowed); it fails and rolls back, so OldTable is
    # still there and must be protected again, though the new template no longer has it.
    deployed = {**TEMPLATE, "Resources": {**TEMPLATE["Resources"], "OldTable": TABLE}}
    h = Harness(yes=True, allow_replacement=frozenset({"OldTable"}))
    update_to(h, [change("OldTable", "AWS::DynamoDB::Table", "Remove")], deployed=deployed)
    h.add("set_stack_policy", {}, policy_body(stack_policy(deployed, ["OldTable"])))
    h.execute("UPDATE_ROLLBACK_COMPLETE", [event(1, "UPDATE_ROLLBACK_COMPLETE")])
    h.add("set_stack_policy", {}, policy_body(stack_policy(deployed)))
    with pytest.raises(StackOperationFailedError):
        h.run(wanted=spec(template=TEMPLATE, stack_policy=OURS))
    assert "stack policy put back: OldTable protected again" in h.text()
