"""Benchmark: whole-process time of `python generate.py --suffix qa` and template sizes.

Prints medians over several runs, beside peers measured in the same run: an empty
interpreter, one that only imports troposphere and awacs (the floor of any generator built
on them), and generate.py without its evidence report and diagrams (what the default run
cost before they existed; the default must stay within 1.5x of it). Not a test: figures to
read, with the targets next to them.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 0.5
# The default run (lint, evidence, diagrams) against the same run without the evidence and
# the diagrams: the issue that added them allows at most this ratio.
EXTRAS_RATIO_LIMIT = 1.5
UPLOAD_LIMIT_BYTES = 51_200


def median_seconds(command: list[str], runs: int) -> float:
    """Median wall time of `command` over `runs` fresh processes (one warm-up first)."""
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory() as out:
        generate = [py, "generate.py", "--suffix", "qa", "--out", out]
        bare = [*generate, "--no-evidence", "--no-diagrams"]
        lint_runs = max(3, args.runs // 3)
        rows = [
            ("python -c pass (interpreter floor)", median_seconds([py, "-c", "pass"], args.runs)),
            (
                "import troposphere, awacs (library floor)",
                median_seconds([py, "-c", "import troposphere, awacs.aws"], args.runs),
            ),
            (
                "generate.py --no-lint --no-evidence --no-diagrams",
                median_seconds([*bare, "--no-lint"], args.runs),
            ),
            (
                "generate.py --no-lint (evidence, diagrams)",
                median_seconds([*generate, "--no-lint"], args.runs),
            ),
            ("generate.py --no-evidence --no-diagrams (lint)", median_seconds(bare, lint_runs)),
            ("generate.py --suffix qa (default: all)", median_seconds(generate, lint_runs)),
        ]
        sizes = {p.name: p.stat().st_size for p in sorted(Path(out).glob("*.json"))}
    floor = rows[1][1]
    print(f"median over {args.runs} runs (lint: {max(3, args.runs // 3)}), 2-core machine")
    for label, seconds in rows:
        print(f"  {label:50s} {seconds * 1000:8.1f} ms  ({seconds / floor:4.2f}x library floor)")
    no_lint = rows[2][1]
    verdict = "meets" if no_lint < TARGET_SECONDS else "MISSES"
    print(f"  target: templates without lint < {TARGET_SECONDS * 1000:.0f} ms -> {verdict}")
    extras = rows[3][1] - rows[2][1]
    print(f"  evidence report + diagrams add {extras * 1000:.0f} ms to a run")
    ratio = rows[5][1] / rows[4][1]
    verdict = "meets" if ratio <= EXTRAS_RATIO_LIMIT else "MISSES"
    print(
        f"  target: default run <= {EXTRAS_RATIO_LIMIT}x the same without evidence and "
        f"diagrams -> {ratio:.2f}x, {verdict}"
    )
    for name, size in sizes.items():
        verdict = (
            f"fits the {UPLOAD_LIMIT_BYTES}-byte TemplateBody limit"
            if size < UPLOAD_LIMIT_BYTES
            else f"over the {UPLOAD_LIMIT_BYTES}-byte TemplateBody limit: uploaded through S3"
        )
        print(f"  {name:40s} {size:7d} bytes ({verdict})")


if __name__ == "__main__":
    main()
