"""AWS::EC2::SecurityGroupEgress, which moto's CloudFormation skips, through moto's EC2 backend.

(VPC, Subnet, RouteTable, SubnetRouteTableAssociation, VPCEndpoint, SecurityGroup,
SecurityGroupIngress and FlowLog are moto's own handlers.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from moto.core.common_models import CloudFormationModel
from moto.ec2.models import EC2Backend, ec2_backends

from emulator.handlers.base import Emulated


def egress_rule(p: Mapping[str, Any]) -> dict[str, Any]:
    """The rule as AuthorizeSecurityGroupEgress and RevokeSecurityGroupEgress take it."""
    ip_ranges = []
    if "CidrIp" in p:
        ip_ranges.append({"CidrIp": p["CidrIp"], "Description": p.get("Description")})
    if "CidrIpv6" in p:
        ip_ranges.append({"CidrIpv6": p["CidrIpv6"], "Description": p.get("Description")})
    groups = (
        [{"GroupId": p["DestinationSecurityGroupId"]}] if "DestinationSecurityGroupId" in p else []
    )
    prefixes = (
        [{"PrefixListId": p["DestinationPrefixListId"]}] if "DestinationPrefixListId" in p else []
    )
    return {
        "group_name_or_id": str(p["GroupId"]),
        "ip_protocol": str(p["IpProtocol"]),
        "from_port": p.get("FromPort"),
        "to_port": p.get("ToPort"),
        "ip_ranges": ip_ranges,
        "source_groups": groups,
        "prefix_list_ids": prefixes,
    }


class SecurityGroupEgressHandler(Emulated, CloudFormationModel):
    """One egress rule of a security group (every property replaces it, as on AWS)."""

    TYPE = "AWS::EC2::SecurityGroupEgress"
    REPLACED_BY = frozenset(
        {
            "CidrIp",
            "CidrIpv6",
            "DestinationPrefixListId",
            "DestinationSecurityGroupId",
            "FromPort",
            "GroupId",
            "IpProtocol",
            "ToPort",
        }
    )
    ATTRIBUTES = ("Id",)

    @property
    def backend(self) -> EC2Backend:
        return ec2_backends[self.account_id][self.region_name]

    def create(self, name: str) -> None:
        rules, _ = self.backend.authorize_security_group_egress(**egress_rule(self.properties))
        self.physical_id = rules[0].id

    def update(self, properties: Mapping[str, Any]) -> None:
        """Only the description is left, and moto keeps none per rule here."""

    def remove(self) -> None:
        self.backend.revoke_security_group_egress(**egress_rule(self.properties))

    def attribute(self, name: str) -> Any:
        return self.physical_id


HANDLERS = (SecurityGroupEgressHandler,)
