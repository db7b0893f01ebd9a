"""The static index of requirement markers the evidence report lists tests from."""

from __future__ import annotations

import pytest

from templates.testindex import MarkerError, index_tests, marker_problems

SOURCE = """
import pytest
from pytest import mark

pytestmark = pytest.mark.requirement("S001-A")


@pytest.mark.requirement("S001-B", "S001-C")
@pytest.mark.parametrize("x", [1, 2])
def test_one(x):
    pass


def test_two():
    pass


@mark.requirement("S001-D")
class TestGroup:
    @pytest.mark.requirement("S001-E")
    def test_three(self):
        pass

    def helper(self):
        pass


def helper():
    pass
"""


def test_functions_classes_and_module_marks_are_indexed():
    index = index_tests({"tests/test_x.py": SOURCE})
    assert index.by_test == {
        "tests/test_x.py::test_one": ("S001-A", "S001-B", "S001-C"),
        "tests/test_x.py::test_two": ("S001-A",),
        "tests/test_x.py::TestGroup::test_three": ("S001-A", "S001-D", "S001-E"),
    }
    assert index.tests("S001-A") == (
        "tests/test_x.py::test_one",
        "tests/test_x.py::test_two",
        "tests/test_x.py::TestGroup::test_three",
    )
    assert index.tests("S001-Z") == ()


@pytest.mark.parametrize(
    "decorator",
    [
        "@pytest.mark.requirement(IDS)",
        "@pytest.mark.requirement()",
        '@pytest.mark.requirement("A", reason="x")',
    ],
)
def test_a_marker_the_index_cannot_read_is_an_error(decorator):
    with pytest.raises(MarkerError, match=r"tests/test_y\.py::test_z"):
        index_tests({"tests/test_y.py": f"import pytest\n{decorator}\ndef test_z():\n    pass\n"})


def test_unknown_ids_and_markers_the_index_misses_are_problems():
    index = index_tests({"tests/test_x.py": SOURCE})
    known = {"S001-A", "S001-B", "S001-C"}
    collected = {
        "tests/test_x.py::test_one[1]": ["S001-A", "S001-B", "S001-C"],
        "tests/test_x.py::test_two": ["S001-A", "S001-NOPE"],
        "tests/test_y.py::test_made_at_run_time": ["S001-A"],
    }
    problems = marker_problems(collected, known, index)
    assert problems == [
        "tests/test_x.py::test_two: unknown requirement id(s) ['S001-NOPE']",
        "tests/test_x.py::test_two: pytest sees requirement markers ['S001-A', 'S001-NOPE'], "
        "the evidence index reads ['S001-A']; write the marker as a decorator (or pytestmark) "
        "with string literals",
        "tests/test_y.py::test_made_at_run_time: pytest sees requirement markers ['S001-A'], "
        "the evidence index reads []; write the marker as a decorator (or pytestmark) with "
        "string literals",
    ]
