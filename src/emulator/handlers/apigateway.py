"""API Gateway REST API types moto's CloudFormation skips or creates only in part.

moto skips Stage, ApiKey, UsagePlan, UsagePlanKey, GatewayResponse, RequestValidator, Model
and Account; its Method handler drops the request validator, models, parameters, method and
integration responses and mapping templates (a MOCK preflight would answer nothing), and its
Method and Deployment handlers can neither update nor delete. Each type here is created
through moto's APIGatewayBackend, the same calls its REST API makes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from moto.apigateway.models import APIGatewayBackend, apigateway_backends
from moto.core.common_models import CloudFormationModel

from emulator.handlers.base import Emulated, is_not_found, tag_map, truthy

# CloudFormation's MethodSetting property -> the path suffix UpdateStage patches.
METHOD_SETTING_PATHS = {
    "CacheDataEncrypted": "caching/dataEncrypted",
    "CacheTtlInSeconds": "caching/ttlInSeconds",
    "CachingEnabled": "caching/enabled",
    "DataTraceEnabled": "logging/dataTrace",
    "LoggingLevel": "logging/loglevel",
    "MetricsEnabled": "metrics/enabled",
    "ThrottlingBurstLimit": "throttling/burstLimit",
    "ThrottlingRateLimit": "throttling/rateLimit",
}


def patch_value(value: Any) -> str:
    """A value as API Gateway's PATCH operations carry it (booleans lower case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class ApiGatewayResource(Emulated):
    """A resource of one REST API."""

    @property
    def backend(self) -> APIGatewayBackend:
        return apigateway_backends[self.account_id][self.region_name]

    @property
    def api_id(self) -> str:
        return str(self.properties["RestApiId"])


class StageHandler(ApiGatewayResource, CloudFormationModel):
    """AWS::ApiGateway::Stage: method settings, access logs, tracing, variables, tags."""

    TYPE = "AWS::ApiGateway::Stage"
    NAME_PROPERTY = "StageName"

    def create(self, name: str) -> None:
        p = self.properties
        self.physical_id = str(p.get("StageName") or name)
        self.backend.create_stage(
            self.api_id,
            self.physical_id,
            deploymentId=str(p["DeploymentId"]),
            variables=dict(p.get("Variables", {})),
            description=p.get("Description", ""),
            cacheClusterEnabled=truthy(p.get("CacheClusterEnabled", False)),
            cacheClusterSize=p.get("CacheClusterSize"),
            tags=tag_map(p) or None,
            tracing_enabled=truthy(p.get("TracingEnabled", False)),
        )
        self.backend.update_stage(self.api_id, self.physical_id, self.settings_operations(p))

    def update(self, properties: Mapping[str, Any]) -> None:
        stage = self.backend.get_stage(self.api_id, self.physical_id)
        # CloudFormation sets the whole stage from the template; moto's UpdateStage can
        # replace a method setting but not remove one, so start from none.
        stage.method_settings = {}
        stage.access_log_settings = None
        stage.deployment_id = str(properties["DeploymentId"])
        stage.description = properties.get("Description", "")
        stage.variables = dict(properties.get("Variables", {}))
        stage.tracing_enabled = truthy(properties.get("TracingEnabled", False))
        stage.tags = tag_map(properties) or None
        operations = [
            {
                "op": "replace",
                "path": "/cacheClusterEnabled",
                "value": patch_value(truthy(properties.get("CacheClusterEnabled", False))),
            },
            *self.settings_operations(properties),
        ]
        self.backend.update_stage(self.api_id, self.physical_id, operations)

    @staticmethod
    def settings_operations(properties: Mapping[str, Any]) -> list[dict[str, str]]:
        """UpdateStage operations for the method settings and the access log."""
        operations = []
        for setting in properties.get("MethodSettings", []):
            resource = str(setting.get("ResourcePath", "/*")).lstrip("/").replace("/", "~1")
            prefix = f"/{resource}/{setting.get('HttpMethod', '*')}"
            for name, path in METHOD_SETTING_PATHS.items():
                if name in setting:
                    operations.append(
                        {
                            "op": "replace",
                            "path": f"{prefix}/{path}",
                            "value": patch_value(setting[name]),
                        }
                    )
        access_log = properties.get("AccessLogSetting")
        if access_log:
            for name, path in (("DestinationArn", "destinationArn"), ("Format", "format")):
                if name in access_log:
                    operations.append(
                        {
                            "op": "replace",
                            "path": f"/accessLogSettings/{path}",
                            "value": access_log[name],
                        }
                    )
        return operations

    def remove(self) -> None:
        self.backend.delete_stage(self.api_id, self.physical_id)


