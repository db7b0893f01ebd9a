"""Generate the CloudFormation templates into build/ and lint them with cfn-lint."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

from templates.common import to_json
from templates.naming import Naming, NamingError
from templates.registry import STACKS, UnknownStackError, build_templates

EXIT_BAD_INPUT = 2
EXIT_LINT_FINDINGS = 1


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line on stderr and exit 2, like every other bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line: suffix, output directory, stacks, lint switch."""
    parser = OneLineParser(
        description="Generate the payment stacks' CloudFormation templates "
        "(DIR/<stack>-<suffix>.json) and lint them with cfn-lint.",
    )
    parser.add_argument(
        "--suffix",
        required=True,
        help="environment suffix carried by every name, e.g. qa or prod "
        "(lowercase letters, digits and '-', not starting or ending with '-'; "
        "write --suffix=VALUE for a value that starts with '-')",
    )
    parser.add_argument(
        "--out", default="build", type=Path, help="output directory (default: build)"
    )
    parser.add_argument(
        "--stack",
        action="append",
        metavar="NAME",
        help=f"generate only this stack; repeatable (known: {', '.join(STACKS)}; default: all)",
    )
    parser.add_argument(
        "--no-lint", action="store_true", help="skip the cfn-lint step (not for CI)"
    )
    return parser.parse_args(argv)


def current_umask() -> int:
    """The process umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomically(path: Path, text: str) -> None:
    """Write through a temporary file in the same directory and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        # mkstemp creates 0600; a template is no secret, give it the usual file mode.
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    """Build every selected template, write them, then lint what was written."""
    args = parse_args(argv)
    try:
        naming = Naming(args.suffix)
        # Every template is built before anything is written: a name that is too long
        # in the last stack leaves build/ untouched.
        templates = build_templates(naming, args.stack)
    except (NamingError, UnknownStackError) as error:
        print(f"generate.py: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    written = {}
    for stack_name, template in templates.items():
        path = args.out / f"{stack_name}.json"
        text = to_json(template)
        write_atomically(path, text)
        written[path] = text
        print(f"wrote {path} ({len(text.encode())} bytes)")
    if args.no_lint:
        return 0
    # Imported here: cfn-lint takes most of a second to import, which --no-lint skips.
    from templates.lint import lint_text

    # The text linted is byte for byte the text written.
    findings = [f for path, text in written.items() for f in lint_text(text, str(path))]
    for finding in findings:
        print(finding, file=sys.stderr)
    if findings:
        print(f"cfn-lint: {len(findings)} finding(s)", file=sys.stderr)
        return EXIT_LINT_FINDINGS
    print(f"cfn-lint: {len(written)} template(s) clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
