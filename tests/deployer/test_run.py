"""The whole run and the CLI: bad input gets one clear message and a non-zero exit."""

from __future__ import annotations

import datetime as dt
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

import deploy
from deployer.artifacts import ArtifactStore, bootstrap_template
from deployer.aws import Clients
from deployer.errors import BucketAccessError, InvalidInputError, WrongRegionError
from deployer.run import DeployOptions, Run, check_region, prepare, required_region
from deployer.stackspec import capabilities
from templates import registry
from templates.naming import Naming

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
START = NOW - dt.timedelta(minutes=1)
TEMPLATE = {"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}}


def only_api(naming: Naming, bases: Any) -> dict[str, Any]:
    return {naming.stack(base): TEMPLATE for base in bases}


def test_failed_resources_are_printed_again_at_the_end(lines: Any) -> None:
    cfn = boto3.client("cloudformation", region_name="us-east-1")
    sts = boto3.client("sts", region_name="us-east-1")
    name, stack_id = "payment-api-qa", "arn:aws:cloudformation:us-east-1:1:stack/payment-api-qa/1"
    cs_id = "arn:aws:cloudformation:us-east-1:1:changeSet/cs/2"
    missing = {"service_error_code": "ValidationError", "service_message": "Stack does not exist"}
    failed = {
        "StackId": stack_id,
        "EventId": "e2",
        "StackName": name,
        "LogicalResourceId": "Queue",
        "ResourceType": "AWS::SQS::Queue",
        "Timestamp": NOW,
        "ResourceStatus": "CREATE_FAILED",
        "ResourceStatusReason": "Queue name already exists",
    }
    with Stubber(cfn) as c, Stubber(sts) as s:
        s.add_response("get_caller_identity", {"Account": "123456789012"})
        c.add_client_error("describe_stacks", **missing)  # is the platform there?
        c.add_client_error("describe_stacks", **missing)
        c.add_response("create_change_set", {"Id": cs_id, "StackId": stack_id})
        c.add_response(
            "describe_change_set", {"Status": "CREATE_COMPLETE", "Changes": [], "StackId": stack_id}
        )
        c.add_response(
            "execute_change_set", {}, {"ChangeSetName": cs_id, "ClientRequestToken": ANY}
        )
        status = {
            "StackName": name,
            "StackId": stack_id,
            "CreationTime": NOW,
            "StackStatus": "ROLLBACK_COMPLETE",
        }
        c.add_response("describe_stacks", {"Stacks": [status]})
        c.add_response("describe_stack_events", {"StackEvents": [failed]})
        options = DeployOptions(suffix="qa", stacks=("payment-api",), yes=True)
        plan = prepare(options, build=only_api)
        clients = Clients(cfn, None, sts, None, "us-east-1")
        report = Run(
            plan, options, clients, lines, lambda _: True, sleep=lambda _: None, now=lambda: START
        ).execute()
    assert not report.ok
    assert "ROLLBACK_COMPLETE (expected CREATE_COMPLETE)" in str(report.error)
    streamed = [i for i, line in enumerate(lines) if "Queue name already exists" in line]
    assert len(streamed) == 2, "once as it happens, once in the closing summary"
    assert lines.index("failed resources:") < streamed[1] == len(lines) - 1


def test_platform_in_another_region_is_refused_before_any_call() -> None:
    plan = prepare(DeployOptions(suffix="qa"))
    with pytest.raises(WrongRegionError) as error:
        check_region(plan, "eu-west-1")
    assert "us-east-1" in str(error.value) and "--stack payment-api" in str(error.value)
    check_region(prepare(DeployOptions(suffix="qa", stacks=("payment-api",))), "eu-west-1")


def test_platform_region_comes_from_its_rules() -> None:
    platform = registry.build_templates(Naming("qa"), ["payment-platform"])["payment-platform-qa"]
    assert required_region("payment-platform", platform) == "us-east-1"


def test_bad_suffix_and_unknown_stack_are_input_errors() -> None:
    with pytest.raises(InvalidInputError, match="suffix"):
        prepare(DeployOptions(suffix="Bad_Suffix"))
    with pytest.raises(InvalidInputError, match="known stacks"):
        prepare(DeployOptions(suffix="qa", stacks=("nope",)))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--suffix=-bad-", "--yes"], "suffix"),
        (["--suffix", "qa", "--stack", "nope", "--yes"], "unknown stack 'nope'"),
        (["--suffix", "qa", "--yes", "--region", "eu-west-1"], "deploys only to us-east-1"),
        (
            ["--suffix", "qa", "--delete-artifacts", "--yes"],
            "--delete-artifacts goes with --destroy",
        ),
    ],
)
def test_cli_bad_input_exits_2_with_one_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert deploy.main(argv) == deploy.EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_cli_without_credentials_names_the_fix(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert deploy.main(["--suffix", "qa", "--yes"]) == deploy.EXIT_FAILED
    err = capsys.readouterr().err
    assert "no usable AWS credentials" in err and "--local" in err


def test_cli_without_terminal_needs_yes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert deploy.main(["--suffix", "qa"]) == deploy.EXIT_BAD_INPUT
    assert "--yes" in capsys.readouterr().err


def test_missing_bucket_permission_names_bucket_and_fix() -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    store = ArtifactStore(s3, "artifacts", "qa", "us-east-1")
    with Stubber(s3) as stub:
        stub.add_client_error("head_object", service_error_code="403", service_message="Forbidden")
        with pytest.raises(BucketAccessError) as error:
            store.ensure("lambda/x.zip", b"zip", "application/zip")
    assert "s3://artifacts/qa/lambda/x.zip" in str(error.value)
    assert "s3:PutObject" in str(error.value) and "--artifact-bucket" in str(error.value)


def test_existing_object_is_not_uploaded_again() -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    store = ArtifactStore(s3, "artifacts", "qa", "us-east-1")
    with Stubber(s3) as stub:
        stub.add_response("head_object", {}, {"Bucket": "artifacts", "Key": "qa/lambda/x.zip"})
        assert store.ensure("lambda/x.zip", b"zip", "application/zip") is False
        stub.assert_no_pending_responses()


def test_bootstrap_bucket_is_encrypted_versioned_private_and_tls_only() -> None:
    bucket = bootstrap_template()["Resources"]["ArtifactBucket"]["Properties"]
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    policy = bootstrap_template()["Resources"]["ArtifactBucketPolicy"]["Properties"][
        "PolicyDocument"
    ]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in policy["Statement"]
    )


