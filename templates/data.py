"""DynamoDB tables: transactions (always) and the simulated acquirer's ledger (under a
condition); on-demand, point-in-time recovery, stack-key encryption."""

from __future__ import annotations

from troposphere import Output, Sub, Template
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

from handlers.payments import provider, store
from templates.common import add_output
from templates.findings import Accepted, accept
from templates.keys import StackKey
from templates.naming import Kind, Naming

# docs/contract.md: one partition key `id` (transactions, idempotency-key bindings and the
# health state item share it) and TTL on `expiration` (epoch seconds: bindings, and the void
# markers of a lost binding answer, only).
PARTITION_KEY = "id"
TTL_ATTRIBUTE = "expiration"
# The sparse index of pending transactions, least recently re-queued first (the code writes
# its keys; the names are the code's own). Keys only: the sweeper sends a transaction id.
PENDING_INDEX = store.PENDING_INDEX
PENDING_SHARD_ATTRIBUTE = store.PENDING_SHARD_ATTRIBUTE
PENDING_SORT_ATTRIBUTE = store.PENDING_SORT_ATTRIBUTE
LEDGER_KEY = provider.LEDGER_KEY
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
                    Projection=Projection(ProjectionType="KEYS_ONLY"),
                )
            ],
            PointInTimeRecoverySpecification=PointInTimeRecoverySpecification(
                PointInTimeRecoveryEnabled=True
            ),
            SSESpecification=SSESpecification(
                SSEEnabled=True, SSEType="KMS", KMSMasterKeyId=key.arn
            ),
            # Key bindings expire (>= 24 h); transactions carry no `expiration` and stay.
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


def add_acquirer_ledger(
    t: Template, naming: Naming, *, key: StackKey, component: str, condition: str
) -> Table:
    """The simulated acquirer's ledger `acquirer-ledger-<suffix>`, only under `condition`.

    A real acquirer keeps its idempotency ledger server-side; the simulated one keeps it here,
    so a charge retried from another execution environment is never made twice.
    """
    table = t.add_resource(
        Table(
            "AcquirerLedgerTable",
            Condition=condition,
            TableName=naming.name("acquirer-ledger", Kind.TABLE),
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[AttributeDefinition(AttributeName=LEDGER_KEY, AttributeType="S")],
            KeySchema=[KeySchema(AttributeName=LEDGER_KEY, KeyType="HASH")],
            PointInTimeRecoverySpecification=PointInTimeRecoverySpecification(
                PointInTimeRecoveryEnabled=True
            ),
            SSESpecification=SSESpecification(
                SSEEnabled=True, SSEType="KMS", KMSMasterKeyId=key.arn
            ),
            Tags=naming.tags(component),
            DeletionPolicy="Delete",
            UpdateReplacePolicy="Delete",
        )
    )
    accept(table, PITR_IS_THE_BACKUP)
    t.add_output(
        Output(
            "AcquirerLedgerTableName",
            Condition=condition,
            Value=table.ref(),
            Description="DynamoDB ledger of the simulated acquirer",
        )
    )
    return table
