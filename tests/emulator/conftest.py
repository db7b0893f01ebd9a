"""Fixtures for the emulator tests: one emulator per session, reset before each test."""

from __future__ import annotations

import functools
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

import emulator
from tests.deployer.conftest import Lines, fake_aws_env, lines  # noqa: F401 - shared fixtures

Client = Callable[[str], Any]


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[emulator.EmulatorServer]:
    """The emulator in this process on a free loopback port, for the whole session."""
    with emulator.start() as server:
        yield server


@pytest.fixture
def aws(emulator_server: emulator.EmulatorServer, fake_aws_env: None) -> Client:  # noqa: F811
    """A boto3 client factory for a freshly reset emulator (nothing left from other tests)."""
    request = urllib.request.Request(f"{emulator_server.endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request) as response:
        assert response.status == 200

    @functools.cache  # a client takes ~60 ms to make; one per service per test
    def client(service: str) -> Any:
        return boto3.client(
            service,
            region_name=emulator.REGION,
            endpoint_url=emulator_server.endpoint,
            aws_access_key_id=emulator.ACCESS_KEY,
            aws_secret_access_key=emulator.SECRET_KEY,
        )

    return client


__all__ = ["Lines"]
