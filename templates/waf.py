"""A REGIONAL WAFv2 web ACL in front of an API stage (PCI DSS 6.6), and its encrypted logs.

Rules, in evaluation order: AWS's IP reputation list, a rate limit per client IP, a body-size
limit, AWS's common rule set and its known-bad-inputs set. Logs go to `aws-waf-logs-<api>` kept
as long as the API's own logs, encrypted with the stack key, with the API key header, the URI
path and the query string redacted (a key value or a card number pasted into a URL must not
reach a log).
"""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import Parameter, Ref, Sub, Template
from troposphere.logs import LogGroup
from troposphere.wafv2 import (
    AllowAction,
    BlockAction,
    Body,
    CustomHTTPHeader,
    CustomResponse,
    DefaultAction,
    FieldToMatch,
    LoggingConfiguration,
    LoggingConfigurationFieldToMatch,
    ManagedRuleGroupStatement,
    OverrideAction,
    RateBasedStatement,
    RuleAction,
    SingleHeader,
    SizeConstraintStatement,
    Statement,
    TextTransformation,
    VisibilityConfig,
    WebACL,
    WebACLAssociation,
    WebACLRule,
)

from handlers.payments.validation import MAX_BODY_BYTES
from templates.common import add_parameter
from templates.keys import StackKey, log_group_arn
from templates.logs import add_log_group
from templates.naming import Kind, Naming

# AWS managed rule groups (no subscription fee), evaluated in this order after the IP list.
IP_REPUTATION = "AWSManagedRulesAmazonIpReputationList"
COMMON_RULES = "AWSManagedRulesCommonRuleSet"
KNOWN_BAD_INPUTS = "AWSManagedRulesKnownBadInputsRuleSet"
# Requests one client IP may send in any 5 minutes. The usage plan allows the whole fleet
# 10,000 a day; one address sending 500 in 5 minutes is a script, not a phone (a carrier's
# shared NAT included); an operator with another traffic profile changes the parameter.
DEFAULT_REQUESTS_PER_IP = 500
RATE_WINDOW_SECONDS = 300
# The functions refuse bodies over this size anyway; WAF refuses them before they cost an
# invocation (OversizeHandling MATCH: a body too large for WAF to inspect is too large).
BODY_LIMIT_BYTES = MAX_BODY_BYTES
# Header names are lower-cased in WAF logs; the key's value must never be logged.
REDACTED_HEADER = "x-api-key"


@dataclass(frozen=True)
class WebAcl:
    """The web ACL, its log group and the parameter that sets the per-IP rate."""

    acl: WebACL
    log_group: LogGroup
    rate_parameter: Parameter

    @property
    def metric_name(self) -> str:
        """The `WebACL` dimension of its AWS/WAFV2 metrics."""
        return self.acl.VisibilityConfig.MetricName


def _visibility(metric: str) -> VisibilityConfig:
    # No sampled requests: WAF keeps them 3 hours with every header, the API key included.
    return VisibilityConfig(
        CloudWatchMetricsEnabled=True, MetricName=metric, SampledRequestsEnabled=False
    )


def _managed(name: str, priority: int) -> WebACLRule:
    return WebACLRule(
        Name=name,
        Priority=priority,
        Statement=Statement(
            ManagedRuleGroupStatement=ManagedRuleGroupStatement(VendorName="AWS", Name=name)
        ),
        OverrideAction=OverrideAction(**{"None": {}}),
        VisibilityConfig=_visibility(name),
    )


def _blocking(
    name: str, priority: int, statement: Statement, status: int, cors_origin: str
) -> WebACLRule:
    # With the origin header the API's own errors carry, a browser can read the status (and
    # back off on 429) instead of seeing a network error.
    response = CustomResponse(
        ResponseCode=status,
        ResponseHeaders=[CustomHTTPHeader(Name="Access-Control-Allow-Origin", Value=cors_origin)],
    )
    return WebACLRule(
        Name=name,
        Priority=priority,
        Statement=statement,
        Action=RuleAction(Block=BlockAction(CustomResponse=response)),
        VisibilityConfig=_visibility(name),
    )


