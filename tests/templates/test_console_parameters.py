"""Console parameters as strict as the functions: a value the CloudFormation console accepts
for a payment rule is one the functions' config loader accepts at cold start (otherwise every
request fails after a "successful" deploy), and the documented examples pass both.

Hypothesis: 100 examples per property, no deadline (regex generation), about 2 s in all.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.config import ConfigError, load_api, load_health, load_processing
from templates.cfnread import decide_conditions
from tests.templates.cfn import props, resources

# Values docs/platform.md and the README give, and ones an operator would type.
DOCUMENTED = {
    "MAX_PAYMENT_AMOUNT": ["10000.00", "0.01", "250", "99.5", "999999999999.99"],
    "ALLOWED_CURRENCIES": ["USD,EUR,GBP,CAD,AUD,JPY,CHF", "USD", "JPY,KWD", "EUR,CHF"],
}
# What the loader refuses at cold start: the console must refuse it first.
REFUSED = {
    "MAX_PAYMENT_AMOUNT": ["0", "0.00", "0.0", "-5", "", "10,000.00", "NaN", "Infinity"],
    "ALLOWED_CURRENCIES": ["ZZZ", "usd", "USD,ZZZ", "", "US", "USD,"],
}
EXAMPLES = settings(max_examples=100, deadline=None)


@pytest.fixture(scope="module")
def rule_parameters(all_templates) -> dict[str, dict]:
    """Environment variable -> the template parameter the functions read it from."""
    platform = all_templates["payment-platform"]
    found: dict[str, dict] = {}
    for fn in resources(platform, "AWS::Lambda::Function").values():
        for name, value in props(fn)["Environment"]["Variables"].items():
            if name in DOCUMENTED and isinstance(value, dict) and "Ref" in value:
                found[name] = platform["Parameters"][value["Ref"]]
    assert set(found) == set(DOCUMENTED)
    return found


def loads(variable: str, value: str, base: dict[str, str]) -> bool:
    """Whether the functions' loader accepts `value` for `variable`."""
    try:
        load_api({**base, variable: value})
    except ConfigError:
        return False
    return True


@pytest.fixture(scope="module")
def base_env(rule_parameters) -> dict[str, str]:
    """A valid environment built from the parameters' defaults."""
    return {
        "POWERTOOLS_SERVICE_NAME": "validation",
        "POWERTOOLS_METRICS_NAMESPACE": "PaymentPlatform/qa",
        "CORS_ALLOWED_ORIGIN": "https://app.example.com",
        "ENVIRONMENT": "qa",
        **{name: p["Default"] for name, p in rule_parameters.items()},
    }


def accepted_by_console(parameter: dict, value: str) -> bool:
    return re.fullmatch(parameter["AllowedPattern"], value) is not None


@pytest.mark.parametrize("variable", sorted(DOCUMENTED))
def test_documented_examples_and_the_default_pass_both(rule_parameters, base_env, variable):
    parameter = rule_parameters[variable]
    for value in [parameter["Default"], *DOCUMENTED[variable]]:
        assert accepted_by_console(parameter, value), value
        assert loads(variable, value, base_env), value


@pytest.mark.parametrize("variable", sorted(REFUSED))
def test_what_the_functions_refuse_the_console_refuses(rule_parameters, base_env, variable):
    parameter = rule_parameters[variable]
    for value in REFUSED[variable]:
        assert not loads(variable, value, base_env), value
        assert not accepted_by_console(parameter, value), value


@pytest.mark.parametrize("variable", sorted(DOCUMENTED))
def test_every_value_the_console_accepts_the_functions_accept(rule_parameters, base_env, variable):
    pattern = rule_parameters[variable]["AllowedPattern"]

    @EXAMPLES
    @given(st.from_regex(pattern, fullmatch=True))
    def check(value: str) -> None:
        assert loads(variable, value, base_env), value

    check()


# Each function's config loader, by POWERTOOLS_SERVICE_NAME (what its module calls at import).
LOADERS = {"validation": load_api, "processing": load_processing, "health": load_health}
ACCOUNT, REGION = "123456789012", "eu-west-1"


def as_deployed(template: dict, value, parameters: dict[str, str]) -> str:
    """An environment value as the function sees it: parameters at `parameters` (or their
    defaults), resources as AWS names them (a queue's Ref is its URL, a topic's its ARN)."""
    value = decide_conditions(template, value, parameters)
    if isinstance(value, str):
        return value
    if set(value) == {"Ref"}:
        name = value["Ref"]
        if name in template["Parameters"]:
            return parameters.get(name, template["Parameters"][name].get("Default", ""))
        kind = template["Resources"][name]["Type"]
        return {
            "AWS::SQS::Queue": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}",
            "AWS::SNS::Topic": f"arn:aws:sns:{REGION}:{ACCOUNT}:{name}",
        }.get(kind, name)
    if set(value) == {"Fn::GetAtt"} and value["Fn::GetAtt"][1] == "Arn":
        name = value["Fn::GetAtt"][0]
        service = template["Resources"][name]["Type"].split("::")[1].lower()
        return f"arn:aws:{service}:{REGION}:{ACCOUNT}:{name}"
    raise AssertionError(f"an environment value this test cannot resolve: {value}")


def test_every_value_of_every_parameter_a_function_reads_loads(all_templates):
    """Beyond the payment rules: each function starts with its environment as deployed with
    the defaults, and with every value an AllowedValues parameter it reads offers (a choice
    the console lists that fails every cold start would be a broken deploy). A pattern
    parameter a function reads must be one the properties above cover."""
    platform = all_templates["payment-platform"]
    services = set()
    for function in resources(platform, "AWS::Lambda::Function").values():
        variables = props(function)["Environment"]["Variables"]
        service = variables["POWERTOOLS_SERVICE_NAME"]
        services.add(service)
        load = LOADERS[service]
        read = {
            name: value["Ref"]
            for name, value in variables.items()
            if isinstance(value, dict) and value.get("Ref") in platform["Parameters"]
        }
        choices = [{}]
        for variable, parameter_name in read.items():
            parameter = platform["Parameters"][parameter_name]
            if "AllowedPattern" in parameter:
                assert variable in DOCUMENTED, (service, variable)
            else:
                assert parameter.get("AllowedValues"), (service, parameter_name)
                choices += [{parameter_name: v} for v in parameter["AllowedValues"]]
        for chosen in choices:
            env = {n: as_deployed(platform, v, chosen) for n, v in variables.items()}
            load(env)  # raises ConfigError naming the variable
    assert services == set(LOADERS)
