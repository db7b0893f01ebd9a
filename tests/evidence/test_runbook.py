"""Every alarm has a runbook entry, its description says what to do, docs/runbook.md is current."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from templates import reports, runbook
from templates.naming import Naming
from templates.registry import build_templates

from .conftest import SUFFIX

ROOT = Path(__file__).resolve().parents[2]


def every_alarm(built):
    return [a for t in built.values() for a in runbook.alarms(t).values()]


def test_every_alarm_has_exactly_one_entry_and_every_entry_an_alarm(built):
    assert every_alarm(built)
    lonely, unused = runbook.unmatched(built, SUFFIX)
    assert lonely == [], f"alarms without a runbook entry (templates/runbook.py): {lonely}"
    assert unused == [], f"runbook entries that match no alarm: {unused}"


def test_the_check_sees_an_alarm_without_entry_and_an_entry_without_alarm(built):
    changed = copy.deepcopy(built)
    platform = changed[f"payment-platform-{SUFFIX}"]["Resources"]
    extra = copy.deepcopy(platform["DlqNotEmptyAlarm"])
    extra["Properties"]["AlarmName"] = f"platform-something-new-{SUFFIX}"
    platform["NewAlarm"] = extra
    del platform["QueueOldestMessageAlarm"]
    lonely, unused = runbook.unmatched(changed, SUFFIX)
    assert lonely == ["platform-something-new"]
    assert unused == ["platform-queue-oldest-message"]


@pytest.mark.requirement("S001-ALARM-NOTIFY", "S001-ALARMS")
def test_each_description_says_what_it_means_the_first_step_and_where_to_read_on(built):
    for alarm in every_alarm(built):
        props = alarm["Properties"]
        base = runbook.alarm_base(props["AlarmName"], SUFFIX)
        description = props["AlarmDescription"]
        assert len(description) <= 1024
        meaning, _, rest = description.partition(" First: ")
        assert meaning and rest, description
        assert rest.endswith(f"Runbook: docs/runbook.md#{runbook.anchor(base)}")


def test_docs_runbook_is_current_and_the_same_for_every_suffix(built):
    expected = reports.docs_files(built, SUFFIX)[reports.DOCS_RUNBOOK]
    committed = (ROOT / reports.DOCS_RUNBOOK).read_text(encoding="utf-8")
    assert committed == expected, "run: python generate.py --suffix qa --docs"
    prod = build_templates(Naming("prod"))
    assert runbook.render(prod, "prod") == expected


def test_every_entry_is_complete_and_names_the_safe_switches_and_the_forbidden_moves(built):
    text = runbook.render(built, SUFFIX)
    for alarm in every_alarm(built):
        base = runbook.alarm_base(alarm["Properties"]["AlarmName"], SUFFIX)
        heading = f"### {base}\n"
        assert heading in text
        entry_text = text.split(heading, 1)[1].split("\n### ", 1)[0]
        for part in (
            "**Metric:**",
            "**Alarm when:**",
            "**Dashboard:** section",
            "Likely causes:",
            "Safe actions:",
            "Never:",
        ):
            assert part in entry_text, (base, part)
        assert "Never purge" in entry_text and "Never restore a backup over the live" in entry_text
    assert "HealthDryRun=true" in text and "NEEDS_REVIEW" in text


def test_thresholds_in_the_runbook_are_the_templates(built):
    text = runbook.render(built, SUFFIX)
    assert "### platform-api-latency-p99" in text
    latency = text.split("### platform-api-latency-p99\n", 1)[1].split("###", 1)[0]
    assert "p99 of AWS/ApiGateway Latency" in latency
    assert "> 2000 in 3 of 5 period(s)" in latency
