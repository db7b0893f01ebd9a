"""Token buckets: API Gateway's rate (tokens per second) and burst (bucket size) limits."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """A bucket of `burst` tokens refilled at `rate` per second; a request takes one.

    API Gateway throttles with the token bucket algorithm (its documentation says so),
    per usage-plan key and per stage method; this is that algorithm, nothing more.
    """

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.capacity = float(burst)
        self.tokens = float(burst)
        self.clock = clock
        self.updated = clock()
        self.lock = threading.Lock()

    def take(self) -> bool:
        """True when a token was available (the request may go on)."""
        with self.lock:
            now = self.clock()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False


class Buckets:
    """One bucket per key, created on first use with the limits given then."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.buckets: dict[tuple, TokenBucket] = {}
        self.lock = threading.Lock()

    def take(self, key: tuple, rate: float, burst: int) -> bool:
        """Take a token from the bucket of `key`."""
        with self.lock:
            bucket = self.buckets.get(key)
            if bucket is None or (bucket.rate, bucket.capacity) != (rate, float(burst)):
                bucket = self.buckets[key] = TokenBucket(rate, burst, self.clock)
        return bucket.take()
