"""generate.py as a user runs it: output, determinism, bad input, the lint gate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import generate
from templates.registry import STACKS

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """python generate.py ARGS in a fresh interpreter, as a user would run it."""
    return subprocess.run(
        [sys.executable, str(ROOT / "generate.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.mark.requirement("S000-SINGLE-FILE", "S001-CDK-PYTHON")
def test_writes_one_linted_template_per_stack_with_its_diagram_and_the_evidence(tmp_path):
    result = run("--suffix", "qa", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    written = sorted(p.name for p in tmp_path.glob("*.json"))
    # Each stack's template, and beside it its API's OpenAPI document (every stack has one).
    assert written == sorted(
        name for base in STACKS for name in (f"{base}-qa.json", f"{base}-qa.openapi.json")
    )
    assert "template(s) clean" in result.stdout
    assert "document(s) valid" in result.stdout
    for base in STACKS:
        template = json.loads((tmp_path / f"{base}-qa.json").read_text())
        assert template["AWSTemplateFormatVersion"] == "2010-09-09"
        assert json.loads((tmp_path / f"{base}-qa.openapi.json").read_text())["openapi"]
    others = sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".json")
    assert others == sorted(
        ["evidence-qa.md", "evidence-qa.html"]
        + [f"{base}-qa.{ext}" for base in STACKS for ext in ("d2", "svg")]
    )
    for base in STACKS:
        assert (tmp_path / f"{base}-qa.svg").read_text().lstrip().startswith("<?xml")


def test_output_is_deterministic(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    assert generate.main(["--suffix", "qa", "--out", str(first), "--no-lint"]) == 0
    assert generate.main(["--suffix", "qa", "--out", str(second), "--no-lint"]) == 0
    assert sorted(p.name for p in first.iterdir()) == sorted(p.name for p in second.iterdir())
    for path in first.iterdir():
        assert path.read_bytes() == (second / path.name).read_bytes(), path.name
    for path in first.glob("*.json"):
        text = path.read_text()
        assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"


def test_files_get_the_usual_mode_not_the_temporary_files_0600(tmp_path):
    assert generate.main(["--suffix", "qa", "--out", str(tmp_path), "--no-lint"]) == 0
    for path in tmp_path.iterdir():
        assert path.stat().st_mode & 0o777 == 0o666 & ~generate.current_umask()


def test_only_the_requested_stack_is_written(tmp_path, capsys):
    assert (
        generate.main(
            ["--suffix", "qa", "--out", str(tmp_path), "--stack", "payment-api", "--no-lint"]
        )
        == 0
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "payment-api-qa.d2",
        "payment-api-qa.json",
        "payment-api-qa.openapi.json",
        "payment-api-qa.svg",
    ]
    assert "evidence: skipped (the report covers every stack" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("suffix", "expected"),
    [
        ("", "suffix is empty"),
        ("QA", "is invalid"),
        ("q_a", "is invalid"),
        ("q.a", "is invalid"),
        ("-qa", "is invalid"),
        ("qa-", "is invalid"),
        ("x" * 50, "the AWS limit is 64"),
    ],
)
def test_bad_suffix_exits_2_with_one_line_and_writes_nothing(tmp_path, suffix, expected):
    out = tmp_path / "build"
    result = run(f"--suffix={suffix}", "--out", str(out))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr
    assert not out.exists()


def test_usage_errors_are_one_line_too(tmp_path):
    result = run("--out", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "generate.py: error: the following arguments are required: --suffix"
    ]


def test_unknown_stack_exits_2_and_lists_the_known_ones(tmp_path):
    result = run("--suffix", "qa", "--out", str(tmp_path), "--stack", "payments")
    assert result.returncode == 2
    assert "unknown stack 'payments'" in result.stderr
    for base in STACKS:
        assert base in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_lint_finding_fails_the_run(tmp_path, monkeypatch, capsys):
    def broken(naming, names=None):
        return {
            "payment-api-qa": {
                "AWSTemplateFormatVersion": "2010-09-09",
                "Resources": {
                    "Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueNam": "x"}}
                },
            }
        }

    monkeypatch.setattr(generate, "build_templates", broken)
    assert generate.main(["--suffix", "qa", "--out", str(tmp_path)]) == 1
    assert "QueueNam" in capsys.readouterr().err


def test_a_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(generate.os, "replace", explode)
    with pytest.raises(OSError, match="disk full"):
        generate.main(["--suffix", "qa", "--out", str(tmp_path), "--no-lint"])
    assert list(tmp_path.iterdir()) == []


def test_an_invalid_openapi_document_fails_the_lint_step(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(generate, "build_openapi", lambda template, name: {"openapi": "3.0.3"})
    assert (
        generate.main(
            ["--suffix", "qa", "--out", str(tmp_path), "--stack", "payment-api", "--no-diagrams"]
        )
        == 1
    )
    assert "openapi-spec-validator" in capsys.readouterr().err


def test_a_route_without_a_written_contract_writes_nothing(tmp_path, monkeypatch, capsys):
    from templates.api_contract import UndocumentedRouteError

    def undocumented(template, name):
        raise UndocumentedRouteError("route GET /status has no contract")

    monkeypatch.setattr(generate, "build_openapi", undocumented)
    assert generate.main(["--suffix", "qa", "--out", str(tmp_path), "--no-lint"]) == 2
    assert "GET /status" in capsys.readouterr().err
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []
