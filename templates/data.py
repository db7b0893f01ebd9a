"""The DynamoDB transactions table: on-demand, point-in-time recovery, stack-key encryption."""

from __future__ import annotations

from troposphere import Sub, Template
from troposphere.dynamodb import (
    AttributeDefinition,
    GlobalSecondaryIndex,
    KeySchema,
    PointInTimeRecoverySpecification,
    Projection,
    SSESpecification,
    Table,
    TimeToLiveSpecification,
)

from templates.common import add_output
from templates.findings import Accepted, accept
from templates.keys import StackKey
from templates.naming import Kind, Naming

# docs/contract.md: one partition key `id` (transactions, idempotency records and the
# health state item share it) and TTL on `expiration` (epoch seconds).
PARTITION_KEY = "id"
TTL_ATTRIBUTE = "expiration"
# The sparse index of transactions still RECEIVED (handlers/payments/store.py writes its keys
# on creation and removes `pendingShard` on completion); the health function's sweeper
# queries it. It projects what a retry message needs: the normalised payment, never card data.
PENDING_INDEX = "pending-by-age"
PENDING_SHARD_ATTRIBUTE = "pendingShard"
PENDING_SORT_ATTRIBUTE = "receivedAt"
PENDING_PROJECTION = ["amount", "currency", "paymentToken", "merchantId", "description"]
PITR_IS_THE_BACKUP = Accepted(
    "Point-in-time recovery (continuous, 35 days) is the table's backup. An AWS Backup vault "
    "keeps recovery points that block deleting the stack, which the seed requires to work; "
    "docs/platform.md (Backups) says how to keep a restorable copy beyond the stack's life.",
    cdk_nag=("NIST.800.53.R5-DynamoDBInBackupPlan",),
)


def add_transactions_table(t: Template, naming: Naming, *, key: StackKey, component: str) -> Table:
    """The `transactions-<suffix>` table and its TableName output."""
    table = t.add_resource(
        Table(
            "TransactionsTable",
            TableName=naming.name("transactions", Kind.TABLE),
            # On demand: payment traffic is spiky and the seed forbids capacity planning.
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                AttributeDefinition(AttributeName=PARTITION_KEY, AttributeType="S"),
                AttributeDefinition(AttributeName=PENDING_SHARD_ATTRIBUTE, AttributeType="S"),
                AttributeDefinition(AttributeName=PENDING_SORT_ATTRIBUTE, AttributeType="S"),
            ],
            KeySchema=[KeySchema(AttributeName=PARTITION_KEY, KeyType="HASH")],
            # On demand: the index takes no throughput settings either.
            GlobalSecondaryIndexes=[
                GlobalSecondaryIndex(
                    IndexName=PENDING_INDEX,
                    KeySchema=[
                        KeySchema(AttributeName=PENDING_SHARD_ATTRIBUTE, KeyType="HASH"),
                        KeySchema(AttributeName=PENDING_SORT_ATTRIBUTE, KeyType="RANGE"),
                    ],
                    Projection=Projection(
                        ProjectionType="INCLUDE", NonKeyAttributes=PENDING_PROJECTION
                    ),
                )
            ],
            PointInTimeRecoverySpecification=PointInTimeRecoverySpecification(
                PointInTimeRecoveryEnabled=True
            ),
            SSESpecification=SSESpecification(
                SSEEnabled=True, SSEType="KMS", KMSMasterKeyId=key.arn
            ),
            # Idempotency records expire; transactions carry no `expiration` and stay.
            TimeToLiveSpecification=TimeToLiveSpecification(
                AttributeName=TTL_ATTRIBUTE, Enabled=True
            ),
            Tags=naming.tags(component),
            # The seed wants every resource destroyable: PITR backups are the recovery path.
            DeletionPolicy="Delete",
            UpdateReplacePolicy="Delete",
        )
    )
    accept(table, PITR_IS_THE_BACKUP)
    add_output(t, "TransactionsTableName", table.ref(), "DynamoDB table of transactions")
    return table


def pending_index_arn(table: Table) -> Sub:
    """The ARN of the sparse index of unfinished transactions (for dynamodb:Query grants)."""
    return Sub("${" + table.title + ".Arn}/index/" + PENDING_INDEX)
