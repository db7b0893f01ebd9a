"""Stack outputs, the invoke URL, the API key's value fetched after deploy, --outputs-file."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from deployer.aws import AWS_ERRORS, error_code, error_message
from deployer.output import StackLog

API_KEY_VALUE = "ApiKeyValue"


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
    show_key_value: bool = False,
    local: bool = False,
    region: str = "us-east-1",
) -> dict[str, str]:
    """Print every output, the invoke URL and (when shown) the API key value; return the values.

    The value is a secret: it is fetched and printed only with `show_key_value` (a terminal,
    or --show-api-key), never by default into a log others read.
    """
    values: dict[str, str] = {}
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs") or []}
    if not outputs:
        note = " (moto leaves Outputs empty after a change set)" if local else ""
        log(f"no outputs reported{note}")
        return values
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
            log(
                f"API key id {key_id} (value not printed: stdout is not a terminal or "
                "--hide-api-key; pass --show-api-key, or run aws apigateway get-api-key "
                f"--api-key {key_id} --include-value --query value --output text "
                f"--region {region})"
            )
            continue
        try:
            value = apigateway.get_api_key(apiKey=key_id, includeValue=True)["value"]
        except AWS_ERRORS as error:
            reason = (
                f"{error_code(error)}: {error_message(error)}"
                if hasattr(error, "response")
                else type(error).__name__
            )
            log(
                f"API key {key_id}: value not fetched ({reason}); needs apigateway:GET on "
                f"/apikeys/{key_id}"
            )
            continue
        values[API_KEY_VALUE] = value
        log(f"API key value ({key_id}): {value}  -- send it as the x-api-key header")
    return values


def outputs_document(
    stacks: Iterable[Mapping[str, Any]], secrets: Mapping[str, Mapping[str, str]]
) -> dict[str, Any]:
    """The --outputs-file schema: {"<stack>": {"Outputs": {"<key>": "<value>"}}}.

    `secrets` holds, by stack, the values shown in this run (ApiKeyValue only with
    --show-api-key); they are added to that stack's Outputs.
    """
    document: dict[str, Any] = {}
    for stack in stacks:
        name = stack["StackName"]
        outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in stack.get("Outputs") or []}
        document[name] = {"Outputs": {**outputs, **secrets.get(name, {})}}
    return document


def write_json_atomically(path: Path, document: Mapping[str, Any]) -> None:
    """Write the file in one rename, readable only by its owner (it may hold the key's value)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle, indent=2, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
