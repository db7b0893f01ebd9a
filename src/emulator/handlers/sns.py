"""AWS::SNS::Subscription, which moto's CloudFormation skips, through moto's SNS backend."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from moto.core.common_models import CloudFormationModel
from moto.sns.models import SNSBackend, sns_backends

from emulator.handlers.base import Emulated, truthy

# Subscription properties CloudFormation sets as subscription attributes, FilterPolicyScope
# first: moto validates a filter policy against the scope already set.
ATTRIBUTE_PROPERTIES = (
    "FilterPolicyScope",
    "FilterPolicy",
    "DeliveryPolicy",
    "RawMessageDelivery",
    "RedrivePolicy",
    "SubscriptionRoleArn",
)


def attribute_value(name: str, value: Any) -> str:
    """A subscription attribute as SetSubscriptionAttributes takes it."""
    if name == "RawMessageDelivery":
        return "true" if truthy(value) else "false"
    return value if isinstance(value, str) else json.dumps(value)


class SubscriptionHandler(Emulated, CloudFormationModel):
    """A subscription of an endpoint to a topic (an email one stays pending, as on AWS)."""

    TYPE = "AWS::SNS::Subscription"

    @property
    def backend(self) -> SNSBackend:
        return sns_backends[self.account_id][self.region_name]

    def create(self, name: str) -> None:
        p = self.properties
        subscription = self.backend.subscribe(str(p["TopicArn"]), str(p["Endpoint"]), p["Protocol"])
        self.physical_id = subscription.arn
        self.update(p)

    def update(self, properties: Mapping[str, Any]) -> None:
        for name in ATTRIBUTE_PROPERTIES:
            if name in properties:
                value = attribute_value(name, properties[name])
                self.backend.set_subscription_attributes(self.physical_id, name, value)
        for name in reversed(ATTRIBUTE_PROPERTIES):
            if name in self.properties and name not in properties:
                self.clear(name)

    def clear(self, name: str) -> None:
        """A property gone from the template: SNS's default again (the attribute unset)."""
        if name == "RawMessageDelivery":
            self.backend.set_subscription_attributes(self.physical_id, name, "false")
            return
        self.backend.set_subscription_attributes(self.physical_id, name, "")
        subscription = next(
            s for s in self.backend.subscriptions.values() if s.arn == self.physical_id
        )
        subscription.attributes.pop(name, None)

    def remove(self) -> None:
        self.backend.unsubscribe(self.physical_id)


HANDLERS = (SubscriptionHandler,)
