"""The emulator's DynamoDB answers as DynamoDB does under concurrent requests.

DynamoDB serialises each request on an item and answers with what the item held then. moto
returns its live Item objects and serialises them after the call, outside any lock, so a
write from another thread could change an answer already given, or break its serialisation
('dictionary changed size during iteration': the racing tests in tests/handlers saw it
under load). These tests read the backend as moto's response layer does and write after.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from emulator.patches import install_dynamodb_atomicity

TABLE = "fidelity"
REGION = "us-east-1"


@pytest.fixture
def dynamodb(fake_aws_env: None) -> Iterator[tuple[Any, Any]]:
    """(a boto3 client, moto's backend behind it) with the emulator's DynamoDB fix."""
    install_dynamodb_atomicity()
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        client.put_item(TableName=TABLE, Item={"id": {"S": "a"}, "status": {"S": "RECEIVED"}})
        yield client, dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION]


def complete(client: Any) -> None:
    """Another request's write: changes one attribute and adds one."""
    client.update_item(
        TableName=TABLE,
        Key={"id": {"S": "a"}},
        UpdateExpression="SET #s = :done, completedAt = :now",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":done": {"S": "SUCCEEDED"}, ":now": {"S": "t1"}},
    )


def test_an_item_already_read_does_not_change_under_a_later_write(dynamodb):
    client, backend = dynamodb
    answer = backend.get_item(TABLE, {"id": {"S": "a"}})
    complete(client)
    assert answer.to_json()["Attributes"] == {"id": {"S": "a"}, "status": {"S": "RECEIVED"}}


def test_a_scan_or_query_already_answered_does_not_change_under_a_later_write(dynamodb):
    client, backend = dynamodb
    scanned, _, _ = backend.scan(
        TABLE, {}, None, None, None, {}, {}, None, False, None, (None, None)
    )
    queried, _, _ = backend.query(TABLE, {"S": "a"}, None, [], None, None, True, None)
    complete(client)
    for (item,) in (scanned, queried):
        assert item.to_json()["Attributes"]["status"] == {"S": "RECEIVED"}
        assert "completedAt" not in item.to_json()["Attributes"]
