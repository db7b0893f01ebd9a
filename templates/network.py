"""The platform's private network: no egress from the functions by default (PCI DSS 1.3).

The functions run in two private subnets (two AZs) of a VPC of the stack with no internet
gateway and no NAT: the route table knows the VPC and the DynamoDB gateway endpoint, nothing
else. They reach AWS through VPC endpoints for exactly the services their roles call
(`add_endpoints` derives the list from the grants, after every grant is made), each endpoint
policy limited to what the roles may do. Security groups allow HTTPS only. Flow logs record
every accepted and rejected connection in a 7-day encrypted log group.

`FunctionsInVpc=false` builds none of it (cheap test environments): every resource here is
under one condition, and the functions' VpcConfig is an `Fn::If`.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from awacs import ec2, logs
from awacs.aws import (
    Allow,
    ArnLike,
    Condition,
    Deny,
    Principal,
    Statement,
    StringEquals,
)
from troposphere import (
    AWSHelperFn,
    Equals,
    GetAZs,
    If,
    NoValue,
    Parameter,
    Ref,
    Select,
    Sub,
    Template,
)
from troposphere.awslambda import VPCConfig
from troposphere.ec2 import (
    VPC,
    FlowLog,
    RouteTable,
    SecurityGroup,
    SecurityGroupEgress,
    SecurityGroupIngress,
    Subnet,
    SubnetRouteTableAssociation,
    VPCEndpoint,
)
from troposphere.iam import ManagedPolicy

from templates.common import add_parameter
from templates.findings import Accepted, accept
from templates.iam import ServiceRole, add_service_role, allow, policy
from templates.keys import StackKey
from templates.logs import add_log_group
from templates.naming import Kind, Naming

CONDITION = "FunctionsInVpc"
# A /24 split into /26 subnets: 59 usable addresses each, for the functions' Hyperplane ENIs
# (one per subnet and security group) and one ENI per interface endpoint.
VPC_CIDR = "10.0.0.0/24"
SUBNET_COUNT = 2
SUBNET_PREFIX = 26
HTTPS = 443
FLOW_LOG_RETENTION_DAYS = 7
# The endpoint that serves each IAM service prefix the functions' roles use.
GATEWAY_ENDPOINTS = {"dynamodb": "dynamodb"}
INTERFACE_ENDPOINTS = {"sqs": "sqs", "sns": "sns", "cloudwatch": "monitoring", "xray": "xray"}
# Granted to the roles, but never called over the function's own network.
NOT_CALLED_FROM_THE_VPC = {
    # Lambda delivers the function's stdout to its log group itself.
    "logs",
    # SQS, SNS and DynamoDB call KMS on the caller's behalf (kms:ViaService).
    "kms",
    # Lambda creates and deletes the function's network interfaces before and after it runs.
    "ec2",
}
# CloudFormation's way to say "no egress": a rule no packet can match (AWS's own CDK uses it).
NO_EGRESS = {
    "CidrIp": "255.255.255.255/32",
    "IpProtocol": "icmp",
    "FromPort": 252,
    "ToPort": 86,
    "Description": "Disallow all traffic",
}

DEFAULT_GROUP_UNUSED = Accepted(
    "Nothing uses this VPC's default security group: every network interface in the VPC (the "
    "functions' and the endpoints') names its own HTTPS-only group, and no route leaves the "
    "VPC. Closing it in CloudFormation needs a Lambda custom resource with ec2:Revoke* rights, "
    "more code and privilege than the risk it removes; docs/platform.md gives the two revoke "
    "commands for an account whose policy requires it.",
    cdk_nag=(
        "NIST.800.53.R5-VPCDefaultSecurityGroupClosed",
        "PCI.DSS.321-VPCDefaultSecurityGroupClosed",
    ),
)
WHEN_VPC_IS_OFF = Accepted(
    "The function runs in the stack's private subnets (no internet route, VPC endpoints only) "
    "unless the FunctionsInVpc parameter is false, which is for short-lived test environments "
    "without real payments; the VpcConfig is therefore an Fn::If the rule cannot resolve.",
    cdk_nag=("NIST.800.53.R5-LambdaInsideVPC", "PCI.DSS.321-LambdaInsideVPC"),
    guard=("LAMBDA_INSIDE_VPC",),
)


@dataclass
class Network:
    """The VPC, its subnets and security groups, and the functions' network permissions."""

    parameter: Parameter
    vpc: VPC
    subnets: list[Subnet]
    route_table: RouteTable
    functions_group: SecurityGroup
    endpoints_group: SecurityGroup
    interface_policy: ManagedPolicy

    def vpc_config(self) -> If:
        """The functions' VpcConfig: the private subnets, or none when the VPC is off."""
        return If(
            CONDITION,
            VPCConfig(
                SubnetIds=[subnet.ref() for subnet in self.subnets],
                SecurityGroupIds=[self.functions_group.ref()],
            ),
            NoValue,
        )

    def attach(self, role: ServiceRole) -> None:
        """Let the role's function create its network interfaces in these subnets."""
        role.role.ManagedPolicyArns.append(If(CONDITION, self.interface_policy.ref(), NoValue))


