"""The documentation covers what a user sets and reads: every option, parameter and output."""

from __future__ import annotations

from pathlib import Path

import pytest

import generate

from .conftest import SUFFIX

ROOT = Path(__file__).resolve().parents[2]


def text(*paths: str) -> str:
    return "\n".join((ROOT / p).read_text(encoding="utf-8") for p in paths)


@pytest.mark.requirement("S001-DOCUMENTATION", "S001-CODE-QUALITY")
def test_every_parameter_and_output_of_each_template_is_documented(built):
    docs = text("README.md", "docs/platform.md")
    for name, template in built.items():
        for section in ("Parameters", "Outputs"):
            for key in template.get(section, {}):
                assert f"`{key}`" in docs, f"{name}: {section[:-1].lower()} {key} is undocumented"


@pytest.mark.requirement("S001-DOCUMENTATION")
def test_every_generate_option_is_in_the_readme():
    readme = text("README.md")
    parser_options = [
        option
        for action in generate.build_parser()._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    ]
    assert "--suffix" in parser_options and "--docs" in parser_options
    for option in parser_options:
        assert f"`{option}" in readme, f"generate.py {option} is not in the README"


@pytest.mark.requirement("S001-DOCUMENTATION")
def test_the_readme_says_how_to_deploy_from_the_console_and_with_deploy_py():
    readme = text("README.md")
    for heading in (
        "## Quick start",
        "## Deploying from the CloudFormation console",
        "## Deploying with `deploy.py`",
    ):
        assert heading in readme
    assert f"python generate.py --suffix {SUFFIX}" in readme
