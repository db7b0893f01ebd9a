"""One place for the suffix, every physical name, export and tag.

No other module holds a physical-name literal: builders ask `Naming` for a
name of a given `Kind`, and `Naming` refuses any name AWS would refuse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from troposphere import Select, Split, StackId, Tags

PROJECT = "payment-infrastructure"
SUFFIX_PATTERN = r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$"
SUFFIX_RULE = "lowercase letters, digits and '-', not starting or ending with '-'"
# Length of the stack-id-derived token (the seed's random_string: 8 lowercase alphanumerics).
UNIQUE_TOKEN_LENGTH = 8


class Kind(Enum):
    """A kind of physical name and the longest name AWS accepts for it.

    Limits come from the CloudFormation resource schemas shipped with cfn-lint
    (maxLength / pattern of each name property) and, where a schema states
    none, from the service's own quota page (noted beside the value).
    """

    STACK = ("stack", 128)  # CloudFormation StackName quota
    FUNCTION = ("Lambda function", 64)  # FunctionName pattern {1,64}
    ROLE = ("IAM role", 64)
    QUEUE = ("SQS queue", 80)  # SQS quota; the schema states none
    TABLE = ("DynamoDB table", 255)  # DynamoDB naming rules: 3-255
    TOPIC = ("SNS topic", 256)
    LOG_GROUP = ("CloudWatch log group", 512)
    ALARM = ("CloudWatch alarm", 255)
    DASHBOARD = ("CloudWatch dashboard", 255)  # PutDashboard: 255; schema states none
    RULE = ("EventBridge rule", 64)
    KMS_ALIAS = ("KMS alias", 256)
    # API Gateway names have no documented maximum; 1024 keeps console tables usable.
    API = ("API Gateway name", 1024)
    WEB_ACL = ("WAF web ACL", 128)  # WebACL Name pattern {1,128}

    def __init__(self, label: str, limit: int) -> None:
        self.label = label
        self.limit = limit


class NamingError(ValueError):
    """A suffix or a name built from it that AWS would refuse."""


@dataclass(frozen=True)
class Naming:
    """The suffix of one deployment and every name derived from it."""

    suffix: str

    def __post_init__(self) -> None:
        if not self.suffix:
            raise NamingError("suffix is empty: give one such as 'qa' (" + SUFFIX_RULE + ")")
        if not re.fullmatch(SUFFIX_PATTERN, self.suffix):
            raise NamingError(f"suffix {self.suffix!r} is invalid: use {SUFFIX_RULE}")

    def name(self, base: str, kind: Kind, *, reserve: int = 0) -> str:
        """`{base}-{suffix}`, refused when longer than the kind's AWS limit.

        `reserve` counts characters appended later at deploy time (the unique token).
        """
        full = f"{base}-{self.suffix}"
        if len(full) + reserve > kind.limit:
            raise NamingError(
                f"suffix {self.suffix!r} makes the {kind.label} name {full!r} "
                f"{len(full) + reserve} characters long; the AWS limit is {kind.limit}"
            )
        return full

    def seed_name(self, name: str, kind: Kind) -> str:
        """A name a seed gives verbatim, without the suffix (AWS allows duplicates of it)."""
        if len(name) > kind.limit:
            raise NamingError(f"the {kind.label} name {name!r} is over the limit of {kind.limit}")
        return name

    def stack(self, base: str) -> str:
        """The CloudFormation stack name (= template file name without `.json`)."""
        return self.name(base, Kind.STACK)

    def log_group(self, path: str) -> str:
        """A log group name: a path such as `/aws/lambda/<function>`."""
        if len(path) > Kind.LOG_GROUP.limit:
            raise NamingError(
                f"log group {path!r} is {len(path)} characters; the AWS limit is "
                f"{Kind.LOG_GROUP.limit}"
            )
        return path

    def tags(self, component: str) -> Tags:
        """The tag set every taggable resource carries."""
        return Tags(**self.tag_dict(component))

    def tag_dict(self, component: str) -> dict[str, str]:
        """The tags as a mapping: the one definition of the tag set."""
        return {"Environment": self.suffix, "Project": PROJECT, "Component": component}


def unique_token() -> Select:
    """8 lowercase alphanumerics derived from the stack id (the seed's random_string).

    The stack id ends in a UUID; its first group is 8 lowercase hex characters,
    stable for the life of the stack and different for every new stack.
    """
    return Select(0, Split("-", Select(2, Split("/", StackId))))