def test_bootstrap_template_passes_cfn_lint() -> None:
    from templates.common import to_json
    from templates.lint import lint_text

    assert lint_text(to_json(bootstrap_template()), "bootstrap") == []


def test_capabilities_follow_iam_names() -> None:
    role = {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {}}}
    named = {
        "Type": "AWS::IAM::Role",
        "Properties": {"RoleName": "x", "AssumeRolePolicyDocument": {}},
    }
    assert capabilities({"Resources": {}}) == ()
    assert capabilities({"Resources": {"R": role}}) == ("CAPABILITY_IAM",)
    assert capabilities({"Resources": {"R": role, "N": named}}) == ("CAPABILITY_NAMED_IAM",)
    for base, template in registry.build_templates(Naming("qa")).items():
        has_named = any(
            r["Type"] == "AWS::IAM::Role" and "RoleName" in r.get("Properties", {})
            for r in template["Resources"].values()
        )
        assert ("CAPABILITY_NAMED_IAM" in capabilities(template)) == has_named, base


def test_outputs_print_invoke_url_and_fetched_key_value(lines: Any) -> None:
    from deployer.output import StackLog
    from deployer.outputs import print_outputs

    template = registry.build_templates(Naming("qa"), ["payment-api"])["payment-api-qa"]
    url = "https://abc.execute-api.us-east-1.amazonaws.com/prod/process-payment"
    stack = {
        "Outputs": [
            {"OutputKey": "InvokeUrl", "OutputValue": url},
            {"OutputKey": "ApiKeyId", "OutputValue": "k123"},
        ]
    }
    apigateway = boto3.client("apigateway", region_name="us-east-1")
    with Stubber(apigateway) as stub:
        stub.add_response(
            "get_api_key",
            {"id": "k123", "value": "s3cr3t"},
            {"apiKey": "k123", "includeValue": True},
        )
        print_outputs(
            StackLog(lines, "payment-api-qa"), stack, template, apigateway, show_key_value=True
        )
    assert f"[payment-api-qa] invoke URL: {url}" in lines
    assert any("API key value (k123): s3cr3t" in line for line in lines)
    hidden: list[str] = []
    print_outputs(StackLog(hidden.append, "x"), stack, template, apigateway, show_key_value=False)
    assert not any("s3cr3t" in line for line in hidden)


def bucket_checked(stub: Stubber, region: str = "us-east-1") -> None:
    stub.add_response(
        "head_bucket",
        {"ResponseMetadata": {"HTTPHeaders": {"x-amz-bucket-region": region}}},
        {"Bucket": "artifacts", "ExpectedBucketOwner": "123456789012"},
    )


def test_artifact_bucket_must_be_ours_in_region_and_encrypted() -> None:
    from deployer.artifacts import checked_bucket

    s3 = boto3.client("s3", region_name="us-east-1")
    owner = {"Bucket": "artifacts", "ExpectedBucketOwner": "123456789012"}
    with Stubber(s3) as stub:
        bucket_checked(stub)
        rules = [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
        stub.add_response(
            "get_bucket_encryption",
            {"ServerSideEncryptionConfiguration": {"Rules": rules}},
            owner,
        )
        assert checked_bucket(s3, "artifacts", "us-east-1", "123456789012") == "artifacts"

        stub.add_client_error("head_bucket", "403", "Forbidden", expected_params=owner)
        with pytest.raises(InvalidInputError, match="not owned by account 123456789012"):
            checked_bucket(s3, "artifacts", "us-east-1", "123456789012")

        bucket_checked(stub, region="eu-west-1")
        with pytest.raises(InvalidInputError, match="is in eu-west-1 but the stacks deploy to"):
            checked_bucket(s3, "artifacts", "us-east-1", "123456789012")

        bucket_checked(stub)
        stub.add_client_error(
            "get_bucket_encryption", "ServerSideEncryptionConfigurationNotFoundError", "none"
        )
        with pytest.raises(InvalidInputError, match="has no default encryption"):
            checked_bucket(s3, "artifacts", "us-east-1", "123456789012")
        stub.assert_no_pending_responses()
