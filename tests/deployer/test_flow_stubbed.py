"""Every stack state and failure path, against botocore's Stubber (no server, no sleeping)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import botocore.exceptions
import pytest

from deployer.changeset import WaitConfig
from deployer.errors import (
    ChangeSetFailedError,
    DeclinedError,
    StackNotOursError,
    StackOperationFailedError,
    UpdateRollbackFailedError,
    WaitTimeoutError,
)
from templates.common import to_json
from tests.deployer.stubbed import CS_ID, NAME, TEMPLATE, Harness, event, spec, stack


def test_missing_stack_is_created_with_a_create_change_set() -> None:
    h = Harness()
    h.no_stack()
    h.change_set("CREATE")
    h.execute("CREATE_COMPLETE", [event(1, "CREATE_IN_PROGRESS"), event(2, "CREATE_COMPLETE")])
    outcome = h.run()
    assert outcome.result == "created"
    assert outcome.change_sets == 1
    assert f"[{NAME}] CREATE_COMPLETE" in h.lines
    assert any("REPLACE !!" in line for line in h.lines), (
        "replacement must stand out in the preview"
    )
    assert all(line.startswith(f"[{NAME}] ") for line in h.lines)
    assert h.sleeps == []


def test_review_in_progress_gets_a_create_change_set_without_reading_the_template() -> None:
    h = Harness()
    h.describe("REVIEW_IN_PROGRESS")
    h.change_set("CREATE")  # the stubber fails on GetTemplate: none is queued
    h.execute("CREATE_COMPLETE", [event(1, "CREATE_COMPLETE")])
    assert h.run().result == "created"


def test_rollback_complete_with_our_tags_is_deleted_and_recreated() -> None:
    h = Harness()
    h.describe("ROLLBACK_COMPLETE")
    h.delete([event(1, "DELETE_COMPLETE")])
    h.change_set("CREATE")
    h.execute("CREATE_COMPLETE", [event(2, "CREATE_COMPLETE")])
    assert h.run().result == "created"


@pytest.mark.parametrize(
    "tags",
    [
        [],
        [
            {"Key": "Project", "Value": "payment-infrastructure"},
            {"Key": "Environment", "Value": "prod"},
        ],
    ],
    ids=["untagged", "other-suffix"],
)
def test_rollback_complete_without_our_tags_is_left_alone(tags: list[dict[str, str]]) -> None:
    h = Harness()
    h.describe("ROLLBACK_COMPLETE", tags=tags)  # no DeleteStack queued: calling it would fail
    with pytest.raises(StackNotOursError) as error:
        h.run()
    assert "delete-stack --stack-name payment-api-qa" in str(error.value)
    assert h.outcomes[0].result.startswith("failed")


def test_in_progress_is_waited_on_never_deleted() -> None:
    h = Harness()
    h.describe("UPDATE_IN_PROGRESS")
    h.describe("UPDATE_IN_PROGRESS")
    h.add("describe_stack_events", {"StackEvents": [event(0, "UPDATE_IN_PROGRESS")]})
    h.describe("UPDATE_COMPLETE")
    h.add("describe_stack_events", {"StackEvents": [event(1, "UPDATE_COMPLETE"), event(0, "x")]})
    h.describe("UPDATE_COMPLETE")
    h.add(
        "get_template",
        {"TemplateBody": to_json(TEMPLATE)},
        {"StackName": NAME, "TemplateStage": "Original"},
    )
    outcome = h.run()
    assert outcome.result == "up to date"
    assert outcome.change_sets == 0
    assert h.sleeps == [WaitConfig().stack_delay]


@pytest.mark.parametrize(
    "reason",
    [
        "The submitted information didn't contain changes. "
        "Submit different information to create a change set.",
        "No updates are to be performed.",
    ],
)
def test_empty_change_set_is_deleted_and_reported_as_success(reason: str) -> None:
    h = Harness()
    h.describe("UPDATE_COMPLETE")
    h.add("get_template", {"TemplateBody": to_json({**TEMPLATE, "Description": "old"})})
    h.change_set("UPDATE", status="FAILED", reason=reason)
    h.add("delete_change_set", {}, {"ChangeSetName": CS_ID})
    outcome = h.run()
    assert outcome.result == "no changes"
    assert any("empty change set deleted" in line for line in h.lines)


def test_empty_update_refused_up_front_is_success() -> None:
    h = Harness()
    h.describe("UPDATE_COMPLETE")
    h.add("get_template", {"TemplateBody": to_json({**TEMPLATE, "Description": "old"})})
    h.error("create_change_set", "ValidationError", "No updates are to be performed.")
    outcome = h.run()
    assert outcome.result == "no changes"
    assert outcome.change_sets == 0


def test_failed_change_set_names_the_reason_and_is_removed() -> None:
    h = Harness()
    h.no_stack()
    h.change_set("CREATE", status="FAILED", reason="Template format error: bad resource")
    h.add("delete_change_set", {}, {"ChangeSetName": CS_ID})
    with pytest.raises(ChangeSetFailedError) as error:
        h.run()
    assert "Template format error: bad resource" in str(error.value)


def test_refused_create_change_set_is_a_clear_error() -> None:
    h = Harness()
    h.no_stack()
    h.error(
        "create_change_set",
        "InsufficientCapabilitiesException",
        "Requires capabilities : [CAPABILITY_NAMED_IAM]",
    )
    with pytest.raises(ChangeSetFailedError) as error:
        h.run()
    assert "CAPABILITY_NAMED_IAM" in str(error.value)


def test_waiter_failure_checks_final_status_and_keeps_failed_resources() -> None:
    h = Harness()
    h.describe("UPDATE_COMPLETE")
    h.add("get_template", {"TemplateBody": to_json({**TEMPLATE, "Description": "old"})})
    h.change_set("UPDATE")
    h.execute(
        "UPDATE_ROLLBACK_COMPLETE",
        [
            event(1, "UPDATE_IN_PROGRESS"),
            event(2, "UPDATE_FAILED", "Topic", "Resource handler returned message: AccessDenied"),
            event(3, "UPDATE_ROLLBACK_COMPLETE"),
        ],
    )
    with pytest.raises(StackOperationFailedError) as error:
        h.run()
    assert "UPDATE_ROLLBACK_COMPLETE (expected UPDATE_COMPLETE)" in str(error.value)
    assert [(f.logical_id, f.status) for f in h.failures] == [("Topic", "UPDATE_FAILED")]
    assert "AccessDenied" in h.failures[0].reason


def test_update_state_does_not_pass_for_a_create() -> None:
    # botocore's stack_create_complete waiter would accept this; we do not.
    h = Harness()
    h.no_stack()
    h.change_set("CREATE")
    h.execute("UPDATE_COMPLETE", [event(1, "UPDATE_COMPLETE")])
    with pytest.raises(StackOperationFailedError):
        h.run()


def test_update_rollback_failed_names_the_continue_command() -> None:
    h = Harness()
    h.describe("UPDATE_ROLLBACK_FAILED")
    with pytest.raises(UpdateRollbackFailedError) as error:
        h.run()
    assert "aws cloudformation continue-update-rollback --stack-name payment-api-qa" in str(
        error.value
    )


def test_throttled_poll_is_retried_not_fatal() -> None:
    h = Harness()
    h.no_stack()
    h.change_set("CREATE")
    h.add("execute_change_set", {})
    h.error("describe_stacks", "Throttling", "Rate exceeded")
    h.add("describe_stack_events", {"StackEvents": []})
    h.describe("CREATE_COMPLETE")
    h.add("describe_stack_events", {"StackEvents": [event(1, "CREATE_COMPLETE")]})
    assert h.run().result == "created"
    assert h.sleeps == [WaitConfig().stack_delay]
    assert any("throttled" in line for line in h.lines)


def test_wait_gives_up_on_the_time_budget() -> None:
    h = Harness()
    h.describe("UPDATE_IN_PROGRESS")
    polls = int(WaitConfig().stack_timeout / WaitConfig().stack_delay) + 1
    for _ in range(polls):
        h.describe("UPDATE_IN_PROGRESS")
        h.add("describe_stack_events", {"StackEvents": []})
    with pytest.raises(WaitTimeoutError):
        h.run()
    assert sum(h.sleeps) >= WaitConfig().stack_timeout


def test_declined_change_set_is_deleted() -> None:
    h = Harness(yes=False, answer=False)
    h.no_stack()
    h.change_set("CREATE")
    h.add("delete_change_set", {}, {"ChangeSetName": CS_ID})
    with pytest.raises(DeclinedError):
        h.run()
    assert h.questions and NAME in h.questions[0]


def test_no_execute_leaves_the_change_set_for_review() -> None:
    h = Harness(no_execute=True)
    h.no_stack()
    h.change_set("CREATE")
    outcome = h.run()
    assert outcome.result == "change set ready"
    assert any("execute-change-set" in line for line in h.lines)


def test_destroy_refuses_a_stack_without_our_tags() -> None:
    h = Harness()
    h.describe("CREATE_COMPLETE", tags=[])
    with pytest.raises(StackNotOursError):
        h.run("destroy")


def test_destroy_reports_retained_resources() -> None:
    h = Harness()
    h.describe("CREATE_COMPLETE")
    h.delete([event(1, "DELETE_SKIPPED", "Topic"), event(2, "DELETE_COMPLETE")])
    assert h.run("destroy").result == "deleted"
    assert any(
        "retained (DeletionPolicy Retain): AWS::SNS::Topic Topic" in line for line in h.lines
    )


def test_botocore_retries_throttling_with_standard_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stubber bypasses botocore's retry handler, so this one answers at the HTTP layer."""
    from botocore.awsrequest import AWSResponse

    from deployer.aws import AwsSettings, client_config

    monkeypatch.setattr("botocore.endpoint.time.sleep", lambda _: None, raising=False)
    cfn = boto3.client(
        "cloudformation", region_name="us-east-1", config=client_config(AwsSettings())
    )
    sent: list[str] = []

    def reply(request: Any, **_: Any) -> AWSResponse:
        sent.append(request.url)
        if len(sent) == 1:
            body = (
                b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
                b"<Message>Rate exceeded</Message></Error></ErrorResponse>"
            )
            return AWSResponse(request.url, 400, {}, _Raw(body))
        body = (
            b"<DescribeStacksResponse><DescribeStacksResult><Stacks/></DescribeStacksResult>"
            b"</DescribeStacksResponse>"
        )
        return AWSResponse(request.url, 200, {}, _Raw(body))

    cfn.meta.events.register("before-send.cloudformation.DescribeStacks", reply)
    assert cfn.describe_stacks()["Stacks"] == []
    assert len(sent) == 2


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Any:
        yield self.body


