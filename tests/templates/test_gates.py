"""The gates CI holds every template to: cfn-lint with informational rules, and checkov."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from templates.common import to_json
from templates.lint import lint_text
from tests.templates.cfn import resources

UPLOAD_LIMIT_BYTES = 51_200  # CloudFormation's limit for a template body sent directly


@pytest.mark.requirement("S001-BEST-PRACTICES")
def test_cfn_lint_with_informational_rules_finds_nothing(stack_json):
    base, text = stack_json
    assert lint_text(text, base) == []


def test_cfn_lint_gate_is_live(stack_json):
    """The gate fails on a real finding: a resource with a misspelt property."""
    base, text = stack_json
    broken = json.loads(text)
    broken["Resources"]["Broken"] = {"Type": "AWS::SQS::Queue", "Properties": {"QueueNam": "x"}}
    assert any("QueueNam" in finding for finding in lint_text(json.dumps(broken), base))


def without_checkov_skips(template: dict) -> dict:
    """A copy of the template with every checkov skip removed from the Metadata."""
    stripped = copy.deepcopy(template)
    for resource in stripped["Resources"].values():
        resource.get("Metadata", {}).pop("checkov", None)
    return stripped


@pytest.fixture(scope="session")
def checkov_results(all_templates, tmp_path_factory) -> dict[str, dict]:
    """File stem -> checkov's results, for each template and for its copy without skips.

    One checkov process for all of them (its start-up dominates the run time).
    """
    folder = tmp_path_factory.mktemp("checkov")
    for base, template in all_templates.items():
        (folder / f"{base}.json").write_text(to_json(template))
        (folder / f"{base}{STRIPPED}.json").write_text(to_json(without_checkov_skips(template)))
    exe = shutil.which("checkov") or str(Path(sys.executable).with_name("checkov"))
    run = subprocess.run(
        [exe, "-d", str(folder), "--framework", "cloudformation", "--skip-download",
         "--output", "json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )  # fmt: skip
    assert run.stdout.strip(), f"checkov printed nothing: {run.stderr[-2000:]}"
    report = json.loads(run.stdout)
    (report,) = report if isinstance(report, list) else [report]
    by_file: dict[str, dict] = {
        path.stem: {"failed": [], "passed": []} for path in folder.glob("*.json")
    }
    for outcome in ("failed", "passed"):
        for check in report["results"][f"{outcome}_checks"]:
            by_file[Path(check["file_path"]).stem][outcome].append(
                (check["check_id"], check["resource"].split(".", 1)[1])
            )
    return by_file


STRIPPED = "-without-skips"


@pytest.mark.requirement("S001-BEST-PRACTICES")
def test_checkov_reports_no_failed_check(stack, checkov_results):
    base, _ = stack
    assert checkov_results[base]["failed"] == []
    assert checkov_results[base]["passed"]


@pytest.mark.requirement("S001-BEST-PRACTICES")
def test_every_checkov_skip_suppresses_a_real_finding(stack, checkov_results):
    """A skip that suppresses nothing is a stale claim an auditor would question: without
    the skips, checkov fails exactly the skipped checks on exactly those resources."""
    base, template = stack
    skipped = {
        (skip["id"], logical_id)
        for logical_id, resource in resources(template).items()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }
    assert set(checkov_results[base + STRIPPED]["failed"]) == skipped


@pytest.mark.requirement("S001-BEST-PRACTICES")
def test_every_checkov_skip_is_in_metadata_with_a_reason(stack):
    _, template = stack
    for logical_id, resource in resources(template).items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert skip["id"].startswith("CKV"), (logical_id, skip)
            assert len(skip.get("comment", "")) >= 30, (
                f"{logical_id}: skip {skip['id']} needs a reason"
            )


# Stacks whose template must stay small enough to send as a TemplateBody. The platform
# (about 57 KB even without indentation) goes through S3: the console's "Upload a template
# file" stores it in S3 itself, and the deployer uploads bodies over the limit.
DIRECT_UPLOAD_STACKS = {"payment-api"}
S3_TEMPLATE_LIMIT_BYTES = 1_048_576  # CloudFormation's limit for a template in S3


def test_template_size_fits_its_upload_path(stack_json):
    base, text = stack_json
    size = len(text.encode())
    if base in DIRECT_UPLOAD_STACKS:
        assert size < UPLOAD_LIMIT_BYTES
    else:
        assert size < S3_TEMPLATE_LIMIT_BYTES