def _on(resource):
    resource.Condition = CONDITION
    return resource


def _arn(kind: str, name) -> Sub:
    return Sub(
        "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:" + kind + "/${Name}",
        Name=name,
    )


def add_network(
    t: Template, naming: Naming, *, base_name: str, key: StackKey, component: str
) -> Network:
    """The VPC, two private subnets, their route table, security groups and flow logs
    (`/aws/vpc/<base>-<suffix>/flow-logs`)."""
    parameter = add_parameter(
        t,
        "FunctionsInVpc",
        description="true: the functions run in private subnets of a VPC of this stack with "
        "no route to the internet, reaching AWS only through VPC endpoints (about 60 USD a "
        "month); false: no VPC, for cheap test environments without real payments",
        default="true",
        allowed_values=["true", "false"],
        label="Functions in a private VPC",
    )
    t.add_condition(CONDITION, Equals(parameter.ref(), "true"))
    tags = naming.tags(component)
    vpc = t.add_resource(
        _on(
            VPC(
                "Vpc",
                CidrBlock=VPC_CIDR,
                # Interface endpoints answer the services' own DNS names inside the VPC.
                EnableDnsSupport=True,
                EnableDnsHostnames=True,
                Tags=tags,
            )
        )
    )
    accept(vpc, DEFAULT_GROUP_UNUSED)
    route_table = t.add_resource(_on(RouteTable("PrivateRouteTable", VpcId=vpc.ref(), Tags=tags)))
    # Literal blocks of the literal VPC range (readable in the template and the console).
    subnet_cidrs = list(ipaddress.ip_network(VPC_CIDR).subnets(new_prefix=SUBNET_PREFIX))
    subnets = []
    for index in range(SUBNET_COUNT):
        subnet = t.add_resource(
            _on(
                Subnet(
                    f"PrivateSubnet{index + 1}",
                    VpcId=vpc.ref(),
                    AvailabilityZone=Select(index, GetAZs("")),
                    CidrBlock=str(subnet_cidrs[index]),
                    MapPublicIpOnLaunch=False,
                    Tags=tags,
                )
            )
        )
        t.add_resource(
            _on(
                SubnetRouteTableAssociation(
                    f"PrivateSubnet{index + 1}Routes",
                    SubnetId=subnet.ref(),
                    RouteTableId=route_table.ref(),
                )
            )
        )
        subnets.append(subnet)
    functions_group, endpoints_group = _add_security_groups(t, vpc, tags)
    interface_policy = t.add_resource(
        _on(
            ManagedPolicy(
                "FunctionNetworkPolicy",
                Description="Lets the platform's functions attach to the stack's private "
                "subnets with their own security group (Lambda creates the interfaces)",
                PolicyDocument=policy(_interface_statements(subnets, functions_group)),
            )
        )
    )
    accept(
        interface_policy,
        Accepted(
            "ec2:DescribeNetworkInterfaces and DescribeSubnets authorise only Resource '*' "
            "(read-only listing); interface management names network-interface/* because "
            "Lambda creates the interface before its id exists, and creation is limited to "
            "this stack's subnets and security group.",
            cdk_nag=("AwsSolutions-IAM5",),
            applies_to=(
                "Resource::*",
                "Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:"
                "network-interface/*",
            ),
        ),
    )
    _add_flow_logs(t, naming, vpc, base_name=base_name, key=key, component=component)
    return Network(
        parameter=parameter,
        vpc=vpc,
        subnets=subnets,
        route_table=route_table,
        functions_group=functions_group,
        endpoints_group=endpoints_group,
        interface_policy=interface_policy,
    )


