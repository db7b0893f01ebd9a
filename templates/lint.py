"""cfn-lint, in-process, with informational rules on (the same as `cfn-lint -c I`)."""

from __future__ import annotations

from cfnlint.api import ManualArgs, lint

# The regions the templates are linted for: the platform is us-east-1 only, and the
# payment API is linted where it is deployed by default.
LINT_REGIONS = ["us-east-1"]


def lint_text(text: str, name: str = "template") -> list[str]:
    """Every cfn-lint finding (errors, warnings and informational) as `name: finding`."""
    matches = lint(text, config=ManualArgs(include_checks=["I"], regions=LINT_REGIONS))
    return [f"{name}: {match}" for match in matches]