def test_client_config_retries_with_jitter_and_timeouts() -> None:
    from deployer.aws import AwsSettings, client_config

    config = client_config(AwsSettings(retry_mode="adaptive"))
    assert config.retries["mode"] == "adaptive"
    assert config.retries["total_max_attempts"] >= 3
    assert config.connect_timeout and config.read_timeout


def test_unexpected_describe_error_is_a_clear_message() -> None:
    h = Harness()
    h.error(
        "describe_stacks", "AccessDenied", "not authorized to perform cloudformation:DescribeStacks"
    )
    with pytest.raises(Exception) as error:
        h.run()
    assert "cloudformation:DescribeStacks" in str(error.value)
    assert not isinstance(error.value, botocore.exceptions.ClientError)


def test_template_comparison_ignores_formatting() -> None:
    h = Harness()
    # Compact, keys in another order than to_json writes them.
    compact = json.dumps(dict(reversed(list(TEMPLATE.items()))), separators=(",", ":"))
    h.add("get_template", {"TemplateBody": compact})
    with h.stub:
        deployed = h.flow.deployer.deployed_template(NAME)
    settled = spec().settled(stack("UPDATE_COMPLETE")["Stacks"][0])
    assert settled.difference(stack("UPDATE_COMPLETE")["Stacks"][0], deployed) is None
