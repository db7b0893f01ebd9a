"""deploy.toml: the values a team keeps per suffix, so no one has to remember the flags.

    [prod]                                  # one table per suffix
    tags = { CostCenter = "payments" }      # --tags
    notification_arns = ["arn:aws:sns:us-east-1:123456789012:deploys"]
    role_arn = "arn:aws:iam::123456789012:role/cfn-deployer"
    monitor_minutes = 10

    [prod.parameters]                       # --parameter, for every stack declaring it
    AlarmEmail = "oncall@example.com"

The command line wins over the file. Read with the standard library's tomllib.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployer.errors import InvalidInputError

DEFAULT_CONFIG = Path("deploy.toml")
KEYS = {"parameters", "tags", "notification_arns", "role_arn", "monitor_minutes"}


@dataclass(frozen=True)
class DeployConfig:
    """One suffix's table of deploy.toml (empty when there is no file or no table)."""

    source: str = ""
    parameters: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    notification_arns: tuple[str, ...] | None = None
    role_arn: str | None = None
    monitor_minutes: int | None = None


def load_config(path: Path | None, suffix: str) -> DeployConfig:
    """The suffix's settings from `path` (default ./deploy.toml, used when present)."""
    if path is None:
        if not DEFAULT_CONFIG.is_file():
            return DeployConfig()
        path = DEFAULT_CONFIG
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise InvalidInputError(reason=f"--config {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidInputError(reason=f"{path}: not UTF-8 text (TOML files are UTF-8)") from None
    except tomllib.TOMLDecodeError as error:
        raise InvalidInputError(reason=f"{path}: not valid TOML ({error})") from None
    table = document.get(suffix, {})
    where = f"{path} [{suffix}]"
    if not isinstance(table, dict):
        raise InvalidInputError(reason=f"{where}: expected a table")
    unknown = sorted(set(table) - KEYS)
    if unknown:
        raise InvalidInputError(
            reason=f"{where}: unknown key {', '.join(unknown)}; known: {', '.join(sorted(KEYS))}"
        )
    minutes = table.get("monitor_minutes")
    if (minutes is not None) and (isinstance(minutes, bool) or not isinstance(minutes, int)):
        raise InvalidInputError(reason=f"{where} monitor_minutes: expected a whole number")
    role = table.get("role_arn")
    if (role is not None) and not isinstance(role, str):
        raise InvalidInputError(reason=f"{where} role_arn: expected a string")
    arns = table.get("notification_arns")
    if (arns is not None) and not (
        isinstance(arns, list) and all(isinstance(arn, str) for arn in arns)
    ):
        raise InvalidInputError(reason=f"{where} notification_arns: expected a list of strings")
    return DeployConfig(
        source=where,
        parameters=_strings(table.get("parameters", {}), f"{where} parameters"),
        tags=_strings(table.get("tags", {}), f"{where} tags"),
        notification_arns=tuple(arns) if arns is not None else None,
        role_arn=role,
        monitor_minutes=minutes,
    )


def _strings(table: Any, where: str) -> dict[str, str]:
    """A table of scalars as CloudFormation strings (true/false lowercase, as templates use)."""
    if not isinstance(table, Mapping):
        raise InvalidInputError(reason=f"{where}: expected a table of KEY = value")
    values = {}
    for key, value in table.items():
        if isinstance(value, bool):
            values[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            values[key] = str(value)
        else:
            raise InvalidInputError(reason=f"{where} {key}: expected a string or number")
    return values
