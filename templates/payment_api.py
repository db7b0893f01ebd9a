"""Stack `payment-api-<suffix>`: the REST API in front of an existing payment-processor Lambda."""

from __future__ import annotations

from troposphere import Sub, Template

from templates.api import GatewaySpec, LambdaTarget, Route, add_gateway
from templates.common import add_output, add_parameter, group_parameters, new_template
from templates.contract import PAYMENT_REQUEST_SCHEMA
from templates.keys import add_stack_key
from templates.naming import Naming

STACK = "payment-api"
# Lambda function names: letters, digits, '-' and '_', 1 to 64 characters.
FUNCTION_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


def build_payment_api(naming: Naming) -> Template:
    """The whole payment-api stack (seed 000)."""
    t = new_template(
        f"{naming.stack(STACK)}: API Gateway REST API payment-api (API key, usage plan, "
        "request validation, CORS, logging, WAF, prod stage) in front of an existing "
        "payment-processor Lambda function"
    )
    processor = add_parameter(
        t,
        "ProcessorFunctionName",
        description="Name of the existing Lambda function that processes payments "
        "(in this account and region)",
        default="payment-processor",
        allowed_pattern=FUNCTION_NAME_PATTERN,
        constraint="a Lambda function name: 1-64 letters, digits, '-' or '_'",
        label="Payment processor function",
    )
    function_arn = Sub(
        "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${Name}",
        Name=processor.ref(),
    )
    key = add_stack_key(
        t,
        naming,
        alias_base=STACK,
        description=f"Encrypts the log groups of {naming.stack(STACK)}",
        component="security",
    )
    gateway = add_gateway(
        t,
        naming,
        GatewaySpec(
            api_base="payment-api",
            description="Payment processing API for the mobile app: POST /process-payment "
            "with an API key, proxied to the payment-processor Lambda function",
            key_base="mobile-app-key",
            key_description="API key the mobile app sends in X-Api-Key to call the "
            "payment API (throttled and metered by the usage plan)",
            routes=(
                Route(
                    path="/process-payment",
                    method="POST",
                    target=LambdaTarget(arn=function_arn, name=processor.ref()),
                    # The default backend is the platform's processor: a body that is not a
                    # payment request never costs an invocation (RequestBodyValidation).
                    request_schema=PAYMENT_REQUEST_SCHEMA,
                ),
            ),
            # Seed 000: the REST API is "payment-api" and the key "mobile-app-key".
            seed_names=True,
            relaxable_validation=True,
        ),
        key=key,
    )
    add_output(
        t,
        "InvokeUrl",
        gateway.invoke_url("/process-payment"),
        "Full HTTPS URL of POST /process-payment on the prod stage",
    )
    group_parameters(
        t,
        [
            ("Backend", [processor]),
            ("Request protection", gateway.protection_parameters),
            ("Account-wide settings", gateway.parameters),
        ],
    )
    return t
