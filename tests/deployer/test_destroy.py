"""Safe destroy and kept parameters on a moto server (issue 10, defects 1 and 4).

Small stand-ins of both stacks (the platform's code from the real zip, the payment API
fronting its processor) keep this fast; the real templates go through test_e2e.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import boto3
import botocore.exceptions
import pytest

from deployer.aws import Clients
from deployer.errors import DependentStackError
from deployer.run import DeployOptions, Report, Run, prepare
from templates.naming import Kind, Naming
from tests.deployer import stacks

# moto warns once per resource type its CloudFormation skips; --local lists those itself.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")]
SUFFIX = "d4"
PLATFORM, API = f"payment-platform-{SUFFIX}", f"payment-api-{SUFFIX}"


def standin_api(naming: Naming) -> dict[str, Any]:
    """The payment API's parameters in front of a function, and one resource."""
    return {
        "Parameters": {
            "ProcessorFunctionName": {"Type": "String", "Default": "payment-processor"},
            "ManageApiGatewayAccount": {"Type": "String", "Default": "false"},
        },
        "Resources": {
            "Topic": {
                "Type": "AWS::SNS::Topic",
                "Properties": {"TopicName": naming.name("payment-api-events", Kind.TOPIC)},
            }
        },
    }


def build(naming: Naming, bases: Iterable[str]) -> dict[str, dict[str, Any]]:
    built = {}
    for base in bases:
        if base == "payment-api":
            built[naming.stack(base)] = standin_api(naming)
        else:
            platform = stacks.standin_platform(naming)
            platform["Parameters"]["AlarmEmail"] = {"Type": "String", "Default": ""}
            built[naming.stack(base)] = platform
    return built


def run(clients: Clients, lines: Any, **kwargs: Any) -> Report:
    options = DeployOptions(suffix=SUFFIX, yes=True, **kwargs)
    plan = prepare(options, build=build, select=stacks.select)
    return Run(plan, options, clients, lines, lambda _: False, sleep=lambda _: None).execute()


def parameters(clients: Clients, stack: str) -> dict[str, str]:
    described = clients.cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    return {p["ParameterKey"]: p["ParameterValue"] for p in described["Parameters"]}


def live(clients: Clients) -> set[str]:
    return {s["StackName"] for s in clients.cloudformation.describe_stacks()["Stacks"]}


def test_i10_4_destroy_keeps_what_remaining_stacks_use(
    moto_clients: Clients, moto_endpoint: str, lines: Any
) -> None:
    s3_calls: list[tuple[str, dict[str, Any]]] = []
    moto_clients.s3.meta.events.register(
        "provide-client-params.s3",
        lambda params, model, **_: s3_calls.append((model.name, dict(params))),
    )
    own = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_endpoint)  # the test's
    first = run(moto_clients, lines)
    assert first.ok, lines.text()
    bucket, code_key = (parameters(moto_clients, PLATFORM)[k] for k in ("CodeBucket", "CodeKey"))
    assert parameters(moto_clients, API)["ProcessorFunctionName"] == f"payment-processor-{SUFFIX}"
    own.put_object(Bucket=bucket, Key=f"{SUFFIX}/lambda/old.zip", Body=b"old")

    # The platform alone: refused while the payment API fronts its processor.
    refused = run(moto_clients, lines, stacks=("payment-platform",), destroy=True)
    assert isinstance(refused.error, DependentStackError), lines.text()
    assert f"{API} still fronts its processor payment-processor-{SUFFIX}" in str(refused.error)
    assert {PLATFORM, API} <= live(moto_clients)

    # The payment API alone, with its artifacts: the platform's zip stays, the rest goes.
    gone = run(moto_clients, lines, stacks=("payment-api",), destroy=True, delete_artifacts=True)
    assert gone.ok, lines.text()
    assert API not in live(moto_clients) and PLATFORM in live(moto_clients)
    own.head_object(Bucket=bucket, Key=code_key)  # still there
    with pytest.raises(botocore.exceptions.ClientError):
        own.head_object(Bucket=bucket, Key=f"{SUFFIX}/lambda/old.zip")
    assert any(f"kept {code_key} (used by a remaining stack)" in line for line in lines)

    # Nothing fronts it now: the platform goes, and its zip with it.
    last = run(
        moto_clients, lines, stacks=("payment-platform",), destroy=True, delete_artifacts=True
    )
    assert last.ok, lines.text()
    assert PLATFORM not in live(moto_clients)
    left = own.list_object_versions(Bucket=bucket, Prefix=f"{SUFFIX}/")
    assert not left.get("Versions") and not left.get("DeleteMarkers")
    # Every S3 call of the deployer names the account that must own the bucket.
    operations = {name for name, _ in s3_calls}
    assert {"HeadObject", "PutObject", "ListObjectVersions", "DeleteObjects"} <= operations
    assert all(params.get("ExpectedBucketOwner") == "123456789012" for _, params in s3_calls)


def test_i10_1_an_operator_value_survives_redeploys_on_moto(
    moto_clients: Clients, lines: Any, tmp_path: Any
) -> None:
    assert run(moto_clients, lines, stacks=("payment-platform",)).ok, lines.text()
    cfn = moto_clients.cloudformation
    # An operator sets the on-call address in the console.
    before = parameters(moto_clients, PLATFORM)
    cfn.update_stack(
        StackName=PLATFORM,
        UsePreviousTemplate=True,
        Capabilities=["CAPABILITY_IAM"],
        Parameters=[
            {"ParameterKey": "AlarmEmail", "ParameterValue": "oncall@example.com"},
            *[
                {"ParameterKey": key, "UsePreviousValue": True}
                for key in before
                if key != "AlarmEmail"
            ],
        ],
    )
    again = run(moto_clients, lines, stacks=("payment-platform",))
    assert [o.result for o in again.outcomes] == ["up to date"], lines.text()
    # A code change updates the stack; the address is kept, not reset to the default.
    source = tmp_path / "handlers"
    import shutil

    from deployer.packaging import DEFAULT_SOURCE

    shutil.copytree(DEFAULT_SOURCE, source, ignore=shutil.ignore_patterns("__pycache__"))
    (source / "__init__.py").write_text("# changed\n")
    changed = run(moto_clients, lines, stacks=("payment-platform",), source_dir=source)
    assert [o.result for o in changed.outcomes] == ["updated"], lines.text()
    after = parameters(moto_clients, PLATFORM)
    assert after["AlarmEmail"] == "oncall@example.com"
    assert after["CodeKey"] != before["CodeKey"]


def test_i10_7_a_deleted_bootstrap_bucket_says_so_and_how_to_recreate_it(
    moto_clients: Clients, lines: Any
) -> None:
    assert run(moto_clients, lines, stacks=("payment-platform",)).ok, lines.text()
    s3, bucket = moto_clients.s3, parameters(moto_clients, PLATFORM)["CodeBucket"]
    # Someone empties and deletes the bucket by hand (the stack keeps it: Retain).
    listed = s3.list_object_versions(Bucket=bucket)
    for item in listed.get("Versions", []) + listed.get("DeleteMarkers", []):
        s3.delete_object(Bucket=bucket, Key=item["Key"], VersionId=item["VersionId"])
    s3.delete_bucket(Bucket=bucket)
    report = run(moto_clients, lines, stacks=("payment-platform",))
    message = str(report.error)
    assert (
        f"the artifact bucket {bucket} of stack payment-infrastructure-bootstrap no longer"
        in message
    )
    assert (
        "aws cloudformation delete-stack --stack-name payment-infrastructure-bootstrap" in message
    )
