"""Benchmark: our deployer vs `aws cloudformation deploy`, side by side on one moto server.

Prints figures; not a test. Both tools run as subprocesses (so both pay interpreter
start-up) against the same in-process moto server, whose WSGI app is wrapped to count
every request per service and CloudFormation action. The AWS CLI (v1, from PyPI) lives
in its own throwaway venv, build/bench-venv, because its botocore pin conflicts with
checkov's in the project venv; it is created on first use.

Scenarios, each repeated --runs times on a freshly reset server (median wall time):
first deploy (both stacks), no-change redeploy, one-handler change.

Sleep figures are modelled, not measured: moto finishes every operation at once, so
neither tool sleeps here. Against real AWS a poller with delay d sleeps ceil(T/d)*d for an
operation that takes T seconds and notices its end up to d seconds late.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import Any

from deployer.changeset import WaitConfig
from deployer.packaging import DEFAULT_SOURCE, build_package
from deployer.stackspec import MAX_TEMPLATE_BODY, capabilities
from emulator import install as install_emulator
from templates.common import to_json
from templates.naming import PROJECT, Naming
from templates.registry import DEPLOY_ORDER, build_templates

ROOT = Path(__file__).resolve().parents[1]
BENCH_VENV = ROOT / "build" / "bench-venv"
AWS = BENCH_VENV / "bin" / "aws"
# aws-cli v1 customizations/cloudformation/deployer.py: change set waiter Delay 5,
# stack waiter Delay 30 (MaxAttempts 120).
CLI_CHANGE_SET_DELAY = 5.0
CLI_STACK_DELAY = 30.0
# Modelled durations on real AWS (seconds): computing a change set, creating and
# updating the stacks. Only the ratios to the poll delays matter.
MODEL_CHANGE_SET = 4.0
MODEL_CREATE = 120.0
MODEL_UPDATE = 40.0
# Both tools subscribe an on-call address (as production does). Without one the platform's
# AlarmEmailSubscription has a false condition, and the emulator (moto 5.2.5 underneath)
# fails the AWS CLI's updates on it: moto marks a never-created conditional resource as
# modified when parameters are sent as UsePreviousValue, and the emulator's update handler
# then gets no resource (reported to issue 11 in NOTES.md).
ALARM_EMAIL = "oncall@example.com"


class CountingApp:
    """WSGI middleware counting requests by service (from the SigV4 scope) and action."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        auth = environ.get("HTTP_AUTHORIZATION", "")
        service = auth.split("Credential=")[1].split("/")[3] if "Credential=" in auth else "?"
        action = ""
        if service == "cloudformation":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length)
            environ["wsgi.input"] = io.BytesIO(body)
            action = urllib.parse.parse_qs(body.decode()).get("Action", [""])[0]
        elif service == "s3":
            action = environ["REQUEST_METHOD"]
        with self.lock:
            self.calls[f"{service}:{action}" if action else service] += 1
        return self.app(environ, start_response)

    def take(self) -> Counter[str]:
        """The counts since the last take."""
        with self.lock:
            calls, self.calls = self.calls, Counter()
        return calls


