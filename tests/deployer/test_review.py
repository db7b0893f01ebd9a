"""Hostile review of issue 10: what an operator (or an adversary) found still wrong.

Each test reproduces one finding; each failed on main before its fix (see the commits).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import deploy
from deployer import inputs
from deployer.aws import PROBE, AwsSettings, Clients
from deployer.config import load_config
from deployer.errors import InvalidInputError, PackagingError
from deployer.run import DeployOptions, Run, prepare
from templates.common import to_json
from tests.deployer.stubbed import TEMPLATE, Harness, event, spec
from tests.deployer.test_cli import StubbedAws
from tests.deployer.test_safety import OURS, policy_body
from tests.deployer.test_safety import TEMPLATE as TABLES


def test_an_update_whose_cleanup_left_an_old_resource_is_still_a_success() -> None:
    """CloudFormation tries three times to delete a replaced resource, then drops it from the
    stack and ends UPDATE_COMPLETE (its StatusReason says a resource could not be deleted).
    The update succeeded: counting the DELETE_FAILED as a failure made Report.ok false and
    the run exit 1 (so CI retried or paged for a deploy that had worked)."""
    h = Harness()
    h.describe("UPDATE_COMPLETE")
    h.add("get_template", {"TemplateBody": to_json({**TEMPLATE, "Description": "old"})})
    h.change_set("UPDATE")  # the topic is replaced
    h.execute(
        "UPDATE_COMPLETE",
        [
            event(1, "UPDATE_IN_PROGRESS"),
            event(2, "UPDATE_COMPLETE", "Topic"),
            event(3, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"),
            event(4, "DELETE_FAILED", "Topic", "Resource handler returned message: AccessDenied"),
            event(5, "UPDATE_COMPLETE", reason="One or more resources could not be deleted."),
        ],
    )
    outcome = h.run()
    assert outcome.result == "updated"
    assert h.failures == [], "a successful update has no failed resources to report"
    assert outcome.left_behind and outcome.left_behind[0].logical_id == "Topic"
    warning = [line for line in h.lines if line.startswith(f"[{outcome.stack}] WARNING")]
    assert warning and "Topic" in warning[0] and "delete" in warning[0]


def test_end_of_input_at_the_prompt_declines(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-D (or a closed stdin) at "Execute the change set?" ended in an EOFError
    traceback; it is a no."""

    def eof(_: str) -> str:
        raise EOFError

    monkeypatch.setattr("builtins.input", eof)
    assert deploy.confirm_on_terminal("Execute? [y/N] ") is False


def test_a_deploy_toml_that_is_not_utf8_is_bad_input(tmp_path: Path) -> None:
    config = tmp_path / "deploy.toml"
    config.write_bytes(b'[qa]\nrole_arn = "\xff"\n')
    with pytest.raises(InvalidInputError) as error:
        load_config(config, "qa")
    assert str(config) in str(error.value) and "UTF-8" in str(error.value)


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_timeout_that_is_not_a_finite_number_is_bad_input(
    value: str, capsys: pytest.CaptureFixture[str], no_aws: None
) -> None:
    """--timeout nan passed the `<= 0` check and made every wait endless (nan compares
    false), so a stuck stack was never given up on."""
    assert deploy.main(["--suffix", "qa", "--yes", "--timeout", value]) == deploy.EXIT_BAD_INPUT
    assert f"--timeout {value}" in capsys.readouterr().err
    with pytest.raises(InvalidInputError):
        inputs.check_timeout(float(value))


