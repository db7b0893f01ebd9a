"""No egress from the functions by default (PCI DSS 1.3): private subnets of a VPC of the
stack in two AZs, no route out but the DynamoDB gateway endpoint, interface endpoints for
exactly the services the roles call, HTTPS-only security groups, flow logs, and a parameter
that turns it all off."""

from __future__ import annotations

import pytest

from tests.templates.cfn import as_list, props, resources, role_statements
from tests.templates.platform_rules import target

CONDITION_PARAMETER = "FunctionsInVpc"
# Granted to the roles, but called by AWS on the function's behalf, not over its network.
NOT_FROM_THE_VPC = {"logs", "kms", "ec2"}
ENDPOINT_SERVICE = {
    "dynamodb": "dynamodb",
    "sqs": "sqs",
    "sns": "sns",
    "cloudwatch": "monitoring",
    "xray": "xray",
}
# Any function of this account and region: the key only function code's credentials carry.
FUNCTION_CODE = "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:*"
EGRESS_PATHS = {
    "AWS::EC2::InternetGateway",
    "AWS::EC2::EgressOnlyInternetGateway",
    "AWS::EC2::NatGateway",
    "AWS::EC2::VPNGateway",
    "AWS::EC2::TransitGatewayAttachment",
    "AWS::EC2::VPCPeeringConnection",
    "AWS::EC2::Route",
}


@pytest.fixture(scope="module")
def platform(all_templates) -> dict:
    return all_templates["payment-platform"]


@pytest.fixture(scope="module")
def condition(platform) -> str:
    """The condition every network resource is created under."""
    (found,) = [
        name
        for name, value in platform["Conditions"].items()
        if value == {"Fn::Equals": [{"Ref": CONDITION_PARAMETER}, "true"]}
    ]
    return found


def test_the_vpc_is_on_by_default_and_can_be_turned_off(platform):
    parameter = platform["Parameters"][CONDITION_PARAMETER]
    assert parameter["Default"] == "true"
    assert parameter["AllowedValues"] == ["true", "false"]


def test_every_network_resource_exists_only_with_the_vpc(platform, condition):
    """FunctionsInVpc=false builds none of it (cheap test environments)."""
    for logical_id, resource in resources(platform).items():
        if resource["Type"].startswith("AWS::EC2::") or resource["Type"] == "AWS::EC2::FlowLog":
            assert resource.get("Condition") == condition, logical_id


@pytest.mark.requirement(
    "PCI.DSS.321-LambdaInsideVPC",
    "PCI.DSS.321-VPCSubnetAutoAssignPublicIpDisabled",
)
def test_every_function_runs_in_two_private_subnets_of_different_azs(platform, condition):
    subnets = resources(platform, "AWS::EC2::Subnet")
    assert len(subnets) == 2
    zones = {repr(props(s)["AvailabilityZone"]) for s in subnets.values()}
    assert len(zones) == 2
    for subnet in subnets.values():
        assert props(subnet)["MapPublicIpOnLaunch"] is False
    for logical_id, fn in resources(platform, "AWS::Lambda::Function").items():
        chosen, when_true, when_false = props(fn)["VpcConfig"]["Fn::If"]
        assert chosen == condition, logical_id
        assert when_false == {"Ref": "AWS::NoValue"}
        assert {target(s) for s in when_true["SubnetIds"]} == set(subnets), logical_id
        (group,) = when_true["SecurityGroupIds"]
        assert platform["Resources"][target(group)]["Type"] == "AWS::EC2::SecurityGroup"


@pytest.mark.requirement("PCI.DSS.321-VPCNoUnrestrictedRouteToIGW")
def test_no_path_out_of_the_vpc_but_the_endpoints(platform):
    """No gateway, NAT, peering or route: isolation comes from routing."""
    for logical_id, resource in resources(platform).items():
        assert resource["Type"] not in EGRESS_PATHS, logical_id
    (table_id,) = resources(platform, "AWS::EC2::RouteTable")
    associated = {
        target(props(a)["SubnetId"])
        for a in resources(platform, "AWS::EC2::SubnetRouteTableAssociation").values()
        if target(props(a)["RouteTableId"]) == table_id
    }
    assert associated == set(resources(platform, "AWS::EC2::Subnet"))


