"""EC2 security group types through moto's EC2 backend, as CloudFormation sets them.

moto's CloudFormation skips AWS::EC2::SecurityGroupEgress, and its SecurityGroup and
SecurityGroupIngress models depart from AWS where it matters for a network review: a group's
`SecurityGroupEgress` was ignored (the group kept EC2's default allow-all egress rule, which
CloudFormation removes when the template lists egress rules), an update deleted the group
and made a new one with another id, and a removed ingress rule stayed. (VPC, Subnet,
RouteTable, SubnetRouteTableAssociation, VPCEndpoint and FlowLog are moto's own handlers.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from moto.core.common_models import CloudFormationModel
from moto.ec2.models import EC2Backend, ec2_backends

from emulator.handlers.base import Emulated, tag_map

# The rule EC2 gives every new VPC security group, removed when the template lists egress.
DEFAULT_EGRESS = {"IpProtocol": "-1", "CidrIp": "0.0.0.0/0"}


def rule_arguments(group_id: str, rule: Mapping[str, Any], *, egress: bool) -> dict[str, Any]:
    """One template rule as moto's Authorize/RevokeSecurityGroup(Ingress|Egress) take it."""
    peer = "Destination" if egress else "Source"
    ip_ranges = [
        {key: rule[key], "Description": rule.get("Description")}
        for key in ("CidrIp", "CidrIpv6")
        if key in rule
    ]
    groups = (
        [{"GroupId": rule[f"{peer}SecurityGroupId"]}] if f"{peer}SecurityGroupId" in rule else []
    )
    prefixes = (
        [{"PrefixListId": rule[f"{peer}PrefixListId"]}] if f"{peer}PrefixListId" in rule else []
    )
    return {
        "group_name_or_id": group_id,
        "ip_protocol": str(rule["IpProtocol"]),
        "from_port": rule.get("FromPort"),
        "to_port": rule.get("ToPort"),
        "ip_ranges": ip_ranges,
        "source_groups": groups,
        "prefix_list_ids": prefixes,
    }


class Ec2Resource(Emulated):
    """A resource of this account and region's EC2 backend."""

    @property
    def backend(self) -> EC2Backend:
        return ec2_backends[self.account_id][self.region_name]

    def authorize(self, group_id: str, rule: Mapping[str, Any], *, egress: bool) -> Any:
        call = (
            self.backend.authorize_security_group_egress
            if egress
            else self.backend.authorize_security_group_ingress
        )
        rules, _ = call(**rule_arguments(group_id, rule, egress=egress))
        return rules[0]

    def revoke(self, group_id: str, rule: Mapping[str, Any], *, egress: bool) -> None:
        call = (
            self.backend.revoke_security_group_egress
            if egress
            else self.backend.revoke_security_group_ingress
        )
        call(**rule_arguments(group_id, rule, egress=egress))


class SecurityGroupHandler(Ec2Resource, CloudFormationModel):
    """A security group with exactly the template's inline rules; `Ref` is its id in a VPC.

    Standalone SecurityGroupIngress/Egress resources add to it and are left alone here.
    """

    TYPE = "AWS::EC2::SecurityGroup"
    NAME_PROPERTY = "GroupName"
    ATTRIBUTES = ("GroupId", "VpcId", "Id")

    def create(self, name: str) -> None:
        p = self.properties
        group = self.backend.create_security_group(
            name=str(p.get("GroupName") or name),
            description=str(p["GroupDescription"]),
            vpc_id=p.get("VpcId"),
            tags=tag_map(p) or None,
        )
        self.group_id, self.vpc_id = group.id, group.vpc_id
        self.physical_id = group.id if p.get("VpcId") else group.name
        if p.get("VpcId"):
            self.revoke(self.group_id, DEFAULT_EGRESS, egress=True)
        self.add_rules(p)

    def update(self, properties: Mapping[str, Any]) -> None:
        self.remove_rules(self.properties)
        self.add_rules(properties)
        group = self.backend.get_security_group_from_id(self.group_id)
        old, new = tag_map(self.properties), tag_map(properties)
        self.backend.delete_tags([self.group_id], {k: v for k, v in old.items() if k not in new})
        if new:
            group.add_tags(new)  # type: ignore[union-attr]

    def egress(self, properties: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """The egress rules a VPC group has: the template's, else EC2's default one."""
        if not properties.get("VpcId"):
            return []
        return list(properties.get("SecurityGroupEgress") or [DEFAULT_EGRESS])

    def add_rules(self, properties: Mapping[str, Any]) -> None:
        for rule in properties.get("SecurityGroupIngress", []):
            self.authorize(self.group_id, rule, egress=False)
        for rule in self.egress(properties):
            self.authorize(self.group_id, rule, egress=True)

    def remove_rules(self, properties: Mapping[str, Any]) -> None:
        for rule in properties.get("SecurityGroupIngress", []):
            self.revoke(self.group_id, rule, egress=False)
        for rule in self.egress(properties):
            self.revoke(self.group_id, rule, egress=True)

    def remove(self) -> None:
        self.backend.delete_security_group(group_id=self.group_id)

    def attribute(self, name: str) -> Any:
        return self.vpc_id if name == "VpcId" else self.group_id


class SecurityGroupRuleHandler(Ec2Resource):
    """One standalone rule of a security group (every property but Description replaces it)."""

    EGRESS: bool
    ATTRIBUTES = ("Id",)

    def create(self, name: str) -> None:
        p = self.properties
        self.group = str(p.get("GroupId") or p.get("GroupName"))
        self.physical_id = self.authorize(self.group, p, egress=self.EGRESS).id

    def update(self, properties: Mapping[str, Any]) -> None:
        """Only the description is left, which moto keeps with the rule's address range."""
        self.revoke(self.group, self.properties, egress=self.EGRESS)
        self.physical_id = self.authorize(self.group, properties, egress=self.EGRESS).id

    def remove(self) -> None:
        self.revoke(self.group, self.properties, egress=self.EGRESS)

    def attribute(self, name: str) -> Any:
        return self.physical_id


class SecurityGroupEgressHandler(SecurityGroupRuleHandler, CloudFormationModel):
    """AWS::EC2::SecurityGroupEgress (moto's CloudFormation skips it)."""

    TYPE = "AWS::EC2::SecurityGroupEgress"
    EGRESS = True


class SecurityGroupIngressHandler(SecurityGroupRuleHandler, CloudFormationModel):
    """AWS::EC2::SecurityGroupIngress (moto's could not be deleted: a removed rule stayed)."""

    TYPE = "AWS::EC2::SecurityGroupIngress"
    EGRESS = False


HANDLERS = (SecurityGroupHandler, SecurityGroupEgressHandler, SecurityGroupIngressHandler)
