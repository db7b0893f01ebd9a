"""The stack's customer-managed KMS key: encryption at rest for logs, queues, table, topic."""

from __future__ import annotations

from dataclasses import dataclass, field

from awacs import kms
from awacs.aws import Allow, Condition, Principal, Statement
from awacs.aws import ArnEquals as ArnEqualsCondition
from awacs.aws import ArnLike as ArnLikeCondition
from troposphere import GetAtt, Sub, Template
from troposphere.kms import Alias, Key

from templates.iam import policy
from templates.naming import Kind, Naming

# The key-administrator and key-user actions the AWS console grants the account
# by default, spelled out because no statement here may use `kms:*`.
ACCOUNT_ACTIONS = [
    kms.Action("Create*"),
    kms.Action("Describe*"),
    kms.Action("Enable*"),
    kms.Action("List*"),
    kms.Action("Put*"),
    kms.Action("Update*"),
    kms.Action("Revoke*"),
    kms.Action("Disable*"),
    kms.Action("Get*"),
    kms.Action("Delete*"),
    kms.TagResource,
    kms.UntagResource,
    kms.ScheduleKeyDeletion,
    kms.CancelKeyDeletion,
    kms.RotateKeyOnDemand,
    kms.Encrypt,
    kms.Decrypt,
    kms.Action("ReEncrypt*"),
    kms.Action("GenerateDataKey*"),
]
# A key scheduled for deletion can still be cancelled for this many days: the longest KMS
# allows. DynamoDB keeps a deleted table's PITR backup 35 days, encrypted with this key; the
# window is the time left to cancel the deletion and restore it (docs/platform.md, Backups).
PENDING_DELETION_DAYS = 30


def log_group_arn(name) -> Sub:
    """The ARN CloudWatch Logs puts in the encryption context of a log group."""
    return Sub(
        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:${Name}",
        Name=name,
    )


@dataclass
class StackKey:
    """The key and the grants added to its policy as resources come to use it.

    Builders hold a StackKey and register what they encrypt with it, so the key
    policy names exactly this stack's log groups and nothing else.
    """

    key: Key
    statements: list[Statement]
    log_group_arns: list = field(default_factory=list)

    @property
    def arn(self) -> GetAtt:
        return self.key.get_att("Arn")

    def allow_log_group(self, name) -> None:
        """Let CloudWatch Logs encrypt the log group `name` (a string or an intrinsic)."""
        if not self.log_group_arns:
            self.statements.append(
                Statement(
                    Sid="CloudWatchLogsEncryptsOwnLogGroups",
                    Effect=Allow,
                    Principal=Principal("Service", Sub("logs.${AWS::Region}.amazonaws.com")),
                    Action=[
                        kms.Action("Encrypt*"),
                        kms.Action("Decrypt*"),
                        kms.Action("ReEncrypt*"),
                        kms.Action("GenerateDataKey*"),
                        kms.Action("Describe*"),
                    ],
                    # Resource "*" in a key policy means this key.
                    Resource=["*"],
                    Condition=Condition(
                        ArnLikeCondition("kms:EncryptionContext:aws:logs:arn", self.log_group_arns)
                    ),
                )
            )
        self.log_group_arns.append(log_group_arn(name))

    def allow_service_source(self, sid: str, service: str, source_arn) -> None:
        """Let one AWS service use the key on behalf of one resource of this stack (e.g.
        EventBridge writing a rule's undeliverable events to an encrypted queue)."""
        self.statements.append(
            Statement(
                Sid=sid,
                Effect=Allow,
                Principal=Principal("Service", service),
                Action=[kms.Decrypt, kms.GenerateDataKey],
                Resource=["*"],
                Condition=Condition(ArnEqualsCondition("aws:SourceArn", source_arn)),
            )
        )

    def allow_cloudwatch_alarms(self) -> None:
        """Let CloudWatch alarms publish to an SNS topic encrypted with this key."""
        self.statements.append(
            Statement(
                Sid="CloudWatchAlarmsPublishToEncryptedTopic",
                Effect=Allow,
                Principal=Principal("Service", "cloudwatch.amazonaws.com"),
                Action=[kms.Decrypt, kms.Action("GenerateDataKey*")],
                Resource=["*"],
            )
        )


def add_stack_key(
    t: Template, naming: Naming, *, alias_base: str, description: str, component: str
) -> StackKey:
    """A rotating customer-managed key; its policy starts with the account's IAM
    administration and grows as resources register with the returned StackKey."""
    # In a key policy, Resource "*" means "this key"; no narrower form exists.
    statements = [
        Statement(
            Sid="AccountAdministersKeyThroughIam",
            Effect=Allow,
            Principal=Principal("AWS", Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")),
            Action=ACCOUNT_ACTIONS,
            Resource=["*"],
        )
    ]
    document = policy(statements)
    key = t.add_resource(
        Key(
            "StackKey",
            Description=description,
            EnableKeyRotation=True,
            PendingWindowInDays=PENDING_DELETION_DAYS,
            KeyPolicy=document,
            Tags=naming.tags(component),
            # Deleting the stack schedules the key's deletion (PendingWindowInDays).
            DeletionPolicy="Delete",
            UpdateReplacePolicy="Delete",
        )
    )
    t.add_resource(
        Alias(
            "StackKeyAlias",
            AliasName=naming.name(f"alias/{alias_base}", Kind.KMS_ALIAS),
            TargetKeyId=key.ref(),
        )
    )
    # The document's own list: statements appended later must land in the policy.
    return StackKey(key=key, statements=document.Statement)