class DeploymentHandler(ApiGatewayResource, CloudFormationModel):
    """AWS::ApiGateway::Deployment, with its id as Ref and a delete (moto's has neither)."""

    TYPE = "AWS::ApiGateway::Deployment"

    def create(self, name: str) -> None:
        p = self.properties
        deployment = self.backend.create_deployment(
            self.api_id, name=p.get("StageName"), description=p.get("Description", "")
        )
        self.physical_id = deployment.id

    def update(self, properties: Mapping[str, Any]) -> None:
        deployment = self.backend.get_deployment(self.api_id, self.physical_id)
        deployment.description = properties.get("Description", "")

    def remove(self) -> None:
        self.backend.delete_deployment(self.api_id, self.physical_id)


class MethodHandler(ApiGatewayResource, CloudFormationModel):
    """AWS::ApiGateway::Method with everything the template says: validator, models,
    parameters, method responses, the integration with its templates and responses."""

    TYPE = "AWS::ApiGateway::Method"

    def create(self, name: str) -> None:
        self.physical_id = self.put(self.properties)

    def update(self, properties: Mapping[str, Any]) -> None:
        # PutMethod replaces the method with its integration and responses: CloudFormation's
        # update of a method is the whole definition again.
        self.put(properties)

    def put(self, p: Mapping[str, Any]) -> str:
        api, resource, verb = self.api_id, str(p["ResourceId"]), str(p["HttpMethod"])
        backend = self.backend
        backend.put_method(
            api,
            resource,
            verb,
            authorization_type=p.get("AuthorizationType", "NONE"),
            api_key_required=truthy(p.get("ApiKeyRequired", False)),
            request_parameters=dict(p.get("RequestParameters", {})) or None,
            request_models=dict(p.get("RequestModels", {})) or None,
            operation_name=p.get("OperationName"),
            authorizer_id=p.get("AuthorizerId"),
            authorization_scopes=p.get("AuthorizationScopes"),
            request_validator_id=p.get("RequestValidatorId"),
        )
        for response in p.get("MethodResponses", []):
            backend.put_method_response(
                api,
                resource,
                verb,
                str(response["StatusCode"]),
                response_models=dict(response.get("ResponseModels", {})),
                response_parameters={
                    key: truthy(value)
                    for key, value in response.get("ResponseParameters", {}).items()
                },
            )
        integration = p.get("Integration")
        if integration:
            backend.put_integration(
                api,
                resource,
                verb,
                integration_type=integration["Type"],
                uri=integration.get("Uri", ""),
                integration_method=integration.get("IntegrationHttpMethod", verb),
                credentials=integration.get("Credentials"),
                request_templates=dict(integration.get("RequestTemplates", {})) or None,
                passthrough_behavior=integration.get("PassthroughBehavior"),
                cache_namespace=integration.get("CacheNamespace"),
                timeout_in_millis=integration.get("TimeoutInMillis"),
                request_parameters=dict(integration.get("RequestParameters", {})) or None,
                content_handling=integration.get("ContentHandling"),
                connection_type=integration.get("ConnectionType"),
            )
            for response in integration.get("IntegrationResponses", []):
                backend.put_integration_response(
                    api,
                    resource,
                    verb,
                    str(response["StatusCode"]),
                    selection_pattern=response.get("SelectionPattern"),
                    response_templates=dict(response.get("ResponseTemplates", {})),
                    response_parameters=dict(response.get("ResponseParameters", {})),
                    content_handling=response.get("ContentHandling"),
                )
        return verb

    def remove(self) -> None:
        self.backend.delete_method(
            self.api_id, str(self.properties["ResourceId"]), self.physical_id
        )


