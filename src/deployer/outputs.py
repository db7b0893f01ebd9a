"""Stack outputs, the invoke URL, and the API key's value fetched after deploy."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import botocore.exceptions

from deployer.aws import error_code, error_message
from deployer.output import StackLog


def api_key_outputs(template: Mapping[str, Any]) -> list[str]:
    """Output names whose value is a Ref to an AWS::ApiGateway::ApiKey (the key id)."""
    resources = template.get("Resources", {})
    names = []
    for name, output in template.get("Outputs", {}).items():
        value = output.get("Value")
        if isinstance(value, dict) and set(value) == {"Ref"}:
            target = resources.get(value["Ref"], {})
            if target.get("Type") == "AWS::ApiGateway::ApiKey":
                names.append(name)
    return sorted(names)


def print_outputs(
    log: StackLog,
    stack: Mapping[str, Any],
    template: Mapping[str, Any],
    apigateway: Any,
    *,
    show_key_value: bool = True,
    local: bool = False,
) -> None:
    """Print every output, then the invoke URL and the API key value where there are some."""
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs") or []}
    if not outputs:
        note = " (moto leaves Outputs empty after a change set)" if local else ""
        log(f"no outputs reported{note}")
        return
    for key in sorted(outputs):
        log(f"output {key} = {outputs[key]}")
    urls = [key for key in sorted(outputs) if "execute-api" in outputs[key]]
    # Prefer the output that names the invoke URL; else every execute-api URL.
    for key in [k for k in urls if "invoke" in k.lower()] or urls:
        log(f"invoke URL: {outputs[key]}")
    for key in api_key_outputs(template):
        key_id = outputs.get(key)
        if not key_id:
            continue
        if not show_key_value:
            log(f"API key id {key_id} (value hidden by --hide-api-key)")
            continue
        try:
            value = apigateway.get_api_key(apiKey=key_id, includeValue=True)["value"]
        except botocore.exceptions.ClientError as error:
            log(
                f"API key {key_id}: value not fetched ({error_code(error)}: "
                f"{error_message(error)}); needs apigateway:GET on /apikeys/{key_id}"
            )
            continue
        log(f"API key value ({key_id}): {value}  -- send it as the x-api-key header")
