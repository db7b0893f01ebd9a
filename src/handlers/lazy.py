"""A value built on first use and kept for the life of the execution environment."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Lazy(Generic[T]):
    """Built on the first call, then reused.

    Lambda reuses an execution environment for many invocations: clients built once are
    reused, and building nothing at import keeps the cold start short.
    """

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._value: T | None = None

    def __call__(self) -> T:
        if self._value is None:
            self._value = self._build()
        return self._value
