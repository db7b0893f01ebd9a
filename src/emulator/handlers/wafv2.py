"""WAFv2 types moto's CloudFormation skips: WebACL, WebACLAssociation, LoggingConfiguration.

Built on moto's WAFV2 backend: the web ACL, its rules, its association with an API Gateway
stage (GetWebACLForResource, the stage's webAclArn) and its logging destinations are stored
and read back as on AWS. No rule is evaluated: nothing here inspects or blocks a request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from moto.apigateway.models import apigateway_backends
from moto.core.common_models import CloudFormationModel
from moto.wafv2.models import WAFV2Backend, wafv2_backends

from emulator.handlers.base import Emulated, is_not_found, tag_list

# WAF accepts only destinations whose name starts with this (CloudWatch Logs, S3, Firehose).
LOG_DESTINATION_PREFIX = "aws-waf-logs-"


STAGE_ARN = re.compile(r"^arn:[\w-]+:apigateway:([\w-]+)::/restapis/([^/]+)/stages/([^/]+)$")


def destination_name(arn: str) -> str:
    """The name of a WAF log destination: log group, S3 bucket or Firehose stream."""
    parts = arn.split(":", 5)
    service, resource = (parts[2], parts[5]) if len(parts) == 6 else ("", arn)
    if service == "logs":
        return resource.removeprefix("log-group:").removesuffix(":*")
    if service == "s3":
        return resource.split("/", 1)[0]
    if service == "firehose":
        return resource.removeprefix("deliverystream/")
    return resource


class WafResource(Emulated):
    """A WAFv2 resource of this account and region (CLOUDFRONT scope lives in us-east-1)."""

    @property
    def backend(self) -> WAFV2Backend:
        region = "global" if self.properties.get("Scope") == "CLOUDFRONT" else self.region_name
        return wafv2_backends[self.account_id][region]


def acl_fields(p: Mapping[str, Any]) -> dict[str, Any]:
    """The web ACL's definition, as CreateWebACL and UpdateWebACL take it."""
    return {
        "default_action": p["DefaultAction"],
        "rules": list(p.get("Rules", [])),
        "description": p.get("Description"),
        "visibility_config": p["VisibilityConfig"],
        "custom_response_bodies": p.get("CustomResponseBodies"),
        "captcha_config": p.get("CaptchaConfig"),
        "challenge_config": p.get("ChallengeConfig"),
        "token_domains": p.get("TokenDomains"),
        "association_config": p.get("AssociationConfig"),
    }


class WebAclHandler(WafResource, CloudFormationModel):
    """AWS::WAFv2::WebACL; `Ref` is `name|id|scope` as on AWS."""

    TYPE = "AWS::WAFv2::WebACL"
    NAME_PROPERTY = "Name"
    ATTRIBUTES = ("Arn", "Id", "LabelNamespace", "Capacity")

    def create(self, name: str) -> None:
        p = self.properties
        self.acl = self.backend.create_web_acl(
            name=p.get("Name") or name, scope=p["Scope"], tags=tag_list(p), **acl_fields(p)
        )
        self.physical_id = f"{self.acl.name}|{self.acl.id}|{p['Scope']}"

    def update(self, properties: Mapping[str, Any]) -> None:
        self.backend.update_web_acl(
            name=self.acl.name,
            _id=self.acl.id,
            lock_token=self.acl.lock_token,
            **acl_fields(properties),
        )
        self.backend.tag_resource(self.acl.arn, tag_list(properties))

    def remove(self) -> None:
        self.backend.delete_web_acl(
            self.acl.name, self.properties["Scope"], self.acl.id, self.acl.lock_token
        )

    def attribute(self, name: str) -> Any:
        return {
            "Arn": self.acl.arn,
            "Id": self.acl.id,
            "LabelNamespace": self.acl.label_namespace,
            "Capacity": self.acl.capacity,
        }[name]


class WebAclAssociationHandler(WafResource, CloudFormationModel):
    """AWS::WAFv2::WebACLAssociation: a web ACL in front of a stage (or load balancer...)."""

    TYPE = "AWS::WAFv2::WebACLAssociation"

    def create(self, name: str) -> None:
        p = self.properties
        stage = self.stage()
        self.backend.associate_web_acl(str(p["WebACLArn"]), str(p["ResourceArn"]))
        if stage is not None:
            stage.web_acl_arn = str(p["WebACLArn"])  # moto matches only alphanumeric names
        self.physical_id = f"{p['ResourceArn']}|{p['WebACLArn']}"

    def stage(self) -> Any:
        """The API Gateway stage the association protects (None for another resource type).

        WAF refuses to associate a resource that does not exist (yet), so a template whose
        association does not depend on its stage fails here as on AWS.
        """
        match = STAGE_ARN.match(str(self.properties["ResourceArn"]))
        if match is None:
            return None
        region, api, stage = match.groups()
        try:
            return apigateway_backends[self.account_id][region].get_stage(api, stage)
        except Exception as error:
            if not is_not_found(error):
                raise
            raise ValueError(
                "AWS WAF couldn't perform the operation because your resource doesn't exist: "
                f"{self.properties['ResourceArn']}"
            ) from None

    def remove(self) -> None:
        self.backend.disassociate_web_acl(str(self.properties["ResourceArn"]))
        try:
            stage = self.stage()
        except ValueError:  # the stage went first
            return
        if stage is not None:
            stage.web_acl_arn = None


class LoggingConfigurationHandler(WafResource, CloudFormationModel):
    """AWS::WAFv2::LoggingConfiguration: where a web ACL's request logs go; `Ref` is the ACL ARN."""

    TYPE = "AWS::WAFv2::LoggingConfiguration"
    ATTRIBUTES = ("ManagedByFirewallManager",)

    @property
    def backend(self) -> WAFV2Backend:
        # The scope is in the web ACL's ARN: arn:...:wafv2:REGION:ACCOUNT:regional/webacl/...
        scope = str(self.properties["ResourceArn"]).split(":")[5].split("/")[0]
        region = "global" if scope == "global" else self.region_name
        return wafv2_backends[self.account_id][region]

    def create(self, name: str) -> None:
        self.physical_id = str(self.properties["ResourceArn"])
        self.update(self.properties)

    def update(self, properties: Mapping[str, Any]) -> None:
        destinations = [str(d) for d in properties["LogDestinationConfigs"]]
        for destination in destinations:
            # What WAF itself refuses (WAFInvalidParameterException), so a template that
            # would fail on AWS fails here too.
            name = destination_name(destination)
            if not name.startswith(LOG_DESTINATION_PREFIX):
                raise ValueError(
                    f"WAF logging destination {destination}: its name must start with "
                    f"{LOG_DESTINATION_PREFIX!r}"
                )
        self.backend.put_logging_configuration(
            self.physical_id,
            destinations,
            properties.get("RedactedFields"),
            False,
            properties.get("LoggingFilter"),
        )

    def remove(self) -> None:
        self.backend.delete_logging_configuration(self.physical_id)

    def attribute(self, name: str) -> Any:
        return False


HANDLERS = (WebAclHandler, WebAclAssociationHandler, LoggingConfigurationHandler)
