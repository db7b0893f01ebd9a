"""`deploy.py --serve`: the deployed stacks' REST APIs, functions and event sources, locally.

Everything is read from what was deployed to the emulator (CloudFormation's stack
resources, API Gateway, Lambda, SQS, EventBridge); the templates are used only to find the
path of each stack's `InvokeUrl` output, which moto leaves empty. For development and tests
only: it needs moto (the `dev` extra) in this process.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from emulator.apidef import read_api, read_plan_keys
from emulator.event_sources import EventSources
from emulator.functions import DEFAULT_MAX_WORKERS, Functions, moto_code, read_function
from emulator.gateway import LocalApi, ServedApi

DEFAULT_HOST = "127.0.0.1"
# sam local start-api's default port; each further API takes the next one.
DEFAULT_PORT = 3000
NOT_ENFORCED = (
    "not enforced locally: WAF rules, the usage plan's daily quota, resource policies, "
    "IAM (functions run with placeholder credentials)"
)


@dataclass(frozen=True)
class LocalEndpoint:
    """Where one stack's API is served, and the key to call it with."""

    stack: str
    api_id: str
    stage: str
    invoke_url: str
    api_key_value: str | None

    def entry(self) -> dict[str, str]:
        """The `Local` entry of the stack in --outputs-file."""
        entry = {"InvokeUrl": self.invoke_url}
        if self.api_key_value is not None:
            entry["ApiKeyValue"] = self.api_key_value
        return entry


def stack_resources(cloudformation: Any, stack: str) -> dict[str, tuple[str, str]]:
    """Logical id -> (type, physical id) of a deployed stack."""
    pages = cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack)
    return {
        item["LogicalResourceId"]: (item["ResourceType"], item.get("PhysicalResourceId", ""))
        for page in pages
        for item in page["StackResourceSummaries"]
    }


def invoke_path(template: Mapping[str, Any]) -> str | None:
    """`/prod/process-payment` from the InvokeUrl output's `.../${AWS::URLSuffix}/prod/...`."""
    value = (template.get("Outputs", {}).get("InvokeUrl") or {}).get("Value")
    text = value.get("Fn::Sub") if isinstance(value, dict) else None
    text = text[0] if isinstance(text, list) else text
    if not isinstance(text, str) or "${AWS::URLSuffix}" not in text:
        return None
    return text.split("${AWS::URLSuffix}", 1)[1]


@dataclass
class LocalServe:
    """Functions, gateways and event sources for the given deployed stacks."""

    clients: Any  # deployer.aws.Clients-like: cloudformation, apigateway, region
    session_client: Callable[[str], Any]  # service name -> client on the emulator
    endpoint: str
    account_id: str
    templates: Mapping[str, Mapping[str, Any]]  # stack name -> template
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    max_workers: int = DEFAULT_MAX_WORKERS
    log: Callable[[str], None] = print
    function_log: Callable[[str, str], None] | None = None
    code_of: Callable[[str], bytes] | None = None
    functions: Functions | None = None
    apis: dict[str, ServedApi] = field(default_factory=dict)
    endpoints: list[LocalEndpoint] = field(default_factory=list)
    sources: EventSources | None = None

    def start(self) -> list[LocalEndpoint]:
        """Read what was deployed, start the functions' first environments, serve."""
        region = self.clients.region
        lambda_client = self.session_client("lambda")
        resources = {
            stack: stack_resources(self.clients.cloudformation, stack) for stack in self.templates
        }
        names = {
            physical
            for found in resources.values()
            for kind, physical in found.values()
            if kind == "AWS::Lambda::Function"
        }
        definitions = {}
        for stack, found in resources.items():
            for kind, physical in found.values():
                if kind == "AWS::ApiGateway::RestApi":
                    definitions[stack] = read_api(self.clients.apigateway, physical)
        for definition in definitions.values():
            for method in definition.methods.values():
                arn = method.integration.function_arn
                if arn:
                    names.add(arn.split(":")[6])
        code_of = self.code_of or moto_code(self.account_id, region)
        existing = {
            f["FunctionName"]
            for page in lambda_client.get_paginator("list_functions").paginate()
            for f in page["Functions"]
        }
        missing = sorted(names - existing)
        for name in missing:
            self.log(f"--serve: function {name} is not deployed here; its routes answer 502")
        specs = [read_function(lambda_client, code_of, name) for name in sorted(names & existing)]
        self.functions = Functions(
            specs,
            endpoint=self.endpoint,
            region=region,
            max_workers=self.max_workers,
            log_sink=self.function_log,
            warn=self.log,
        )
        self.functions.warm()
        port = self.port
        for stack, definition in definitions.items():
            app = LocalApi(
                definition,
                partial(read_plan_keys, self.clients.apigateway, definition.api_id),
                self.functions,
                account_id=self.account_id,
                region=region,
                log=self.log,
            )
            served = ServedApi(app, self.host, port).start()
            self.apis[stack] = served
            port = port + 1 if port else 0
            self.endpoints.append(self._endpoint(stack, served, resources[stack]))
        self.sources = EventSources(
            self.functions,
            lambda_client=lambda_client,
            sqs=self.session_client("sqs"),
            events=self.session_client("events"),
            account_id=self.account_id,
            region=region,
            log=self.log,
        )
        detach_moto_pollers(self.sources, self.account_id, region)
        self.sources.start()
        return self.endpoints

    def _endpoint(
        self, stack: str, served: ServedApi, found: Mapping[str, tuple[str, str]]
    ) -> LocalEndpoint:
        stages = sorted(served.app.definition.stages)
        path = invoke_path(self.templates[stack]) or (f"/{stages[0]}" if stages else "/")
        stage = path.strip("/").split("/")[0]
        key_ids = [
            physical for kind, physical in found.values() if kind == "AWS::ApiGateway::ApiKey"
        ]
        value = None
        if key_ids:
            value = self.clients.apigateway.get_api_key(apiKey=key_ids[0], includeValue=True).get(
                "value"
            )
        return LocalEndpoint(
            stack, served.app.definition.api_id, stage, served.base_url + path, value
        )

    def describe(self) -> list[str]:
        """What is running, for the person who started it."""
        lines = []
        for endpoint in self.endpoints:
            served = self.apis[endpoint.stack]
            lines.append(
                f"[{endpoint.stack}] serving REST API {endpoint.api_id} at "
                f"{served.base_url}/<stage>/... (stages: "
                f"{', '.join(sorted(served.app.definition.stages))})"
            )
        if self.sources is not None:
            for mapping in self.sources.mappings:
                lines.append(
                    f"event source: {mapping.queue_arn.rsplit(':', 1)[-1]} -> "
                    f"{mapping.runner.spec.name} (batch {mapping.batch_size})"
                )
            for schedule in self.sources.schedules:
                lines.append(
                    f"schedule: {schedule.rule_name} every {schedule.period:g} s -> "
                    f"{schedule.runner.spec.name}"
                )
            lines.extend(self.sources.skipped)
        lines.append(NOT_ENFORCED)
        return lines

    def stop(self) -> None:
        """Stop serving, polling and every worker process."""
        for served in self.apis.values():
            served.stop()
        if self.sources is not None:
            self.sources.stop()
        if self.functions is not None:
            self.functions.close()

    def wait(self, stop: threading.Event | None = None) -> None:
        """Block until Ctrl-C (KeyboardInterrupt) or `stop` is set."""
        stop = stop or threading.Event()
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            self.log("--serve: Ctrl-C, stopping")


