"""Deletes and updates for moto's own CloudFormation models that have none.

moto's RestApi, VPCEndpoint, RouteTable, SubnetRouteTableAssociation, FlowLog and
ManagedPolicy models cannot be deleted through CloudFormation (a destroyed stack would leave
them behind), and many models cannot be updated: moto then stores None for the resource, so
the stack loses it and every later `Ref` to it breaks. Here each of those gets a `delete`,
and an update moto cannot apply keeps the resource as it was, with an event that says so.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from moto.apigateway.models import RestAPI, apigateway_backends
from moto.cloudformation import parsing
from moto.ec2.models import ec2_backends
from moto.ec2.models.flow_logs import FlowLogs
from moto.ec2.models.route_tables import RouteTable
from moto.ec2.models.subnets import SubnetRouteTableAssociation
from moto.ec2.models.vpcs import VPCEndPoint
from moto.iam.models import ManagedPolicy, iam_backends

from emulator.handlers.base import is_not_found
from emulator.patches import once, resource_event, stack_of


def delete_rest_api(self: Any, account_id: str, region_name: str) -> None:
    apigateway_backends[account_id][region_name].delete_rest_api(self.id)


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


def delete_managed_policy(self: Any, account_id: str, region_name: str) -> None:
    # CloudFormation detaches a managed policy from its roles before deleting it.
    backend = iam_backends[account_id][self.partition]
    for role in list(backend.roles.values()):
        if self.arn in role.managed_policies:
            backend.detach_role_policy(self.arn, role.name)
    backend.delete_policy(self.arn)


DELETES: dict[type, Callable[..., None]] = {
    RestAPI: delete_rest_api,
    VPCEndPoint: delete_vpc_endpoint,
    RouteTable: delete_route_table,
    SubnetRouteTableAssociation: delete_route_table_association,
    FlowLogs: delete_flow_log,
    ManagedPolicy: delete_managed_policy,
}


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
        resource = original(logical_id, resource_json, resources_map, *args, **kwargs)
        if resource is None and previous is not None:
            resource_event(
                stack_of(resources_map),
                logical_id,
                resource_json.get("Type", ""),
                str(getattr(previous, "physical_resource_id", "")),
                "UPDATE_COMPLETE",
                "emulator: moto cannot update this type, so the resource keeps its previous "
                "properties (destroy and deploy again to apply the change)",
            )
            return previous
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
    """Add the deletes and the update fallback (idempotent)."""
    for model, delete in DELETES.items():
        if "delete" not in model.__dict__:
            model.delete = tolerant(delete)  # type: ignore[attr-defined]
    once(parsing, "parse_and_update_resource", patch_update)
    return [
        "deletes for " + ", ".join(model.__name__ for model in DELETES),
        "an update moto cannot apply keeps the resource and says so",
    ]
