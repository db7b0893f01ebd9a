"""The platform template against docs/contract.md: environment, handlers, table, queues, roles."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.templates.cfn import as_list, one, props, resources, role_statements, table_named_by_arn

CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "contract.md"
# Contract section heading -> the functions (by POWERTOOLS_SERVICE_NAME) it applies to.
ENV_SECTIONS = {
    "All functions:": {"validation", "processing", "health"},
    "Validation and processing:": {"validation", "processing"},
    "Processing adds:": {"processing"},
    "Health adds:": {"health"},
}


def contract_environment() -> dict[str, set[str]]:
    """Service -> the variable names docs/contract.md gives it."""
    names: dict[str, set[str]] = {service: set() for service in ENV_SECTIONS["All functions:"]}
    services: set[str] = set()
    for line in CONTRACT.read_text().splitlines():
        if line.strip() in ENV_SECTIONS:
            services = ENV_SECTIONS[line.strip()]
        elif line.startswith("## "):
            services = set()
        elif services and line.startswith("| `"):
            first_cell = line.split("|")[1]
            for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", first_cell):
                for service in services:
                    names[service].add(name)
    return names


@pytest.fixture(scope="module")
def platform(all_templates) -> dict:
    return all_templates["payment-platform"]


@pytest.fixture(scope="module")
def functions(platform) -> dict[str, dict]:
    """Service name -> function Properties."""
    found = {}
    for fn in resources(platform, "AWS::Lambda::Function").values():
        variables = props(fn)["Environment"]["Variables"]
        found[variables["POWERTOOLS_SERVICE_NAME"]] = props(fn)
    return found


def test_contract_lists_environment_for_every_function():
    names = contract_environment()
    assert all(len(v) >= 5 for v in names.values()), names


@pytest.mark.parametrize("service", ["validation", "processing", "health"])
def test_environment_names_are_exactly_the_contracts(functions, service):
    assert set(functions[service]["Environment"]["Variables"]) == contract_environment()[service]


@pytest.mark.parametrize("service", ["validation", "processing", "health"])
def test_common_environment_values(functions, service, naming):
    variables = functions[service]["Environment"]["Variables"]
    assert variables["POWERTOOLS_SERVICE_NAME"] == service
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == f"PaymentPlatform/{naming.suffix}"
    assert variables["POWERTOOLS_LOG_LEVEL"] == "INFO"
    assert variables["CORS_ALLOWED_ORIGIN"] == "https://app.example.com"
    assert variables["ENVIRONMENT"] == naming.suffix


@pytest.mark.parametrize("service", ["validation", "processing"])
def test_payment_rules_come_from_parameters_with_the_contract_defaults(
    platform, functions, service
):
    variables = functions[service]["Environment"]["Variables"]
    parameters = platform["Parameters"]
    amount = parameters[variables["MAX_PAYMENT_AMOUNT"]["Ref"]]
    currencies = parameters[variables["ALLOWED_CURRENCIES"]["Ref"]]
    assert amount["Default"] == "10000.00"
    assert re.fullmatch(amount["AllowedPattern"], amount["Default"])
    assert currencies["Default"] == "USD,EUR,GBP,CAD,AUD,JPY,CHF"
    assert re.fullmatch(currencies["AllowedPattern"], currencies["Default"])
    assert not re.fullmatch(currencies["AllowedPattern"], "USD, EUR")


def test_processing_environment_values(functions, naming):
    variables = functions["processing"]["Environment"]["Variables"]
    assert variables["TRANSACTIONS_TABLE"] == {"Ref": "TransactionsTable"}
    assert variables["FAILED_TRANSACTIONS_QUEUE_URL"] == {"Ref": "FailedTransactionsQueue"}
    assert variables["IDEMPOTENCY_TTL_SECONDS"] == "86400"
    assert variables["PAYMENT_PROVIDER"] == {"Ref": "PaymentProvider"}
    assert variables["ACQUIRER_LEDGER_TABLE"] == f"acquirer-ledger-{naming.suffix}"
    assert variables["MAX_PAYMENT_ATTEMPTS"] == "10"


def test_health_environment_values(platform, functions):
    variables = functions["health"]["Environment"]["Variables"]
    assert variables["TRANSACTIONS_TABLE"] == {"Ref": "TransactionsTable"}
    assert variables["HEALTH_STATE_ITEM_ID"] == "health#state"
    assert variables["FAILED_TRANSACTIONS_QUEUE_URL"] == {"Ref": "FailedTransactionsQueue"}
    assert variables["FAILED_TRANSACTIONS_QUEUE_ARN"] == {
        "Fn::GetAtt": ["FailedTransactionsQueue", "Arn"]
    }
    assert variables["FAILED_TRANSACTIONS_DLQ_URL"] == {"Ref": "FailedTransactionsQueueDlq"}
    assert variables["FAILED_TRANSACTIONS_DLQ_ARN"] == {
        "Fn::GetAtt": ["FailedTransactionsQueueDlq", "Arn"]
    }
    assert variables["ALARM_TOPIC_ARN"] == {"Ref": "AlarmTopic"}
    assert variables["PROCESSING_FUNCTION_NAME"] == {"Ref": "ProcessingFunction"}
    assert variables["REDRIVE_MAX_MESSAGES_PER_SECOND"] == "10"
    assert variables["REDRIVE_COOLDOWN_SECONDS"] == "900"
    assert variables["STUCK_AFTER_SECONDS"] == "900"
    dry_run = platform["Parameters"][variables["HEALTH_DRY_RUN"]["Ref"]]
    assert dry_run["Default"] == "false"
    assert dry_run["AllowedValues"] == ["true", "false"]


def _about_the_monitor(platform: dict, functions: dict, alarm: dict) -> bool:
    """An alarm on the health monitor's own runs: its EMF metrics, or its dead-letter queue."""
    variables = functions["health"]["Environment"]["Variables"]
    dead_letters = functions["health"].get("DeadLetterConfig", {}).get("TargetArn", {})
    p = props(alarm)
    own_metric = p.get("Namespace") == variables["POWERTOOLS_METRICS_NAMESPACE"] and {
        "Name": "service",
        "Value": variables["POWERTOOLS_SERVICE_NAME"],
    } in p.get("Dimensions", [])
    dlq = dead_letters.get("Fn::GetAtt", [None])[0]
    own_dlq = dlq is not None and {
        "Name": "QueueName",
        "Value": {"Fn::GetAtt": [dlq, "QueueName"]},
    } in p.get("Dimensions", [])
    return (own_metric and p.get("MetricName") != "ServerError") or own_dlq


