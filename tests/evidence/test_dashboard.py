"""The dashboard: the runbook link on top, every alarm as a graph beside what it watches."""

from __future__ import annotations

import json

import pytest

from .conftest import SUFFIX


@pytest.fixture(scope="module")
def dashboard(built):
    platform = built[f"payment-platform-{SUFFIX}"]
    (resource,) = [
        r for r in platform["Resources"].values() if r["Type"] == "AWS::CloudWatch::Dashboard"
    ]
    text, variables = resource["Properties"]["DashboardBody"]["Fn::Sub"]
    return platform, json.loads(text)["widgets"], variables


def sections(widgets):
    """Section title -> the widgets under its header."""
    found, current = {}, None
    for widget in widgets:
        markdown = widget["properties"].get("markdown", "")
        if widget["type"] == "text" and markdown.startswith("## "):
            current = markdown[3:]
            found[current] = []
        elif current is not None:
            found[current].append(widget)
    return found


def alarm_named(platform, placeholder, variables):
    """The alarm whose ARN a `${...}` placeholder of the body holds."""
    arn = variables[placeholder[2:-1]]["Fn::Sub"]
    name = arn.rsplit(":alarm:", 1)[1]
    (logical_id,) = [
        lid
        for lid, r in platform["Resources"].items()
        if r["Type"] == "AWS::CloudWatch::Alarm" and r["Properties"]["AlarmName"] == name
    ]
    assert arn.startswith("arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:")
    return logical_id


def alarm_of(platform, widget, variables):
    (placeholder,) = widget["properties"]["annotations"]["alarms"]
    return alarm_named(platform, placeholder, variables)


@pytest.mark.requirement("S001-DASHBOARD")
def test_a_text_widget_on_top_links_the_runbook(dashboard):
    _, widgets, variables = dashboard
    top = widgets[0]
    assert top["type"] == "text" and (top["x"], top["y"]) == (0, 0)
    assert "${RunbookLink}" in top["properties"]["markdown"]
    link = json.dumps(variables["RunbookLink"])
    assert "docs/runbook.md" in link and '"Ref": "RunbookUrl"' in link


@pytest.mark.requirement("S001-DASHBOARD")
def test_every_alarm_is_a_graph_next_to_the_metrics_of_what_it_watches(dashboard):
    platform, widgets, variables = dashboard
    alarms = {lid for lid, r in platform["Resources"].items() if r["Type"].endswith("::Alarm")}
    placed = {}
    for title, members in sections(widgets).items():
        metrics = [w for w in members if "metrics" in w["properties"]]
        for widget in members:
            if "annotations" in widget["properties"]:
                placed[alarm_of(platform, widget, variables)] = title
                assert metrics, f"{title}: alarm graphs without the metrics they watch"
    assert set(placed) == alarms
    assert "Other alarms" not in placed.values(), "an alarm watches nothing on the dashboard"
    assert placed["ProcessingErrorsAlarm"] == "Functions"
    assert placed["TableSystemErrorsAlarm"] == "Transactions table"
    assert placed["DlqNotEmptyAlarm"] == "Failed-transactions queue and its DLQ"


@pytest.mark.requirement("S001-DASHBOARD")
def test_the_alarm_status_widget_lists_every_alarm(dashboard):
    platform, widgets, variables = dashboard
    alarms = {lid for lid, r in platform["Resources"].items() if r["Type"].endswith("::Alarm")}
    (status,) = [w for w in widgets if w["type"] == "alarm"]
    listed = {alarm_named(platform, p, variables) for p in status["properties"]["alarms"]}
    assert listed == alarms


def test_widgets_fit_the_grid_and_never_overlap(dashboard):
    _, widgets, _ = dashboard
    cells = set()
    for widget in widgets:
        assert widget["x"] + widget["width"] <= 24
        for x in range(widget["x"], widget["x"] + widget["width"]):
            for y in range(widget["y"], widget["y"] + widget["height"]):
                assert (x, y) not in cells, widget["properties"].get("title")
                cells.add((x, y))
