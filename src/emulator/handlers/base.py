"""What every CloudFormation handler of ours shares: moto's model protocol, updates, replacement.

moto's CloudFormation finds a resource type through `CloudFormationModel.__subclasses__()`
(direct subclasses only), so each handler is declared `class X(Emulated, CloudFormationModel)`
and `emulator.install()` clears moto's cached type map once they are all imported.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
from moto.moto_api._internal import mock_random
from moto.utilities.utils import get_partition


def truthy(value: Any) -> bool:
    """A CloudFormation boolean: templates may carry true or "true"."""
    return value is True or str(value).lower() == "true"


def generated_id(name: str) -> str:
    """A physical id like CloudFormation's for types whose Ref is only an id."""
    return f"{name}-{mock_random.get_random_hex(8)}"


def tag_list(properties: Mapping[str, Any]) -> list[dict[str, str]]:
    """The template's `Tags` as the [{Key, Value}] list most service APIs take."""
    return [{"Key": str(t["Key"]), "Value": str(t["Value"])} for t in properties.get("Tags", [])]


def tag_map(properties: Mapping[str, Any]) -> dict[str, str]:
    """The template's `Tags` as the {key: value} map API Gateway takes."""
    return {tag["Key"]: tag["Value"] for tag in tag_list(properties)}


@functools.cache
def create_only_properties(resource_type: str) -> tuple[tuple[str, ...], ...]:
    """The property paths whose change replaces a resource of this type: the
    `createOnlyProperties` of its CloudFormation registry schema (the copy cfn-lint ships)."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER, ResourceNotFoundError

    try:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema
    except ResourceNotFoundError:  # a custom resource: no schema, nothing is create-only
        return ()
    return tuple(
        tuple(pointer.split("/")[2:]) for pointer in schema.get("createOnlyProperties", [])
    )


def value_at(properties: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The value at a property path (None where the path is missing)."""
    value: Any = properties
    for key in path:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def replaces(resource_type: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """True when CloudFormation replaces the resource to go from `old` to `new` properties."""
    return any(
        value_at(old, path) != value_at(new, path) for path in create_only_properties(resource_type)
    )


class Emulated:
    """A resource created through moto's service backend, as CloudFormation would create it.

    A subclass names its type and the backend calls that create, update in place and delete
    it. Updates follow the type's CloudFormation registry schema: a change to a create-only
    property creates a new resource and deletes the old one; any other change is applied in
    place.
    """

    TYPE: ClassVar[str]
    NAME_PROPERTY: ClassVar[str] = ""
    ATTRIBUTES: ClassVar[tuple[str, ...]] = ()

    def __init__(self, account_id: str, region_name: str, properties: Mapping[str, Any]) -> None:
        self.account_id = account_id
        self.region_name = region_name
        self.partition = get_partition(region_name)
        self.properties = dict(properties)
        self.physical_id = ""

    # -- what a subclass implements ------------------------------------------------------
    def create(self, name: str) -> None:
        """Create the resource through the backend and set `physical_id`."""
        raise NotImplementedError

    def update(self, properties: Mapping[str, Any]) -> None:
        """Apply changed properties in place (no create-only property changed)."""
        raise NotImplementedError

    def remove(self) -> None:
        """Delete the resource through the backend."""
        raise NotImplementedError

    def attribute(self, name: str) -> Any:
        """The value of `Fn::GetAtt` for a name in ATTRIBUTES."""
        raise UnformattedGetAttTemplateException()

    # -- moto's CloudFormationModel protocol ---------------------------------------------
    @classmethod
    def cloudformation_type(cls) -> str:
        return cls.TYPE

    @classmethod
    def cloudformation_name_type(cls) -> str:
        return cls.NAME_PROPERTY

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.ATTRIBUTES

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Emulated:
        resource = cls(account_id, region_name, cloudformation_json.get("Properties", {}))
        resource.create(resource_name)
        return resource

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls,
        original_resource: Emulated,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> Emulated:
        properties = cloudformation_json.get("Properties", {})
        if properties == original_resource.properties:
            return original_resource  # only the template's text changed
        if replaces(cls.TYPE, original_resource.properties, properties):
            # Replacement: the new resource first, then the old one goes (CloudFormation's
            # order, so nothing that refers to it is ever left without one).
            replacement = cls.create_from_cloudformation_json(
                new_resource_name, cloudformation_json, account_id, region_name
            )
            original_resource.delete(account_id, region_name)
            return replacement
        original_resource.update(properties)
        original_resource.properties = dict(properties)
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> None:
        # moto calls this only when the instance's delete() raised TypeError/AttributeError,
        # which delete() below never lets through: a failed delete must not pass silently.
        raise RuntimeError(f"{cls.TYPE} {resource_name}: delete failed")

    def delete(self, account_id: str, region_name: str) -> None:
        try:
            self.remove()
        except (TypeError, AttributeError) as error:
            raise RuntimeError(f"{self.TYPE} {self.physical_id}: {error}") from error
        except Exception as error:
            # CloudFormation counts a resource already gone (its API or queue deleted
            # first) as deleted; anything else fails the delete.
            if not is_not_found(error):
                raise

    @property
    def physical_resource_id(self) -> str:
        return self.physical_id

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        if attribute_name not in self.ATTRIBUTES:
            raise UnformattedGetAttTemplateException()
        return self.attribute(attribute_name)

    def is_created(self) -> bool:
        return True


NOT_FOUND_MARKERS = ("NotFound", "NonExistent", "Nonexistent", "NoSuch", "DoesNotExist")


def is_not_found(error: BaseException) -> bool:
    """True for a moto backend error that says the thing does not exist (or a missing key)."""
    if isinstance(error, KeyError):
        return True
    names = [
        type(error).__name__,
        str(getattr(error, "code", "")),
        str(getattr(error, "error_type", "")),
    ]
    return any(marker in name for name in names for marker in NOT_FOUND_MARKERS)


def as_list(value: Any) -> list[Any]:
    """A property that takes one value or a list of them, as a list."""
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Iterable):
        return [value]
    return list(value)