def detach_moto_pollers(sources: EventSources, account_id: str, region: str) -> None:
    """Stop moto delivering our queues itself: on every SendMessage it receives the batch
    for a mapped Lambda and tries to run it in Docker (none here), which fails and bumps each
    message's receive count. The mappings we poll are delivered by EventSources alone."""
    from moto.backends import get_backend

    queues = get_backend("sqs")[account_id][region].queues
    for mapping in sources.mappings:
        queue = queues.get(mapping.queue_arn.rsplit(":", 1)[-1])
        if queue is not None:
            queue.lambda_event_source_mappings.clear()


def merge_outputs_file(
    path: Path, endpoints: list[LocalEndpoint], outputs: Mapping[str, str] | None = None
) -> None:
    """Add `"Local": {...}` to each served stack's entry of the deployer's outputs file
    (`{"<stack>": {"Outputs": {...}}}`), written atomically; what is there is kept (the
    stack's `Outputs` are filled in only when the file has none for it)."""
    data: dict[str, Any] = {}
    if path.exists():
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    for endpoint in endpoints:
        entry = data.setdefault(endpoint.stack, {})
        entry.setdefault("Outputs", dict(outputs or {}))
        entry["Local"] = endpoint.entry()
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp's 0600 suits a file holding an API key value.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.replace(tmp, path)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


class ServeError(RuntimeError):
    """--serve cannot start (a port taken, the emulator in another process)."""


def stack_outputs(cloudformation: Any, stack: str) -> dict[str, str]:
    """The stack's outputs as the deployer's outputs file holds them."""
    described = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
    return {o["OutputKey"]: o.get("OutputValue", "") for o in described.get("Outputs") or []}


def serve_stacks(
    *,
    clients: Any,
    endpoint: str,
    account_id: str,
    templates: Mapping[str, Mapping[str, Any]],
    port: int,
    max_workers: int,
    outputs_file: Path | None,
    show_key_value: bool,
    write: Callable[[str], None] = print,
    stop: threading.Event | None = None,
) -> None:
    """Serve the deployed stacks until Ctrl-C (or `stop`), then stop everything cleanly."""
    import boto3

    session = boto3.Session(
        aws_access_key_id="local-serve-key",
        aws_secret_access_key="local-serve-secret",  # noqa: S106 - emulator placeholder
        region_name=clients.region,
    )
    serve = LocalServe(
        clients=clients,
        session_client=lambda service: session.client(service, endpoint_url=endpoint),
        endpoint=endpoint,
        account_id=account_id,
        templates=templates,
        port=port,
        max_workers=max_workers,
        log=write,
        function_log=lambda name, line: write(f"  {name} | {line}"),
    )
    try:
        endpoints = serve.start()
    except OSError as error:
        serve.stop()
        raise ServeError(
            f"--serve cannot listen on {DEFAULT_HOST}:{port} ({error.strerror or error}): "
            "stop what uses it or pass --serve-port"
        ) from None
    try:
        for line in serve.describe():
            write(f"--serve: {line}")
        for served in endpoints:
            write(f"[{served.stack}] Local InvokeUrl: {served.invoke_url}")
            if served.api_key_value is not None:
                value = served.api_key_value if show_key_value else "(hidden by --hide-api-key)"
                write(
                    f"[{served.stack}] Local ApiKeyValue: {value}  -- a key of the local "
                    "emulator only; send it as the x-api-key header"
                )
        if outputs_file is not None:
            for served in endpoints:
                served_outputs = stack_outputs(clients.cloudformation, served.stack)
                merge_outputs_file(outputs_file, [served], served_outputs)
            write(f"--serve: Local entries written to {outputs_file}")
        write("--serve: serving; Ctrl-C stops it")
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops it as cleanly as Ctrl-C
        serve.wait(stop)
    finally:
        serve.stop()
        write("--serve: stopped (gateways, event sources and function workers)")
