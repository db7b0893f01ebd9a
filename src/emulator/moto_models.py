"""Deletes and updates for moto's own CloudFormation models, as CloudFormation applies them.

moto's RestApi, Resource, VPCEndpoint, RouteTable, SubnetRouteTableAssociation, FlowLog and
ManagedPolicy models cannot be deleted through CloudFormation (a destroyed stack or a removed
resource would leave them behind), its S3 bucket delete leaves a bucket with objects in place
without failing, and many models cannot be updated: moto then stores None
for the resource, so the stack loses it and every later `Ref` to it breaks. Here:

- each of those models gets a `delete`;
- a VPC gets the template's DNS attributes (moto ignored them), a VPC endpoint its policy as
  JSON text and its tags, and an interface endpoint with private DNS fails, as on AWS, in a
  VPC without DNS support and hostnames;
- an update of a model moto cannot update follows the type's registry schema: a changed
  create-only property replaces the resource (a new one first, then the old one goes); other
  changes are applied in place where this module knows how (ManagedPolicy, KMS Key) and
  otherwise leave the resource as it was, with an event that says so;
- a resource that got a new physical id (replaced) updates every resource that refers to it,
  as CloudFormation does: moto compares the template's text, in which a `Ref` to a replaced
  resource has not changed.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import Any

from moto.apigateway.models import Resource, RestAPI, apigateway_backends
from moto.cloudformation import parsing
from moto.ec2.models import ec2_backends
from moto.ec2.models.flow_logs import FlowLogs
from moto.ec2.models.route_tables import RouteTable
from moto.ec2.models.subnets import SubnetRouteTableAssociation
from moto.ec2.models.vpcs import VPC, VPCEndPoint
from moto.iam.models import ManagedPolicy, iam_backends
from moto.kms.models import Key, kms_backends
from moto.s3.exceptions import BucketNotEmpty
from moto.s3.models import FakeBucket, s3_backends
from moto.utilities.utils import get_partition

from emulator.handlers.base import as_list, is_not_found, replaces, tag_map, truthy
from emulator.patches import once, resource_event, stack_of
from templates.cfnread import references


def delete_rest_api(self: Any, account_id: str, region_name: str) -> None:
    apigateway_backends[account_id][region_name].delete_rest_api(self.id)


def delete_resource(self: Any, account_id: str, region_name: str) -> None:
    apigateway_backends[account_id][region_name].delete_resource(self.api_id, self.id)


def delete_vpc_endpoint(self: Any, account_id: str, region_name: str) -> None:
    try:
        ec2_backends[account_id][region_name].delete_vpc_endpoints([self.id])
    except Exception as error:
        if not is_not_found(error):
            raise
        # Its route table went first: moto stops before marking the endpoint deleted.
        self.state = "deleted"


def delete_route_table(self: Any, account_id: str, region_name: str) -> None:
    ec2_backends[account_id][region_name].delete_route_table(self.id)


def delete_route_table_association(self: Any, account_id: str, region_name: str) -> None:
    backend = ec2_backends[account_id][region_name]
    table = backend.get_route_table(self.route_table_id)
    for association, subnet in list(table._associations.items()):
        if subnet == self.subnet_id:
            backend.disassociate_route_table(association)


def delete_flow_log(self: Any, account_id: str, region_name: str) -> None:
    ec2_backends[account_id][region_name].delete_flow_logs([self.id])


def delete_bucket(self: Any, account_id: str, region_name: str) -> None:
    # moto's delete leaves a bucket with objects in place without a word; S3 refuses it.
    if s3_backends[account_id][get_partition(region_name)].delete_bucket(self.name) is None:
        raise BucketNotEmpty(self.name)


def delete_managed_policy(self: Any, account_id: str, region_name: str) -> None:
    # CloudFormation detaches a managed policy from its roles before deleting it.
    backend = iam_backends[account_id][self.partition]
    for role in list(backend.roles.values()):
        if self.arn in role.managed_policies:
            backend.detach_role_policy(self.arn, role.name)
    backend.delete_policy(self.arn)


DELETES: dict[type, Callable[..., None]] = {
    RestAPI: delete_rest_api,
    Resource: delete_resource,
    VPCEndPoint: delete_vpc_endpoint,
    RouteTable: delete_route_table,
    SubnetRouteTableAssociation: delete_route_table_association,
    FlowLogs: delete_flow_log,
    ManagedPolicy: delete_managed_policy,
    FakeBucket: delete_bucket,
}


# -- in-place updates moto lacks --------------------------------------------------------------
MAX_POLICY_VERSIONS = 5  # IAM's limit; CloudFormation deletes the oldest to make room


def update_managed_policy(
    policy: Any, old: Mapping[str, Any], new: Mapping[str, Any], account_id: str
) -> None:
    """A new default version of the document; attachments to roles, users, groups as listed."""
    backend = iam_backends[account_id][policy.partition]
    if old.get("PolicyDocument") != new.get("PolicyDocument"):
        if len(policy.versions) >= MAX_POLICY_VERSIONS:
            oldest = next(v for v in policy.versions if not v.is_default)
            backend.delete_policy_version(policy.arn, oldest.version_id)
        document = new["PolicyDocument"]
        text = document if isinstance(document, str) else json.dumps(document)
        backend.create_policy_version(policy.arn, text, set_as_default=True)
    for key, attach, detach in (
        ("Roles", backend.attach_role_policy, backend.detach_role_policy),
        ("Users", backend.attach_user_policy, backend.detach_user_policy),
        ("Groups", backend.attach_group_policy, backend.detach_group_policy),
    ):
        before, after = set(map(str, as_list(old.get(key)))), set(map(str, as_list(new.get(key))))
        for name in sorted(before - after):
            detach(policy.arn, name)
        for name in sorted(after - before):
            attach(policy.arn, name)


def update_kms_key(
    key: Any, old: Mapping[str, Any], new: Mapping[str, Any], account_id: str
) -> None:
    """Key policy, rotation, description, enabled, tags: all updated in place on AWS."""
    backend = kms_backends[account_id][key.region]
    key.policy = new["KeyPolicy"]  # in the shape moto's own create stores it
    key.key_rotation_status = bool(new.get("EnableKeyRotation", False))
    key.enabled = bool(new.get("Enabled", True))
    key.key_state = "Enabled" if key.enabled else "Disabled"
    backend.update_key_description(key.id, new.get("Description", ""))
    old_tags = {t["Key"]: t["Value"] for t in old.get("Tags", [])}
    new_tags = {t["Key"]: t["Value"] for t in new.get("Tags", [])}
    backend.untag_resource(key.id, [k for k in old_tags if k not in new_tags])
    backend.tag_resource(key.id, new_tags)


# CloudFormation's VPC DNS properties -> moto's attribute and EC2's default for a new VPC.
VPC_ATTRIBUTES = {
    "EnableDnsSupport": ("enable_dns_support", True),
    "EnableDnsHostnames": ("enable_dns_hostnames", False),
}


def update_vpc(vpc: Any, old: Mapping[str, Any], new: Mapping[str, Any], account_id: str) -> None:
    """The DNS attributes (moto's VPC model ignores them) and the tags."""
    backend = ec2_backends[account_id][vpc.ec2_backend.region_name]
    for name, (attribute, default) in VPC_ATTRIBUTES.items():
        backend.modify_vpc_attribute(vpc.id, attribute, truthy(new.get(name, default)))
    retag(backend, vpc.id, old, new)


def retag(backend: Any, resource_id: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    """An EC2 resource's tags from the template's old ones to its new ones."""
    before, after = tag_map(old), tag_map(new)
    backend.delete_tags([resource_id], {k: v for k, v in before.items() if k not in after})
    if after:
        backend.create_tags([resource_id], after)


def patch_vpc_create(original: classmethod) -> classmethod:  # type: ignore[type-arg]
    function = original.__func__

    @functools.wraps(function)
    def create(
        cls: Any, name: str, cloudformation_json: Any, account_id: str, *args: Any, **kwargs: Any
    ) -> Any:
        vpc = function(cls, name, cloudformation_json, account_id, *args, **kwargs)
        update_vpc(vpc, {}, cloudformation_json.get("Properties", {}), account_id)
        return vpc

    return classmethod(create)


def endpoint_policy(properties: Mapping[str, Any]) -> str | None:
    """The endpoint policy as the API stores it: JSON text (moto kept the template's object)."""
    document = properties.get("PolicyDocument")
    if document is None or isinstance(document, str):
        return document
    return json.dumps(document)


def patch_vpc_endpoint_create(original: classmethod) -> classmethod:  # type: ignore[type-arg]
    @functools.wraps(original.__func__)
    def create(
        cls: Any,
        name: str,
        cloudformation_json: Any,
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        p = cloudformation_json["Properties"]
        backend = ec2_backends[account_id][region_name]
        private_dns = truthy(p.get("PrivateDnsEnabled", False))
        vpc = backend.get_vpc(p["VpcId"])
        if private_dns and not (vpc.enable_dns_support and vpc.enable_dns_hostnames):
            # What EC2 answers; a template that would fail on AWS fails here too.
            raise ValueError(
                "Enabling private DNS requires both enableDnsSupport and enableDnsHostnames VPC "
                f"attributes set to true for {vpc.id}"
            )
        return backend.create_vpc_endpoint(
            vpc_id=p["VpcId"],
            service_name=p["ServiceName"],
            endpoint_type=p.get("VpcEndpointType", "Gateway"),
            policy_document=endpoint_policy(p),
            route_table_ids=list(p.get("RouteTableIds", [])),
            subnet_ids=list(p.get("SubnetIds", [])),
            security_group_ids=list(p.get("SecurityGroupIds", [])),
            tags=tag_map(p) or None,
            private_dns_enabled=private_dns,
        )

    return classmethod(create)


def update_vpc_endpoint(
    endpoint: Any, old: Mapping[str, Any], new: Mapping[str, Any], account_id: str
) -> None:
    """Policy, subnets, route tables, security groups, private DNS, tags: in place on AWS."""
    backend = ec2_backends[account_id][endpoint.ec2_backend.region_name]

    def diff(key: str) -> tuple[list[str], list[str]]:
        before, after = set(old.get(key, [])), set(new.get(key, []))
        return sorted(after - before), sorted(before - after)

    (add_subnets, remove_subnets), (add_tables, remove_tables), (add_groups, remove_groups) = (
        diff("SubnetIds"),
        diff("RouteTableIds"),
        diff("SecurityGroupIds"),
    )
    backend.modify_vpc_endpoint(
        endpoint.id,
        endpoint_policy(new) or json.dumps(VPCEndPoint.DEFAULT_POLICY),
        add_subnets,
        remove_subnets,
        remove_tables,
        add_tables,
        add_groups,
        remove_groups,
    )
    endpoint.private_dns_enabled = truthy(new.get("PrivateDnsEnabled", False))
    retag(backend, endpoint.id, old, new)


UPDATES: dict[type, Callable[[Any, Mapping[str, Any], Mapping[str, Any], str], None]] = {
    ManagedPolicy: update_managed_policy,
    Key: update_kms_key,
    VPC: update_vpc,
    VPCEndPoint: update_vpc_endpoint,
}


# -- the update path ---------------------------------------------------------------------------
def parsed_properties(resources_map: Any) -> dict[str, Any]:
    """Each resource's properties as last resolved (Refs replaced), by logical id."""
    return resources_map.__dict__.setdefault("_emulator_properties", {})  # type: ignore[no-any-return]


def patch_parse(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def parse(logical_id: str, resource_json: dict[str, Any], resources_map: Any) -> Any:
        parsed = original(logical_id, resource_json, resources_map)
        if parsed:
            parsed_properties(resources_map)[logical_id] = dict(parsed[1].get("Properties", {}))
        return parsed

    return parse


def replace(logical_id: str, resource_json: dict[str, Any], resources_map: Any, old: Any) -> Any:
    """A new resource from the new properties, then the old one deleted (CloudFormation's order)."""
    account, region = resources_map._account_id, resources_map._region_name
    model, cleaned, name = parsing.parse_resource_and_generate_name(
        logical_id, resource_json, resources_map
    )
    new = model.create_from_cloudformation_json(
        name,
        cleaned,
        account,
        region,
        LogicalId=logical_id,
        StackId=resources_map.stack_id,
        ResourceType=resource_json["Type"],
    )
    new.cf_resource_type = resource_json["Type"]
    new.logical_resource_id = logical_id
    try:
        resources_map._delete_resource(old, resource_json)
    except Exception as error:
        if not is_not_found(error):
            raise
    return new


def patch_update(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def update(
        logical_id: str,
        resource_json: dict[str, Any],
        resources_map: Any,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        previous = resources_map._parsed_resources.get(logical_id)
        old = parsed_properties(resources_map).get(logical_id)
        resource = original(logical_id, resource_json, resources_map, *args, **kwargs)
        if resource is not None or previous is None:
            return resource
        new = parsed_properties(resources_map).get(logical_id, {})
        kind = resource_json.get("Type", "")
        if old == new:
            return previous  # only its text changed (say, a Ref to a resource kept in place)
        if old is not None and replaces(kind, old, new):
            return replace(logical_id, resource_json, resources_map, previous)
        updater = UPDATES.get(type(previous))
        if updater is not None:
            updater(previous, old or {}, new, resources_map._account_id)
            return previous
        resource_event(
            stack_of(resources_map),
            logical_id,
            kind,
            str(getattr(previous, "physical_resource_id", "")),
            "UPDATE_COMPLETE",
            "emulator: moto cannot update this type, so the resource keeps its previous "
            "properties (destroy and deploy again to apply the change)",
        )
        return previous

    return update


def patch_dependents(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def update(
        logical_id: str, resource_json: dict[str, Any], resources_map: Any, **kwargs: Any
    ) -> Any:
        previous = resources_map._parsed_resources.get(logical_id)
        resource = original(logical_id, resource_json, resources_map, **kwargs)
        before = getattr(previous, "physical_resource_id", None)
        if resource is None or getattr(resource, "physical_resource_id", None) == before:
            return resource
        # Replaced: what refers to it is updated with its new id before anything else runs.
        resources_map._parsed_resources[logical_id] = resource
        for dependent, dependent_json in resources_map._resource_json_map.items():
            if dependent in resources_map._parsed_resources and logical_id in set(
                references(dependent_json)
            ):
                resources_map._parsed_resources[dependent] = parsing.parse_and_update_resource(
                    dependent, dependent_json, resources_map, **kwargs
                )
        return resource

    return update


def tolerant(delete: Callable[..., None]) -> Callable[..., None]:
    """A delete that counts a resource already gone (its VPC or API deleted first) as deleted."""

    @functools.wraps(delete)
    def run(self: Any, account_id: str, region_name: str) -> None:
        try:
            delete(self, account_id, region_name)
        except Exception as error:
            if not is_not_found(error):
                raise

    return run


def install() -> list[str]:
    """Add the deletes, the updates and the dependents' updates (idempotent)."""
    for model, delete in DELETES.items():
        if "delete" not in model.__dict__:
            model.delete = tolerant(delete)  # type: ignore[attr-defined]
    once(VPC, "create_from_cloudformation_json", patch_vpc_create)
    once(VPCEndPoint, "create_from_cloudformation_json", patch_vpc_endpoint_create)
    once(parsing, "parse_resource_and_generate_name", patch_parse)
    once(parsing, "parse_and_update_resource", patch_update)
    once(parsing, "parse_and_update_resource", patch_dependents)
    return [
        "deletes for " + ", ".join(model.__name__ for model in DELETES),
        "updates moto lacks: replacement on a create-only property (registry schema), "
        + ", ".join(model.__name__ for model in UPDATES)
        + " in place, otherwise the resource is kept and its event says so",
        "a replaced resource updates what refers to it",
        "VPC DNS attributes; VPC endpoint policy text, tags, private DNS as EC2 checks it",
    ]
