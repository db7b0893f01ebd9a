"""Make (or refresh) the project's virtual environment `.venv` and install the project into it.

    python3 scripts/venv.py           # the tools: generate.py, deploy.py
    python3 scripts/venv.py dev       # and the test tools ([dev] extra)
    python3 scripts/venv.py dev --strict   # CI: refuse to test on any Python but the runtime's

Why a script and not `pip install` alone: where the system Python refuses `pip install`
(PEP 668, as on Debian) a virtual environment is the way in, and the Lambda functions must
be tested on the Python of the runtime the template declares (`python3.12`), not on whatever
`python3` is. So the environment is made with that Python when this machine has it (on PATH
or under pyenv); otherwise with this Python, and it says so. Only the standard library is used.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
# The Lambda runtime of every function (templates/functions.py RUNTIME; a test keeps the two equal).
LAMBDA_RUNTIME = "python3.12"
EXIT_NO_RUNTIME = 2


def runtime_version() -> tuple[int, int]:
    """(3, 12) for python3.12."""
    major, minor = LAMBDA_RUNTIME.removeprefix("python").split(".")
    return int(major), int(minor)


def find_runtime_python() -> str | None:
    """An interpreter of the Lambda runtime's version that runs: this one, on PATH, or pyenv's."""
    if sys.version_info[:2] == runtime_version():
        return sys.executable
    major, minor = runtime_version()
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    candidates = [shutil.which(LAMBDA_RUNTIME)]
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/{major}.{minor}.*/bin/{LAMBDA_RUNTIME}"))
    wanted = f"{major}.{minor}"
    # A pyenv shim is on PATH even where that version is not selected, and then fails: try each.
    return next((c for c in candidates if c and python_version(c) == wanted), None)


def venv_version(venv: Path) -> str | None:
    """The "major.minor" Python version of an existing environment, from its pyvenv.cfg."""
    cfg = venv / "pyvenv.cfg"
    if not cfg.is_file():
        return None
    for line in cfg.read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition("=")
        if key.strip() in ("version", "version_info"):
            return ".".join(value.strip().split(".")[:2])
    return None


def python_version(python: str) -> str | None:
    """The "major.minor" version of an interpreter, or None when it does not run."""
    code = "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"
    # Our own interpreter paths, no shell: nothing untrusted reaches the command line.
    completed = subprocess.run(  # noqa: S603
        [python, "-c", code], check=False, capture_output=True, text=True
    )
    return completed.stdout.strip() if completed.returncode == 0 else None


def run(*command: str) -> None:
    """Run a command, echoing it; stop with its exit code if it fails."""
    print("+", " ".join(command), flush=True)
    completed = subprocess.run(command, check=False)  # noqa: S603 - our own commands, no shell
    if completed.returncode != 0:
        sys.exit(completed.returncode)


def main(argv: list[str] | None = None) -> int:
    """Create .venv with the right Python if needed, then install the project (editable)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("extra", nargs="?", choices=["dev"], help="also install the [dev] extra")
    parser.add_argument(
        "--strict",
        action="store_true",
        help=f"fail (exit {EXIT_NO_RUNTIME}) when {LAMBDA_RUNTIME} is not on this machine",
    )
    args = parser.parse_args(argv)

    python = find_runtime_python()
    if python is None:
        message = (
            f"{LAMBDA_RUNTIME} (the Lambda runtime the templates declare) is not on this machine "
            "(neither on PATH nor under pyenv)"
        )
        if args.strict:
            print(f"venv.py: error: {message}; install it (pyenv install 3.12)", file=sys.stderr)
            return EXIT_NO_RUNTIME
        print(
            f"venv.py: warning: {message}; using Python {sys.version.split()[0]}, so the "
            "functions are tested on another Python than the one that runs them (CI uses "
            f"{LAMBDA_RUNTIME})",
            file=sys.stderr,
        )
        python = sys.executable
    wanted = python_version(python)
    if wanted is None:
        print(f"venv.py: error: {python} does not run", file=sys.stderr)
        return 1
    have = venv_version(VENV)
    if have is not None and have != wanted:
        print(f"venv.py: {VENV.name} is Python {have}; remaking it on {wanted}")
        shutil.rmtree(VENV)
    if not (VENV / "pyvenv.cfg").is_file():
        run(python, "-m", "venv", str(VENV))
    venv_python = str(VENV / ("Scripts" if os.name == "nt" else "bin") / "python")
    target = f"{ROOT}[{args.extra}]" if args.extra else str(ROOT)
    run(venv_python, "-m", "pip", "install", "--quiet", "-e", target)
    print(f"venv.py: {VENV.name} ready on Python {wanted}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
