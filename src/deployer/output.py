"""Line-based output for humans and CI logs: every line names its stack."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

# Library code never prints: it is handed a writer (print in the CLI, a list in tests).
Writer = Callable[[str], None]


@dataclass(frozen=True)
class StackLog:
    """Writes lines prefixed with `[stack]` so interleaved CI logs stay readable."""

    writer: Writer
    stack: str

    def __call__(self, text: str) -> None:
        """Write one or more lines, each prefixed with the stack name."""
        for line in text.splitlines() or [""]:
            self.writer(f"[{self.stack}] {line}")


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> Iterable[str]:
    """Left-aligned columns sized to their widest cell, one string per line."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    for row in [header, *rows]:
        yield "  ".join(
            str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)
        ).rstrip()
