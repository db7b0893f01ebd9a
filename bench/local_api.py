"""POST /process-payment through the local gateway, beside the same handler called in-process.

Both stacks' platform is deployed to the emulator in this process (`emulator.start`), served
with one execution environment for the processing function (requests one at a time), and the
same requests are sent:

- **gateway**: HTTP on a kept-alive connection -> local API Gateway (key, throttle, validator,
  proxy event) -> the worker process -> `handlers.processing.handler` -> emulated DynamoDB;
- **in-process**: the same handler module (from src/handlers, configured with the deployed
  function's environment) called directly in this process with the event the gateway builds,
  against the same emulated DynamoDB.

The difference is the gateway's own overhead (HTTP, checks, the pipe to the worker). Prints
requests/s and p50/p99 latency per path, medians over the runs, and their ratio.

    python bench/local_api.py [--requests 200] [--runs 3]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib
import io
import json
import os
import statistics
import sys
import time
import urllib.parse
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BODY = {
    "amount": "12.50",
    "currency": "USD",
    "paymentToken": "tok_test_approve",
    "merchantId": "m-123",
}
PLATFORM = "payment-platform-bench"


class Context:
    """The Lambda context attributes the handlers read."""

    function_name = "payment-processor-bench"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:payment-processor-bench"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 25_000


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def figures(latencies: list[float], wall: float) -> tuple[float, float, float]:
    """requests/s, p50 ms, p99 ms."""
    return (
        len(latencies) / wall,
        percentile(latencies, 0.5) * 1000,
        percentile(latencies, 0.99) * 1000,
    )


def through_gateway(url: str, key: str, requests: int) -> tuple[float, float, float]:
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    latencies = []
    started = time.perf_counter()
    for _ in range(requests):
        headers = {
            "x-api-key": key,
            "Idempotency-Key": str(uuid.uuid4()),
            "Content-Type": "application/json",
        }
        t = time.perf_counter()
        connection.request("POST", parts.path, body=json.dumps(BODY), headers=headers)
        response = connection.getresponse()
        response.read()
        latencies.append(time.perf_counter() - t)
        assert response.status == 201, response.status
    wall = time.perf_counter() - started
    connection.close()
    return figures(latencies, wall)


def in_process(handler, event_for, requests: int) -> tuple[float, float, float]:
    latencies = []
    started = time.perf_counter()
    for _ in range(requests):
        event = event_for()
        t = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # its log lines and EMF metrics
            answer = handler(event, Context())
        latencies.append(time.perf_counter() - t)
        assert answer["statusCode"] == 201, answer
    wall = time.perf_counter() - started
    return figures(latencies, wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    import boto3

    from deployer.aws import AwsSettings, make_clients
    from deployer.run import DeployOptions, Run, prepare
    from emulator import ACCESS_KEY, ACCOUNT_ID, REGION, SECRET_KEY, start
    from emulator.local_api import LocalServe
    from emulator.proxy import Caller, Route, build_event

    with start() as server:
        endpoint = server.endpoint
        clients = make_clients(
            AwsSettings(
                region=REGION, endpoint_url=endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY
            )
        )
        options = DeployOptions(suffix="bench", yes=True, local=True, stacks=("payment-platform",))
        plan = prepare(options)
        report = Run(plan, options, clients, lambda _: None, lambda _: True).execute()
        assert report.ok, report.error
        session = boto3.Session(
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION
        )
        serve = LocalServe(
            clients=clients,
            session_client=lambda service: session.client(service, endpoint_url=endpoint),
            endpoint=endpoint,
            account_id=ACCOUNT_ID,
            templates={PLATFORM: plan.templates["payment-platform"]},
            port=0,
            max_workers=1,
            log=lambda _: None,
            function_log=lambda *_: None,
        )
        (served,) = serve.start()
        try:
            runner = serve.functions.runner("payment-processor-bench")
            os.environ.update(runner.spec.environment)
            os.environ.update(
                AWS_ENDPOINT_URL=endpoint,
                AWS_ACCESS_KEY_ID=ACCESS_KEY,
                AWS_SECRET_ACCESS_KEY=SECRET_KEY,
                AWS_DEFAULT_REGION=REGION,
                POWERTOOLS_LOG_LEVEL="ERROR",
            )
            handler = importlib.import_module("handlers.processing").handler
            method = serve.apis[PLATFORM].app.definition.methods[("/process-payment", "POST")]

            def event_for() -> dict:
                return build_event(
                    method="POST",
                    path="/process-payment",
                    stage="prod",
                    headers=[
                        ("Content-Type", "application/json"),
                        ("Idempotency-Key", str(uuid.uuid4())),
                        ("x-api-key", served.api_key_value or ""),
                    ],
                    query=[],
                    body=json.dumps(BODY).encode(),
                    route=Route(method.resource_id, "/process-payment", {}),
                    caller=Caller("127.0.0.1", "bench", served.api_key_value, "bench-key"),
                    api_id=served.api_id,
                    account_id=ACCOUNT_ID,
                    region=REGION,
                    request_id=str(uuid.uuid4()),
                    deployment_id="bench",
                )

            # The handler's own time in the worker, per gateway request: what the gateway
            # adds is the rest (HTTP, key, throttle, validator, event, the pipe).
            handler_ms: list[float] = []
            invoke = runner.invoke

            def timed_invoke(*a, **kw):
                outcome = invoke(*a, **kw)
                handler_ms.append(outcome.handler_ms)
                return outcome

            runner.invoke = timed_invoke  # type: ignore[method-assign]
            # Warm both paths (cold start, first connections) before measuring.
            through_gateway(served.invoke_url, served.api_key_value or "", 10)
            in_process(handler, event_for, 10)
            gateway_runs, direct_runs, overheads = [], [], []
            for _ in range(args.runs):
                handler_ms.clear()
                result = through_gateway(
                    served.invoke_url, served.api_key_value or "", args.requests
                )
                gateway_runs.append(result)
                overheads.append(result[1] - percentile(handler_ms, 0.5))
                direct_runs.append(in_process(handler, event_for, args.requests))
        finally:
            serve.stop()

    def median(runs: list[tuple[float, float, float]], i: int) -> float:
        return statistics.median(run[i] for run in runs)

    print(
        f"POST /process-payment, {args.requests} requests x {args.runs} runs (medians), "
        "one execution environment, emulated DynamoDB in this process"
    )
    print(f"{'path':<28}{'requests/s':>12}{'p50 ms':>10}{'p99 ms':>10}")
    for name, runs in (("local gateway (HTTP)", gateway_runs), ("handler in-process", direct_runs)):
        print(f"{name:<28}{median(runs, 0):>12.1f}{median(runs, 1):>10.1f}{median(runs, 2):>10.1f}")
    overhead = statistics.median(overheads)
    print(
        f"gateway's own overhead at p50: {overhead:.1f} ms (HTTP, checks, proxy event, pipe "
        "to the worker: the gateway p50 minus the handler's p50 measured in the worker)"
    )
    print(
        "(the in-process handler shares this process's GIL with the emulator's server; the "
        "worker runs on another core, so the in-process figure is no floor for the gateway)"
    )


if __name__ == "__main__":
    main()
