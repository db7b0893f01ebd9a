"""The emulator's HTTP server: moto's server app on loopback, plus an info endpoint.

The info endpoint (GET /_emulator/info) lets `deploy.py --local` tell our emulator, which
has the handlers installed, from anything else on the port (a plain moto server, LocalStack).
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class ServerInfo:
    """What a running emulator says about itself."""

    endpoint: str
    pid: int
    moto: str
    started: float


class ForeignServerError(Exception):
    """Something that is not our emulator answers on the port."""


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


def probe(endpoint: str, timeout: float = 1.0) -> ServerInfo | None:
    """The emulator answering at endpoint, None when nothing listens there.

    Raises ForeignServerError when something else answers (a plain moto server, LocalStack):
    it has none of our handlers, so deploying there would skip resources.
    """
    try:
        with urllib.request.urlopen(endpoint + INFO_PATH, timeout=timeout) as response:  # noqa: S310 - loopback URL we built
            data = json.loads(response.read().decode())
    except urllib.error.HTTPError as error:
        raise ForeignServerError(
            f"{endpoint} answers HTTP {error.code}: not the emulator"
        ) from None
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None
    except ValueError:
        raise ForeignServerError(f"{endpoint} answers, but not as the emulator") from None
    if not isinstance(data, dict) or data.get("emulator") != EMULATOR_NAME:
        raise ForeignServerError(f"{endpoint} answers, but not as the emulator")
    return ServerInfo(
        endpoint=endpoint,
        pid=int(data["pid"]),
        moto=str(data["moto"]),
        started=float(data["started"]),
    )