def start_server() -> tuple[str, CountingApp, Any]:
    """moto's server with the offline emulator installed (what --local deploys to), on a free
    loopback port, wrapped to count."""
    from moto.server import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    install_emulator()
    import logging
    import warnings

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("moto").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    app = CountingApp(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # "localhost", not 127.0.0.1: the AWS CLI builds its TemplateURL from the endpoint, and
    # moto resolves path-style template URLs only when the host says localhost.
    return f"http://localhost:{server.server_address[1]}", app, server


def ensure_cli() -> str:
    """Create build/bench-venv with awscli from PyPI when missing; return its version."""
    if not AWS.exists():
        print(f"creating {BENCH_VENV} with awscli from PyPI (isolated from the project venv)")
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
        subprocess.run([str(BENCH_VENV / "bin" / "pip"), "install", "-q", "awscli"], check=True)
    out = subprocess.run([str(AWS), "--version"], capture_output=True, text=True, check=True)
    return (out.stdout or out.stderr).strip()


def env_for(endpoint: str) -> dict[str, str]:
    """Fake credentials and the moto endpoint, for both tools."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_ENDPOINT_URL=endpoint,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
    )
    return env


NOTES: set[str] = set()
# moto answers an identical UPDATE change set with a ValidationError where AWS returns an
# empty FAILED change set; the AWS CLI then exits 255 although nothing is wrong.
MOTO_EMPTY_UPDATE = "No updates are to be performed"


def timed(commands: list[list[str]], env: dict[str, str]) -> float:
    """Run the commands in sequence; fail loudly on a non-zero exit; return seconds."""
    start = time.perf_counter()
    for command in commands:
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        if (done.returncode != 0) and (MOTO_EMPTY_UPDATE in done.stderr):
            NOTES.add(
                "the AWS CLI exited non-zero on moto's up-front 'No updates are to be performed' "
                "(real AWS returns an empty change set, which --no-fail-on-empty-changeset accepts); "  # noqa: E501
                "its calls and time are counted as they happened"
            )
        elif done.returncode != 0:
            raise SystemExit(f"{command[:4]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def ours(suffix: str, source: Path) -> list[list[str]]:
    """Our deployer: one command does everything."""
    return [
        [
            sys.executable,
            str(ROOT / "deploy.py"),
            "--suffix",
            suffix,
            "--yes",
            "--source",
            str(source),
            "--parameter",
            f"AlarmEmail={ALARM_EMAIL}",
        ]
    ]


def cli(suffix: str, source: Path, endpoint: str, bucket: str, workdir: Path) -> list[list[str]]:
    """The AWS CLI doing the same work: upload the zip, deploy each stack with a change set."""
    naming = Naming(suffix)
    package = build_package(source)  # the very same bytes our deployer uploads
    zip_path = workdir / "package.zip"
    zip_path.write_bytes(package.data)
    key = f"{suffix}/{package.key}"
    commands = [
        [str(AWS), "s3", "cp", str(zip_path), f"s3://{bucket}/{key}", "--endpoint-url", endpoint]
    ]
    for name, template in build_templates(naming, DEPLOY_ORDER).items():
        path = workdir / f"{name}.json"
        path.write_text(to_json(template))
        params = []
        declared = template.get("Parameters", {})
        if "CodeKey" in declared:
            params += [f"CodeBucket={bucket}", f"CodeKey={key}", "ManageApiGatewayAccount=true"]
            params += [f"AlarmEmail={ALARM_EMAIL}"]
        if "ProcessorFunctionName" in declared:
            params += [
                f"ProcessorFunctionName=payment-processor-{suffix}",
                "ManageApiGatewayAccount=false",
            ]
        command = [
            str(AWS), "cloudformation", "deploy", "--template-file", str(path), "--stack-name", name,  # noqa: E501
            "--capabilities", *capabilities(template), "--no-fail-on-empty-changeset",
            "--tags", f"Project={PROJECT}", f"Environment={suffix}", "--endpoint-url", endpoint,
        ]  # fmt: skip
        if len(to_json(template).encode()) > MAX_TEMPLATE_BODY:
            command += ["--s3-bucket", bucket, "--s3-prefix", f"{suffix}/templates"]
        if params:
            command += ["--parameter-overrides", *params]
        commands.append(command)
    return commands


def reset(endpoint: str) -> None:
    """Forget every resource on the moto server."""
    import urllib.request

    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(request).close()


def sleeps(delay: float, duration: float) -> float:
    """Seconds a poller with this delay sleeps for an operation lasting `duration`."""
    return math.ceil(duration / delay) * delay


def modelled_sleep(tool: str, scenario: str, change_sets: int) -> float:
    """Waiter sleep against real AWS for the change sets this run created."""
    wait = WaitConfig()
    cs_delay, stack_delay = (
        (wait.change_set_delay, wait.stack_delay)
        if tool == "ours"
        else (CLI_CHANGE_SET_DELAY, CLI_STACK_DELAY)
    )
    if scenario == "no-change redeploy":
        # Every change set created here is empty: computed, then discarded.
        return change_sets * sleeps(cs_delay, MODEL_CHANGE_SET)
    operation = MODEL_CREATE if scenario == "first deploy" else MODEL_UPDATE
    executed = change_sets if scenario == "first deploy" else 1  # one stack changes
    empty = change_sets - executed
    return executed * (
        sleeps(cs_delay, MODEL_CHANGE_SET) + sleeps(stack_delay, operation)
    ) + empty * sleeps(cs_delay, MODEL_CHANGE_SET)


def main() -> int:
    """Run the scenarios and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="repetitions per scenario (median)")
    args = parser.parse_args()
    version = ensure_cli()
    endpoint, counter, server = start_server()
    env = env_for(endpoint)
    package = build_package()
    print(f"AWS CLI: {version} (venv {BENCH_VENV.relative_to(ROOT)}, isolated)")
    print(f"moto server: {endpoint}; {args.runs} run(s) per scenario, median wall time")
    print(f"deployment package: {package.size} bytes, {package.files} files ({package.key})")
    scenarios = ["first deploy", "no-change redeploy", "one-handler change"]
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    import boto3

    for run in range(args.runs):
        reset(endpoint)
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            s3 = boto3.client(
                "s3",
                endpoint_url=endpoint,
                region_name="us-east-1",
                aws_access_key_id="bench",
                aws_secret_access_key="bench",
            )
            bucket = f"cli-artifacts-{run}"
            s3.create_bucket(Bucket=bucket)  # the CLI needs a bucket; ours bootstraps its own
            for tool in ("ours", "aws-cli"):
                source = work / tool / "handlers"
                shutil.copytree(
                    DEFAULT_SOURCE, source, ignore=shutil.ignore_patterns("__pycache__")
                )
                suffix = f"b{run}{'o' if tool == 'ours' else 'c'}"
                for scenario in scenarios:
                    if scenario == "one-handler change":
                        init = source / "__init__.py"
                        init.write_text(init.read_text() + f"# bench edit {run}\n")
                    commands = (
                        ours(suffix, source)
                        if tool == "ours"
                        else cli(suffix, source, endpoint, bucket, work)
                    )
                    counter.take()
                    seconds = timed(commands, env)
                    calls = counter.take()
                    results.setdefault((tool, scenario), []).append(
                        {"seconds": seconds, "calls": calls}
                    )
    server.shutdown()

    print()
    header = f"{'scenario':<20} {'tool':<8} {'wall s':>7} {'API calls':>9} {'CFN calls':>9} {'change sets':>11} {'sleep s (real AWS, modelled)':>29}"  # noqa: E501
    print(header)
    print("-" * len(header))
    for scenario in scenarios:
        for tool in ("ours", "aws-cli"):
            runs = results[(tool, scenario)]
            calls = runs[-1]["calls"]
            cfn = sum(n for k, n in calls.items() if k.startswith("cloudformation"))
            change_sets = calls.get("cloudformation:CreateChangeSet", 0)
            wall = statistics.median(r["seconds"] for r in runs)
            slept = modelled_sleep(tool, scenario, change_sets)
            print(
                f"{scenario:<20} {tool:<8} {wall:>7.2f} {sum(calls.values()):>9} {cfn:>9} {change_sets:>11} {slept:>29.0f}"  # noqa: E501
            )
    print()
    for scenario in scenarios:
        for tool in ("ours", "aws-cli"):
            calls = results[(tool, scenario)][-1]["calls"]
            print(
                f"{scenario} / {tool}: " + ", ".join(f"{k}={n}" for k, n in sorted(calls.items()))
            )
    wait = WaitConfig()
    print()
    print(
        f"model: change set computes in {MODEL_CHANGE_SET:.0f} s, create {MODEL_CREATE:.0f} s, "
        f"update {MODEL_UPDATE:.0f} s. Polling: ours change set every {wait.change_set_delay:g} s, "
        f"stack every {wait.stack_delay:g} s (a finished deploy is noticed within "
        f"{wait.stack_delay:g} s); AWS CLI change set every {CLI_CHANGE_SET_DELAY:g} s, stack every "  # noqa: E501
        f"{CLI_STACK_DELAY:g} s (noticed within {CLI_STACK_DELAY:g} s)."
    )
    print(
        "ours includes creating the bootstrap artifact-bucket stack on first deploy (its change "
        "set is counted); the AWS CLI was given a bucket created outside the figures."
    )
    print(
        "our no-change redeploy CFN calls per stack: DescribeStacks + GetTemplate (+ "
        "GetStackPolicy for the platform, whose tables carry a stack policy), plus one shared "
        "DescribeStacks of the bootstrap stack (and on moto one ListStackResources, as moto "
        "reports no Outputs after a change set); S3 HEADs the zip and the platform template."
    )
    for note in sorted(NOTES):
        print(f"note: {note}")
    print(json.dumps({"package_bytes": package.size, "package_files": package.files}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
