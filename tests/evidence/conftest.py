"""Inputs of the evidence report, read once per session."""

from __future__ import annotations

import pytest

from templates.naming import Naming
from templates.registry import build_templates
from templates.sources import read_sources

SUFFIX = "qa"


@pytest.fixture(scope="session")
def sources():
    return read_sources()


@pytest.fixture(scope="session")
def built() -> dict[str, dict]:
    """Stack name (`payment-api-qa`) -> template, as generate.py writes them."""
    return build_templates(Naming(SUFFIX))
