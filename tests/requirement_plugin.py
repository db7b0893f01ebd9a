"""The pytest side of `@pytest.mark.requirement("ID", ...)`: what makes a marked test a proof.

The evidence report (templates/evidence.py) lists, per requirement, the tests the static
index (templates/testindex.py) reads from the test files. A listed test is only evidence if
pytest really runs it and it passes, so at every run:

- a marker naming an id no requirement table defines, or one the static index reads
  differently from pytest (a marker built at run time), is a usage error at collection;
- an indexed test pytest does not collect (a test class with `__init__`, a name rebound to
  something that is not a test, a module skipped at collection by `importorskip`) is a
  usage error at collection: it would never run;
- a marked test that is skipped or xfailed (a skip marker, `pytest.skip()`, `importorskip`,
  a skipping fixture, `xfail`, an unexpected pass of an xfail) fails: a proof that does not
  run proves nothing. Make it run, or take the marker off and mark a test that does.

Loaded by tests/conftest.py; `-p tests.requirement_plugin` loads it into another suite.
"""

from __future__ import annotations

import re

import pytest

from templates.requirements import all_ids
from templates.sources import read_sources
from templates.testindex import MARKER, marker_problems, uncollected

# Collector node id (module or class) -> names of the children pytest collected in it.
_COLLECTED: dict[str, set[str]] = {}


def pytest_sessionstart(session) -> None:
    _COLLECTED.clear()  # one session's collection (pytester runs several in one process)


def pytest_collectreport(report) -> None:
    """Remember what pytest collected in each module and class (before any selection); a
    module skipped at collection (`pytest.importorskip` at its top) collected nothing."""
    if report.passed:
        _COLLECTED[report.nodeid] = {
            getattr(node, "originalname", node.name) for node in report.result
        }
    elif report.skipped:
        _COLLECTED[report.nodeid] = set()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session, config, items):
    """Refuse markers the requirement tables or the static index do not know, and indexed
    tests pytest does not collect."""
    sources = read_sources(config.rootpath)
    collected = {
        item.nodeid: [arg for mark in item.iter_markers(MARKER) for arg in mark.args]
        for item in items
    }
    problems = marker_problems(collected, all_ids(sources.seeds, sources.rules), sources.tests)
    problems += uncollected(sources.tests, _COLLECTED)
    if problems:
        raise pytest.UsageError("requirement markers:\n" + "\n".join(problems))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A requirement's test that is skipped or xfailed is a failure, not a skip."""
    report = yield
    marked = [arg for mark in item.iter_markers(MARKER) for arg in mark.args]
    if not marked:
        return report
    expected_failure = getattr(report, "wasxfail", None)
    if report.skipped or expected_failure is not None:
        if report.skipped and expected_failure is None:
            why = "was skipped: " + _skip_reason(report.longrepr)
        else:
            why = f"was marked xfail ({expected_failure or 'no reason'})"
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} proves {', '.join(marked)} but {why}. A proof that does not run "
            "proves nothing: make it run, or remove the requirement marker (the evidence "
            "report lists this test as proof)."
        )
        if expected_failure is not None:
            del report.wasxfail
    return report


def _skip_reason(longrepr) -> str:
    """The reason text of a skip report's (path, line, 'Skipped: reason') tuple."""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return re.sub(r"^Skipped: ", "", str(longrepr[2]))
    return str(longrepr)
