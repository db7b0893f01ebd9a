"""A requirement's test is evidence only if it runs and passes (tests/requirement_plugin.py).

Each case runs a small suite of its own (pytester, in this process) with the plugin and a
copy of the requirement tables, and checks what pytest answers.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PITR = "S001-PITR"  # any id of the tables


@pytest.fixture
def suite(pytester):
    """A project root with the requirement tables; `run(source)` runs one test module."""
    shutil.copytree(ROOT / "requirements", pytester.path / "requirements")
    pytester.makeini(
        "[pytest]\nmarkers =\n    requirement(*ids): the requirement ids the test proves\n"
    )

    def run(source: str):
        (pytester.path / "tests").mkdir(exist_ok=True)
        (pytester.path / "tests" / "test_proof.py").write_text(source)
        return pytester.runpytest_inprocess("-p", "tests.requirement_plugin", "-p", "no:xdist")

    return run


@pytest.mark.parametrize(
    ("source", "why"),
    [
        (
            f'@pytest.mark.skip(reason="flaky")\n@pytest.mark.requirement("{PITR}")\n'
            "def test_it():\n    assert False\n",
            "was skipped: flaky",
        ),
        (
            f'@pytest.mark.requirement("{PITR}")\ndef test_it():\n    pytest.skip("no tool")\n',
            "was skipped: no tool",
        ),
        (
            '@pytest.fixture\ndef tool():\n    pytest.skip("no tool")\n\n\n'
            f'@pytest.mark.requirement("{PITR}")\ndef test_it(tool):\n    pass\n',
            "was skipped: no tool",
        ),
        (
            f'@pytest.mark.requirement("{PITR}")\n@pytest.mark.xfail(reason="known")\n'
            "def test_it():\n    assert False\n",
            "was marked xfail (known)",
        ),
        (
            f'@pytest.mark.requirement("{PITR}")\n@pytest.mark.xfail(reason="known")\n'
            "def test_it():\n    pass\n",
            "was marked xfail (known)",
        ),
    ],
    ids=["skip-marker", "skip-call", "skipping-fixture", "xfail", "xpass"],
)
def test_a_requirement_test_that_is_skipped_or_xfailed_fails_the_run(suite, source, why):
    result = suite("import pytest\n\n\n" + source)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) + outcomes.get("errors", 0) == 1, outcomes
    assert "skipped" not in outcomes and "xfailed" not in outcomes, outcomes
    result.stdout.fnmatch_lines([f"*test_it proves {PITR} but {why}*"])


def test_an_unmarked_skip_stays_a_skip_and_a_passing_proof_passes(suite):
    result = suite(
        "import pytest\n\n\n@pytest.mark.skip(reason='later')\ndef test_other():\n    pass\n\n\n"
        f'@pytest.mark.requirement("{PITR}")\ndef test_it():\n    pass\n'
    )
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1, skipped=1)


@pytest.mark.parametrize(
    ("source", "test_id"),
    [
        (
            "class TestNeverCollected:\n    def __init__(self):\n        pass\n\n"
            f'    @pytest.mark.requirement("{PITR}")\n    def test_it(self):\n        pass\n',
            "TestNeverCollected::test_it",
        ),
        (
            'nope = pytest.importorskip("no_such_module_here")\n\n\n'
            f'@pytest.mark.requirement("{PITR}")\ndef test_it():\n    pass\n',
            "test_proof.py::test_it",
        ),
    ],
    ids=["class-with-init", "module-skipped-at-collection"],
)
def test_a_marked_test_pytest_never_collects_is_a_usage_error(suite, source, test_id):
    result = suite("import pytest\n\n\n" + source)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{test_id}: marked as a requirement's*"])


def test_selecting_one_test_does_not_count_its_neighbours_as_uncollected(suite, pytester):
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests" / "test_two.py").write_text(
        f'import pytest\n\n\n@pytest.mark.requirement("{PITR}")\ndef test_a():\n    pass\n\n\n'
        f'@pytest.mark.requirement("{PITR}")\ndef test_b():\n    pass\n'
    )
    result = pytester.runpytest_inprocess(
        "-p", "tests.requirement_plugin", "-p", "no:xdist", "tests/test_two.py::test_a"
    )
    assert result.ret == pytest.ExitCode.OK
    result.assert_outcomes(passed=1)
