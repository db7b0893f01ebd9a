"""The platform template, read the way CloudFormation would, and rebuilt in moto.

Tests never restate a table key, queue name, redrive setting or environment
variable: they take them from the generated `payment-platform` template,
resolving `Ref` / `GetAtt` / `Sub` / `Join` to the names and URLs moto gives
the same resources. A drift between template and code fails a test.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from templates.naming import Naming
from templates.registry import STACKS, build_templates

SUFFIX = "test"
REGION = "us-east-1"
ACCOUNT = "123456789012"
PLATFORM = "payment-platform"
STACK_ID = (
    f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{PLATFORM}-{SUFFIX}/"
    "1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d"
)


class UnresolvedError(ValueError):
    """An intrinsic function or reference this resolver does not understand."""


def platform_template() -> dict[str, Any]:
    """The generated platform template (fails loudly when the stack is not registered)."""
    if PLATFORM not in STACKS:
        raise LookupError(f"{PLATFORM!r} is not registered in templates/registry.py")
    naming = Naming(SUFFIX)
    return build_templates(naming, [PLATFORM])[naming.stack(PLATFORM)]


@dataclass
class Resolver:
    """Resolves intrinsic functions of one template to moto's physical values."""

    template: dict[str, Any]
    resources: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.resources = self.template["Resources"]

    def props(self, logical: str) -> dict[str, Any]:
        """Properties of a resource."""
        return self.resources[logical].get("Properties", {})

    def ref(self, name: str) -> str:
        """What `Ref` returns for a parameter, pseudo parameter or resource."""
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": f"{PLATFORM}-{SUFFIX}",
            "AWS::StackId": STACK_ID,
        }
        if name in pseudo:
            return pseudo[name]
        parameters = self.template.get("Parameters", {})
        if name in parameters:
            if "Default" not in parameters[name]:
                raise UnresolvedError(f"parameter {name} has no default")
            return str(parameters[name]["Default"])
        resource = self.resources.get(name)
        if resource is None:
            raise UnresolvedError(f"Ref to unknown {name}")
        kind, props = resource["Type"], resource.get("Properties", {})
        by_type = {
            "AWS::DynamoDB::Table": lambda: self.value(props["TableName"]),
            "AWS::SQS::Queue": lambda: self.queue_url(self.value(props["QueueName"])),
            "AWS::SNS::Topic": lambda: (
                f"arn:aws:sns:{REGION}:{ACCOUNT}:{self.value(props['TopicName'])}"
            ),
            "AWS::Lambda::Function": lambda: self.value(props["FunctionName"]),
            "AWS::CloudWatch::Alarm": lambda: self.value(props["AlarmName"]),
            "AWS::ApiGateway::Stage": lambda: self.value(props["StageName"]),
        }
        if kind not in by_type:
            raise UnresolvedError(f"Ref to a {kind} is not modelled")
        return by_type[kind]()

    def get_att(self, logical: str, attribute: str) -> str:
        """What `Fn::GetAtt` returns."""
        resource = self.resources[logical]
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind == "AWS::SQS::Queue":
            name = self.value(props["QueueName"])
            return {
                "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}",
                "QueueName": name,
                "QueueUrl": self.queue_url(name),
            }[attribute]
        if kind == "AWS::DynamoDB::Table" and attribute == "Arn":
            return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{self.value(props['TableName'])}"
        if kind == "AWS::Lambda::Function" and attribute == "Arn":
            return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{self.value(props['FunctionName'])}"
        if kind == "AWS::SNS::Topic" and attribute == "TopicArn":
            return self.ref(logical)
        if kind == "AWS::KMS::Key" and attribute == "Arn":
            return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
        raise UnresolvedError(f"GetAtt {logical}.{attribute} ({kind}) is not modelled")

    @staticmethod
    def topic_arn(name: str) -> str:
        """The ARN of a topic in this account and region."""
        return f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}"

    @staticmethod
    def queue_url(name: str) -> str:
        """The URL moto (and SQS) give a queue in this account and region."""
        return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"

    def value(self, node: Any) -> Any:
        """A template value with every intrinsic function resolved."""
        if isinstance(node, list):
            return [self.value(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) != 1 or not next(iter(node)).startswith(("Ref", "Fn::")):
            return {key: self.value(item) for key, item in node.items()}
        ((function, argument),) = node.items()
        if function == "Ref":
            return self.ref(argument)
        if function == "Fn::GetAtt":
            logical, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return self.get_att(logical, attribute)
        if function == "Fn::Sub":
            text, variables = (argument, {}) if isinstance(argument, str) else argument
            return re.sub(r"\$\{([^}!]+)\}", lambda m: self._sub(m.group(1), variables), text)
        if function == "Fn::Join":
            separator, items = argument
            return separator.join(str(self.value(item)) for item in self.value(items))
        if function == "Fn::Select":
            index, items = argument
            return self.value(items)[int(self.value(index))]
        if function == "Fn::Split":
            separator, text = argument
            return str(self.value(text)).split(separator)
        if function == "Fn::If":
            name, when_true, when_false = argument
            return self.value(when_true if self.condition(name) else when_false)
        raise UnresolvedError(f"{function} is not modelled")

    def _sub(self, name: str, variables: dict[str, Any]) -> str:
        if name in variables:
            return str(self.value(variables[name]))
        if "." in name and not name.startswith("AWS::"):
            logical, attribute = name.split(".", 1)
            return self.get_att(logical, attribute)
        return self.ref(name)

    def condition(self, name: str) -> bool:
        """The value of one of the template's Conditions, with parameter defaults."""
        return bool(self._evaluate(self.template["Conditions"][name]))

    def _evaluate(self, node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            ((function, argument),) = node.items()
            if function == "Fn::Equals":
                left, right = (self._evaluate(item) for item in argument)
                return left == right
            if function == "Fn::Not":
                return not self._evaluate(argument[0])
            if function == "Fn::And":
                return all(self._evaluate(item) for item in argument)
            if function == "Fn::Or":
                return any(self._evaluate(item) for item in argument)
            if function == "Condition":
                return self.condition(argument)
        return self.value(node)

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        """Logical id -> properties of every resource of a type that the stack creates
        (a resource whose Condition is false is not created)."""
        return {
            logical: resource.get("Properties", {})
            for logical, resource in self.resources.items()
            if resource["Type"] == kind
            and ("Condition" not in resource or self.condition(resource["Condition"]))
        }


@dataclass
class PlatformSpec:
    """What the handler tests need from the template, resolved."""

    resolver: Resolver
    functions: dict[str, dict[str, Any]]  # handler module name -> {"Handler", "Environment"}

    @classmethod
    def from_template(cls, template: dict[str, Any]) -> PlatformSpec:
        """Read the functions and their environments out of the template."""
        resolver = Resolver(template)
        functions = {}
        for props in resolver.of_type("AWS::Lambda::Function").values():
            handler = props["Handler"]
            module = handler.split(".")[1]
            env = resolver.value(props.get("Environment", {}).get("Variables", {}))
            functions[module] = {
                "Handler": handler,
                "FunctionName": resolver.value(props["FunctionName"]),
                "Environment": {key: str(value) for key, value in env.items()},
            }
        return cls(resolver=resolver, functions=functions)

    def env(self, module: str) -> dict[str, str]:
        """The environment the template gives the function `handlers.<module>`."""
        return dict(self.functions[module]["Environment"])

    def create_resources(self, aws: Any, alarms: bool = True) -> dict[str, Any]:
        """Create the tables, queues, topic and alarms in moto exactly as the template declares
        (`alarms=False` skips the alarms, for tests that never read them)."""
        r = self.resolver
        created: dict[str, Any] = {
            "tables": {}, "queues": {}, "topics": {}, "alarms": [], "table_names": {}
        }  # fmt: skip
        dynamodb = aws.client("dynamodb")
        for props in r.of_type("AWS::DynamoDB::Table").values():
            name = r.value(props["TableName"])
            dynamodb.create_table(
                TableName=name,
                KeySchema=r.value(props["KeySchema"]),
                AttributeDefinitions=r.value(props["AttributeDefinitions"]),
                BillingMode=r.value(props.get("BillingMode", "PROVISIONED")),
                **(
                    {"GlobalSecondaryIndexes": r.value(props["GlobalSecondaryIndexes"])}
                    if "GlobalSecondaryIndexes" in props
                    else {}
                ),
            )
            ttl = props.get("TimeToLiveSpecification")
            if ttl:
                dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=r.value(ttl))
            created["tables"][name] = props
        for logical, props in r.of_type("AWS::DynamoDB::Table").items():
            created["table_names"][logical] = r.value(props["TableName"])
        sqs = aws.client("sqs")
        queues = r.of_type("AWS::SQS::Queue")
        # Dead-letter queues first: a redrive policy names an existing queue.
        ordered = sorted(queues.items(), key=lambda item: "RedrivePolicy" in item[1])
        for logical, props in ordered:
            attributes = {}
            for key in ("MessageRetentionPeriod", "VisibilityTimeout", "DelaySeconds"):
                if key in props:
                    attributes[key] = str(r.value(props[key]))
            for key in ("RedrivePolicy", "RedriveAllowPolicy"):
                if key in props:
                    attributes[key] = json.dumps(r.value(props[key]))
            name = r.value(props["QueueName"])
            url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
            if url != r.ref(logical):
                raise AssertionError(f"moto gave {url}, the resolver says {r.ref(logical)}")
            created["queues"][logical] = url
        sns = aws.client("sns")
        for logical, props in r.of_type("AWS::SNS::Topic").items():
            arn = sns.create_topic(Name=r.value(props["TopicName"]))["TopicArn"]
            created["topics"][logical] = arn
        cloudwatch = aws.client("cloudwatch")
        for props in r.of_type("AWS::CloudWatch::Alarm").values() if alarms else ():
            alarm = {
                key: r.value(props[key])
                for key in (
                    "AlarmName", "Namespace", "MetricName", "Dimensions", "Statistic",
                    "ExtendedStatistic", "Period", "EvaluationPeriods", "DatapointsToAlarm",
                    "Threshold", "ComparisonOperator", "TreatMissingData", "Metrics",
                )
                if key in props
            }  # fmt: skip
            alarm.setdefault("EvaluationPeriods", 1)
            cloudwatch.put_metric_alarm(**alarm)
            created["alarms"].append(alarm["AlarmName"])
        return created
