"""`--local` and `--local-server`: the deployer's side of the offline emulator (src/emulator).

The emulation itself (moto plus our CloudFormation handlers and fixes) lives in the
`emulator` package; this module only finds or starts it and reports what it did not create.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from deployer.errors import DeployError
from emulator.server import (
    ACCESS_KEY as LOCAL_ACCESS_KEY,
)
from emulator.server import (
    DEFAULT_PORT,
    HOST,
    PROBE_TIMEOUT,
    ForeignServerError,
    UnresponsiveServerError,
    code_digest,
    probe,
)
from emulator.server import (
    REGION as LOCAL_REGION,
)
from emulator.server import (
    SECRET_KEY as LOCAL_SECRET_KEY,
)

__all__ = [
    "DEFAULT_PORT",
    "LOCAL_ACCESS_KEY",
    "LOCAL_REGION",
    "LOCAL_SECRET_KEY",
    "LocalEmulatorError",
    "LocalTarget",
    "emulator_server",
    "local_target",
    "moto_server",
    "skipped_resources",
]

# What --local never does, said once per run so its output claims no more than it did.
LIMITS = (
    "emulated: resources are stored in moto's models and read back through each service's API; "
    "not emulated: no Lambda code runs, IAM policies are not evaluated, WAF rules are not "
    "enforced, no alarm changes state by itself (docs/deployer.md, 'What --local emulates')"
)


class LocalEmulatorError(DeployError):
    """The emulator cannot run here (moto missing, port taken)."""

    fmt = "{reason}"


def require_moto() -> None:
    """Refuse early, with the command to run, when the dev extra is not installed."""
    if importlib.util.find_spec("moto") is None:
        raise LocalEmulatorError(
            reason="--local and --local-server need moto, a development dependency: "
            "pip install -e '.[dev]' (it is never needed to deploy to AWS)"
        )


@dataclass(frozen=True)
class LocalTarget:
    """Where a --local run deploys and what to tell about it."""

    endpoint: str
    kept: bool  # True: a --local-server keeps the state after this run
    note: str


@contextmanager
def emulator_server(port: int) -> Iterator[Any]:
    """The emulator in this process on 127.0.0.1:port (0: a free port), stopped at the end."""
    require_moto()
    from emulator import start

    try:
        with start(port) as server:
            yield server
    except OSError as error:
        raise LocalEmulatorError(
            reason=f"cannot listen on {HOST}:{port} ({error.strerror or error}): "
            "stop what uses it or pass --local-port"
        ) from None


@contextmanager
def local_target(
    port: int = DEFAULT_PORT, probe_timeout: float = PROBE_TIMEOUT
) -> Iterator[LocalTarget]:
    """The running emulator on 127.0.0.1:port when there is one, else a throwaway one."""
    endpoint = f"http://{HOST}:{port}"
    foreign = ""
    try:
        running = probe(endpoint, timeout=probe_timeout)
    except ForeignServerError as error:
        running, foreign = None, f"{error}; "
    except UnresponsiveServerError as error:
        # Likely our emulator, busy: deploying elsewhere would leave its state as it was.
        raise LocalEmulatorError(
            reason=f"{error}: try again, or stop what listens there or pass --local-port"
        ) from None
    if running is not None:
        stale = ""
        if running.code != code_digest():
            stale = (
                "; warning: it runs other emulator code than this checkout (started from "
                "another one, or before a change to src/emulator): restart it to use this code"
            )
        yield LocalTarget(
            endpoint,
            kept=True,
            note=f"--local: using the emulator at {endpoint} (deploy.py --local-server, pid "
            f"{running.pid}); its state stays after this run; nothing reaches AWS{stale}",
        )
        return
    with emulator_server(0) as server:
        yield LocalTarget(
            server.endpoint,
            kept=False,
            note=f"--local: {foreign}no emulator on {endpoint}, started a throwaway one at "
            f"{server.endpoint}; its state is gone when this command ends (run deploy.py "
            "--local-server to keep it); nothing reaches AWS",
        )


@contextmanager
def moto_server() -> Iterator[str]:
    """A throwaway emulator's endpoint (the deployer tests' fixture)."""
    with emulator_server(0) as server:
        yield server.endpoint


def skipped_resources(
    cloudformation: Any, stack: str, template: Mapping[str, Any], supported: set[str] | None = None
) -> list[str]:
    """One line per template resource the emulator did not create, with the reason."""
    if supported is None:
        from emulator import emulated_types

        supported = emulated_types()
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
            skipped.append(
                f"not emulated: {kind} {logical_id} (no CloudFormation handler for the type)"
            )
        elif "Condition" in resource:
            skipped.append(
                f"not created: {kind} {logical_id} (condition {resource['Condition']} false)"
            )
        else:
            skipped.append(f"not created: {kind} {logical_id}")
    return skipped