def _add_security_groups(t: Template, vpc: VPC, tags) -> tuple[SecurityGroup, SecurityGroup]:
    """HTTPS only: functions -> endpoints (and 443 to AWS's DynamoDB addresses), nothing in."""
    functions_group = t.add_resource(
        _on(
            SecurityGroup(
                "FunctionsSecurityGroup",
                GroupDescription="Platform functions: HTTPS out to the VPC endpoints only; "
                "nothing may connect in",
                VpcId=vpc.ref(),
                SecurityGroupEgress=[
                    {
                        "CidrIp": "0.0.0.0/0",
                        "IpProtocol": "tcp",
                        "FromPort": HTTPS,
                        "ToPort": HTTPS,
                        # The DynamoDB prefix list has no CloudFormation name; the route
                        # table is what limits this rule to the gateway endpoint.
                        "Description": "HTTPS to the DynamoDB gateway endpoint (the only "
                        "route out of the VPC)",
                    }
                ],
                Tags=tags,
            )
        )
    )
    endpoints_group = t.add_resource(
        _on(
            SecurityGroup(
                "EndpointsSecurityGroup",
                GroupDescription="VPC interface endpoints: HTTPS in from the platform "
                "functions only; they open no connection",
                VpcId=vpc.ref(),
                SecurityGroupEgress=[NO_EGRESS],
                Tags=tags,
            )
        )
    )
    # Separate rule resources: the two groups name each other.
    _https_rule(
        t, SecurityGroupEgress, "FunctionsToEndpoints", functions_group,
        DestinationSecurityGroupId=endpoints_group.ref(),
        Description="HTTPS to the VPC interface endpoints",
    )  # fmt: skip
    _https_rule(
        t, SecurityGroupIngress, "EndpointsFromFunctions", endpoints_group,
        SourceSecurityGroupId=functions_group.ref(),
        Description="HTTPS from the platform functions",
    )  # fmt: skip
    return functions_group, endpoints_group


def _https_rule(t: Template, kind, logical_id: str, group: SecurityGroup, **peer):
    """One TCP 443 rule of `group` towards or from a peer group."""
    rule = kind(
        logical_id, GroupId=group.ref(), IpProtocol="tcp", FromPort=HTTPS, ToPort=HTTPS, **peer
    )
    return t.add_resource(_on(rule))


# What Lambda does with the execution role to manage the function's network interfaces.
ENI_ACTIONS = [
    ec2.CreateNetworkInterface,
    ec2.DeleteNetworkInterface,
    ec2.AssignPrivateIpAddresses,
    ec2.UnassignPrivateIpAddresses,
    ec2.DescribeNetworkInterfaces,
    ec2.DescribeSubnets,
]


def _interface_statements(subnets: Sequence[Subnet], group: SecurityGroup) -> list[Statement]:
    """What Lambda needs of the execution role to manage the function's interfaces, and
    nothing of it for the function code."""
    interfaces = Sub(
        "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:network-interface/*"
    )
    return [
        allow(
            [ec2.CreateNetworkInterface],
            [interfaces, _arn("security-group", group.ref())]
            + [_arn("subnet", subnet.ref()) for subnet in subnets],
            "CreateInterfacesInOwnSubnets",
        ),
        allow(
            [
                ec2.DeleteNetworkInterface,
                ec2.AssignPrivateIpAddresses,
                ec2.UnassignPrivateIpAddresses,
            ],
            [interfaces],
            "ManageOwnInterfaces",
        ),
        # Describe calls have no resource-level permissions: "*" is the only form.
        allow([ec2.DescribeNetworkInterfaces, ec2.DescribeSubnets], ["*"], "FindOwnInterfaces"),
        # The function code holds the same credentials; only its calls carry
        # lambda:SourceFunctionArn (Lambda's own do not), so this leaves the grants to Lambda
        # (AWS Lambda's documented guard for VPC execution roles).
        Statement(
            Sid="NotFromFunctionCode",
            Effect=Deny,
            Action=ENI_ACTIONS,
            Resource=["*"],
            Condition=Condition(
                ArnLike(
                    "lambda:SourceFunctionArn",
                    Sub("arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:*"),
                )
            ),
        ),
    ]


