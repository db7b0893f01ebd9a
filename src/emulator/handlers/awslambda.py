"""AWS::Lambda::Permission through moto's Lambda backend.

moto's own model adds the statement but keeps nothing to find it by: a permission removed
from the template stayed in the function's policy, still granting what the template revoked.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from moto.awslambda.models import LambdaFunction, lambda_backends
from moto.core.common_models import CloudFormationModel

from emulator.handlers.base import Emulated, generated_id

# Template properties AddPermission puts into the statement (FunctionName names the target).
STATEMENT_PROPERTIES = (
    "Action",
    "Principal",
    "SourceArn",
    "SourceAccount",
    "PrincipalOrgID",
    "EventSourceToken",
    "FunctionUrlAuthType",
)


class PermissionHandler(Emulated, CloudFormationModel):
    """One statement of a function's resource policy (every property replaces it, as on AWS)."""

    TYPE = "AWS::Lambda::Permission"
    ATTRIBUTES = ("Id",)

    def function(self) -> LambdaFunction:
        backend = lambda_backends[self.account_id][self.region_name]
        return backend.get_function(str(self.properties["FunctionName"]))

    def create(self, name: str) -> None:
        self.physical_id = generated_id(name)
        statement = {k: self.properties[k] for k in STATEMENT_PROPERTIES if k in self.properties}
        statement["StatementId"] = self.physical_id
        self.function().policy.add_statement(raw=json.dumps(statement))

    def update(self, properties: Mapping[str, Any]) -> None:
        """Every property of a permission is create-only: nothing is updated in place."""

    def remove(self) -> None:
        self.function().policy.del_statement(self.physical_id)

    def attribute(self, name: str) -> Any:
        return self.physical_id


HANDLERS = (PermissionHandler,)
