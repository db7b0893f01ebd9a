"""AWS::Logs::LogGroup through moto's CloudWatch Logs backend.

moto's own model drops the template's `KmsKeyId` (it reads the API's `kmsKeyId`), so a group
encrypted with the stack's key showed none, and it has no update: a changed retention was
reported applied and was not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from moto.core.common_models import CloudFormationModel
from moto.logs.models import LogGroup, LogsBackend, logs_backends

from emulator.handlers.base import Emulated, tag_map


class LogGroupHandler(Emulated, CloudFormationModel):
    """A log group with its retention, KMS key and tags; `Fn::GetAtt Arn` ends in `:*` as on AWS."""

    TYPE = "AWS::Logs::LogGroup"
    NAME_PROPERTY = "LogGroupName"
    ATTRIBUTES = ("Arn",)

    @property
    def backend(self) -> LogsBackend:
        return logs_backends[self.account_id][self.region_name]

    def group(self) -> LogGroup:
        return self.backend.groups[self.physical_id]

    def create(self, name: str) -> None:
        p = self.properties
        self.physical_id = str(p.get("LogGroupName") or name)
        self.backend.create_log_group(self.physical_id, tag_map(p), kmsKeyId=p.get("KmsKeyId"))
        self.update(p)

    def update(self, properties: Mapping[str, Any]) -> None:
        retention = properties.get("RetentionInDays")
        if retention is None:
            self.backend.delete_retention_policy(self.physical_id)
        else:
            self.backend.put_retention_policy(self.physical_id, int(retention))
        group = self.group()
        group.kms_key_id = properties.get("KmsKeyId")
        old, new = tag_map(self.properties), tag_map(properties)
        self.backend.untag_resource(group.arn, [key for key in old if key not in new])
        self.backend.tag_resource(group.arn, new)

    def remove(self) -> None:
        self.backend.delete_log_group(self.physical_id)

    def attribute(self, name: str) -> Any:
        return f"{self.group().arn}:*"


HANDLERS = (LogGroupHandler,)
