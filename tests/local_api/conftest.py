"""Both stacks deployed to the emulator once per session, then served over HTTP locally."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from deployer.aws import AwsSettings, Clients, make_clients
from deployer.run import DeployOptions, Run, prepare
from emulator import ACCESS_KEY, ACCOUNT_ID, REGION, SECRET_KEY, start
from emulator.local_api import LocalEndpoint, LocalServe

SUFFIX = "qa"
PLATFORM = f"payment-platform-{SUFFIX}"
PAYMENT_API = f"payment-api-{SUFFIX}"
# Up to four workers per function: concurrent requests really meet in different execution
# environments (a worker waiting on a throttled retry holds no core).
WORKERS = 4
# One deployment and one served API per test session: every test using them runs on the
# same xdist worker (--dist loadgroup); a module that uses `served` sets `pytestmark = SERVED`.
SERVED = pytest.mark.xdist_group("served")
# Where a payment ends (docs/handlers.md; issue 8 renames AUTHORIZED to SUCCEEDED).
TERMINAL = {"AUTHORIZED", "DECLINED", "FAILED", "SUCCEEDED", "NEEDS_REVIEW"}


@dataclass
class Served:
    """The emulator, the deployed stacks and their local gateway."""

    endpoint: str
    clients: Clients
    session: boto3.Session
    serve: LocalServe
    templates: dict[str, dict[str, Any]]
    logs: list[str]
    function_logs: list[tuple[str, str]]

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint)

    def endpoint_of(self, stack: str) -> LocalEndpoint:
        return next(e for e in self.serve.endpoints if e.stack == stack)

    def url(self, stack: str, path: str) -> str:
        endpoint = self.endpoint_of(stack)
        return f"{self.serve.apis[stack].base_url}/{endpoint.stage}{path}"


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def call(method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> Answer:
    """One HTTP request as a client sends it (JSON bodies get their content type)."""
    data = body if isinstance(body, bytes | None) else json.dumps(body).encode()
    all_headers = {"Content-Type": "application/json"} if data is not None else {}
    all_headers |= headers or {}
    request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return Answer(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, dict(error.headers), error.read())


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Deploy both stacks to an emulator of this process and serve them on free ports."""
    with start() as server:
        endpoint = server.endpoint
        settings = AwsSettings(
            region=REGION, endpoint_url=endpoint, access_key=ACCESS_KEY, secret_key=SECRET_KEY
        )
        clients = make_clients(settings)
        options = DeployOptions(suffix=SUFFIX, yes=True, local=True)
        plan = prepare(options)
        report = Run(plan, options, clients, lambda _: None, lambda _: True).execute()
        assert report.ok, report.error
        session = boto3.Session(
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION
        )
        logs: list[str] = []
        function_logs: list[tuple[str, str]] = []
        serve = LocalServe(
            clients=clients,
            session_client=lambda service: session.client(service, endpoint_url=endpoint),
            endpoint=endpoint,
            account_id=ACCOUNT_ID,
            templates={plan.name(base): plan.templates[base] for base in plan.bases},
            port=0,
            max_workers=WORKERS,
            log=logs.append,
            function_log=lambda name, line: function_logs.append((name, line)),
        )
        serve.start()
        try:
            yield Served(endpoint, clients, session, serve, serve.templates, logs, function_logs)
        finally:
            serve.stop()


# The deployed queue receives a failed retry again after 150 s; tests do not wait minutes for
# that: a shorter visibility timeout changes when, not whether, a message is redelivered.
TEST_VISIBILITY_TIMEOUT = "2"


@pytest.fixture
def fast_redelivery(served: Served) -> None:
    """The failed-transactions queue redelivers a failed retry after 2 s."""
    sqs = served.client("sqs")
    url = sqs.get_queue_url(QueueName=f"failed-transactions-{SUFFIX}")["QueueUrl"]
    sqs.set_queue_attributes(
        QueueUrl=url, Attributes={"VisibilityTimeout": TEST_VISIBILITY_TIMEOUT}
    )
