"""Who owns API Gateway's account-wide CloudWatch Logs role, decided from the account itself.

API Gateway has one logging role setting per account and region. Each stack can own it
(`ManageApiGatewayAccount=true`: the stack creates the role and points the setting at it);
two owners fight, and deleting an owner leaves the setting pointing at a deleted role. So:
a stack that exists keeps the value it was deployed with (changing it would delete the role
the account may be using), and a new stack owns the setting only when the account has no
live role yet. A role ARN whose role no longer exists counts as none.
"""

from __future__ import annotations

from typing import Any

import botocore.exceptions

from deployer.aws import AWS_ERRORS, call_failure, error_code

PARAMETER = "ManageApiGatewayAccount"


def live_logging_role(apigateway: Any, iam: Any) -> str | None:
    """The ARN of the account's API Gateway logging role, when it is set and still exists."""
    try:
        role_arn = apigateway.get_account().get("cloudwatchRoleArn")
    except AWS_ERRORS as error:
        raise call_failure("apigateway:GetAccount", error) from None
    if not role_arn:
        return None
    try:
        iam.get_role(RoleName=role_arn.rsplit("/", 1)[-1])
    except AWS_ERRORS as error:
        if isinstance(error, botocore.exceptions.ClientError) and (
            error_code(error) == "NoSuchEntity"
        ):
            return None
        raise call_failure("iam:GetRole", error) from None
    return role_arn


def new_stack_owns_logging(apigateway: Any, iam: Any) -> str:
    """The parameter value for a stack about to be created: "true" when nobody owns it."""
    return "false" if live_logging_role(apigateway, iam) else "true"
