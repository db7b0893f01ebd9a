"""Every accepted policy finding is written where the tools read it, with a reason an auditor
can check, and suppresses a real finding; the cdk-nag gate fails on an unsuppressed error and
on a suppression that matches nothing. (checkov's side: tests/templates/test_gates.py.)"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from troposphere import Ref, Template
from troposphere.awslambda import Function, Permission

from templates.cfnread import references
from templates.common import to_json
from templates.functions import LambdaFunction, accept_invocation_findings
from tests.templates.cfn import resources

MIN_REASON = 30
GATE = Path(__file__).resolve().parents[2] / "tools" / "cdk-nag"
INSTALLED = (GATE / "node_modules" / "cdk-nag").is_dir() and shutil.which("node")


def test_every_cdk_nag_suppression_has_a_reason(stack):
    _, template = stack
    for logical_id, resource in resources(template).items():
        for entry in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
            assert set(entry) <= {"id", "reason", "applies_to"}, (logical_id, entry)
            assert len(entry["reason"]) >= MIN_REASON, (logical_id, entry["id"])
            assert entry["id"].split("-")[0] in ("AwsSolutions", "PCI.DSS.321", "NIST.800.53.R5")
            assert all(isinstance(i, str) and i for i in entry.get("applies_to", [])), logical_id


def test_every_guard_suppression_has_a_reason(stack):
    """cfn-guard's rules read only the names; the reason sits beside each one."""
    _, template = stack
    for logical_id, resource in resources(template).items():
        guard = resource.get("Metadata", {}).get("guard")
        if guard is None:
            continue
        assert guard["SuppressedRules"], logical_id
        assert set(guard["Reasons"]) == set(guard["SuppressedRules"]), logical_id
        for rule, reason in guard["Reasons"].items():
            assert rule.isupper() and len(reason) >= MIN_REASON, (logical_id, rule)


def test_every_model_schema_is_an_object(stack):
    """cloudformation_include (the cdk-nag gate) refuses a Model whose Schema is a string."""
    _, template = stack
    for logical_id, model in resources(template, "AWS::ApiGateway::Model").items():
        assert isinstance(model["Properties"]["Schema"], dict), logical_id


def _gate(folder: Path, templates: dict[str, dict]) -> subprocess.CompletedProcess:
    paths = []
    for name, template in templates.items():
        path = folder / f"{name}.json"
        path.write_text(to_json(template))
        paths.append(str(path))
    return subprocess.run(
        ["node", str(GATE / "nag.js"), *paths],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.mark.skipif(
    not INSTALLED, reason="cdk-nag gate not installed: npm ci --prefix tools/cdk-nag (CI does)"
)
def test_cdk_nag_gate_passes_the_templates_and_fails_a_finding_or_a_stale_suppression(
    all_templates, tmp_path
):
    """One run over both templates and a broken copy of payment-api: the real ones pass;
    the copy has the stage's caching suppression removed (an unsuppressed error) and a
    suppression for a rule that never fires (a claim matching nothing): both fail."""
    broken = copy.deepcopy(all_templates["payment-api"])
    stage = broken["Resources"]["ApiStage"]["Metadata"]["cdk_nag"]
    stage["rules_to_suppress"] = [
        e for e in stage["rules_to_suppress"] if "CacheEnabled" not in e["id"]
    ]
    broken["Resources"]["RestApi"]["Metadata"] = {
        "cdk_nag": {"rules_to_suppress": [{"id": "AwsSolutions-S1", "reason": "x" * MIN_REASON}]}
    }
    # A VPC without suppressions: PCI DSS VPCDefaultSecurityGroupClosed is a Warning-level
    # rule, and an unsuppressed warning fails the gate too (the evidence report says *met*).
    broken["Resources"]["BareVpc"] = {
        "Type": "AWS::EC2::VPC",
        "Properties": {"CidrBlock": "10.9.0.0/16"},
    }
    run = _gate(tmp_path, {**all_templates, "broken-payment-api": broken})
    lines = run.stdout.splitlines()
    failing = [line for line in lines if line.startswith(("FAIL", "UNUSED"))]
    assert run.returncode == 1, run.stderr[-2000:]
    assert all(line.split()[1] == "broken-payment-api" for line in failing), failing
    expected = "FAIL broken-payment-api ApiStage PCI.DSS.321-APIGWCacheEnabledAndEncrypted"
    assert any(line.startswith(expected) for line in failing), failing
    assert any(
        line.startswith("UNUSED broken-payment-api RestApi AwsSolutions-S1") for line in failing
    ), failing
    warning = "FAIL broken-payment-api BareVpc PCI.DSS.321-VPCDefaultSecurityGroupClosed"
    assert any(line.startswith(warning) for line in failing), failing
    summary = json.dumps(lines[-1])
    assert "cdk-nag 2." in summary


# The words each reason uses for an invoker (templates/functions.py INVOKERS).
INVOKER_WORDS = {
    "apigateway.amazonaws.com": "API Gateway",
    "events.amazonaws.com": "schedule",
    "event source mapping": "event source mapping",
}
ASYNCHRONOUS = {"events.amazonaws.com"}


def function_invokers(template: dict, function_id: str) -> set[str]:
    """Each Lambda permission's principal naming the function; an event source mapping too."""
    found = set()
    for kind in ("AWS::Lambda::Permission", "AWS::Lambda::EventSourceMapping"):
        for resource in resources(template, kind).values():
            if function_id in references(resource["Properties"]["FunctionName"]):
                found.add(resource["Properties"].get("Principal", "event source mapping"))
    return found


def nag_reason(resource: dict, rule: str) -> str | None:
    entries = resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    return next((e["reason"] for e in entries if e["id"] == rule), None)


def test_function_findings_name_exactly_what_invokes_the_function(stack):
    """A reason an auditor can check against the template: the missing reserved concurrency
    names what invokes the function (and so what bounds it), and the missing Lambda DLQ is
    accepted only for a function nothing invokes asynchronously, naming its invokers. (The
    old shared reasons gave the validation function an SQS trigger it does not have, and the
    public health check a usage plan.)"""
    _, template = stack
    for function_id, function in resources(template, "AWS::Lambda::Function").items():
        invoked_by = function_invokers(template, function_id)
        assert invoked_by <= set(INVOKER_WORDS), (function_id, invoked_by)
        concurrency = nag_reason(function, "NIST.800.53.R5-LambdaConcurrency")
        dlq = nag_reason(function, "NIST.800.53.R5-LambdaDLQ")
        for reason in filter(None, (concurrency, dlq)):
            named = {path for path, word in INVOKER_WORDS.items() if word in reason}
            assert named == invoked_by, (function_id, reason, invoked_by)
        assert concurrency is not None, function_id
        if invoked_by & ASYNCHRONOUS:
            assert dlq is None and "DeadLetterConfig" in function["Properties"], function_id
        else:
            assert dlq is not None, function_id


def test_an_asynchronous_invoker_without_a_dead_letter_queue_is_refused():
    """The generator does not write "invoked only synchronously" for a function a schedule
    invokes: without a DLQ its failed runs would vanish."""
    t = Template()
    function = t.add_resource(Function("Scheduled", Role="r", Runtime="python3.12"))
    t.add_resource(
        Permission(
            "SchedulePermission",
            Action="lambda:InvokeFunction",
            FunctionName=Ref(function),
            Principal="events.amazonaws.com",
        )
    )
    fn = LambdaFunction(function=function, role=None, log_group=None, name="scheduled", spec=None)
    with pytest.raises(ValueError, match="asynchronously but has no dead-letter queue"):
        accept_invocation_findings(t, [fn])
