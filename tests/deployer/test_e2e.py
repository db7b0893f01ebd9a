"""End to end against moto's server: create, no-change rerun, handler change, destroy."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest

from deployer.artifacts import BOOTSTRAP_STACK
from deployer.aws import Clients
from deployer.packaging import DEFAULT_SOURCE
from deployer.run import DeployOptions, Report, Run, check_region, prepare
from tests.deployer import stacks

# moto warns once per resource type its CloudFormation skips; --local lists those itself.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")]
SUFFIX = "e2e"
NAMES = [f"{base}-{SUFFIX}" for base in stacks.ORDER]


class CallLog:
    """Counts AWS API calls per service and operation through a botocore event hook."""

    def __init__(self, clients: Clients) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()
        for client in (clients.cloudformation, clients.s3, clients.sts, clients.apigateway):
            client.meta.events.register("before-call", self._count)

    def _count(self, model: Any, **_: Any) -> None:
        self.calls[(model.service_model.service_name, model.name)] += 1

    def reset(self) -> None:
        self.calls.clear()

    def count(self, service: str, operation: str | None = None) -> int:
        return sum(
            n for (s, op), n in self.calls.items() if s == service and operation in (None, op)
        )


def run(clients: Clients, lines: Any, sleeps: list[float], **kwargs: Any) -> Report:
    kwargs.setdefault("local", True)
    options = DeployOptions(suffix=SUFFIX, yes=True, **kwargs)
    plan = prepare(options, build=stacks.build, select=stacks.select)
    check_region(plan, clients.region)
    return Run(plan, options, clients, lines, lambda _: False, sleep=sleeps.append).execute()


def physical_ids(clients: Clients, stack: str) -> dict[str, str]:
    pages = clients.cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack)
    return {
        item["LogicalResourceId"]: item["PhysicalResourceId"]
        for page in pages
        for item in page["StackResourceSummaries"]
    }


def code_hashes(endpoint: str, clients: Clients, stack: str) -> dict[str, str]:
    lam = boto3.client("lambda", region_name="us-east-1", endpoint_url=endpoint)
    ids = physical_ids(clients, stack)
    summaries = clients.cloudformation.list_stack_resources(StackName=stack)[
        "StackResourceSummaries"
    ]
    functions = [
        s["LogicalResourceId"] for s in summaries if s["ResourceType"] == "AWS::Lambda::Function"
    ]
    return {
        f: lam.get_function(FunctionName=ids[f])["Configuration"]["CodeSha256"] for f in functions
    }


def refs_to(value: Any, parameter: str) -> bool:
    if isinstance(value, dict):
        return value == {"Ref": parameter} or any(refs_to(v, parameter) for v in value.values())
    if isinstance(value, list):
        return any(refs_to(v, parameter) for v in value)
    return False


def test_create_rerun_handler_change_destroy(
    moto_clients: Clients, moto_endpoint: str, lines: Any, tmp_path: Path
) -> None:
    source = tmp_path / "handlers"
    shutil.copytree(DEFAULT_SOURCE, source, ignore=shutil.ignore_patterns("__pycache__"))
    calls = CallLog(moto_clients)
    sleeps: list[float] = []
    cfn = moto_clients.cloudformation

    # 1. First deploy: bootstrap bucket, both stacks created, platform first.
    first = run(moto_clients, lines, sleeps, source_dir=source)
    assert first.ok, lines.text()
    assert [o.stack for o in first.outcomes] == [BOOTSTRAP_STACK, *NAMES]
    assert {o.result for o in first.outcomes} == {"created"}
    for name in NAMES:
        assert cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    zips = [key for key in first.uploads if key.endswith(".zip")]
    assert len(zips) == 1
    api = cfn.describe_stacks(StackName=NAMES[1])["Stacks"][0]
    params = {p["ParameterKey"]: p["ParameterValue"] for p in api["Parameters"]}
    assert params["ProcessorFunctionName"] == f"payment-processor-{SUFFIX}"
    # A fresh account has no API Gateway logging role, so the platform (created first) owns
    # it; the payment API then finds the platform's role and leaves it (as on AWS: the
    # emulator creates AWS::ApiGateway::Account).
    platform = cfn.describe_stacks(StackName=NAMES[0])["Stacks"][0]
    platform_params = {p["ParameterKey"]: p["ParameterValue"] for p in platform["Parameters"]}
    assert platform_params["ManageApiGatewayAccount"] == "true"
    assert params["ManageApiGatewayAccount"] == "false"
    for name in NAMES:
        assert all("condition" in line for line in first.skipped[name]), first.skipped[name]

    # 2. Nothing changed: no change set, nothing uploaded, no waiting.
    calls.reset()
    sleeps.clear()
    # (local=False: the --local report of skipped resources costs calls of its own.)
    second = run(moto_clients, lines, sleeps, source_dir=source, local=False)
    assert second.ok, lines.text()
    assert {o.result for o in second.outcomes} == {"up to date"}
    assert second.change_sets == 0
    assert calls.count("cloudformation", "CreateChangeSet") == 0
    assert calls.count("s3", "PutObject") == 0
    assert second.uploads == []
    assert sleeps == []
    # Per stack DescribeStacks + GetTemplate, GetStackPolicy for the stack with tables;
    # once per run the bootstrap's DescribeStacks and, on moto only (no Outputs after a
    # change set), ListStackResources to find its bucket.
    assert calls.count("cloudformation") <= 3 * len(NAMES) + 1, calls.calls
    assert calls.count("cloudformation", "GetTemplate") == len(NAMES), calls.calls
    assert calls.count("cloudformation", "GetStackPolicy") == 1, calls.calls

    # 3. One handler changes: one new zip, only the functions change.
    before_ids = {name: physical_ids(moto_clients, name) for name in NAMES}
    before_code = code_hashes(moto_endpoint, moto_clients, NAMES[0])
    (source / "__init__.py").write_text((source / "__init__.py").read_text() + "\n# changed\n")
    calls.reset()
    third = run(moto_clients, lines, sleeps, source_dir=source)
    assert third.ok, lines.text()
    assert [o.result for o in third.outcomes] == ["updated", "up to date"]
    new_zips = [key for key in third.uploads if key.endswith(".zip")]
    assert len(new_zips) == 1 and new_zips != zips
    assert calls.count("s3", "PutObject") == len(third.uploads)
    assert f"[{NAMES[0]}] update needed: parameters differ: CodeKey" in lines
    platform_template = stacks.build(
        prepare(DeployOptions(suffix=SUFFIX), stacks.build, stacks.select).naming,
        ["payment-platform"],
    )[NAMES[0]]
    touched = {
        resource["Type"]
        for resource in platform_template["Resources"].values()
        if refs_to(resource.get("Properties", {}), "CodeKey")
    }
    assert touched == {"AWS::Lambda::Function"}
    after_code = code_hashes(moto_endpoint, moto_clients, NAMES[0])
    assert set(after_code) == set(before_code)
    assert all(after_code[f] != before_code[f] for f in before_code)
    assert {name: physical_ids(moto_clients, name) for name in NAMES} == before_ids

    # 4. Destroy: payment-api first, then the platform; artifacts of this suffix go too.
    fourth = run(moto_clients, lines, sleeps, destroy=True, delete_artifacts=True)
    assert fourth.ok, lines.text()
    assert [o.stack for o in fourth.outcomes] == list(reversed(NAMES))
    assert {o.result for o in fourth.outcomes} == {"deleted"}
    live = {s["StackName"] for s in cfn.describe_stacks()["Stacks"]}
    assert live.isdisjoint(NAMES)
    assert BOOTSTRAP_STACK in live  # shared by every suffix: kept
    bucket = physical_ids(moto_clients, BOOTSTRAP_STACK)["ArtifactBucket"]
    left = moto_clients.s3.list_object_versions(Bucket=bucket, Prefix=f"{SUFFIX}/")
    assert not left.get("Versions") and not left.get("DeleteMarkers")
