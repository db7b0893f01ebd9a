"""Suite-wide: say in pytest's header which Python the functions are tested on."""

from __future__ import annotations

import sys

from templates.functions import RUNTIME
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
