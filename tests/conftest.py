"""Suite-wide: say in pytest's header which Python the functions are tested on, carry the
figures tests report, and check the requirement markers (`@pytest.mark.requirement("ID")`).

At every collection a marker naming an id no requirement table defines is an error, and the
static index the evidence report is built from (templates.testindex) must agree with the
markers pytest itself sees. That every requirement has a test is a test of its own
(tests/evidence/test_requirement_markers.py), so it runs with the suite.
"""

from __future__ import annotations

import sys

import pytest

from templates.functions import RUNTIME
from templates.requirements import all_ids
from templates.sources import read_sources
from templates.testindex import marker_problems
from tests import figures


def pytest_report_header(config) -> list[str]:
    """The interpreter under test beside the Lambda runtime the templates declare."""
    here = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    line = f"Lambda runtime (templates): {RUNTIME}; tests run on: {here}"
    if here != RUNTIME:
        line += " -- NOT the runtime: make the environment with `python3 scripts/venv.py dev`"
    return [line]


def pytest_sessionfinish(session) -> None:
    """On an xdist worker: hand the reported figures to the controller."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["figures"] = list(figures.LINES)


def pytest_testnodedown(node, error) -> None:
    """On the xdist controller: collect a finished worker's figures."""
    figures.LINES.extend(getattr(node, "workeroutput", {}).get("figures", []))


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Show the figures the tests reported."""
    if figures.LINES:
        terminalreporter.section("payment platform figures")
        for line in figures.LINES:
            terminalreporter.write_line(line)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items):
    sources = read_sources()
    collected = {
        item.nodeid: [arg for mark in item.iter_markers("requirement") for arg in mark.args]
        for item in items
    }
    problems = marker_problems(collected, all_ids(sources.seeds, sources.rules), sources.tests)
    if problems:
        raise pytest.UsageError("requirement markers:\n" + "\n".join(problems))
