"""A StackFlow on stubbed clients (botocore's Stubber): every call queued, none sent.

Each test queues the exact calls it expects; the Stubber fails on any other call, so a
test also proves what the deployer does NOT call (no change set for a stack not ours...).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import boto3
from botocore.stub import ANY, Stubber

from deployer.changeset import Deployer, WaitConfig
from deployer.events import Failure
from deployer.flow import Outcome, StackFlow
from deployer.output import StackLog
from deployer.stackspec import StackSpec, stack_tags

NAME = "payment-api-qa"
STACK_ID = f"arn:aws:cloudformation:us-east-1:123456789012:stack/{NAME}/1111"
CS_ID = "arn:aws:cloudformation:us-east-1:123456789012:changeSet/cs/2222"
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
# The run starts a minute before the events it waits for.
START = NOW - dt.timedelta(minutes=1)
TEMPLATE = {
    "Parameters": {"ProcessorFunctionName": {"Type": "String", "Default": "payment-processor"}},
    "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
}
TOPIC_REPLACED = {
    "Type": "Resource",
    "ResourceChange": {
        "Action": "Modify",
        "LogicalResourceId": "Topic",
        "ResourceType": "AWS::SNS::Topic",
        "Replacement": "True",
    },
}
OUR_TAGS = [{"Key": k, "Value": v} for k, v in stack_tags("qa").items()]


def spec(
    parameters: dict[str, str] | None = None, template: dict[str, Any] | None = None, **kw: Any
) -> StackSpec:
    """The stack as the deployer wants it: ownership is Project and Environment."""
    kw.setdefault("owner_tags", stack_tags("qa"))
    return StackSpec(
        NAME, "payment-api", template or TEMPLATE, parameters or {}, stack_tags("qa"), **kw
    )


def stack(
    status: str,
    tags: list[dict[str, str]] | None = None,
    parameters: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A DescribeStacks answer for our stack."""
    values = {"ProcessorFunctionName": "payment-processor"} if parameters is None else parameters
    return {
        "Stacks": [
            {
                "StackName": NAME,
                "StackId": STACK_ID,
                "CreationTime": NOW,
                "StackStatus": status,
                "Tags": OUR_TAGS if tags is None else tags,
                "Parameters": [
                    {"ParameterKey": key, "ParameterValue": value} for key, value in values.items()
                ],
                **extra,
            }
        ]
    }


def event(
    n: int,
    status: str,
    logical: str = NAME,
    reason: str | None = None,
    *,
    kind: str = "AWS::SNS::Topic",
    when: dt.datetime = NOW,
    token: str | None = None,
) -> dict[str, Any]:
    """One stack event (newest first is the caller's order to give)."""
    item = {
        "StackId": STACK_ID,
        "EventId": f"e{n}",
        "StackName": NAME,
        "LogicalResourceId": logical,
        "PhysicalResourceId": STACK_ID if logical == NAME else f"physical-{logical}",
        "ResourceType": "AWS::CloudFormation::Stack" if logical == NAME else kind,
        "Timestamp": when,
        "ResourceStatus": status,
    }
    if reason:
        item["ResourceStatusReason"] = reason
    if token:
        item["ClientRequestToken"] = token
    return item


class Harness:
    """A stubbed CloudFormation client, a StackFlow on it, and everything it recorded."""

    def __init__(
        self,
        *,
        yes: bool = True,
        answer: bool | list[bool] = False,
        no_execute: bool = False,
        **flow: Any,
    ) -> None:
        self.cfn = boto3.client("cloudformation", region_name="us-east-1")
        self.stub = Stubber(self.cfn)
        self.cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        self.cw = Stubber(self.cloudwatch)
        self.lines: list[str] = []
        self.sleeps: list[float] = []
        self.clock = 0.0
        self.failures: list[Failure] = []
        self.outcomes: list[Outcome] = []
        self.questions: list[str] = []

        def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)
            self.clock += seconds

        deployer = Deployer(
            self.cfn,
            StackLog(self.lines.append, NAME),
            WaitConfig(),
            sleep,
            lambda: self.clock,
            lambda: START,
        )

        answers = list(answer) if isinstance(answer, list) else None

        def confirm(question: str) -> bool:
            self.questions.append(question)
            return answers.pop(0) if answers is not None else bool(answer)

        flow.setdefault("cloudwatch", self.cloudwatch)
        self.flow = StackFlow(
            deployer,
            self.failures,
            self.outcomes,
            confirm,
            yes=yes,
            no_execute=no_execute,
            **flow,
        )

    def add(
        self, operation: str, response: dict[str, Any], params: dict[str, Any] | None = None
    ) -> None:
        self.stub.add_response(operation, response, params)

    def error(self, operation: str, code: str, message: str) -> None:
        self.stub.add_client_error(operation, service_error_code=code, service_message=message)

    def describe(self, status: str, **kwargs: Any) -> None:
        self.add("describe_stacks", stack(status, **kwargs))

    def no_stack(self) -> None:
        self.error("describe_stacks", "ValidationError", f"Stack with id {NAME} does not exist")

    def change_set(
        self,
        change_set_type: str,
        status: str = "CREATE_COMPLETE",
        reason: str = "",
        changes: list[dict[str, Any]] | None = None,
        **expected: Any,
    ) -> None:
        params = {
            "StackName": NAME,
            "ChangeSetName": ANY,
            "ChangeSetType": change_set_type,
            "Parameters": ANY,
            "Tags": ANY,
            "Capabilities": ANY,
            "ClientToken": ANY,
            "Description": ANY,
            "TemplateBody": ANY,
        }
        if change_set_type == "UPDATE":
            # Every update names its rollback triggers (CloudFormation keeps the last ones).
            params["RollbackConfiguration"] = ANY
        self.add("create_change_set", {"Id": CS_ID, "StackId": STACK_ID}, {**params, **expected})
        response: dict[str, Any] = {
            "ChangeSetId": CS_ID,
            "ChangeSetName": "cs",
            "StackId": STACK_ID,
            "Status": status,
            "Changes": (changes if changes is not None else [TOPIC_REPLACED])
            if status == "CREATE_COMPLETE"
            else [],
        }
        if reason:
            response["StatusReason"] = reason
        self.add("describe_change_set", response, {"ChangeSetName": CS_ID})

    def execute(self, final: str, events: list[dict[str, Any]]) -> None:
        self.add("execute_change_set", {}, {"ChangeSetName": CS_ID, "ClientRequestToken": ANY})
        self.describe(final)
        self.add("describe_stack_events", {"StackEvents": list(reversed(events))})

    def delete(self, events: list[dict[str, Any]], final: str = "DELETE_COMPLETE") -> None:
        self.add("list_stack_resources", {"StackResourceSummaries": []}, {"StackName": STACK_ID})
        self.add("delete_stack", {}, {"StackName": STACK_ID, "ClientRequestToken": ANY})
        self.describe(final)
        self.add("describe_stack_events", {"StackEvents": list(reversed(events))})

    def run(self, action: str = "deploy", wanted: StackSpec | None = None) -> Outcome:
        """Deploy (or destroy) `wanted`; every queued call must have been made."""
        with self.stub, self.cw:
            try:
                if action == "deploy":
                    return self.flow.deploy(wanted or spec())
                return self.flow.destroy(wanted or spec())
            finally:
                self.stub.assert_no_pending_responses()
                self.cw.assert_no_pending_responses()

    def text(self) -> str:
        """Everything the flow wrote."""
        return "\n".join(self.lines)