def called_services(platform: dict) -> set[str]:
    """IAM service prefixes the functions' roles may call from their own network."""
    prefixes = set()
    for fn in resources(platform, "AWS::Lambda::Function").values():
        for statement in role_statements(platform, target(props(fn)["Role"])):
            prefixes |= {action.split(":")[0] for action in as_list(statement["Action"])}
    return prefixes - NOT_FROM_THE_VPC


def endpoint_by_service(platform: dict) -> dict[str, dict]:
    found = {}
    for endpoint in resources(platform, "AWS::EC2::VPCEndpoint").values():
        text = props(endpoint)["ServiceName"]["Fn::Sub"]
        assert text.startswith("com.amazonaws.${AWS::Region}."), text
        found[text.rsplit(".", 1)[-1]] = props(endpoint)
    return found


def test_endpoints_for_exactly_the_services_the_functions_call(platform):
    endpoints = endpoint_by_service(platform)
    assert set(endpoints) == {ENDPOINT_SERVICE[p] for p in called_services(platform)}
    (route_table,) = resources(platform, "AWS::EC2::RouteTable")
    assert endpoints["dynamodb"]["VpcEndpointType"] == "Gateway"
    assert [target(r) for r in endpoints["dynamodb"]["RouteTableIds"]] == [route_table]
    subnets = set(resources(platform, "AWS::EC2::Subnet"))
    for service, endpoint in endpoints.items():
        if service == "dynamodb":
            continue
        assert endpoint["VpcEndpointType"] == "Interface", service
        assert endpoint["PrivateDnsEnabled"] is True, service
        assert {target(s) for s in endpoint["SubnetIds"]} == subnets, service