def _add_flow_logs(
    t: Template, naming: Naming, vpc: VPC, *, base_name: str, key: StackKey, component: str
) -> FlowLog:
    """Every accepted and rejected flow of the VPC, kept 7 days, encrypted."""
    group = _on(
        add_log_group(
            t,
            naming,
            "FlowLogGroup",
            name=f"/aws/vpc/{naming.name(base_name, Kind.LOG_GROUP)}/flow-logs",
            retention_days=FLOW_LOG_RETENTION_DAYS,
            component=component,
            key=key,
        )
    )
    role = add_service_role(
        t,
        naming,
        "FlowLogRole",
        base_name=f"{base_name}-flow-logs",
        service="vpc-flow-logs.amazonaws.com",
        statements=[
            allow(
                [logs.CreateLogStream, logs.PutLogEvents, logs.DescribeLogStreams],
                [group.get_att("Arn")],
                "WriteFlowLogGroup",
            ),
            # DescribeLogGroups lists groups: it authorises only on log-group:*.
            allow(
                [logs.DescribeLogGroups],
                [Sub("arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:*")],
                "FindFlowLogGroup",
            ),
        ],
        component=component,
        description="Lets VPC Flow Logs of this stack's VPC write to its log group",
        # Confused deputy: only flow logs of this account may assume it.
        trust_condition=Condition(
            [
                StringEquals("aws:SourceAccount", Ref("AWS::AccountId")),
                ArnLike(
                    "aws:SourceArn",
                    Sub(
                        "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:vpc-flow-log/*"
                    ),
                ),
            ]
        ),
        condition=CONDITION,
    )
    accept(
        role.policy,
        Accepted(
            "logs:DescribeLogGroups authorises only on log-group:* (it lists groups); writes "
            "name the flow log group alone.",
            cdk_nag=("AwsSolutions-IAM5",),
            applies_to=(
                "Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:*",
            ),
        ),
    )
    return t.add_resource(
        _on(
            FlowLog(
                "VpcFlowLog",
                ResourceId=vpc.ref(),
                ResourceType="VPC",
                TrafficType="ALL",
                LogDestinationType="cloud-watch-logs",
                LogGroupName=group.ref(),
                DeliverLogsPermissionArn=role.arn,
                Tags=naming.tags(component),
            )
        )
    )


def endpoint_services(statements: Iterable[Statement]) -> dict[str, list[Statement]]:
    """IAM service prefix -> the statements that grant it, for every prefix a function may call.

    A prefix with neither an endpoint nor a reason why the function never calls it from the
    VPC is refused: a new AWS call must come with its network path.
    """
    by_service: dict[str, list[Statement]] = {}
    for statement in statements:
        for action in statement.Action:
            prefix = str(action.JSONrepr()).split(":", 1)[0]
            if prefix in NOT_CALLED_FROM_THE_VPC:
                continue
            if prefix not in GATEWAY_ENDPOINTS and prefix not in INTERFACE_ENDPOINTS:
                raise ValueError(
                    f"a function may call {action.JSONrepr()} but the VPC has no endpoint for "
                    f"{prefix!r}: add it to templates/network.py (or say why it is not "
                    "called from the VPC)"
                )
            group = by_service.setdefault(prefix, [])
            if not any(statement is known for known in group):
                group.append(statement)
    return by_service


def _endpoint_policy(statements: Sequence[Statement]):
    """Through this endpoint, only what the functions' roles allow, on the same resources,
    and only for callers of this account (the endpoint is no path to another account)."""
    allowed: dict[str, Statement] = {}
    for statement in statements:
        key = _key([[str(a.JSONrepr()) for a in statement.Action], statement.Resource])
        if key in allowed:
            continue
        sids = {s.Sid for s in allowed.values()}
        sid = statement.Sid if statement.Sid not in sids else f"{statement.Sid}{len(allowed)}"
        allowed[key] = Statement(
            Sid=sid,
            Effect=Allow,
            Principal=Principal("AWS", "*"),
            Action=list(statement.Action),
            Resource=list(statement.Resource),
            Condition=Condition(StringEquals("aws:PrincipalAccount", Ref("AWS::AccountId"))),
        )
    return policy(list(allowed.values()))


def _key(value) -> str:
    """A comparable text for a value that may hold intrinsic functions."""

    def plain(item):
        return item.to_dict() if isinstance(item, AWSHelperFn) else str(item)

    return json.dumps(value, sort_keys=True, default=plain)


def add_endpoints(
    t: Template,
    naming: Naming,
    network: Network,
    statements: Iterable[Statement],
    *,
    component: str,
) -> list[VPCEndpoint]:
    """A gateway or interface endpoint for each service the statements grant."""
    endpoints = []
    for prefix, granted in sorted(endpoint_services(statements).items()):
        service = GATEWAY_ENDPOINTS.get(prefix) or INTERFACE_ENDPOINTS[prefix]
        common = {
            "Tags": naming.tags(component),
            "VpcId": network.vpc.ref(),
            "ServiceName": Sub("com.amazonaws.${AWS::Region}." + service),
            "PolicyDocument": _endpoint_policy(granted),
        }
        if prefix in GATEWAY_ENDPOINTS:
            kwargs = {"VpcEndpointType": "Gateway", "RouteTableIds": [network.route_table.ref()]}
        else:
            kwargs = {
                "VpcEndpointType": "Interface",
                "PrivateDnsEnabled": True,
                "SubnetIds": [subnet.ref() for subnet in network.subnets],
                "SecurityGroupIds": [network.endpoints_group.ref()],
            }
        endpoints.append(
            t.add_resource(_on(VPCEndpoint(f"{service.title()}Endpoint", **common, **kwargs)))
        )
    return endpoints
