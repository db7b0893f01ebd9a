"""Events that tell the truth (issue 10, defect 5), against botocore's Stubber.

Only the events of the operation this run started count: those carrying its
ClientRequestToken, or (without a token, as on moto) not older than its start.
"""

from __future__ import annotations

import datetime as dt

import pytest
from botocore.stub import ANY

from deployer.errors import StackOperationFailedError
from templates.common import to_json
from tests.deployer.stubbed import CS_ID, NAME, NOW, START, TEMPLATE, Harness, event, stack

OLD = START - dt.timedelta(days=3)  # an earlier, failed update of the same stack
HISTORY = [
    event(-3, "UPDATE_IN_PROGRESS", when=OLD, token="payment-deploy-old"),
    event(-2, "UPDATE_FAILED", "Topic", "old failure", when=OLD, token="payment-deploy-old"),
    event(-1, "UPDATE_ROLLBACK_COMPLETE", when=OLD, token="payment-deploy-old"),
]
TOKEN = "payment-deploy-executechangeset-fixed"


@pytest.fixture
def fixed_token(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr("deployer.changeset.client_token", lambda action: TOKEN)
    return TOKEN


def updating(h: Harness) -> None:
    h.describe("UPDATE_ROLLBACK_COMPLETE")
    h.add("get_template", {"TemplateBody": to_json({**TEMPLATE, "Description": "older"})})
    h.change_set("UPDATE")
    h.add("execute_change_set", {}, {"ChangeSetName": CS_ID, "ClientRequestToken": ANY})


def test_i10_5_a_throttled_feed_never_replays_history_as_failures() -> None:
    h = Harness()
    updating(h)
    h.describe("UPDATE_IN_PROGRESS")
    h.error("describe_stack_events", "Throttling", "Rate exceeded")  # this poll prints nothing
    h.describe("UPDATE_COMPLETE")
    ours = [event(1, "UPDATE_IN_PROGRESS"), event(2, "UPDATE_COMPLETE", "Topic")]
    h.add("describe_stack_events", {"StackEvents": list(reversed(HISTORY + ours))})
    outcome = h.run()
    assert outcome.result == "updated"
    assert h.failures == [], "an old UPDATE_FAILED must not be this run's failure"
    assert "old failure" not in h.text()
    assert "UPDATE_COMPLETE AWS::SNS::Topic Topic" in h.text()


def test_events_of_our_token_count_whatever_the_clocks_say(fixed_token: str) -> None:
    # The local clock runs ahead of CloudFormation's: our events look older than our start,
    # yet they carry our token; the history carries another one.
    h = Harness()
    updating(h)
    h.describe("UPDATE_ROLLBACK_COMPLETE")
    skewed = START - dt.timedelta(minutes=5)
    ours = [
        event(1, "UPDATE_IN_PROGRESS", when=skewed, token=fixed_token),
        event(2, "UPDATE_FAILED", "Topic", "new failure", when=skewed, token=fixed_token),
        event(3, "UPDATE_ROLLBACK_COMPLETE", when=skewed, token=fixed_token),
    ]
    h.add("describe_stack_events", {"StackEvents": list(reversed(HISTORY + ours))})
    with pytest.raises(StackOperationFailedError):
        h.run()
    assert [f.reason for f in h.failures] == ["new failure"]


def test_history_is_read_only_back_to_the_operation_start() -> None:
    # Pagination stops at the first event older than the operation: no NextToken is followed.
    h = Harness()
    updating(h)
    h.describe("UPDATE_COMPLETE")
    h.add(
        "describe_stack_events",
        {"StackEvents": [event(1, "UPDATE_COMPLETE"), *reversed(HISTORY)], "NextToken": "more"},
        {"StackName": ANY},
    )
    assert h.run().result == "updated"


def test_progress_line_counts_resources_of_this_operation() -> None:
    h = Harness()
    h.no_stack()
    changes = [
        {"Type": "Resource", "ResourceChange": {"Action": "Add", "LogicalResourceId": r,
                                                "ResourceType": "AWS::SNS::Topic"}}
        for r in ("A", "B")
    ]  # fmt: skip
    h.change_set("CREATE", changes=changes)
    h.add("execute_change_set", {})
    h.describe("CREATE_IN_PROGRESS")
    h.add("describe_stack_events", {"StackEvents": [event(2, "CREATE_COMPLETE", "A")]})
    h.describe("CREATE_COMPLETE")
    h.add(
        "describe_stack_events",
        {"StackEvents": [event(4, "CREATE_COMPLETE"), event(3, "CREATE_COMPLETE", "B")]},
    )
    assert h.run().result == "created"
    progress = [line.split("] ", 1)[1] for line in h.lines if "resources complete" in line]
    assert progress == ["1/2 resources complete", "2/2 resources complete"]


def test_someone_elses_failed_operation_is_commentary_not_our_failure() -> None:
    h = Harness()
    h.describe("UPDATE_IN_PROGRESS")  # another operator's update, started at NOW
    h.describe("UPDATE_ROLLBACK_COMPLETE")
    theirs = [
        event(1, "UPDATE_FAILED", "Topic", "their failure", token="console-xyz"),
        event(2, "UPDATE_ROLLBACK_COMPLETE", token="console-xyz"),
    ]
    h.add("describe_stack_events", {"StackEvents": list(reversed(theirs))})
    h.stub.add_response(
        "describe_stacks", stack("UPDATE_ROLLBACK_COMPLETE", LastUpdatedTime=NOW)
    )  # settled again: now updatable
    h.add("get_template", {"TemplateBody": to_json(TEMPLATE)})
    assert h.run().result == "up to date"
    assert h.failures == []
    assert "their failure" in h.text()  # printed as it happened
    assert NAME in h.lines[0]
