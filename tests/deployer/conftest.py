"""Fixtures for the deployer tests: fake credentials, a moto server, recorded output."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest

from deployer.aws import AwsSettings, Clients, make_clients
from deployer.local import moto_server

REGION = "us-east-1"


@pytest.fixture(autouse=True)
def fake_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test can reach a real account: fake keys, us-east-1, no profile or config files."""
    empty = tmp_path_factory.mktemp("aws") / "none"
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's server in this process on 127.0.0.1 and a free port (with our moto patches)."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def moto_clients(moto_endpoint: str, fake_aws_env: None) -> Clients:
    """Clients pointed at a freshly reset moto server."""
    request = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")
    with urllib.request.urlopen(request) as response:
        assert response.status == 200
    return make_clients(AwsSettings(region=REGION, endpoint_url=moto_endpoint, max_attempts=2))


class Lines(list):
    """A writer that keeps every line, for asserting on output."""

    def __call__(self, line: str) -> None:
        self.append(line)

    def text(self) -> str:
        """All lines joined."""
        return "\n".join(self)


@pytest.fixture
def lines() -> Lines:
    """A fresh recording writer."""
    return Lines()


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """deploy.main must refuse the input before it makes any AWS client."""

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("bad input must be refused before any AWS client is made")

    monkeypatch.setattr("deploy.make_clients", refuse)
