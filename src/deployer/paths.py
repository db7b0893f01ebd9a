"""Whether a path given on the command line can be written, told before any work is done.

Light on purpose (os only): generate.py and `python -m deployer.packaging` use it too.
"""

from __future__ import annotations

import os
from pathlib import Path


def unwritable(path: Path, *, directory: bool) -> str | None:
    """Why `path` (a file, or with `directory` a directory) cannot be created or written
    to, as the rest of a sentence starting with the path; None when it can. Missing parent
    directories are fine: the writers create them."""
    if path.exists() and (path.is_dir() != directory):
        return "is a directory; give a file" if path.is_dir() else "is a file; give a directory"
    existing = path.absolute() if (directory and path.is_dir()) else path.absolute().parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a directory; give another path"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None
