"""Which tests name which requirement: `@pytest.mark.requirement("ID", ...)`, read statically.

The evidence report is built by generate.py, which must not import the test suite (moto,
hypothesis and the handlers would make generation slow and impure): so the markers are
read from the test files' syntax trees. The pytest plugin in tests/conftest.py checks at
every collection that this index agrees with the markers pytest itself sees.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

MARKER = "requirement"


class MarkerError(ValueError):
    """A requirement marker whose ids are not string literals (the index could not read it)."""


@dataclass(frozen=True)
class MarkerIndex:
    """Requirement id -> ids of the tests that name it, and test id -> requirement ids."""

    by_requirement: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    by_test: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def tests(self, requirement_id: str) -> tuple[str, ...]:
        return self.by_requirement.get(requirement_id, ())


def _marker_ids(node: ast.expr, where: str) -> list[str] | None:
    """The ids of a `pytest.mark.requirement(...)` / `mark.requirement(...)` call, else None."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return None
    if node.func.attr != MARKER:
        return None
    owner = node.func.value
    if not (isinstance(owner, ast.Attribute) and owner.attr == "mark") and not (
        isinstance(owner, ast.Name) and owner.id == "mark"
    ):
        return None
    ids = []
    for arg in node.args:
        if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
            raise MarkerError(f"{where}: requirement ids must be string literals")
        ids.append(arg.value)
    if not ids or node.keywords:
        raise MarkerError(f'{where}: write @pytest.mark.requirement("ID", ...) with ids only')
    return ids


def _marks(decorators: list[ast.expr], where: str) -> list[str]:
    found: list[str] = []
    for decorator in decorators:
        found += _marker_ids(decorator, where) or []
    return found


def _module_marks(tree: ast.Module, where: str) -> list[str]:
    """Ids of a module-level `pytestmark = pytest.mark.requirement(...)` (or a list of marks)."""
    found: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
        ):
            values = (
                node.value.elts if isinstance(node.value, ast.List | ast.Tuple) else [node.value]
            )
            for value in values:
                found += _marker_ids(value, where) or []
    return found


def _tests_in(path: str, tree: ast.Module) -> dict[str, list[str]]:
    """Test id (`path::[Class::]name`) -> requirement ids of one module."""
    module_ids = _module_marks(tree, path)
    found: dict[str, list[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            test_id = f"{path}::{node.name}"
            found[test_id] = module_ids + _marks(node.decorator_list, test_id)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            class_ids = module_ids + _marks(node.decorator_list, f"{path}::{node.name}")
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef) and (
                    item.name.startswith("test")
                ):
                    test_id = f"{path}::{node.name}::{item.name}"
                    found[test_id] = class_ids + _marks(item.decorator_list, test_id)
    return found


def index_tests(sources: Mapping[str, str]) -> MarkerIndex:
    """The index of test files given as {path relative to the project root: source text}."""
    by_test: dict[str, tuple[str, ...]] = {}
    for path in sorted(sources):
        tree = ast.parse(sources[path], filename=path)
        for test_id, ids in _tests_in(path, tree).items():
            if ids:
                by_test[test_id] = tuple(dict.fromkeys(ids))
    by_requirement: dict[str, list[str]] = {}
    for test_id, ids in by_test.items():
        for requirement_id in ids:
            by_requirement.setdefault(requirement_id, []).append(test_id)
    return MarkerIndex(
        by_requirement={k: tuple(v) for k, v in sorted(by_requirement.items())},
        by_test=by_test,
    )


def marker_problems(
    collected: Mapping[str, list[str]], known: set[str], index: MarkerIndex
) -> list[str]:
    """What is wrong with the markers pytest collected ({node id: ids}): an unknown id, or a
    test whose markers the static index reads differently (a marker built at run time)."""
    problems = []
    for node_id, marked in collected.items():
        unknown = sorted(set(marked) - known)
        if unknown:
            problems.append(f"{node_id}: unknown requirement id(s) {unknown}")
        indexed = set(index.by_test.get(re.sub(r"\[.*\]$", "", node_id), ()))
        if set(marked) != indexed:
            problems.append(
                f"{node_id}: pytest sees requirement markers {sorted(set(marked))}, the "
                f"evidence index reads {sorted(indexed)}; write the marker as a decorator "
                "(or pytestmark) with string literals"
            )
    return problems


def uncollected(index: MarkerIndex, collected: Mapping[str, set[str]]) -> list[str]:
    """Indexed tests pytest did not collect although it collected the module or class they
    are in ({collector node id: names of its children}): they would never run."""
    problems = []
    for test_id in index.by_test:
        parent, _, name = test_id.rpartition("::")
        if parent in collected and name not in collected[parent]:
            problems.append(
                f"{test_id}: marked as a requirement's proof but pytest does not collect it "
                "(a test class with __init__, the name rebound, its module skipped at "
                "collection): it would never run"
            )
    return problems