def test_alarm_names_are_every_alarm_but_those_about_the_monitor_itself(platform, functions):
    """The monitor reads every alarm of the stack except the ones about its own runs (it
    cannot report its own silence, and they must not block its redrive decisions)."""
    listed = functions["health"]["Environment"]["Variables"]["ALARM_NAMES"].split(",")
    alarms = resources(platform, "AWS::CloudWatch::Alarm").values()
    assert sorted(listed) == sorted(
        props(a)["AlarmName"] for a in alarms if not _about_the_monitor(platform, functions, a)
    )


def test_processing_function_name(functions, naming):
    assert functions["processing"]["FunctionName"] == f"payment-processor-{naming.suffix}"


@pytest.mark.parametrize(
    ("service", "handler"),
    [
        ("validation", "handlers.validation.handler"),
        ("processing", "handlers.processing.handler"),
        ("health", "handlers.health.handler"),
    ],
)
def test_handler_runtime_and_architecture(functions, service, handler):
    fn = functions[service]
    assert fn["Handler"] == handler
    assert fn["Runtime"] == "python3.12"
    assert fn["Architectures"] == ["arm64"]


def test_all_functions_share_one_zip_from_parameters(platform, functions):
    codes = {repr(fn["Code"]) for fn in functions.values()}
    assert len(codes) == 1
    code = next(iter(functions.values()))["Code"]
    assert set(code) == {"S3Bucket", "S3Key"}
    bucket = platform["Parameters"][code["S3Bucket"]["Ref"]]
    key = platform["Parameters"][code["S3Key"]["Ref"]]
    assert re.fullmatch(bucket["AllowedPattern"], "my-code-bucket.example")
    assert not re.fullmatch(bucket["AllowedPattern"], "My_Bucket")
    assert re.fullmatch(key["AllowedPattern"], "qa/lambda/" + "ab" * 32 + ".zip")
    assert not re.fullmatch(key["AllowedPattern"], "qa/lambda/code.tar.gz")


