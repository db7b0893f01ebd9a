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

from handlers.config import ConfigError, load_api
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
