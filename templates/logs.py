"""Log groups created before anything writes to them, with a retention set on purpose."""

from __future__ import annotations

from troposphere import Template
from troposphere.logs import LogGroup

from templates.keys import StackKey
from templates.naming import Naming


def add_log_group(
    t: Template,
    naming: Naming,
    logical_id: str,
    *,
    name,
    retention_days: int,
    component: str,
    key: StackKey | None = None,
) -> LogGroup:
    """A log group kept `retention_days` days, encrypted with the stack key when given
    (the key's policy is extended to this log group).

    `name` may be a literal (checked against the length limit) or an intrinsic
    such as `Sub("API-Gateway-Execution-Logs_${Api}/prod")`.
    """
    if isinstance(name, str):
        name = naming.log_group(name)
    kwargs = {
        "LogGroupName": name,
        "RetentionInDays": retention_days,
        "Tags": naming.tags(component),
    }
    if key is not None:
        key.allow_log_group(name)
        kwargs["KmsKeyId"] = key.arn
    # Explicitly destroyable: the seed requires every resource to go with its stack.
    return t.add_resource(
        LogGroup(logical_id, DeletionPolicy="Delete", UpdateReplacePolicy="Delete", **kwargs)
    )
