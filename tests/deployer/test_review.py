"""Hostile review of issue 10: what an operator (or an adversary) found still wrong.

Each test reproduces one finding; each failed on main before its fix (see the commits).
"""

from __future__ import annotations

from templates.common import to_json
from tests.deployer.stubbed import TEMPLATE, Harness, event


def test_an_update_whose_cleanup_left_an_old_resource_is_still_a_success() -> None:
    """CloudFormation tries three times to delete a replaced resource, then drops it from the
    stack and ends UPDATE_COMPLETE (its StatusReason says a resource could not be deleted).
    The update succeeded: counting the DELETE_FAILED as a failure made Report.ok false and
    the run exit 1 (so CI retried or paged for a deploy that had worked)."""
    h = Harness()
    h.describe("UPDATE_COMPLETE")
    h.add("get_template", {"TemplateBody": to_json({**TEMPLATE, "Description": "old"})})
    h.change_set("UPDATE")  # the topic is replaced
    h.execute(
        "UPDATE_COMPLETE",
        [
            event(1, "UPDATE_IN_PROGRESS"),
            event(2, "UPDATE_COMPLETE", "Topic"),
            event(3, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"),
            event(4, "DELETE_FAILED", "Topic", "Resource handler returned message: AccessDenied"),
            event(5, "UPDATE_COMPLETE", reason="One or more resources could not be deleted."),
        ],
    )
    outcome = h.run()
    assert outcome.result == "updated"
    assert h.failures == [], "a successful update has no failed resources to report"
    assert outcome.left_behind and outcome.left_behind[0].logical_id == "Topic"
    warning = [line for line in h.lines if line.startswith(f"[{outcome.stack}] WARNING")]
    assert warning and "Topic" in warning[0] and "delete" in warning[0]
