"""Figures tests report (counts of a long run), shown in pytest's terminal summary.

Under pytest-xdist the tests run in worker processes: each worker hands its lines to the
controller when it finishes (tests/conftest.py), so the summary shows them either way.
"""

from __future__ import annotations

LINES: list[str] = []


def report(line: str) -> None:
    """Print a figure now (visible with -s) and again in the terminal summary."""
    print(line)
    LINES.append(line)