class ApiKeyHandler(ApiGatewayResource, CloudFormationModel):
    """AWS::ApiGateway::ApiKey (its value is never an output: GetApiKey includeValue reads it)."""

    TYPE = "AWS::ApiGateway::ApiKey"
    NAME_PROPERTY = "Name"
    ATTRIBUTES = ("APIKeyId",)

    def create(self, name: str) -> None:
        p = self.properties
        payload = {
            "name": p.get("Name") or name,
            "description": p.get("Description"),
            "enabled": truthy(p.get("Enabled", False)),
            "generateDistinctId": truthy(p.get("GenerateDistinctId", False)),
            "value": p.get("Value"),
            "stageKeys": [f"{k['RestApiId']}/{k['StageName']}" for k in p.get("StageKeys", [])],
            "tags": tag_map(p) or None,
            "customerId": p.get("CustomerId"),
        }
        self.physical_id = self.backend.create_api_key(payload).id

    def update(self, properties: Mapping[str, Any]) -> None:
        key = self.backend.get_api_key(self.physical_id)
        key.description = properties.get("Description")
        key.enabled = truthy(properties.get("Enabled", False))
        key.customer_id = properties.get("CustomerId")
        key.stage_keys = [
            f"{k['RestApiId']}/{k['StageName']}" for k in properties.get("StageKeys", [])
        ]
        key.tags = tag_map(properties) or None

    def remove(self) -> None:
        self.backend.delete_api_key(self.physical_id)

    def attribute(self, name: str) -> Any:
        return self.physical_id


def usage_plan_fields(p: Mapping[str, Any]) -> dict[str, Any]:
    """CloudFormation's UsagePlan properties as the API's usage plan fields."""

    def throttle(value: Mapping[str, Any]) -> dict[str, Any]:
        limits = {}
        if "BurstLimit" in value:
            limits["burstLimit"] = int(value["BurstLimit"])
        if "RateLimit" in value:
            limits["rateLimit"] = float(value["RateLimit"])
        return limits

    stages = []
    for stage in p.get("ApiStages", []):
        entry: dict[str, Any] = {"apiId": str(stage["ApiId"]), "stage": str(stage["Stage"])}
        if stage.get("Throttle"):
            entry["throttle"] = {path: throttle(t) for path, t in stage["Throttle"].items()}
        stages.append(entry)
    quota = {}
    for name, key in (("Limit", "limit"), ("Offset", "offset"), ("Period", "period")):
        if name in p.get("Quota", {}):
            quota[key] = p["Quota"][name]
    return {
        "description": p.get("Description"),
        "apiStages": stages,
        "throttle": throttle(p.get("Throttle", {})),
        "quota": quota,
        "tags": tag_map(p) or None,
    }


class UsagePlanHandler(ApiGatewayResource, CloudFormationModel):
    """AWS::ApiGateway::UsagePlan: stages, throttle, quota."""

    TYPE = "AWS::ApiGateway::UsagePlan"
    NAME_PROPERTY = "UsagePlanName"
    ATTRIBUTES = ("Id",)

    def create(self, name: str) -> None:
        payload = {"name": self.properties.get("UsagePlanName") or name}
        payload.update(usage_plan_fields(self.properties))
        self.check_stages(payload["apiStages"])
        self.physical_id = self.backend.create_usage_plan(payload).id

    def check_stages(self, stages: list[dict[str, Any]]) -> None:
        """API Gateway refuses a plan naming a stage that does not exist (yet): so do we."""
        for stage in stages:
            try:
                self.backend.get_stage(stage["apiId"], stage["stage"])
            except Exception as error:
                if not is_not_found(error):
                    raise
                raise ValueError(
                    f"API Stage not found: {stage['apiId']}:{stage['stage']} (a usage plan "
                    "must depend on its stage)"
                ) from None

    def update(self, properties: Mapping[str, Any]) -> None:
        plan = self.backend.get_usage_plan(self.physical_id)
        fields = usage_plan_fields(properties)
        self.check_stages(fields["apiStages"])
        plan.name = properties.get("UsagePlanName") or plan.name
        plan.description = fields["description"]
        plan.api_stages = fields["apiStages"]
        plan.throttle = fields["throttle"]
        plan.quota = fields["quota"]
        plan.tags = fields["tags"]

    def remove(self) -> None:
        self.backend.delete_usage_plan(self.physical_id)

    def attribute(self, name: str) -> Any:
        return self.physical_id


class UsagePlanKeyHandler(ApiGatewayResource, CloudFormationModel):
    """AWS::ApiGateway::UsagePlanKey: an API key in a usage plan."""

    TYPE = "AWS::ApiGateway::UsagePlanKey"
    ATTRIBUTES = ("Id",)

    def create(self, name: str) -> None:
        p = self.properties
        key = self.backend.create_usage_plan_key(
            str(p["UsagePlanId"]), {"keyId": str(p["KeyId"]), "keyType": p["KeyType"]}
        )
        self.physical_id = key.id

    def remove(self) -> None:
        self.backend.delete_usage_plan_key(str(self.properties["UsagePlanId"]), self.physical_id)

    def attribute(self, name: str) -> Any:
        return self.physical_id


