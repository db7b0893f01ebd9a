"""Ownership of API Gateway's account logging role, against moto's API Gateway and IAM."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from deployer.account_logging import PARAMETER, live_logging_role, new_stack_owns_logging
from deployer.stackspec import StackSpec

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
