"""Faults injected where AWS would produce them: inside the emulated DynamoDB service.

The functions run in processes of their own and reach DynamoDB over HTTP, as on Lambda; so a
throttle is injected in the service (moto's DynamoDB request handler of this process), and
every execution environment sees the same ProvisionedThroughputExceededException answer a
throttled table gives, botocore's retries included. Nothing is shared that AWS does not share.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from moto.core.exceptions import JsonRESTError
from moto.dynamodb.responses import DynamoHandler

THROTTLED = "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"


@dataclass
class Throttling:
    """Throttle a share of the writes to one table; counts what it did."""

    table: str
    probability: float
    seed: int = 0
    injected: int = 0
    calls: int = 0
    rng: random.Random = field(init=False)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def should_throttle(self, table: str | None) -> bool:
        with self.lock:
            if table != self.table:
                return False
            self.calls += 1
            if self.rng.random() < self.probability:
                self.injected += 1
                return True
            return False


@contextmanager
def throttled_writes(table: str, probability: float, seed: int = 0) -> Iterator[Throttling]:
    """While active, PutItem and UpdateItem on `table` are throttled with `probability`."""
    state = Throttling(table, probability, seed)
    originals = {name: getattr(DynamoHandler, name) for name in ("put_item", "update_item")}

    def wrap(name: str):
        original = originals[name]

        def action(self: DynamoHandler):
            if state.should_throttle(self.body.get("TableName")):
                raise JsonRESTError(THROTTLED, "Rate of requests exceeds the allowed throughput.")
            return original(self)

        return action

    for name in originals:
        setattr(DynamoHandler, name, wrap(name))
    try:
        yield state
    finally:
        for name, original in originals.items():
            setattr(DynamoHandler, name, original)
