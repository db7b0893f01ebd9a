"""Ownership of API Gateway's account logging role, against moto's API Gateway and IAM."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from deployer.account_logging import PARAMETER, live_logging_role, new_stack_owns_logging
from deployer.errors import DeclinedError, StackOperationFailedError
from deployer.stackspec import StackSpec
from templates.common import to_json
from tests.deployer.stubbed import Harness, event, spec

TRUST = '{"Version": "2012-10-17", "Statement": []}'


@pytest.fixture
def aws():
    with mock_aws():
        yield boto3.client("apigateway", region_name="us-east-1"), boto3.client("iam")


def create_role(iam, name):
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]


def point_account_at(apigateway, role_arn):
    apigateway.update_account(
        patchOperations=[{"op": "replace", "path": "/cloudwatchRoleArn", "value": role_arn}]
    )


def test_a_fresh_account_has_no_owner_so_a_new_stack_owns_it(aws):
    apigateway, iam = aws
    assert live_logging_role(apigateway, iam) is None
    assert new_stack_owns_logging(apigateway, iam) == "true"


def test_a_live_role_belongs_to_someone_else_so_a_new_stack_leaves_it(aws):
    apigateway, iam = aws
    arn = create_role(iam, "other-stack-role")
    point_account_at(apigateway, arn)
    assert live_logging_role(apigateway, iam) == arn
    assert new_stack_owns_logging(apigateway, iam) == "false"


def test_a_role_left_behind_by_a_deleted_stack_counts_as_none(aws):
    apigateway, iam = aws
    arn = create_role(iam, "deleted-stack-role")
    point_account_at(apigateway, arn)
    iam.delete_role(RoleName="deleted-stack-role")
    assert new_stack_owns_logging(apigateway, iam) == "true"


def spec_with_sticky(decide):
    return StackSpec(
        name="payment-api-qa",
        base="payment-api",
        template={"Parameters": {PARAMETER: {"Type": "String", "Default": "true"}}},
        parameters={},
        tags={},
        sticky={PARAMETER: decide},
    )


def test_an_existing_stack_keeps_its_deployed_value_without_asking_the_account():
    def must_not_ask():
        raise AssertionError("an existing stack's owner must not be re-decided")

    deployed = {"Parameters": [{"ParameterKey": PARAMETER, "ParameterValue": "false"}]}
    assert spec_with_sticky(must_not_ask).settled(deployed).parameters == {PARAMETER: "false"}


def test_a_new_stack_asks_the_account_once():
    asked = []
    settled = spec_with_sticky(lambda: asked.append(1) or "true").settled(None)
    assert settled.parameters == {PARAMETER: "true"} and asked == [1]
    assert settled.sticky == {}


# The deployer's side (issue 10): a flip true -> false or deleting the owner warns and asks;
# the IAM eventual-consistency failure of a seconds-old role is retried, a bounded number of
# times (botocore's Stubber: moto skips AWS::ApiGateway::Account).

ACCOUNT_TEMPLATE = {
    "Parameters": {PARAMETER: {"Type": "String", "Default": "true"}},
    "Conditions": {"Owns": {"Fn::Equals": [{"Ref": PARAMETER}, "true"]}},
    "Resources": {
        "ApiGatewayAccount": {"Type": "AWS::ApiGateway::Account", "Condition": "Owns"},
        "Topic": {"Type": "AWS::SNS::Topic"},
    },
}
NOT_READY = (
    'Resource handler returned message: "The role ARN does not have required permissions '
    'set to API Gateway (Service: ApiGateway, Status Code: 400)"'
)


def owning(h, status="UPDATE_COMPLETE"):
    h.describe(status, parameters={PARAMETER: "true"})


def test_a_flip_to_false_warns_and_asks_before_any_change_set():

    h = Harness(yes=False, answer=False, region="eu-west-1")
    owning(h)
    h.add("get_template", {"TemplateBody": to_json(ACCOUNT_TEMPLATE)})  # then nothing
    with pytest.raises(DeclinedError):
        h.run(wanted=spec({PARAMETER: "false"}, template=ACCOUNT_TEMPLATE))
    assert "logging stops for every API Gateway API in eu-west-1" in h.text()
    assert h.questions == ["Stop API Gateway logging for every API in eu-west-1? [y/N] "]


def test_a_flip_with_yes_warns_and_goes_on():

    h = Harness(yes=True)
    owning(h)
    h.add("get_template", {"TemplateBody": to_json(ACCOUNT_TEMPLATE)})
    h.change_set("UPDATE", changes=[])
    h.execute("UPDATE_COMPLETE", [event(1, "UPDATE_COMPLETE")])
    outcome = h.run(wanted=spec({PARAMETER: "false"}, template=ACCOUNT_TEMPLATE))
    assert outcome.result == "updated" and h.questions == []
    assert "WARNING: ManageApiGatewayAccount true -> false deletes" in h.text()


def test_destroying_the_owner_says_logging_stops_in_the_question():

    h = Harness(yes=False, answer=False)
    owning(h, "CREATE_COMPLETE")
    with pytest.raises(DeclinedError):
        h.run("destroy", spec(template=ACCOUNT_TEMPLATE))
    assert "stop API Gateway logging for every API in us-east-1" in h.questions[0]


def failed_create(h, reason=NOT_READY):

    h.change_set("CREATE", changes=[])
    h.execute(
        "ROLLBACK_COMPLETE",
        [
            event(1, "CREATE_IN_PROGRESS"),
            event(2, "CREATE_FAILED", "ApiGatewayAccount", reason, kind="AWS::ApiGateway::Account"),
            event(3, "CREATE_FAILED", "Topic", "Resource creation cancelled"),
            event(4, "ROLLBACK_COMPLETE"),
        ],
    )


def recreate(h):

    owning(h, "ROLLBACK_COMPLETE")
    h.delete([event(5, "DELETE_COMPLETE")])


def test_a_seconds_old_role_refused_by_api_gateway_is_retried():

    h = Harness(retry_delay=30.0)
    h.no_stack()
    failed_create(h)
    recreate(h)
    h.change_set("CREATE", changes=[])
    h.execute("CREATE_COMPLETE", [event(6, "CREATE_COMPLETE")])
    outcome = h.run(wanted=spec({PARAMETER: "true"}, template=ACCOUNT_TEMPLATE))
    assert outcome.result == "created"
    assert h.failures == [], "a retried failure is not the run's failure"
    assert 30.0 in h.sleeps
    assert "IAM had not propagated it yet; retrying in 30 s (attempt 2 of 3)" in h.text()


def test_the_retry_is_bounded_and_other_failures_are_not_retried():

    h = Harness(attempts=2, retry_delay=1.0)
    h.no_stack()
    failed_create(h)
    recreate(h)
    failed_create(h)  # the second and last attempt fails the same way
    with pytest.raises(StackOperationFailedError):
        h.run(wanted=spec({PARAMETER: "true"}, template=ACCOUNT_TEMPLATE))
    assert [f.logical_id for f in h.failures] == ["ApiGatewayAccount", "Topic"]

    h = Harness(retry_delay=1.0)
    h.no_stack()
    failed_create(h, reason="Resource handler returned message: AccessDenied")
    with pytest.raises(StackOperationFailedError):
        h.run(wanted=spec({PARAMETER: "true"}, template=ACCOUNT_TEMPLATE))
    assert h.sleeps == []
