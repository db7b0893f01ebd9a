"""One test per requirement of seed 001 and of issue 3, on the payment-platform template."""

from __future__ import annotations

import json
import re

import pytest

from tests.templates.cfn import (
    one,
    props,
    refs_to,
    resources,
    role_statements,
    table_named_by_arn,
    walk,
)
from tests.templates.platform_rules import dead_letter_queues, target

API_ROUTES = {
    ("/validate-payment", "POST"),
    ("/process-payment", "POST"),
    ("/payments/{transactionId}", "GET"),
    ("/health", "GET"),
}


@pytest.fixture(scope="module")
def platform(all_templates) -> dict:
    return all_templates["payment-platform"]


def methods(template: dict) -> dict[tuple[str, str], dict]:
    """(path, verb) -> method Properties, paths rebuilt from the Resource tree."""
    nodes = resources(template, "AWS::ApiGateway::Resource")

    def path_of(resource_id) -> str:
        logical_id = target(resource_id)
        if logical_id not in nodes:
            return ""
        node = props(nodes[logical_id])
        return path_of(node["ParentId"]) + "/" + node["PathPart"]

    return {
        (path_of(props(m)["ResourceId"]) or "/", props(m)["HttpMethod"]): props(m)
        for m in resources(template, "AWS::ApiGateway::Method").values()
    }


def alarms_on(template: dict, namespace: str, metric: str) -> list[dict]:
    """Alarm Properties watching one metric, directly or inside metric math."""
    found = []
    for alarm in resources(template, "AWS::CloudWatch::Alarm").values():
        p = props(alarm)
        watched = {(p.get("Namespace"), p.get("MetricName"))}
        for query in p.get("Metrics", []):
            metric_def = query.get("MetricStat", {}).get("Metric", {})
            watched.add((metric_def.get("Namespace"), metric_def.get("MetricName")))
        if (namespace, metric) in watched:
            found.append(p)
    return found


# ---- 1. API layer ----


@pytest.mark.requirement("S001-API")
def test_rest_api_is_regional_with_the_design_routes(platform):
    _, api = one(platform, "AWS::ApiGateway::RestApi")
    assert props(api)["EndpointConfiguration"]["Types"] == ["REGIONAL"]
    assert API_ROUTES <= set(methods(platform))


@pytest.mark.requirement("S001-API")
def test_api_is_monitored_access_logs_metrics_tracing(platform):
    _, stage = one(platform, "AWS::ApiGateway::Stage")
    p = props(stage)
    assert p["StageName"] == "prod"
    assert p["TracingEnabled"] is True
    assert "DestinationArn" in p["AccessLogSetting"]
    (setting,) = p["MethodSettings"]
    assert setting["MetricsEnabled"] is True
    assert setting["LoggingLevel"] == "INFO"
    assert setting["DataTraceEnabled"] is False


@pytest.mark.requirement("S001-API-THROTTLING")
def test_api_throttles_every_method_and_every_key(platform):
    _, stage = one(platform, "AWS::ApiGateway::Stage")
    (setting,) = props(stage)["MethodSettings"]
    assert (setting["ResourcePath"], setting["HttpMethod"]) == ("/*", "*")
    assert setting["ThrottlingRateLimit"] > 0 and setting["ThrottlingBurstLimit"] > 0
    _, plan = one(platform, "AWS::ApiGateway::UsagePlan")
    assert props(plan)["Throttle"]["RateLimit"] > 0
    assert props(plan)["Quota"]["Period"] == "DAY"


@pytest.mark.requirement("S001-API-HEALTH", "S001-API-SECURITY")
def test_payment_routes_need_the_api_key_and_health_does_not(platform):
    found = methods(platform)
    for route in API_ROUTES - {("/health", "GET")}:
        assert found[route]["ApiKeyRequired"] is True, route
    assert found[("/health", "GET")]["ApiKeyRequired"] is False