@pytest.mark.requirement("S001-TABLE")
def test_table_schema(platform, naming):
    table = resources(platform, "AWS::DynamoDB::Table")["TransactionsTable"]
    p = props(table)
    assert p["TableName"] == f"transactions-{naming.suffix}"
    assert p["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert p["AttributeDefinitions"] == [
        {"AttributeName": "id", "AttributeType": "S"},
        {"AttributeName": "pendingShard", "AttributeType": "S"},
        {"AttributeName": "requeuedAt", "AttributeType": "S"},
    ]
    assert p["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}


def test_pending_index_is_sparse_keys_only_least_recently_requeued_first(platform):
    table = resources(platform, "AWS::DynamoDB::Table")["TransactionsTable"]
    (index,) = props(table)["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "pending-by-requeue"
    assert index["KeySchema"] == [
        {"AttributeName": "pendingShard", "KeyType": "HASH"},
        {"AttributeName": "requeuedAt", "KeyType": "RANGE"},
    ]
    # Keys only: the sweeper sends a transaction id; no payment data is copied into the index.
    assert index["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    # On demand: no throughput settings on the index either.
    assert "ProvisionedThroughput" not in index


@pytest.mark.requirement("S001-FAILED-QUEUE", "S001-DLQ")
def test_queue_names_receive_count_and_batch_size(platform, naming):
    queues = resources(platform, "AWS::SQS::Queue")
    assert props(queues["FailedTransactionsQueue"])["QueueName"] == (
        f"failed-transactions-{naming.suffix}"
    )
    assert props(queues["FailedTransactionsQueueDlq"])["QueueName"] == (
        f"failed-transactions-dlq-{naming.suffix}"
    )
    assert props(queues["FailedTransactionsQueue"])["RedrivePolicy"]["maxReceiveCount"] == 5
    _, mapping = one(platform, "AWS::Lambda::EventSourceMapping")
    assert props(mapping)["BatchSize"] == 10
    assert props(mapping)["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props(mapping)["FunctionName"] == {"Ref": "ProcessingFunction"}


# ---- roles: exactly the calls docs/contract.md lists, on this stack's resources ----


def _resource_label(value, platform: dict) -> str:
    """A readable name for a policy Resource entry."""
    if value == "*":
        return "*"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return value["Fn::GetAtt"][0]
    if isinstance(value, dict) and "Ref" in value:
        return value["Ref"]
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        text, variables = (sub, {}) if isinstance(sub, str) else sub
        match = re.fullmatch(
            r"arn:\$\{AWS::Partition\}:cloudwatch:\$\{AWS::Region\}:"
            r"\$\{AWS::AccountId\}:alarm:(.+)",
            text,
        )
        if match:
            return "alarm:" + match.group(1)
        match = re.fullmatch(r"\$\{(\w+)\.Arn\}/index/([\w.-]+)", text)
        if match:
            return f"{match.group(1)}/index/{match.group(2)}"
        # The function's network interfaces, in this stack's subnets and security group.
        match = re.fullmatch(
            r"arn:\$\{AWS::Partition\}:ec2:\$\{AWS::Region\}:\$\{AWS::AccountId\}:"
            r"(network-interface/\*|(subnet|security-group)/\$\{Name\})",
            text,
        )
        if match:
            name = variables.get("Name", {}).get("Ref", "")
            return match.group(1).replace("${Name}", name)
        table = table_named_by_arn(platform, text)
        if table:
            return table
    raise AssertionError(f"unexpected resource form {value}")


def granted(platform: dict, role_id: str) -> set[tuple[str, str]]:
    """(action, resource) pairs one role's policies allow (its own and attached ones)."""
    pairs = set()
    for statement in role_statements(platform, role_id):
        # A Deny grants nothing (the network policy's keeps its grants from function code).
        if statement["Effect"] == "Deny":
            continue
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            for resource in as_list(statement["Resource"]):
                pairs.add((action, _resource_label(resource, platform)))
    return pairs


# docs/contract.md: in the VPC, Lambda manages each function's network interfaces with its
# role, in the stack's own subnets and security group only.
NETWORK_INTERFACES = {
    ("ec2:CreateNetworkInterface", "network-interface/*"),
    ("ec2:CreateNetworkInterface", "subnet/PrivateSubnet1"),
    ("ec2:CreateNetworkInterface", "subnet/PrivateSubnet2"),
    ("ec2:CreateNetworkInterface", "security-group/FunctionsSecurityGroup"),
    ("ec2:DeleteNetworkInterface", "network-interface/*"),
    ("ec2:AssignPrivateIpAddresses", "network-interface/*"),
    ("ec2:UnassignPrivateIpAddresses", "network-interface/*"),
    ("ec2:DescribeNetworkInterfaces", "*"),
    ("ec2:DescribeSubnets", "*"),
}


def baseline(service_log_group: str) -> set[tuple[str, str]]:
    return NETWORK_INTERFACES | {
        ("logs:CreateLogStream", service_log_group),
        ("logs:PutLogEvents", service_log_group),
        ("xray:PutTraceSegments", "*"),
        ("xray:PutTelemetryRecords", "*"),
    }


def role_of(platform: dict, service: str) -> str:
    for fn in resources(platform, "AWS::Lambda::Function").values():
        if props(fn)["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == service:
            return props(fn)["Role"]["Fn::GetAtt"][0]
    raise AssertionError(service)


@pytest.mark.requirement("S001-FUNCTION-PERMISSIONS")
def test_validation_role_is_logs_and_traces_only(platform):
    assert granted(platform, role_of(platform, "validation")) == baseline("ValidationLogGroup")


@pytest.mark.requirement("S001-FUNCTION-PERMISSIONS")
def test_processing_role_is_exactly_the_contract(platform):
    expected = baseline("ProcessingLogGroup") | {
        ("dynamodb:GetItem", "TransactionsTable"),
        ("dynamodb:PutItem", "TransactionsTable"),
        ("dynamodb:UpdateItem", "TransactionsTable"),
        # The simulated acquirer's ledger, through its own conditional policy.
        ("dynamodb:GetItem", "AcquirerLedgerTable"),
        ("dynamodb:UpdateItem", "AcquirerLedgerTable"),
        ("sqs:SendMessage", "FailedTransactionsQueue"),
        ("sqs:ReceiveMessage", "FailedTransactionsQueue"),
        ("sqs:DeleteMessage", "FailedTransactionsQueue"),
        ("sqs:GetQueueAttributes", "FailedTransactionsQueue"),
        ("sqs:ChangeMessageVisibility", "FailedTransactionsQueue"),
        ("kms:GenerateDataKey", "StackKey"),
        ("kms:Decrypt", "StackKey"),
    }
    assert granted(platform, role_of(platform, "processing")) == expected


@pytest.mark.requirement("S001-FUNCTION-PERMISSIONS", "S001-HEALTH-FUNCTION")
def test_health_role_is_exactly_the_contract(platform, functions):
    # DescribeAlarms on exactly the alarms the monitor reads (ALARM_NAMES).
    alarms = {
        ("cloudwatch:DescribeAlarms", "alarm:" + name)
        for name in functions["health"]["Environment"]["Variables"]["ALARM_NAMES"].split(",")
    }
    expected = (
        baseline("HealthLogGroup")
        | alarms
        | {
            ("dynamodb:DescribeTable", "TransactionsTable"),
            ("dynamodb:GetItem", "TransactionsTable"),
            ("dynamodb:PutItem", "TransactionsTable"),
            ("dynamodb:UpdateItem", "TransactionsTable"),
            ("dynamodb:Query", "TransactionsTable/index/pending-by-requeue"),
            ("sqs:GetQueueAttributes", "FailedTransactionsQueue"),
            ("sqs:GetQueueAttributes", "FailedTransactionsQueueDlq"),
            ("sqs:StartMessageMoveTask", "FailedTransactionsQueueDlq"),
            ("sqs:ListMessageMoveTasks", "FailedTransactionsQueueDlq"),
            ("sqs:ReceiveMessage", "FailedTransactionsQueueDlq"),
            ("sqs:DeleteMessage", "FailedTransactionsQueueDlq"),
            ("sqs:SendMessage", "FailedTransactionsQueue"),
            # Lambda's own delivery of a scheduled run that failed every retry.
            ("sqs:SendMessage", "HealthScheduleDlq"),
            ("cloudwatch:GetMetricData", "*"),
            ("sns:Publish", "AlarmTopic"),
            ("kms:GenerateDataKey", "StackKey"),
            ("kms:Decrypt", "StackKey"),
        }
    )
    assert granted(platform, role_of(platform, "health")) == expected


def test_health_reads_and_writes_only_its_state_item(platform):
    item_statements = [
        s
        for s in role_statements(platform, role_of(platform, "health"))
        if "dynamodb:PutItem" in as_list(s["Action"])
    ]
    assert len(item_statements) == 1
    assert item_statements[0]["Condition"] == {
        "ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["health#state"]}
    }


def test_only_the_health_monitor_may_describe_alarms_and_read_metrics(platform):
    for service in ("validation", "processing"):
        actions = {action for action, _ in granted(platform, role_of(platform, service))}
        assert not actions & {"cloudwatch:DescribeAlarms", "cloudwatch:GetMetricData"}
