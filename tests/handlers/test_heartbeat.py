"""The health monitor's heartbeat: every completed scheduled run emits the metric the
template's "runs stopped" alarm watches (same namespace, dimension and name), and GET /health
never does, so API traffic cannot hide a schedule that stopped."""

from __future__ import annotations

import json
from typing import Any

import pytest


def heartbeat_alarm(spec) -> dict[str, Any]:
    """The platform's alarm that treats missing data as breaching (resolved)."""
    (alarm,) = [
        props
        for props in spec.resolver.of_type("AWS::CloudWatch::Alarm").values()
        if props.get("TreatMissingData") == "breaching"
    ]
    return spec.resolver.value(alarm)


def emf_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


def emitted(lines: list[dict[str, Any]], alarm: dict[str, Any]) -> list[float]:
    """Values of the alarm's metric in EMF lines with the alarm's namespace and dimensions."""
    found = []
    wanted = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
    for line in lines:
        for directive in line["_aws"]["CloudWatchMetrics"]:
            names = {m["Name"] for m in directive["Metrics"]}
            if directive["Namespace"] != alarm["Namespace"] or alarm["MetricName"] not in names:
                continue
            if all(line.get(name) == value for name, value in wanted.items()):
                value = line[alarm["MetricName"]]
                found += value if isinstance(value, list) else [value]
    return found


@pytest.fixture
def alarm(spec) -> dict[str, Any]:
    return heartbeat_alarm(spec)


def test_a_completed_scheduled_run_emits_the_heartbeat(health, alarm, capsys):
    capsys.readouterr()
    health.scheduled()
    assert emitted(emf_lines(capsys.readouterr().out), alarm) == [1.0]


def test_get_health_never_emits_the_heartbeat(health, alarm, capsys):
    capsys.readouterr()
    assert health.get()["statusCode"] in (200, 503)
    assert emitted(emf_lines(capsys.readouterr().out), alarm) == []