def test_ctrl_c_while_deploy_py_loads_its_libraries_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Loading boto3 and the emulator takes seconds on a busy machine; a Ctrl-C then ended
    in a KeyboardInterrupt traceback through importlib."""
    import builtins
    import runpy

    real = builtins.__import__

    def interrupted(name: str, *args: object, **kwargs: object) -> object:
        if name == "deployer.run":
            raise KeyboardInterrupt
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", interrupted)
    script = Path(deploy.__file__)
    with pytest.raises(SystemExit) as stopped:
        runpy.run_path(str(script), run_name="__main__")
    assert stopped.value.code == deploy.EXIT_INTERRUPTED
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["deploy.py: interrupted (Ctrl-C) while starting; nothing was done"]


def test_ctrl_c_while_the_local_server_starts_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from contextlib import contextmanager

    @contextmanager
    def starting(port: int) -> Iterator[None]:
        raise KeyboardInterrupt
        yield

    monkeypatch.setattr("deployer.local.emulator_server", starting)
    assert deploy.main(["--local-server", "--local-port", "0"]) == deploy.EXIT_INTERRUPTED
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "interrupted (Ctrl-C)" in err[0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--source", "."], "--source .: not a Python package (no __init__.py)"),
        (["--local", "--local-port", "70000"], "--local-port 70000: a port is 0-65535"),
        (["--local-server", "--local-port", "-1"], "--local-port -1: a port is 0-65535"),
    ],
)
def test_bad_source_or_port_exits_2_before_any_aws_client(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], no_aws: None
) -> None:
    """A --source that is no package was found only after the bootstrap stack had been
    created (exit 1); --local-port 70000 deployed into a throwaway emulator instead."""
    assert deploy.main(["--suffix", "qa", "--yes", *argv]) == deploy.EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_packaging_fails_before_anything_is_created_in_aws(tmp_path: Path) -> None:
    """Every AWS call is stubbed and none but GetCallerIdentity is queued: the package is
    built (and here refused) before the artifact bucket's stack is looked up or created."""
    stubbed = StubbedAws()
    options = DeployOptions(
        suffix="qa", stacks=("payment-platform",), yes=True, setup_cfg=tmp_path / "missing.cfg"
    )
    for stub in stubbed.stubs.values():
        stub.activate()
    report = Run(prepare(options), options, stubbed.clients, print, lambda _: False).execute()
    assert isinstance(report.error, PackagingError), report.error
    assert report.outcomes == []


def test_a_cloudformation_endpoint_that_does_not_answer_is_reported_after_two_attempts(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """STS answers (a private subnet with an STS endpoint only, or a mistyped
    AWS_ENDPOINT_URL_CLOUDFORMATION) but CloudFormation does not: the first CloudFormation
    call made its 10 patient attempts and reported after a minute (measured: 62 s)."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", moto_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDFORMATION", f"http://127.0.0.1:{port}")
    sent: list[str] = []
    made = deploy.make_clients

    def counting(settings: AwsSettings) -> Clients:
        clients = made(settings)
        for client in [clients.cloudformation, *clients.probes.values()]:
            client.meta.events.register("before-send.cloudformation", lambda **_: sent.append(""))
        return clients

    monkeypatch.setattr("deploy.make_clients", counting)
    assert deploy.main(["--suffix", "qa", "--stack", "payment-api", "--yes"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"cloudformation at http://127.0.0.1:{port}" in err[0], err
    assert len(sent) == PROBE.max_attempts


OPERATOR_DENY = {
    "Effect": "Deny",
    "Principal": "*",
    "Action": "Update:*",
    "Resource": "LogicalResourceId/StackKey",
}


@pytest.mark.parametrize(
    ("deployed", "expected"),
    [
        ({"Statement": [*OURS["Statement"], OPERATOR_DENY]}, None),
        (
            {"Statement": [OPERATOR_DENY]},
            {"Statement": [*OURS["Statement"], OPERATOR_DENY]},
        ),
    ],
    ids=["ours-and-the-operators", "the-operators-only"],
)
def test_a_stack_policy_statement_an_operator_added_is_kept(
    deployed: dict[str, Any], expected: dict[str, Any] | None
) -> None:
    """An operator who also protects the KMS key (or freezes a resource) with the stack
    policy saw it silently replaced by ours on the next run, up to date or not: the
    deployer resets what an operator set, here a data-protection control."""
    h = Harness()
    h.describe("UPDATE_COMPLETE")
    h.add("get_template", {"TemplateBody": to_json(TABLES)})
    h.add("get_stack_policy", {"StackPolicyBody": json.dumps(deployed)})
    if expected is not None:  # else nothing is set: SetStackPolicy is not queued
        h.add("set_stack_policy", {}, policy_body(expected))
    assert h.run(wanted=spec(template=TABLES, stack_policy=OURS)).result == "up to date"
