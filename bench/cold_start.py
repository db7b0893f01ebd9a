"""Cold start: median time to import each handler module in a fresh interpreter,
beside the floor (`python -c "import boto3"`) measured in the same run.

Each sample is a new `python -c` process (the Lambda init phase imports the
handler module into a fresh interpreter), with the environment the platform
template gives that function. Also shows the first request's extra cost where
a handler defers an import to first use (lazily built clients, and Powertools' batch
utility on the processing function's first queue batch).

    python bench/cold_start.py [--runs 15]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deployer.packaging import build_package  # noqa: E402
from tests.handlers.platform import PlatformSpec, platform_template  # noqa: E402

TIMER = """
import time
start = time.perf_counter()
{statement}
print(time.perf_counter() - start)
"""
# What the first request imports besides the module: boto3 (clients are built on first
# use). The processing function's first queue batch also imports Powertools' batch utility
# (the "processing queue" line): no client waits on that path.
FIRST_REQUEST = {
    "validation": "",
    "processing": "import boto3",
    "health": "import boto3",
}
QUEUE_FIRST = "import boto3\nfrom aws_lambda_powertools.utilities import batch"


def sample(statement: str, env: dict[str, str]) -> float:
    """Seconds one fresh interpreter spends executing `statement`."""
    result = subprocess.run(
        [sys.executable, "-c", TIMER.format(statement=statement)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    """Measure the floor and each handler, interleaved so machine noise hits all alike."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    spec = PlatformSpec.from_template(platform_template())
    # Measure what is deployed: the deployer's zip, extracted first on the path,
    # so handlers and Powertools come from the package, boto3 from the environment
    # (as the Lambda runtime provides it).
    package = build_package()
    unpacked = tempfile.mkdtemp(prefix="lambda-zip-")
    zipfile.ZipFile(io.BytesIO(package.data)).extractall(unpacked)
    unzipped = sum(f.stat().st_size for f in Path(unpacked).rglob("*") if f.is_file())
    print(
        f"deployment package: {package.size / 1024:.0f} KiB zipped, {package.files} files, "
        f"{unzipped / 1024 / 1024:.1f} MiB unzipped (Lambda's limit: 250 MiB unzipped)"
    )
    base = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONPATH": unpacked,
    }
    cases = {"floor": ("import boto3", base)}
    for module in ("validation", "processing", "health"):
        env = {**base, **spec.env(module)}
        cases[f"{module} module"] = (f"import handlers.{module}", env)
        cases[f"{module} first"] = (f"import handlers.{module}\n{FIRST_REQUEST[module]}", env)
    processing_env = {**base, **spec.env("processing")}
    cases["processing queue"] = (f"import handlers.processing\n{QUEUE_FIRST}", processing_env)
    # Round-robin, so machine noise (other jobs on the box) hits every case alike.
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.runs):
        for name, (statement, env) in cases.items():
            samples[name].append(sample(statement, env))
    ms = {name: statistics.median(values) * 1000 for name, values in samples.items()}
    floor = ms["floor"]
    print(
        f"cold start, median of {args.runs} fresh interpreters (Python {sys.version.split()[0]}):"
    )
    print(f"  floor  import boto3                          {floor:7.1f} ms")
    for module in ("validation", "processing", "health"):
        alone, full = ms[f"{module} module"], ms[f"{module} first"]
        verdict = "within" if full - floor <= 100 else "OVER"
        print(f"  import handlers.{module:<11} (module only)   {alone:7.1f} ms")
        print(
            f"  import handlers.{module:<11} + first request {full:7.1f} ms"
            f"  ({full - floor:+6.1f} ms vs the floor: {verdict} the 100 ms target)"
        )
    queue = ms["processing queue"]
    print(
        f"  import handlers.processing  + first batch   {queue:7.1f} ms"
        f"  ({queue - floor:+6.1f} ms vs the floor; the queue path, no client waiting)"
    )


if __name__ == "__main__":
    main()
