"""AWS::CloudFormation::WaitConditionHandle, which moto ignores (its NULL_MODELS).

A handle is only a presigned URL a WaitCondition waits on; our templates use one as a
conditional dependency anchor. Created here so a stack reports every resource it has.
"""

from __future__ import annotations

from urllib.parse import quote

from moto.core.common_models import CloudFormationModel

from emulator.handlers.base import Emulated


class WaitConditionHandleHandler(Emulated, CloudFormationModel):
    """A wait condition handle: `Ref` is the URL a signal would be sent to."""

    TYPE = "AWS::CloudFormation::WaitConditionHandle"

    def create(self, name: str) -> None:
        self.physical_id = (
            f"https://cloudformation-waitcondition-{self.region_name}.s3.amazonaws.com/"
            f"{quote(name, safe='')}"
        )

    def update(self, properties: object) -> None:
        """A handle has no properties to change."""

    def remove(self) -> None:
        """Nothing to delete: the handle is only a URL."""


HANDLERS = (WaitConditionHandleHandler,)
