"""cfn-lint, in-process, with informational rules on (the same as `cfn-lint -c I`), and the
OpenAPI documents checked by openapi-spec-validator."""

from __future__ import annotations

from cfnlint.api import ManualArgs, lint

# The regions the templates are linted for: the platform is us-east-1 only, and the
# payment API is linted where it is deployed by default.
LINT_REGIONS = ["us-east-1"]


def lint_text(text: str, name: str = "template") -> list[str]:
    """Every cfn-lint finding (errors, warnings and informational) as `name: finding`."""
    matches = lint(text, config=ManualArgs(include_checks=["I"], regions=LINT_REGIONS))
    return [f"{name}: {match}" for match in matches]


def lint_openapi(document: dict, name: str = "openapi") -> list[str]:
    """Every openapi-spec-validator error of an OpenAPI document as `name: error`."""
    from openapi_spec_validator import OpenAPIV30SpecValidator

    return [
        f"{name}: {'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message}"
        for error in OpenAPIV30SpecValidator(document).iter_errors()
    ]
