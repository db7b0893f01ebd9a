"""An offline AWS for development and tests: moto's service backends, completed for our stacks.

For development and tests only (it imports moto, a dev extra: `pip install -e '.[dev]'`);
nothing of it is deployed or imported by the Lambda code. What it emulates and what not is
in docs/deployer.md ("What --local emulates").

The API, for the deployer and for code built on the emulator (the local HTTP gateway, the
function runner):

    from emulator import install, start, serve, backend
    install()                          # CloudFormation handlers, SQS move tasks, moto fixes
    with start() as server:            # in this process, 127.0.0.1, a free port
        server.endpoint                # http://127.0.0.1:PORT for every boto3 client
    serve(port=DEFAULT_PORT)           # the same in the foreground until Ctrl-C
    backend("apigateway")              # moto's APIGatewayBackend of the emulated account and
                                       # region: the deployed definitions, as moto holds them

`start()` and `serve()` call `install()` themselves. moto's backends live in the process that
runs the server: code that reads them must run in that process.
"""

from __future__ import annotations

from typing import Any

from emulator.server import (
    ACCESS_KEY,
    ACCOUNT_ID,
    DEFAULT_PORT,
    REGION,
    SECRET_KEY,
    EmulatorServer,
    ServerInfo,
    probe,
    serve,
    start,
)

MOTO_VERSION = (
    "5.2.5"  # the version the handlers and fixes were written against (setup.cfg pins it)
)

_installed: list[str] = []


def handler_classes() -> list[type]:
    """Our CloudFormation handler classes, by module (importing them defines them for moto)."""
    from emulator.handlers import (
        apigateway,
        awslambda,
        cloudformation,
        cloudwatch,
        ec2,
        logs,
        policies,
        sns,
        wafv2,
    )

    modules = (apigateway, awslambda, cloudwatch, logs, policies, sns, wafv2, ec2, cloudformation)
    return [handler for module in modules for handler in module.HANDLERS]


def install() -> list[str]:
    """Register our handlers with moto's CloudFormation and install the fixes (idempotent).

    Returns one line per thing installed. Raises RuntimeError when the installed moto is not
    the version this was written for, or when moto would not pick one of our handlers.
    """
    if _installed:
        return list(_installed)
    import moto
    from moto.cloudformation import parsing

    from emulator import moto_models, patches, sqs_move_tasks

    if moto.__version__ != MOTO_VERSION:
        raise RuntimeError(
            f"the emulator was written for moto {MOTO_VERSION} and moto {moto.__version__} is "
            f"installed: pip install 'moto[server]=={MOTO_VERSION}' (or pip install -e '.[dev]')"
        )
    handlers = handler_classes()
    # moto returns no model for these types before looking at its type map.
    for handler in handlers:
        if handler.TYPE in parsing.NULL_MODELS:  # type: ignore[attr-defined]
            parsing.NULL_MODELS.remove(handler.TYPE)  # type: ignore[attr-defined]
    for cache in (parsing.get_model_list, parsing.get_model_map, parsing.get_name_type_map):
        cache.cache_clear()
    model_map = parsing.get_model_map()
    lost = [h.TYPE for h in handlers if model_map.get(h.TYPE) is not h]  # type: ignore[attr-defined]
    if lost:
        raise RuntimeError(f"moto does not use the emulator's handlers for {', '.join(lost)}")
    _installed.extend(f"CloudFormation handler {h.TYPE}" for h in handlers)  # type: ignore[attr-defined]
    _installed.extend(sqs_move_tasks.install())
    _installed.extend(patches.install())
    _installed.extend(moto_models.install())
    return list(_installed)


def emulated_types() -> set[str]:
    """Every resource type CloudFormation creates here: moto's own and ours."""
    from moto.cloudformation import parsing

    install()
    return set(parsing.get_model_map())


def backend(service: str, region: str = REGION, account: str = ACCOUNT_ID) -> Any:
    """moto's backend of one service for the emulated account and region (S3 is per partition)."""
    from moto.backends import get_backend

    backends = get_backend(service)  # type: ignore[call-overload]
    return backends[account]["aws" if service == "s3" else region]


__all__ = [
    "ACCESS_KEY",
    "ACCOUNT_ID",
    "DEFAULT_PORT",
    "REGION",
    "SECRET_KEY",
    "EmulatorServer",
    "ServerInfo",
    "backend",
    "emulated_types",
    "install",
    "probe",
    "serve",
    "start",
]
