"""Suite-wide: say in pytest's header which Python the functions are tested on, carry the
figures tests report, and check the requirement markers (`@pytest.mark.requirement("ID")`).

The marker checks live in tests/requirement_plugin.py (unknown ids, markers the evidence
index reads differently, indexed tests pytest never collects, and a marked test that is
skipped or xfailed fails). That every requirement has a test is a test of its own
(tests/evidence/test_requirement_markers.py), so it runs with the suite.
"""

from __future__ import annotations

import sys

from templates.functions import RUNTIME
from tests import figures
from tests.requirement_plugin import (  # noqa: F401 - hooks pytest finds in this conftest
    pytest_collection_modifyitems,
    pytest_collectreport,
    pytest_runtest_makereport,
    pytest_sessionstart,
)

# pytester runs small suites of their own (tests/evidence/test_requirement_proofs.py).
pytest_plugins = ("pytester",)


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
