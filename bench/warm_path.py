"""Warm-path overhead of the validation and processing handlers, AWS answered locally.

Each request goes through the whole Lambda handler (Powertools logger and
metrics decorators, the router, validation and card-data checks, the key binding,
the acquirer's ledger, the outcome write, the response) with every DynamoDB call
answered by botocore's Stubber: real request serialisation and response parsing,
no network, no moto.
Prints p50 / p99 / mean over 10,000 requests after a warm-up.

    python bench/warm_path.py [--requests 10000]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

os.environ.update(
    AWS_DEFAULT_REGION="us-east-1",
    AWS_ACCESS_KEY_ID="bench",
    AWS_SECRET_ACCESS_KEY="bench",  # never used: every call is stubbed
)

import boto3  # noqa: E402
from botocore.stub import Stubber  # noqa: E402

from tests.handlers.platform import PlatformSpec, platform_template  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
BODY = {
    "amount": "12.50",
    "currency": "USD",
    "paymentToken": "tok_test_approve",
    "merchantId": "mer_0042",
    "description": "Order 1042",
}


class Context:
    """The Lambda context attributes the handlers read."""

    function_name = "bench"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:bench"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        """Time left."""
        return 25_000


def load(spec: PlatformSpec, module: str):
    """Import handlers.<module> under the template's environment for it."""
    with mock.patch.dict(os.environ, spec.env(module)):
        return importlib.import_module(f"handlers.{module}")


def event(name: str, headers: dict[str, str] | None = None) -> dict:
    """A fixture event with a fresh request id."""
    data = json.loads((FIXTURES / f"{name}.json").read_text())
    data["body"] = json.dumps(BODY)
    for key, value in (headers or {}).items():
        data["headers"][key] = value
        data["multiValueHeaders"][key] = [value]
    data["requestContext"]["requestId"] = str(uuid.uuid4())
    return data


def percentiles(samples: list[float]) -> str:
    """p50 / p99 / mean in milliseconds."""
    ordered = sorted(samples)
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[int(len(ordered) * 0.99)]
    mean = statistics.fmean(ordered)
    return f"p50 {p50 * 1000:.3f} ms   p99 {p99 * 1000:.3f} ms   mean {mean * 1000:.3f} ms"


def bench_validation(spec: PlatformSpec, requests: int) -> list[float]:
    """POST /validate-payment, valid body: no AWS calls at all."""
    module = load(spec, "validation")
    context = Context()
    events = [event("apigw_rest_post_validate_payment") for _ in range(requests)]
    samples = []
    for item in events:
        start = time.perf_counter()
        response = module.handler(item, context)
        samples.append(time.perf_counter() - start)
        if response["statusCode"] != 200:
            raise SystemExit(f"validation answered {response['statusCode']}")
    return samples


def bench_processing(spec: PlatformSpec, requests: int) -> list[float]:
    """POST /process-payment, new key each time, stubbed: the binding's TransactWriteItems,
    the acquirer ledger's two updates (count the attempt, record the decision), the outcome."""
    module = load(spec, "processing")
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    ready = module.build_runtime(module.CONFIG, dynamodb=dynamodb, sqs=sqs)
    module.runtime = lambda: ready
    stubber = Stubber(dynamodb)
    stubber.activate()
    context = Context()
    samples = []
    now = "2026-11-23T07:40:11.123Z"
    charge = json.dumps(
        {"amount": "12.5", "currency": "USD", "merchantId": "mer_0042",
         "paymentToken": "tok_test_approve"},
        sort_keys=True, separators=(",", ":"),
    )  # fmt: skip
    for _ in range(requests):
        item = event("apigw_rest_post_process_payment", {"Idempotency-Key": str(uuid.uuid4())})
        attributes = {
            "id": {"S": "txn_" + "a" * 32},
            "recordType": {"S": "transaction"},
            "status": {"S": "SUCCEEDED"},
            "caller": {"S": "abcd1234ef"},
            "amount": {"S": "12.50"},
            "currency": {"S": "USD"},
            "merchantId": {"S": "mer_0042"},
            "paymentToken": {"S": "tok_test_approve"},
            "requestHash": {"S": "h"},
            "attempts": {"N": "1"},
            "receivedAt": {"S": now},
            "updatedAt": {"S": now},
            "requeuedAt": {"S": now},
            "completedAt": {"S": now},
            "providerReference": {"S": "sim_x"},
        }
        ledger = {"chargeRequest": {"S": charge}, "attempts": {"N": "1"}}
        stubber.add_response("transact_write_items", {})  # key binding + transaction RECEIVED
        stubber.add_response("update_item", {"Attributes": ledger})  # acquirer: attempt counted
        stubber.add_response("update_item", {})  # acquirer: decision recorded
        stubber.add_response("update_item", {"Attributes": attributes})  # -> SUCCEEDED
        start = time.perf_counter()
        response = module.handler(item, context)
        samples.append(time.perf_counter() - start)
        if response["statusCode"] != 201:
            raise SystemExit(f"processing answered {response['statusCode']}: {response['body']}")
    stubber.assert_no_pending_responses()
    return samples


def main() -> None:
    """Run both benchmarks and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    args = parser.parse_args()
    spec = PlatformSpec.from_template(platform_template())
    results = {}
    sink = io.StringIO()
    for name, bench in (("validate", bench_validation), ("process", bench_processing)):
        with contextlib.redirect_stdout(sink):
            bench(spec, 500)  # warm-up: first-use imports, caches
            samples = bench(spec, args.requests)
        sink.seek(0)
        sink.truncate()
        results[name] = samples
    # Logs and EMF metrics go to stdout in Lambda; here they were captured and dropped.
    print(f"warm path, {args.requests} requests each, AWS calls stubbed (botocore Stubber):")
    for name, samples in results.items():
        print(f"  {name:<9} {percentiles(samples)}")
    for name, limit in (("validate", 0.001), ("process", 0.005)):
        p99 = sorted(results[name])[int(len(results[name]) * 0.99)]
        verdict = "met" if p99 < limit else "NOT met"
        print(f"  {name} p99 target < {limit * 1000:.0f} ms: {verdict}")


if __name__ == "__main__":
    main()
