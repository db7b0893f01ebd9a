"""Parameters as `aws cloudformation deploy` users expect (issue 10, defect 1).

A value an operator set on the deployed stack survives every run (UsePreviousValue); the
deployer's own parameters are always sent; --parameter and deploy.toml set values; the
preview prints each change old -> new with NoEcho values masked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.stub import ANY

import deploy
from deployer.aws import Clients
from deployer.errors import InvalidInputError
from deployer.run import DeployOptions, Run, prepare
from templates.common import to_json
from tests.deployer.stubbed import CS_ID, STACK_ID, Harness, spec, stack

TEMPLATE = {
    "Parameters": {
        "ProcessorFunctionName": {"Type": "String", "Default": "payment-processor"},
        "AlarmEmail": {"Type": "String", "Default": ""},
        "WebhookSecret": {"Type": "String", "Default": "", "NoEcho": True},
    },
    "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
}
DEPLOYED = {
    "ProcessorFunctionName": "payment-processor",
    "AlarmEmail": "oncall@example.com",  # set by an operator in the console
    "WebhookSecret": "****",  # CloudFormation never shows a NoEcho value
}


def test_i10_1_a_console_value_is_not_a_reason_to_update() -> None:
    h = Harness()
    h.describe("UPDATE_COMPLETE", parameters=DEPLOYED)
    h.add("get_template", {"TemplateBody": to_json(TEMPLATE)})  # no change set queued
    outcome = h.run(wanted=spec(template=TEMPLATE))
    assert outcome.result == "up to date", h.text()
    assert outcome.change_sets == 0


def test_i10_1_an_update_keeps_the_values_it_does_not_set() -> None:
    h = Harness()
    h.describe("UPDATE_COMPLETE", parameters=DEPLOYED)
    h.add("get_template", {"TemplateBody": to_json({**TEMPLATE, "Description": "older"})})
    h.add(
        "create_change_set",
        {"Id": CS_ID, "StackId": STACK_ID},
        {
            "StackName": ANY,
            "ChangeSetName": ANY,
            "ChangeSetType": "UPDATE",
            # Ours with its value; every other deployed one keeps its value, never a default.
            "Parameters": [
                {"ParameterKey": "ProcessorFunctionName", "ParameterValue": "payment-processor-qa"},
                {"ParameterKey": "AlarmEmail", "UsePreviousValue": True},
                {"ParameterKey": "WebhookSecret", "UsePreviousValue": True},
            ],
            "Tags": ANY,
            "Capabilities": ANY,
            "ClientToken": ANY,
            "Description": ANY,
            "TemplateBody": ANY,
            "RollbackConfiguration": ANY,
        },
    )
    h.add("describe_change_set", {"Status": "CREATE_COMPLETE", "Changes": [], "StackId": STACK_ID})
    h.execute("UPDATE_COMPLETE", [])
    wanted = spec({"ProcessorFunctionName": "payment-processor-qa"}, template=TEMPLATE)
    assert h.run(wanted=wanted).result == "updated"
    # The preview names the one change, old -> new; the kept values are not changes.
    assert "  ProcessorFunctionName: 'payment-processor' -> 'payment-processor-qa'" in [
        line.split("] ", 1)[1] for line in h.lines
    ]
    assert "AlarmEmail" not in h.text()


def test_preview_masks_no_echo_values() -> None:
    wanted = spec({"WebhookSecret": "s3cr3t-value", "AlarmEmail": "new@example.com"}, TEMPLATE)
    settled = wanted.settled(stack("UPDATE_COMPLETE", parameters=DEPLOYED)["Stacks"][0])
    lines = [change.line() for change in settled.parameter_changes()]
    assert lines == [
        "AlarmEmail: 'oncall@example.com' -> 'new@example.com'",
        "WebhookSecret: '****' -> '****'",
    ]
    # Not given and deployed at its default: left out, which gives it the same value.
    assert settled.previous == ()
    assert "s3cr3t-value" not in " ".join(lines)


def test_a_new_template_parameter_takes_its_default_and_a_dropped_one_goes() -> None:
    deployed = {"ProcessorFunctionName": "payment-processor-qa", "Retired": "x"}
    settled = spec(template=TEMPLATE).settled(
        stack("UPDATE_COMPLETE", parameters=deployed)["Stacks"][0]
    )
    assert settled.previous == ("ProcessorFunctionName",)
    assert [change.line() for change in settled.parameter_changes()] == [
        "AlarmEmail: (none) -> ''",
        "Retired: 'x' -> (none)",
        "WebhookSecret: (none) -> '****'",
    ]


def platform_options(**kwargs: Any) -> DeployOptions:
    return DeployOptions(suffix="qa", stacks=("payment-platform",), **kwargs)


def test_i10_1_parameter_from_the_command_line_reaches_the_stack() -> None:
    args = deploy.parse_args(
        ["--suffix", "qa", "--parameter", "AlarmEmail=oncall@example.com", "--parameter",
         "MaxPaymentAmount=500.00"]
    )  # fmt: skip
    options = deploy.deploy_options(args, stdout_is_terminal=False)
    plan = prepare(options)
    run = Run(plan, options, Clients(None, None, None, None, "us-east-1"), print, bool)
    wanted = run.spec("payment-platform", {"CodeBucket": "b", "CodeKey": "qa/x.zip"}, True)
    assert wanted.parameters["AlarmEmail"] == "oncall@example.com"
    assert wanted.parameters["MaxPaymentAmount"] == "500.00"
    assert wanted.parameters["CodeKey"] == "qa/x.zip"  # computed ones always sent


def test_config_file_holds_a_suffix_values_and_the_command_line_wins(tmp_path: Path) -> None:
    config = tmp_path / "deploy.toml"
    config.write_text(
        '[qa]\ntags = { CostCenter = "payments" }\nmonitor_minutes = 12\n'
        '[qa.parameters]\nAlarmEmail = "team@example.com"\nHealthDryRun = true\n'
        '[prod.parameters]\nAlarmEmail = "prod@example.com"\n'
    )
    args = deploy.parse_args(
        ["--suffix", "qa", "--config", str(config), "--parameter", "AlarmEmail=me@example.com"]
    )
    options = deploy.deploy_options(args, stdout_is_terminal=False)
    assert options.tags == {"CostCenter": "payments"}
    assert options.monitor_minutes == 12
    plan = prepare(options)
    assert plan.overrides == {"AlarmEmail": "me@example.com", "HealthDryRun": "true"}


def test_config_file_parameters_may_belong_to_a_stack_not_deployed_now(tmp_path: Path) -> None:
    config = tmp_path / "deploy.toml"
    config.write_text('[qa.parameters]\nAlarmEmail = "team@example.com"\n')
    args = deploy.parse_args(["--suffix", "qa", "--stack", "payment-api", "--config", str(config)])
    plan = prepare(deploy.deploy_options(args, stdout_is_terminal=False))
    assert plan.bases == ["payment-api"]  # AlarmEmail is the platform's: accepted, unused


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--parameter", "AlarmEmail"], "expected KEY=VALUE"),
        (["--parameter", "AlarmEmial=x"], "AlarmEmial: no stack of this run declares it"),
        (["--parameter", "CodeKey=x.zip"], "computed by the deployer"),
        (["--parameter", "HealthDryRun=yes"], "allowed values are true, false"),
        # The template's ConstraintDescription follows the value; its wording is the template's.
        (["--parameter", "MaxPaymentAmount=-1"], "MaxPaymentAmount='-1' for payment-platform-qa: "),
        (["--stack", "payment-api", "--parameter", "AlarmEmail=a@b.c"], "no stack of this run"),
        (["--tags", "Project=other"], "set by the deployer"),
    ],
)
def test_bad_parameters_exit_2_before_any_aws_call(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], no_aws: None
) -> None:
    assert deploy.main(["--suffix", "qa", "--yes", *argv]) == deploy.EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_bad_config_file_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "deploy.toml"
    config.write_text('[qa]\nparamters = { AlarmEmail = "x" }\n')
    with pytest.raises(InvalidInputError, match=r"deploy.toml \[qa\]: unknown key paramters"):
        deploy.deploy_options(deploy.parse_args(["--suffix", "qa", "--config", str(config)]), False)
    config.write_text("[qa\n")
    with pytest.raises(InvalidInputError, match="not valid TOML"):
        deploy.deploy_options(deploy.parse_args(["--suffix", "qa", "--config", str(config)]), False)
