"""`--local`: moto's server in this process on a free loopback port, and what it skipped."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

LOCAL_REGION = "us-east-1"
# moto accepts any key pair; these make it obvious no real account is involved.
LOCAL_ACCESS_KEY = "local-moto-key"
LOCAL_SECRET_KEY = "local-moto-secret"  # noqa: S105 - a placeholder moto accepts, not a secret


@contextmanager
def moto_server() -> Iterator[str]:
    """Start moto's server on 127.0.0.1 and a free port; yield its endpoint URL."""
    from moto.server import ThreadedMotoServer  # dev extra: imported only for --local

    patch_moto()
    # Werkzeug logs every request and moto warns per unsupported type; our own lines
    # (including "moto skipped ...") are the log here.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("moto").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Tried to parse", category=UserWarning)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def moto_supported_types() -> set[str]:
    """The resource types moto's CloudFormation creates (the rest it skips with a warning)."""
    from moto.cloudformation.parsing import get_model_map

    return set(get_model_map())


def skipped_resources(
    cloudformation: Any, stack: str, template: Mapping[str, Any], supported: set[str]
) -> list[str]:
    """One line per template resource that moto did not create, with the reason."""
    present = set()
    paginator = cloudformation.get_paginator("list_stack_resources")
    for page in paginator.paginate(StackName=stack):
        present.update(item["LogicalResourceId"] for item in page["StackResourceSummaries"])
    skipped = []
    for logical_id, resource in sorted(template.get("Resources", {}).items()):
        if logical_id in present:
            continue
        kind = resource.get("Type", "")
        if kind not in supported:
            skipped.append(f"moto skipped {kind} {logical_id} (type not supported by moto)")
        elif "Condition" in resource:
            skipped.append(
                f"not created: {kind} {logical_id} (condition {resource['Condition']} false)"
            )
        else:
            skipped.append(f"moto did not create {kind} {logical_id}")
    return skipped


def _wrap_create(cls: Any, fix: Callable[[dict[str, Any]], None]) -> None:
    """Make moto's create_from_cloudformation_json call `fix(properties)` first (once only)."""
    original = cls.create_from_cloudformation_json.__func__
    if getattr(original, "_payment_patched", False):
        return

    def create(klass: Any, name: str, cloudformation_json: Any, *args: Any, **kw: Any) -> Any:
        fix(cloudformation_json.setdefault("Properties", {}))
        return original(klass, name, cloudformation_json, *args, **kw)

    create._payment_patched = True  # type: ignore[attr-defined]
    cls.create_from_cloudformation_json = classmethod(create)


def _kms_tags(properties: dict[str, Any]) -> None:
    properties["Tags"] = [
        {
            "TagKey": tag.get("Key", tag.get("TagKey")),
            "TagValue": tag.get("Value", tag.get("TagValue")),
        }
        for tag in properties.get("Tags", [])
    ]


def _mock_integration(properties: dict[str, Any]) -> None:
    integration = properties.get("Integration")
    if isinstance(integration, dict):
        integration.setdefault("IntegrationHttpMethod", properties.get("HttpMethod", "POST"))
        integration.setdefault("Uri", "")


def patch_moto() -> list[str]:
    """Work around moto bugs that stop valid templates from deploying; return what was patched.

    moto 5.2 creates AWS::KMS::Key with the KMS API's tag shape (TagKey/TagValue) but gets
    CloudFormation's Key/Value, so a tagged key fails with KeyError 'TagKey'; and it reads
    IntegrationHttpMethod and Uri of every AWS::ApiGateway::Method, which a MOCK integration
    (CORS preflight) rightly omits. Both only in moto: real CloudFormation accepts both.
    """
    from moto.apigateway.models import Method
    from moto.kms.models import Key

    _wrap_create(Key, _kms_tags)
    _wrap_create(Method, _mock_integration)
    return ["AWS::KMS::Key Tags shape", "AWS::ApiGateway::Method MOCK integration"]
