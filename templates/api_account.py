"""The account-wide API Gateway CloudWatch Logs role (`AWS::ApiGateway::Account`), owned by at
most one stack per account and region.

Setting the role makes API Gateway verify it by writing one line to `/aws/apigateway/welcome`,
creating that group if it is missing. On a fresh account or region it is missing, so the role
may create exactly that group (and no other: every other group is created by a stack with a
retention). Granting it works both where the group exists and where it does not; pre-creating
it in the template would fail wherever it already exists.
"""

from __future__ import annotations

from awacs import logs as awslogs
from troposphere import Equals, If, Join, Parameter, Ref, Sub, Template
from troposphere.apigateway import Account
from troposphere.cloudformation import WaitConditionHandle

from templates.common import add_parameter
from templates.findings import Accepted, accept
from templates.iam import add_service_role, allow
from templates.naming import Kind, Naming, unique_token

ACCOUNT_CONDITION = "ManagesApiGatewayAccount"
WELCOME_LOG_GROUP = "/aws/apigateway/welcome"
COMPONENT = "api"


def log_groups(pattern: str) -> Sub:
    """Log groups of this account and region whose names match `pattern`."""
    return Sub("arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:" + pattern)


ACCOUNT_WIDE_ROLE = Accepted(
    "The account-wide CloudWatch role serves every API in this account and region: API Gateway "
    "names execution-log groups API-Gateway-Execution-Logs_{apiId}/{stage} and access logs go "
    "wherever each stage points, so the role cannot name one API's groups. It is limited to "
    "API Gateway's own name prefixes here, DescribeLogGroups authorises only log-group:*, and "
    "welcome:* names the log streams of the one group it may create.",
    cdk_nag=("AwsSolutions-IAM5",),
    applies_to=tuple(
        "Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:" + pattern
        for pattern in (
            "API-Gateway-Execution-Logs_*",
            "/aws/apigateway/*",
            "*",
            WELCOME_LOG_GROUP + ":*",
        )
    ),
)


def add_account_logging_role(t: Template, naming: Naming) -> tuple[Parameter, WaitConditionHandle]:
    """The role, the account setting (both only when this stack owns it), and a handle the
    stage depends on in both cases."""
    parameter = add_parameter(
        t,
        "ManageApiGatewayAccount",
        description="true if this stack sets the account-wide API Gateway CloudWatch Logs "
        "role (exactly one stack per account and region should); false if another stack or "
        "an administrator already did. Changing true to false on update, or deleting the "
        "owning stack, leaves the account pointing at a deleted role and silently stops "
        "logging for every API in the region: first point the setting at another role",
        default="true",
        allowed_values=["true", "false"],
        label="Own the API Gateway account logging role",
    )
    t.add_condition(ACCOUNT_CONDITION, Equals(parameter.ref(), "true"))
    welcome = [log_groups(WELCOME_LOG_GROUP), log_groups(WELCOME_LOG_GROUP + ":*")]
    role = add_service_role(
        t,
        naming,
        "ApiGatewayCloudWatchRole",
        base_name="apigateway-cloudwatch",
        # IAM names are global to the account: the stack token keeps two regions apart.
        role_name=Join(
            "-",
            [naming.name("apigateway-cloudwatch", Kind.ROLE, reserve=9), unique_token()],
        ),
        service="apigateway.amazonaws.com",
        component=COMPONENT,
        description="Lets API Gateway write execution and access logs to its log groups; it "
        "may create only /aws/apigateway/welcome, which API Gateway writes once to verify "
        "the role",
        statements=[
            allow(
                [awslogs.CreateLogStream, awslogs.PutLogEvents, awslogs.DescribeLogStreams],
                [log_groups("API-Gateway-Execution-Logs_*"), log_groups("/aws/apigateway/*")],
                "WriteApiGatewayLogGroups",
            ),
            allow([awslogs.DescribeLogGroups], [log_groups("*")], "FindLogGroupsBeforeWriting"),
            # A fresh account or region has no welcome group: API Gateway creates it with this
            # role when the setting is made, and the stack fails without the grant.
            allow([awslogs.CreateLogGroup], welcome, "CreateOnlyTheWelcomeLogGroup"),
        ],
        condition=ACCOUNT_CONDITION,
    )
    accept(role.policy, ACCOUNT_WIDE_ROLE)
    account = t.add_resource(
        Account(
            "ApiGatewayAccount",
            CloudWatchRoleArn=role.arn,
            Condition=ACCOUNT_CONDITION,
        )
    )
    # DependsOn cannot name a resource whose condition may be false; a handle whose
    # metadata refers to the account only when it exists gives the stage a dependency
    # that holds in both cases (the stage fails if logging starts before the role is set).
    dependency = t.add_resource(
        WaitConditionHandle(
            "ApiGatewayAccountDependency",
            Metadata={"AccountSetting": If(ACCOUNT_CONDITION, Ref(account), "managed elsewhere")},
        )
    )
    return parameter, dependency
