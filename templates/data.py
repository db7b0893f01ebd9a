"""The DynamoDB transactions table: on-demand, point-in-time recovery, stack-key encryption."""

from __future__ import annotations

from troposphere import Template
from troposphere.dynamodb import (
    AttributeDefinition,
    KeySchema,
    PointInTimeRecoverySpecification,
    SSESpecification,
    Table,
    TimeToLiveSpecification,
)

from templates.common import add_output
from templates.keys import StackKey
from templates.naming import Kind, Naming

# docs/contract.md: one partition key `id` (transactions, idempotency records and the
# health state item share it) and TTL on `expiration` (epoch seconds).
PARTITION_KEY = "id"
TTL_ATTRIBUTE = "expiration"


def add_transactions_table(t: Template, naming: Naming, *, key: StackKey, component: str) -> Table:
    """The `transactions-<suffix>` table and its TableName output."""
    table = t.add_resource(
        Table(
            "TransactionsTable",
            TableName=naming.name("transactions", Kind.TABLE),
            # On demand: payment traffic is spiky and the seed forbids capacity planning.
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                AttributeDefinition(AttributeName=PARTITION_KEY, AttributeType="S")
            ],
            KeySchema=[KeySchema(AttributeName=PARTITION_KEY, KeyType="HASH")],
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
    add_output(t, "TransactionsTableName", table.ref(), "DynamoDB table of transactions")
    return table
