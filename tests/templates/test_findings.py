"""Every accepted policy finding is written where the tools read it, with a reason an auditor
can check, and suppresses a real finding; the cdk-nag gate fails on an unsuppressed error and
on a suppression that matches nothing. (checkov's side: tests/templates/test_gates.py.)"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from templates.common import to_json
from tests.templates.cfn import resources

MIN_REASON = 30
GATE = Path(__file__).resolve().parents[2] / "tools" / "cdk-nag"
INSTALLED = (GATE / "node_modules" / "cdk-nag").is_dir() and shutil.which("node")


def test_every_cdk_nag_suppression_has_a_reason(stack):
    _, template = stack
    for logical_id, resource in resources(template).items():
        for entry in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
            assert set(entry) <= {"id", "reason", "applies_to"}, (logical_id, entry)
            assert len(entry["reason"]) >= MIN_REASON, (logical_id, entry["id"])
            assert entry["id"].split("-")[0] in ("AwsSolutions", "PCI.DSS.321", "NIST.800.53.R5")
            assert all(isinstance(i, str) and i for i in entry.get("applies_to", [])), logical_id


def test_every_guard_suppression_has_a_reason(stack):
    """cfn-guard's rules read only the names; the reason sits beside each one."""
    _, template = stack
    for logical_id, resource in resources(template).items():
        guard = resource.get("Metadata", {}).get("guard")
        if guard is None:
            continue
        assert guard["SuppressedRules"], logical_id
        assert set(guard["Reasons"]) == set(guard["SuppressedRules"]), logical_id
        for rule, reason in guard["Reasons"].items():
            assert rule.isupper() and len(reason) >= MIN_REASON, (logical_id, rule)


def test_every_model_schema_is_an_object(stack):
    """cloudformation_include (the cdk-nag gate) refuses a Model whose Schema is a string."""
    _, template = stack
    for logical_id, model in resources(template, "AWS::ApiGateway::Model").items():
        assert isinstance(model["Properties"]["Schema"], dict), logical_id


def _gate(folder: Path, templates: dict[str, dict]) -> subprocess.CompletedProcess:
    paths = []
    for name, template in templates.items():
        path = folder / f"{name}.json"
        path.write_text(to_json(template))
        paths.append(str(path))
    return subprocess.run(
        ["node", str(GATE / "nag.js"), *paths],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.mark.skipif(
    not INSTALLED, reason="cdk-nag gate not installed: npm ci --prefix tools/cdk-nag (CI does)"
)
def test_cdk_nag_gate_passes_the_templates_and_fails_a_finding_or_a_stale_suppression(
    all_templates, tmp_path
):
    """One run over both templates and a broken copy of payment-api: the real ones pass;
    the copy has the stage's caching suppression removed (an unsuppressed error) and a
    suppression for a rule that never fires (a claim matching nothing): both fail."""
    broken = copy.deepcopy(all_templates["payment-api"])
    stage = broken["Resources"]["ApiStage"]["Metadata"]["cdk_nag"]
    stage["rules_to_suppress"] = [
        e for e in stage["rules_to_suppress"] if "CacheEnabled" not in e["id"]
    ]
    broken["Resources"]["RestApi"]["Metadata"] = {
        "cdk_nag": {"rules_to_suppress": [{"id": "AwsSolutions-S1", "reason": "x" * MIN_REASON}]}
    }
    run = _gate(tmp_path, {**all_templates, "broken-payment-api": broken})
    lines = run.stdout.splitlines()
    failing = [line for line in lines if line.startswith(("FAIL", "UNUSED"))]
    assert run.returncode == 1, run.stderr[-2000:]
    assert all(line.split()[1] == "broken-payment-api" for line in failing), failing
    expected = "FAIL broken-payment-api ApiStage PCI.DSS.321-APIGWCacheEnabledAndEncrypted"
    assert any(line.startswith(expected) for line in failing), failing
    assert any(
        line.startswith("UNUSED broken-payment-api RestApi AwsSolutions-S1") for line in failing
    ), failing
    summary = json.dumps(lines[-1])
    assert "cdk-nag 2." in summary