@pytest.mark.requirement("S001-LEAST-PRIVILEGE")
def test_each_endpoint_allows_only_what_the_roles_may_do(platform):
    granted: set[tuple[str, str]] = set()
    for fn in resources(platform, "AWS::Lambda::Function").values():
        for statement in role_statements(platform, target(props(fn)["Role"])):
            for action in as_list(statement["Action"]):
                for resource in as_list(statement["Resource"]):
                    granted.add((action, repr(resource)))
    endpoints = endpoint_by_service(platform)
    assert endpoints
    for service, endpoint in endpoints.items():
        for statement in endpoint["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow", service
            assert statement["Condition"] == {
                "StringEquals": {"aws:PrincipalAccount": {"Ref": "AWS::AccountId"}}
            }, service
            for action in as_list(statement["Action"]):
                for resource in as_list(statement["Resource"]):
                    assert (action, repr(resource)) in granted, (service, action, resource)


def rules(platform: dict, group_id: str, direction: str) -> list[dict]:
    """A security group's rules of one direction, inline and as separate resources."""
    inline = props(platform["Resources"][group_id]).get(f"SecurityGroup{direction}", [])
    separate = [
        props(r)
        for r in resources(platform, f"AWS::EC2::SecurityGroup{direction}").values()
        if target(props(r)["GroupId"]) == group_id
    ]
    return inline + separate


@pytest.mark.requirement("PCI.DSS.321-EC2RestrictedCommonPorts", "PCI.DSS.321-EC2RestrictedSSH")
def test_security_groups_allow_https_only(platform):
    groups = resources(platform, "AWS::EC2::SecurityGroup")
    assert len(groups) == 2
    for group_id in groups:
        for direction in ("Ingress", "Egress"):
            for rule in rules(platform, group_id, direction):
                assert rule["Description"], (group_id, rule)
                if rule.get("CidrIp") == "255.255.255.255/32":
                    continue  # CloudFormation's "no egress at all"
                assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == (
                    "tcp",
                    443,
                    443,
                ), (group_id, direction, rule)
    functions_group = target(
        next(iter(resources(platform, "AWS::Lambda::Function").values()))["Properties"][
            "VpcConfig"
        ]["Fn::If"][1]["SecurityGroupIds"][0]
    )
    assert rules(platform, functions_group, "Ingress") == []
    (endpoints_group,) = set(groups) - {functions_group}
    (ingress,) = rules(platform, endpoints_group, "Ingress")
    assert target(ingress["SourceSecurityGroupId"]) == functions_group
    (no_egress,) = rules(platform, endpoints_group, "Egress")
    assert no_egress["CidrIp"] == "255.255.255.255/32"


@pytest.mark.requirement(
    "PCI.DSS.321-VPCFlowLogsEnabled",
    "PCI.DSS.321-CloudWatchLogGroupRetentionPeriod",
)
def test_flow_logs_record_everything_for_seven_days_encrypted(platform, condition):
    (vpc_id,) = resources(platform, "AWS::EC2::VPC")
    (flow,) = resources(platform, "AWS::EC2::FlowLog").values()
    p = props(flow)
    assert (target(p["ResourceId"]), p["ResourceType"], p["TrafficType"]) == (vpc_id, "VPC", "ALL")
    group = platform["Resources"][target(p["LogGroupName"])]
    assert props(group)["RetentionInDays"] == 7
    assert "KmsKeyId" in props(group)
    assert group["Condition"] == condition
    role = platform["Resources"][target(p["DeliverLogsPermissionArn"])]
    (trust,) = props(role)["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": ["vpc-flow-logs.amazonaws.com"]}
    assert "aws:SourceAccount" in trust["Condition"]["StringEquals"]


@pytest.mark.requirement("PCI.DSS.321-VPCDefaultSecurityGroupClosed")
def test_the_default_security_group_finding_is_justified_in_the_vpc(platform):
    (vpc,) = resources(platform, "AWS::EC2::VPC").values()
    suppressed = vpc["Metadata"]["cdk_nag"]["rules_to_suppress"]
    assert any("VPCDefaultSecurityGroupClosed" in s["id"] for s in suppressed)
    # Nothing sits in the default group: every interface names its own.
    for endpoint in resources(platform, "AWS::EC2::VPCEndpoint").values():
        if props(endpoint)["VpcEndpointType"] == "Interface":
            assert props(endpoint)["SecurityGroupIds"]


@pytest.mark.requirement("S001-LEAST-PRIVILEGE")
def test_function_code_cannot_use_the_network_interface_grants(platform):
    """Lambda manages the functions' interfaces with the execution role, but the function
    code holds the same credentials: every ENI action the network policy allows (on any
    network-interface/* of the account) is denied to calls that carry
    lambda:SourceFunctionArn, i.e. that come from inside a function (AWS Lambda's documented
    guard); Lambda's own calls do not carry it."""
    for logical_id, policy in resources(platform, "AWS::IAM::ManagedPolicy").items():
        document = props(policy)["PolicyDocument"]
        allowed = {
            action
            for statement in document["Statement"]
            if statement["Effect"] == "Allow"
            for action in as_list(statement["Action"])
            if action.startswith("ec2:")
        }
        if not allowed:
            continue
        denied = set()
        for statement in document["Statement"]:
            if statement["Effect"] != "Deny":
                continue
            assert as_list(statement["Resource"]) == ["*"], logical_id
            (pattern,) = as_list(statement["Condition"]["ArnLike"]["lambda:SourceFunctionArn"])
            assert pattern == {"Fn::Sub": FUNCTION_CODE}, logical_id
            denied |= set(as_list(statement["Action"]))
        assert allowed <= denied, (logical_id, sorted(allowed - denied))
