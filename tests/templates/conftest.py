"""Templates built once per session, for every registered stack."""

from __future__ import annotations

import pytest

from templates.common import to_json
from templates.naming import Naming
from templates.registry import STACKS, build_templates

SUFFIX = "qa"


@pytest.fixture(scope="session")
def naming() -> Naming:
    return Naming(SUFFIX)


@pytest.fixture(scope="session")
def all_templates(naming) -> dict[str, dict]:
    """Base stack name -> template dict."""
    built = build_templates(naming)
    return {base: built[naming.stack(base)] for base in STACKS}


@pytest.fixture(scope="session", params=sorted(STACKS))
def stack(request, all_templates) -> tuple[str, dict]:
    """(base name, template) for each registered stack in turn."""
    return request.param, all_templates[request.param]


@pytest.fixture(scope="session")
def stack_json(stack) -> tuple[str, str]:
    """(base name, deterministic JSON text) for each registered stack."""
    return stack[0], to_json(stack[1])


@pytest.fixture(scope="session")
def payment_api(all_templates) -> dict:
    return all_templates["payment-api"]