def add_web_acl(
    t: Template,
    naming: Naming,
    *,
    api_base: str,
    api,
    stage,
    key: StackKey,
    log_retention_days: int,
    component: str,
    cors_origin: str,
) -> WebAcl:
    """The web ACL of one API's stage, associated with it, and its logging."""
    rate = add_parameter(
        t,
        "WafRequestsPerIpPer5Minutes",
        description="Requests one client IP address may send in any 5 minutes; WAF answers "
        "429 to the rest of that window",
        default=str(DEFAULT_REQUESTS_PER_IP),
        param_type="Number",
        min_value=100,
        max_value=2_000_000_000,
        constraint="a whole number from 100 (WAF's minimum) to 2,000,000,000",
        label="WAF rate limit per client IP",
    )
    name = naming.name(f"{api_base}-waf", Kind.WEB_ACL)
    body_too_large = Statement(
        SizeConstraintStatement=SizeConstraintStatement(
            FieldToMatch=FieldToMatch(Body=Body(OversizeHandling="MATCH")),
            ComparisonOperator="GT",
            Size=BODY_LIMIT_BYTES,
            TextTransformations=[TextTransformation(Priority=0, Type="NONE")],
        )
    )
    per_ip = Statement(
        RateBasedStatement=RateBasedStatement(
            Limit=Ref(rate), AggregateKeyType="IP", EvaluationWindowSec=RATE_WINDOW_SECONDS
        )
    )
    acl = t.add_resource(
        WebACL(
            "WebAcl",
            Name=name,
            Description="PCI DSS 6.6 web application firewall of "
            + naming.name(api_base, Kind.API),
            Scope="REGIONAL",
            DefaultAction=DefaultAction(Allow=AllowAction()),
            Rules=[
                _managed(IP_REPUTATION, 0),
                _blocking("RequestsPerIp", 1, per_ip, 429, cors_origin),
                _blocking("BodySizeLimit", 2, body_too_large, 413, cors_origin),
                _managed(COMMON_RULES, 3),
                _managed(KNOWN_BAD_INPUTS, 4),
            ],
            VisibilityConfig=_visibility(name),
            Tags=naming.tags(component),
        )
    )
    t.add_resource(
        WebACLAssociation(
            "WebAclAssociation",
            WebACLArn=acl.get_att("Arn"),
            # Sub with the stage's Ref: the association waits until the stage exists.
            ResourceArn=Sub(
                "arn:${AWS::Partition}:apigateway:${AWS::Region}::/restapis/${Api}/stages/${Stage}",
                Api=api.ref(),
                Stage=stage.ref(),
            ),
        )
    )
    # WAF requires the `aws-waf-logs-` prefix for a log group destination.
    log_name = naming.log_group(f"aws-waf-logs-{naming.name(api_base, Kind.API)}")
    log_group = add_log_group(
        t,
        naming,
        "WafLogGroup",
        name=log_name,
        retention_days=log_retention_days,
        component=component,
        key=key,
    )
    t.add_resource(
        LoggingConfiguration(
            "WafLogging",
            ResourceArn=acl.get_att("Arn"),
            # The group's Arn attribute ends in `:*`, which WAF refuses: the bare group ARN.
            LogDestinationConfigs=[log_group_arn(log_group.ref())],
            RedactedFields=[
                LoggingConfigurationFieldToMatch(SingleHeader=SingleHeader(Name=REDACTED_HEADER)),
                LoggingConfigurationFieldToMatch(UriPath={}),
                LoggingConfigurationFieldToMatch(QueryString={}),
            ],
        )
    )
    return WebAcl(acl=acl, log_group=log_group, rate_parameter=rate)