class GatewayResponseHandler(ApiGatewayResource, CloudFormationModel):
    """AWS::ApiGateway::GatewayResponse: API Gateway's own error answers (CORS headers)."""

    TYPE = "AWS::ApiGateway::GatewayResponse"

    def create(self, name: str) -> None:
        self.put(self.properties)
        self.physical_id = f"{self.api_id}-{self.properties['ResponseType']}"

    def update(self, properties: Mapping[str, Any]) -> None:
        self.put(properties)

    def put(self, p: Mapping[str, Any]) -> None:
        self.backend.put_gateway_response(
            str(p["RestApiId"]),
            p["ResponseType"],
            status_code=p.get("StatusCode"),
            response_parameters=dict(p.get("ResponseParameters", {})) or None,
            response_templates=dict(p.get("ResponseTemplates", {})) or None,
        )

    def remove(self) -> None:
        self.backend.delete_gateway_response(self.api_id, self.properties["ResponseType"])


class RequestValidatorHandler(ApiGatewayResource, CloudFormationModel):
    """AWS::ApiGateway::RequestValidator."""

    TYPE = "AWS::ApiGateway::RequestValidator"
    NAME_PROPERTY = "Name"
    ATTRIBUTES = ("RequestValidatorId",)

    def create(self, name: str) -> None:
        p = self.properties
        validator = self.backend.create_request_validator(
            self.api_id,
            p.get("Name") or name,
            truthy(p.get("ValidateRequestBody", False)),
            truthy(p.get("ValidateRequestParameters", False)),
        )
        self.physical_id = validator.id

    def update(self, properties: Mapping[str, Any]) -> None:
        operations = [
            {
                "op": "replace",
                "path": f"/{field}",
                "value": patch_value(truthy(properties.get(name, False))),
            }
            for name, field in (
                ("ValidateRequestBody", "validateRequestBody"),
                ("ValidateRequestParameters", "validateRequestParameters"),
            )
        ]
        self.backend.update_request_validator(self.api_id, self.physical_id, operations)

    def remove(self) -> None:
        self.backend.delete_request_validator(self.api_id, self.physical_id)

    def attribute(self, name: str) -> Any:
        return self.physical_id


def schema_text(schema: Any) -> str | None:
    """A model schema as the API stores it: JSON text (templates may give an object)."""
    if schema is None or isinstance(schema, str):
        return schema
    return json.dumps(schema)


class ModelHandler(ApiGatewayResource, CloudFormationModel):
    """AWS::ApiGateway::Model: a JSON schema methods and validators refer to by name."""

    TYPE = "AWS::ApiGateway::Model"
    NAME_PROPERTY = "Name"

    def create(self, name: str) -> None:
        p = self.properties
        model = self.backend.create_model(
            self.api_id,
            p.get("Name") or name,
            content_type=p.get("ContentType", "application/json"),
            description=p.get("Description", ""),
            schema=schema_text(p.get("Schema")),
        )
        self.physical_id = model.name

    def update(self, properties: Mapping[str, Any]) -> None:
        model = self.backend.get_model(self.api_id, self.physical_id)
        model.schema = schema_text(properties.get("Schema"))
        model.description = properties.get("Description", "")

    def remove(self) -> None:
        self.backend.delete_model(self.api_id, self.physical_id)


class AccountHandler(ApiGatewayResource, CloudFormationModel):
    """AWS::ApiGateway::Account: the region's CloudWatch Logs role for API Gateway.

    Deleting it leaves the setting as it is, as on AWS (the account keeps its role).
    """

    TYPE = "AWS::ApiGateway::Account"

    def create(self, name: str) -> None:
        self.update(self.properties)
        self.physical_id = f"{self.account_id}-{self.region_name}-apigateway-account"

    def update(self, properties: Mapping[str, Any]) -> None:
        role = properties.get("CloudWatchRoleArn")
        if role:
            self.backend.update_account(
                [{"op": "replace", "path": "/cloudwatchRoleArn", "value": str(role)}]
            )

    def remove(self) -> None:
        """Nothing: CloudFormation leaves the account setting in place on delete."""


HANDLERS = (
    StageHandler,
    DeploymentHandler,
    MethodHandler,
    ApiKeyHandler,
    UsagePlanHandler,
    UsagePlanKeyHandler,
    GatewayResponseHandler,
    RequestValidatorHandler,
    ModelHandler,
    AccountHandler,
)
