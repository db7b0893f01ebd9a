"""What every CloudFormation handler of ours shares: moto's model protocol, updates, replacement.

moto's CloudFormation finds a resource type through `CloudFormationModel.__subclasses__()`
(direct subclasses only), so each handler is declared `class X(Emulated, CloudFormationModel)`
and `emulator.install()` clears moto's cached type map once they are all imported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from moto.cloudformation.exceptions import UnformattedGetAttTemplateException
from moto.utilities.utils import get_partition


def truthy(value: Any) -> bool:
    """A CloudFormation boolean: templates may carry true or "true"."""
    return value is True or str(value).lower() == "true"


def tag_list(properties: Mapping[str, Any]) -> list[dict[str, str]]:
    """The template's `Tags` as the [{Key, Value}] list most service APIs take."""
    return [{"Key": str(t["Key"]), "Value": str(t["Value"])} for t in properties.get("Tags", [])]


def tag_map(properties: Mapping[str, Any]) -> dict[str, str]:
    """The template's `Tags` as the {key: value} map API Gateway takes."""
    return {tag["Key"]: tag["Value"] for tag in tag_list(properties)}


class Emulated:
    """A resource created through moto's service backend, as CloudFormation would create it.

    A subclass names its type, the properties whose change replaces the resource, and the
    backend calls that create, update in place and delete it. Updates follow the type's
    CloudFormation documentation: a change to a `REPLACED_BY` property creates a new
    resource and deletes the old one; any other change is applied in place.
    """

    TYPE: ClassVar[str]
    NAME_PROPERTY: ClassVar[str] = ""
    REPLACED_BY: ClassVar[frozenset[str]] = frozenset()
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
        """Apply changed properties in place (no `REPLACED_BY` property changed)."""
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
        if changed(original_resource.properties, properties) & cls.REPLACED_BY:
            # Replacement: the new resource first, then the old one goes (CloudFormation's
            # order, so nothing that refers to it is ever left without one).
            replacement = cls.create_from_cloudformation_json(
                new_resource_name, cloudformation_json, account_id, region_name
            )
            original_resource.remove()
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


def changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> set[str]:
    """Names of the properties whose value differs (added and removed ones included)."""
    return {key for key in set(old) | set(new) if old.get(key) != new.get(key)}


def as_list(value: Any) -> list[Any]:
    """A property that takes one value or a list of them, as a list."""
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Iterable):
        return [value]
    return list(value)
