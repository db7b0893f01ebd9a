"""Local input checked before any AWS call: each bad value is an InvalidInputError (exit 2)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from deployer.errors import InvalidInputError
from deployer.paths import unwritable
from deployer.rollback import MAX_MONITOR_MINUTES
from deployer.stackspec import is_no_echo

# Parameters the deployer computes on every run; the operator cannot set them.
COMPUTED = {"CodeBucket": "the artifact bucket", "CodeKey": "the uploaded zip's key"}
# Tags that mark a stack as ours: set by the deployer only.
RESERVED_TAGS = ("Project", "Environment")
# S3's bucket naming rules (general purpose buckets); botocore checks only the characters.
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
IP_ADDRESS = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w-]{1,256}$")
MAX_NOTIFICATION_ARNS = 5
TAG_KEY_LIMIT, TAG_VALUE_LIMIT = 128, 256


def pairs(values: Iterable[str], option: str) -> dict[str, str]:
    """KEY=VALUE strings as a dict; the last value of a key wins, as on the AWS CLI."""
    parsed: dict[str, str] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if (not sep) or (not key.strip()):
            raise InvalidInputError(reason=f"{option} {value!r}: expected KEY=VALUE")
        parsed[key.strip()] = rest
    return parsed


def check_bucket_name(bucket: str) -> str:
    """The --artifact-bucket name, refused locally when S3 could never accept it."""
    if (
        (not BUCKET_NAME.match(bucket))
        or (".." in bucket)
        or IP_ADDRESS.match(bucket)
        or bucket.startswith(BUCKET_PREFIXES)
        or bucket.endswith(BUCKET_SUFFIXES)
    ):
        raise InvalidInputError(
            reason=f"--artifact-bucket {bucket!r} is not a valid S3 bucket name: 3-63 lowercase "
            "letters, digits, '.' and '-', starting and ending with a letter or digit"
        )
    return bucket


def check_role_arn(arn: str | None) -> str | None:
    """The --role-arn, an IAM role ARN."""
    if (arn is not None) and not ROLE_ARN.match(arn):
        raise InvalidInputError(
            reason=f"--role-arn {arn!r} is not an IAM role ARN "
            "(arn:aws:iam::123456789012:role/NAME)"
        )
    return arn


def check_topic_arns(arns: Iterable[str] | None) -> tuple[str, ...] | None:
    """The --notification-arns: SNS topic ARNs, at most CloudFormation's five."""
    if arns is None:
        return None
    checked = tuple(dict.fromkeys(arns))
    for arn in checked:
        if not TOPIC_ARN.match(arn):
            raise InvalidInputError(
                reason=f"--notification-arns {arn!r} is not an SNS topic ARN "
                "(arn:aws:sns:REGION:123456789012:NAME)"
            )
    if len(checked) > MAX_NOTIFICATION_ARNS:
        raise InvalidInputError(
            reason=f"--notification-arns: at most {MAX_NOTIFICATION_ARNS} topics per stack"
        )
    return checked


def check_tags(tags: Mapping[str, str]) -> dict[str, str]:
    """Extra stack tags: never ours (they mark ownership), within AWS's limits."""
    for key, value in tags.items():
        if key in RESERVED_TAGS:
            raise InvalidInputError(
                reason=f"--tags {key}: set by the deployer (it marks the stack as ours)"
            )
        if (
            key.lower().startswith("aws:")
            or (len(key) > TAG_KEY_LIMIT)
            or (len(value) > TAG_VALUE_LIMIT)
        ):
            raise InvalidInputError(
                reason=f"--tags {key}: keys are at most {TAG_KEY_LIMIT} characters and may not "
                f"start with aws:, values at most {TAG_VALUE_LIMIT}"
            )
    return dict(tags)


def check_timeout(minutes: float) -> float:
    """--timeout: a positive number of minutes (nan would make every wait endless)."""
    if not (0 < minutes < math.inf):
        raise InvalidInputError(reason=f"--timeout {minutes:g}: must be positive minutes")
    return minutes


def check_source(path: Path) -> Path:
    """--source: the handlers package to zip (a directory with __init__.py)."""
    if not (path / "__init__.py").is_file():
        raise InvalidInputError(
            reason=f"--source {path}: not a Python package (no __init__.py); "
            "give the handlers directory (default src/handlers)"
        )
    return path


def check_port(port: int, option: str) -> int:
    """A TCP port: 0-65535 (0: one the OS picks)."""
    if not 0 <= port <= 65535:
        raise InvalidInputError(reason=f"{option} {port}: a port is 0-65535")
    return port


def check_monitor_minutes(minutes: int) -> int:
    """--monitor-minutes: 0-180, CloudFormation's range."""
    if not 0 <= minutes <= MAX_MONITOR_MINUTES:
        raise InvalidInputError(
            reason=f"--monitor-minutes {minutes}: must be 0 to {MAX_MONITOR_MINUTES} minutes"
        )
    return minutes


def check_outputs_file(path: Path | None) -> Path | None:
    """--outputs-file: a file we can create or replace (missing directories are created)."""
    if path is None:
        return None
    problem = unwritable(path, directory=False)
    if problem:
        raise InvalidInputError(reason=f"--outputs-file {path}: {problem}")
    return path


def check_overrides(
    templates: Mapping[str, Mapping[str, Any]],
    given: Mapping[str, str],
    configured: Mapping[str, str],
    others: Mapping[str, Mapping[str, Any]],
) -> dict[str, str]:
    """Operator parameters (command line over config file), checked against the templates.

    A --parameter must be declared by a stack of this run; a deploy.toml parameter by any
    stack of the project (the file serves runs of any --stack). Values are checked against
    the declaring templates' AllowedValues and AllowedPattern, as CloudFormation would.
    """
    merged = {**configured, **given}
    for key in merged:
        if key in COMPUTED:
            raise InvalidInputError(
                reason=f"parameter {key} is computed by the deployer ({COMPUTED[key]}); "
                "it cannot be set"
            )
    for key, source, scope in [(k, "--parameter", templates) for k in given] + [
        (k, "deploy.toml parameter", {**templates, **others}) for k in configured
    ]:
        if not any(key in t.get("Parameters", {}) for t in scope.values()):
            declared = sorted({p for t in scope.values() for p in t.get("Parameters", {})})
            raise InvalidInputError(
                reason=f"{source} {key}: no stack of this run declares it; "
                f"parameters: {', '.join(declared)}"
            )
    for name, template in templates.items():
        for key, value in merged.items():
            declaration = template.get("Parameters", {}).get(key)
            if declaration is not None:
                check_value(name, key, value, declaration)
    return merged


def check_value(stack: str, key: str, value: str, declaration: Mapping[str, Any]) -> None:
    """Refuse a value the template would refuse (AllowedValues, AllowedPattern)."""
    allowed = declaration.get("AllowedValues")
    pattern = declaration.get("AllowedPattern")
    shown = "(NoEcho value)" if is_no_echo(declaration) else repr(value)
    if (allowed is not None) and (value not in [str(item) for item in allowed]):
        raise InvalidInputError(
            reason=f"parameter {key}={shown} for {stack}: allowed values are "
            f"{', '.join(map(str, allowed))}"
        )
    if (pattern is not None) and not re.fullmatch(pattern, value):
        hint = declaration.get("ConstraintDescription", f"must match {pattern}")
        raise InvalidInputError(reason=f"parameter {key}={shown} for {stack}: {hint}")