@pytest.mark.requirement("S001-API-SECURITY")
def test_post_bodies_are_validated_against_a_model(platform):
    found = methods(platform)
    validators = resources(platform, "AWS::ApiGateway::RequestValidator")
    models = resources(platform, "AWS::ApiGateway::Model")
    for route in (("/validate-payment", "POST"), ("/process-payment", "POST")):
        method = found[route]
        assert props(validators[target(method["RequestValidatorId"])])["ValidateRequestBody"]
        schema = props(models[target(method["RequestModels"]["application/json"])])["Schema"]
        schema = json.loads(schema) if isinstance(schema, str) else schema
        assert schema["type"] == "object"
        assert set(schema["required"]) == {"amount", "currency", "paymentToken", "merchantId"}


@pytest.mark.requirement("S001-INTEGRITY")
def test_process_payment_requires_the_idempotency_key_header(platform):
    method = methods(platform)[("/process-payment", "POST")]
    assert method["RequestParameters"]["method.request.header.Idempotency-Key"] is True


@pytest.mark.requirement("S001-FUNCTIONS")
def test_every_route_proxies_to_its_function(platform):
    expected = {
        ("/validate-payment", "POST"): "ValidationFunction",
        ("/process-payment", "POST"): "ProcessingFunction",
        ("/payments/{transactionId}", "GET"): "ProcessingFunction",
        ("/health", "GET"): "HealthFunction",
    }
    found = methods(platform)
    for route, function_id in expected.items():
        integration = found[route]["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        assert refs_to(integration["Uri"], function_id), route


@pytest.mark.requirement("S001-API-SECURITY", "PCI.DSS.321-LambdaFunctionPublicAccessProhibited")
def test_each_route_may_invoke_only_its_function(platform):
    permissions = [
        props(p)
        for p in resources(platform, "AWS::Lambda::Permission").values()
        if props(p)["Principal"] == "apigateway.amazonaws.com"
    ]
    assert len(permissions) == len(API_ROUTES)
    for permission in permissions:
        arn = permission["SourceArn"]["Fn::Sub"]
        arn = arn[0] if isinstance(arn, list) else arn
        assert "/prod/" in arn and not arn.endswith("/*/*"), arn


# ---- 2. Processing layer ----


@pytest.mark.requirement("S001-FUNCTIONS", "S001-HEALTH-FUNCTION")
def test_three_functions_validation_processing_health(platform, naming):
    names = {
        props(f)["FunctionName"] for f in resources(platform, "AWS::Lambda::Function").values()
    }
    assert f"payment-processor-{naming.suffix}" in names
    assert len(names) == 3


@pytest.mark.requirement("S001-FUNCTION-SIZING")
def test_every_function_has_an_explicit_timeout_and_memory(platform):
    for logical_id, fn in resources(platform, "AWS::Lambda::Function").items():
        p = props(fn)
        assert 1 <= p["Timeout"] <= 60, logical_id
        assert 128 <= p["MemorySize"] <= 1024, logical_id


@pytest.mark.requirement("S001-FUNCTION-SIZING")
def test_api_functions_time_out_before_api_gateway_does(platform):
    """API Gateway gives up after 29 s; a function on the API path must stop first."""
    for path_method, method in methods(platform).items():
        if method["Integration"]["Type"] != "AWS_PROXY":
            continue
        function_id = next(
            fid
            for fid in resources(platform, "AWS::Lambda::Function")
            if refs_to(method["Integration"]["Uri"], fid)
        )
        if function_id != "HealthFunction":
            assert props(platform["Resources"][function_id])["Timeout"] < 29, path_method


@pytest.mark.requirement("S001-NO-RESERVED-CONCURRENCY")
def test_no_function_reserves_concurrency(platform):
    for logical_id, fn in resources(platform, "AWS::Lambda::Function").items():
        assert "ReservedConcurrentExecutions" not in props(fn), logical_id
        skips = {s["id"] for s in fn["Metadata"]["checkov"]["skip"]}
        assert "CKV_AWS_115" in skips, logical_id


def test_every_function_traces_with_xray(platform):
    for logical_id, fn in resources(platform, "AWS::Lambda::Function").items():
        assert props(fn)["TracingConfig"] == {"Mode": "Active"}, logical_id


def test_runtime_is_a_supported_python(platform):
    for fn in resources(platform, "AWS::Lambda::Function").values():
        major, minor = map(int, re.fullmatch(r"python(\d)\.(\d+)", props(fn)["Runtime"]).groups())
        assert (major, minor) >= (3, 12)


@pytest.mark.requirement("S001-FUNCTION-LOGS")
def test_every_function_log_group_has_a_retention(platform):
    groups = {
        props(g)["LogGroupName"]: props(g)
        for g in resources(platform, "AWS::Logs::LogGroup").values()
        if isinstance(props(g)["LogGroupName"], str)
    }
    for fn in resources(platform, "AWS::Lambda::Function").values():
        group = groups[f"/aws/lambda/{props(fn)['FunctionName']}"]
        assert group["RetentionInDays"] in (1, 3, 5, 7, 14, 30, 60, 90)


@pytest.mark.requirement("S001-SELF-HEALING", "S001-HEALTH-FUNCTION")
def test_health_monitor_runs_on_a_schedule(platform):
    _, rule = one(platform, "AWS::Events::Rule")
    p = props(rule)
    assert p["ScheduleExpression"] == "rate(5 minutes)"
    assert p["State"] == "ENABLED"
    (rule_target,) = p["Targets"]
    assert rule_target["Arn"] == {"Fn::GetAtt": ["HealthFunction", "Arn"]}
    (permission,) = [
        props(p)
        for p in resources(platform, "AWS::Lambda::Permission").values()
        if props(p)["Principal"] == "events.amazonaws.com"
    ]
    assert permission["FunctionName"] == {"Ref": "HealthFunction"}
    assert permission["SourceArn"] == {"Fn::GetAtt": ["HealthSchedule", "Arn"]}


# ---- 3. Data layer ----


@pytest.mark.requirement("S001-TABLE", "S001-ON-DEMAND", "S001-PITR", "S001-SELF-HEALING")
def test_table_is_on_demand_with_pitr_and_stack_key(platform):
    tables = resources(platform, "AWS::DynamoDB::Table")
    assert "TransactionsTable" in tables
    for table in tables.values():  # the acquirer's ledger too, when it exists
        p = props(table)
        assert p["BillingMode"] == "PAY_PER_REQUEST"
        assert "ProvisionedThroughput" not in p
        assert p["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert p["SSESpecification"]["SSEEnabled"] is True
        assert p["SSESpecification"]["SSEType"] == "KMS"
        assert p["SSESpecification"]["KMSMasterKeyId"] == {"Fn::GetAtt": ["StackKey", "Arn"]}
    assert props(tables["TransactionsTable"])["TimeToLiveSpecification"]["Enabled"] is True


def dimension_names(alarm: dict) -> set[str]:
    """Every dimension name an alarm's metrics use, directly or inside metric math."""
    found = {d["Name"] for d in alarm.get("Dimensions", [])}
    for query in alarm.get("Metrics", []):
        metric = query.get("MetricStat", {}).get("Metric", {})
        found |= {d["Name"] for d in metric.get("Dimensions", [])}
    return found


@pytest.mark.requirement("S001-TABLE-THROTTLE-ALARMS", "S001-ALARMS")
def test_table_throttles_and_system_errors_alarm(platform):
    """One table-level alarm each (index throttling: tests/templates/test_alarms_see.py)."""
    for metric in ("ReadThrottleEvents", "WriteThrottleEvents", "SystemErrors"):
        (alarm,) = [
            a
            for a in alarms_on(platform, "AWS/DynamoDB", metric)
            if "GlobalSecondaryIndexName" not in dimension_names(a)
        ]
        assert refs_to(alarm, "TransactionsTable"), metric


# ---- 4. Queues ----


@pytest.mark.requirement("S001-DLQ", "S001-QUEUE-RETENTION")
def test_failed_queue_has_a_dlq_kept_fourteen_days(platform):
    dlqs = dead_letter_queues(platform)
    assert dlqs == {"FailedTransactionsQueueDlq"}
    dlq = props(platform["Resources"]["FailedTransactionsQueueDlq"])
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    queue = props(platform["Resources"]["FailedTransactionsQueue"])
    # The DLQ keeps each message's original enqueue time: it must outlive the source.
    assert queue["MessageRetentionPeriod"] < dlq["MessageRetentionPeriod"]


def test_every_queue_is_encrypted_with_the_stack_key_not_sqs_managed(platform):
    for logical_id, queue in resources(platform, "AWS::SQS::Queue").items():
        assert props(queue)["KmsMasterKeyId"] == {"Fn::GetAtt": ["StackKey", "Arn"]}, logical_id
        assert "SqsManagedSseEnabled" not in props(queue), logical_id


@pytest.mark.requirement("S001-ALARMS")
def test_dlq_alarms_when_not_empty_and_queue_when_stale(platform):
    (dlq_alarm,) = [
        a
        for a in alarms_on(platform, "AWS/SQS", "ApproximateNumberOfMessagesVisible")
        if refs_to(a["Dimensions"], "FailedTransactionsQueueDlq")
    ]
    assert (dlq_alarm["ComparisonOperator"], dlq_alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    (age_alarm,) = alarms_on(platform, "AWS/SQS", "ApproximateAgeOfOldestMessage")
    assert refs_to(age_alarm["Dimensions"], "FailedTransactionsQueue")
    assert not refs_to(age_alarm["Dimensions"], "FailedTransactionsQueueDlq")


# ---- 5. Monitoring and alerts ----


@pytest.mark.requirement("S001-ALARMS")
def test_api_latency_p99_and_5xx_alarms_use_api_name_and_stage(platform):
    _, api = one(platform, "AWS::ApiGateway::RestApi")
    for metric in ("Latency", "5XXError"):
        (alarm,) = alarms_on(platform, "AWS/ApiGateway", metric)
        dimensions = {d["Name"]: d["Value"] for d in alarm["Dimensions"]}
        assert dimensions["ApiName"] == props(api)["Name"]
        assert dimensions["Stage"] == {"Ref": "ApiStage"}
    (latency,) = alarms_on(platform, "AWS/ApiGateway", "Latency")
    assert latency["ExtendedStatistic"] == "p99"


@pytest.mark.requirement("S001-ALARM-TOPIC", "PCI.DSS.321-SNSEncryptedKMS")
def test_alarm_topic_is_encrypted_with_a_key_cloudwatch_may_use(platform):
    _, topic = one(platform, "AWS::SNS::Topic")
    assert props(topic)["KmsMasterKeyId"] == {"Fn::GetAtt": ["StackKey", "Arn"]}
    _, key = one(platform, "AWS::KMS::Key")
    principals = [
        s.get("Principal", {}).get("Service")
        for s in props(key)["KeyPolicy"]["Statement"]
        if "kms:Decrypt" in s["Action"]
    ]
    assert "cloudwatch.amazonaws.com" in principals


@pytest.mark.requirement("S001-ALARM-TOPIC")
def test_alarm_topic_policy_is_tls_only(platform):
    _, policy = one(platform, "AWS::SNS::TopicPolicy")
    denies = [s for s in props(policy)["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert denies and denies[0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


@pytest.mark.requirement("S001-ALARM-TOPIC")
def test_email_subscription_only_when_an_address_is_given(platform):
    _, subscription = one(platform, "AWS::SNS::Subscription")
    condition = subscription["Condition"]
    assert platform["Conditions"][condition] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]
    }
    assert props(subscription)["Protocol"] == "email"
    email = platform["Parameters"]["AlarmEmail"]
    assert email["Default"] == ""
    assert re.fullmatch(email["AllowedPattern"], "")
    assert re.fullmatch(email["AllowedPattern"], "ops@example.com")
    assert not re.fullmatch(email["AllowedPattern"], "not an address")


@pytest.mark.requirement("S001-NAMING")
def test_every_alarm_name_follows_the_convention(platform, naming):
    for logical_id, alarm in resources(platform, "AWS::CloudWatch::Alarm").items():
        assert re.fullmatch(rf"[a-z0-9-]+-{naming.suffix}", props(alarm)["AlarmName"]), logical_id


@pytest.mark.requirement("S001-DASHBOARD", "S001-CLOUDWATCH")
def test_dashboard_shows_api_functions_table_and_queues(platform, naming):
    _, dashboard = one(platform, "AWS::CloudWatch::Dashboard")
    assert props(dashboard)["DashboardName"] == f"payment-platform-{naming.suffix}"
    text, variables = props(dashboard)["DashboardBody"]["Fn::Sub"]
    # Only our own placeholders and pseudo parameters: no stray `${` left unescaped.
    placeholders = set(re.findall(r"\$\{([^}!]+)\}", text))
    assert placeholders <= set(variables) | {"AWS::Region"}
    body = json.loads(text)
    namespaces = {
        metric[0]
        for widget in body["widgets"]
        for metric in widget["properties"].get("metrics", [])
    }
    assert namespaces == {"AWS/ApiGateway", "AWS/WAFV2", "AWS/Lambda", "AWS/DynamoDB", "AWS/SQS"}
    for function_id in resources(platform, "AWS::Lambda::Function"):
        assert {"Ref": function_id} in variables.values()


# ---- 6. Security ----


def test_every_queue_and_topic_refuses_plain_http(platform):
    """Each queue has a policy; what the policies deny: tests/templates/test_security.py."""
    covered = {
        target(q)
        for policy in resources(platform, "AWS::SQS::QueuePolicy").values()
        for q in props(policy)["Queues"]
    }
    assert covered == set(resources(platform, "AWS::SQS::Queue"))


@pytest.mark.requirement("S001-LEAST-PRIVILEGE")
def test_roles_only_name_resources_of_this_stack(platform):
    """Every Resource of every role is '*', a reference into this template, an alarm ARN
    built from this stack's alarm names, an index ARN of this stack's table, or an ARN built
    from this stack's subnets and security group (network interfaces Lambda creates)."""
    alarm_names = {
        props(a)["AlarmName"] for a in resources(platform, "AWS::CloudWatch::Alarm").values()
    }
    for role_id in resources(platform, "AWS::IAM::Role"):
        for statement in role_statements(platform, role_id):
            for resource in statement["Resource"]:
                if resource == "*" or target(resource) in platform["Resources"]:
                    continue
                sub = resource["Fn::Sub"]
                text, variables = (sub, {}) if isinstance(sub, str) else sub
                named = {target(value) for value in variables.values()}
                index = re.fullmatch(r"\$\{(\w+)\.Arn\}/index/([\w.-]+)", text)
                if ":alarm:" in text:
                    assert text.rsplit(":", 1)[-1] in alarm_names, (role_id, text)
                elif index:
                    # An index of one of this stack's tables, by the name it declares.
                    table = platform["Resources"][index.group(1)]
                    assert table["Type"] == "AWS::DynamoDB::Table", (role_id, text)
                    declared = {i["IndexName"] for i in props(table)["GlobalSecondaryIndexes"]}
                    assert index.group(2) in declared, (role_id, text)
                elif ":ec2:" in text:
                    assert text.endswith(":network-interface/*") or (
                        named and named <= set(platform["Resources"])
                    ), (role_id, text)
                elif text.startswith("arn:${AWS::Partition}:dynamodb:"):
                    # A table of this stack by its declared name (the acquirer's ledger:
                    # conditional, so granted by the ARN its name gives, not a GetAtt).
                    assert table_named_by_arn(platform, text), (role_id, text)
                elif role_id == "FlowLogRole":
                    # DescribeLogGroups lists groups: only log-group:* is accepted.
                    assert text.endswith(":log-group:*"), (role_id, text)
                else:
                    # The account-wide API Gateway logging role: API Gateway's own groups.
                    assert role_id == "ApiGatewayCloudWatchRole", (role_id, text)


# ---- Naming, tags, destroyability, region ----


# Seed: every name is `{resource-type}-{suffix}`: asserted for every stack by
# tests/templates/test_naming.py::test_every_literal_physical_name_ends_with_the_suffix.


@pytest.mark.requirement("S001-REGION")
def test_only_us_east_1_with_a_clear_message(platform):
    (rule,) = platform["Rules"].values()
    (assertion,) = rule["Assertions"]
    assert assertion["Assert"] == {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}
    assert "us-east-1" in assertion["AssertDescription"]


@pytest.mark.requirement("S001-REGION")
def test_nothing_references_a_region_except_through_pseudo_parameters(platform):
    body = {k: v for k, v in platform.items() if k != "Rules"}
    assert not any(v == "us-east-1" for _, v in walk(body))
