"""The emulator's HTTP server: moto's server app on loopback, plus an info endpoint.

The info endpoint (GET /_emulator/info) lets `deploy.py --local` tell our emulator, which
has the handlers installed, from anything else on the port (a plain moto server, LocalStack).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
# LocalStack listens on 4566 (and 4510-4559; older releases 4567-4597) and moto's server on
# 5000 (taken by AirPlay on macOS): 4620 clashes with none of them.
DEFAULT_PORT = 4620
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
# moto accepts any key pair; these make it obvious that no real account is involved.
ACCESS_KEY = "local-emulator-key"
SECRET_KEY = "local-emulator-secret"  # noqa: S105 - a placeholder moto accepts, not a secret
INFO_PATH = "/_emulator/info"
EMULATOR_NAME = "payment-infrastructure-emulator"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


PROBE_TIMEOUT = 5.0  # seconds: a loaded machine answers slowly, never that slowly


@dataclass(frozen=True)
class ServerInfo:
    """What a running emulator says about itself."""

    endpoint: str
    pid: int
    moto: str
    started: float
    code: str = ""  # code_digest() of the process that serves


class ForeignServerError(Exception):
    """Something that is not our emulator answers on the port."""


class UnresponsiveServerError(Exception):
    """Something accepts connections on the port but does not answer."""


def code_digest() -> str:
    """A digest of the emulator's source files, so a client can tell a server running other
    code (started from another checkout, or before an edit) from one running its own."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def with_info(app: WsgiApp, info: dict[str, Any]) -> WsgiApp:
    """moto's WSGI app, answering GET INFO_PATH itself."""
    body = json.dumps(info).encode()

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == INFO_PATH:
            start_response(
                "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
            )
            return [body]
        return app(environ, start_response)

    return wrapped


def quiet() -> None:
    """Silence werkzeug's per-request lines and moto's per-type warnings: ours are the log."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("moto").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Tried to parse", category=UserWarning)


class EmulatorServer:
    """moto's server with the emulator installed, on HOST and a port (0: one the OS picks)."""

    def __init__(self, port: int = 0, host: str = HOST) -> None:
        self.host = host
        self.port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        """The URL every client uses (AWS_ENDPOINT_URL)."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Listen and serve in a daemon thread; OSError when the port is taken."""
        import moto
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        from emulator import install

        install()
        quiet()
        if self.port:
            # werkzeug exits the process on a taken port; raise OSError for the caller instead.
            with socket.socket() as probe_socket:
                probe_socket.bind((self.host, self.port))
        info = {
            "emulator": EMULATOR_NAME,
            "pid": os.getpid(),
            "moto": moto.__version__,
            "started": time.time(),
            "code": code_digest(),
        }
        app = with_info(DomainDispatcherApplication(create_backend_app), info)
        self._server = make_server(
            self.host, self.port, app, threaded=True, request_handler=MotoRequestHandler
        )
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="emulator", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and release the port; the emulated state goes with the process."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None


@contextmanager
def start(port: int = 0) -> Iterator[EmulatorServer]:
    """The emulator in this process for the duration of the block."""
    server = EmulatorServer(port)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def serve(port: int = DEFAULT_PORT, ready: Callable[[EmulatorServer], None] | None = None) -> None:
    """Run the emulator until Ctrl-C (KeyboardInterrupt), then stop it cleanly."""
    with start(port) as server:
        if ready is not None:
            ready(server)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return


def probe(endpoint: str, timeout: float = PROBE_TIMEOUT) -> ServerInfo | None:
    """The emulator answering at endpoint, None when nothing listens there.

    Raises ForeignServerError when something else answers (a plain moto server, LocalStack):
    it has none of our handlers, so deploying there would skip resources; and
    UnresponsiveServerError when something accepts the connection but does not answer in
    `timeout` seconds (a busy emulator is not taken for an absent one).
    """
    try:
        with urllib.request.urlopen(endpoint + INFO_PATH, timeout=timeout) as response:  # noqa: S310 - loopback URL we built
            data = json.loads(response.read().decode())
    except urllib.error.HTTPError as error:
        raise ForeignServerError(
            f"{endpoint} answers HTTP {error.code}: not the emulator"
        ) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        if isinstance(reason, ConnectionRefusedError):
            return None
        if isinstance(reason, TimeoutError):
            raise UnresponsiveServerError(
                f"{endpoint} accepted the connection but did not answer in {timeout:g} s"
            ) from None
        raise ForeignServerError(
            f"{endpoint} answers, but not as the emulator ({reason})"
        ) from None
    except ValueError:
        raise ForeignServerError(f"{endpoint} answers, but not as the emulator") from None
    if not isinstance(data, dict) or data.get("emulator") != EMULATOR_NAME:
        raise ForeignServerError(f"{endpoint} answers, but not as the emulator")
    return ServerInfo(
        endpoint=endpoint,
        pid=int(data["pid"]),
        moto=str(data["moto"]),
        started=float(data["started"]),
        code=str(data.get("code", "")),
    )
