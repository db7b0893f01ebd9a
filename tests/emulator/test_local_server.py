"""`deploy.py --local-server` keeps state between `deploy.py --local` commands; Ctrl-C stops it."""

from __future__ import annotations

import http.server
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import deploy
import emulator
from deployer import local

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def run(capsys: Any, *argv: str) -> tuple[int, str]:
    code = deploy.main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


def test_state_kept_across_commands_until_ctrl_c(capsys: Any, fake_aws_env: None) -> None:
    # Port 0: the server takes one the OS gives it (a free port picked here first could be
    # taken by another xdist worker before the server binds it); its first line says which.
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "deploy.py"), "--local-server", "--local-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert server.stdout is not None
        first = server.stdout.readline()
        found = re.search(r"emulator at http://127\.0\.0\.1:(\d+) ", first)
        assert found, first
        port = found.group(1)
        args = (
            "--suffix",
            "srv",
            "--local",
            "--local-port",
            port,
            "--yes",
            "--stack",
            "payment-platform",
        )
        code, out = run(capsys, *args)
        assert code == 0, out
        assert f"using the emulator at http://127.0.0.1:{port}" in out
        assert "[payment-platform-srv] CREATE_COMPLETE" in out
        code, out = run(capsys, *args)  # a second command finds the stack deployed
        assert code == 0 and "payment-platform-srv: up to date" in out, out
        code, out = run(
            capsys,
            "--suffix",
            "srv",
            "--local",
            "--local-port",
            port,
            "--destroy",
            "--yes",
            "--stack",
            "payment-platform",
        )
        assert code == 0 and "payment-platform-srv: deleted" in out, out
    finally:
        server.send_signal(signal.SIGINT)
        rest, _ = server.communicate(timeout=30)
    assert server.returncode == 0
    assert "--local-server: stopped" in rest


def test_local_never_deploys_into_another_server(capsys: Any) -> None:
    # Something else (say LocalStack) on the port: a throwaway emulator is used instead.
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        with local.local_target(other.server_address[1]) as target:
            assert (
                target.kept is False
                and target.endpoint != f"http://127.0.0.1:{other.server_address[1]}"
            )
            assert "not the emulator" in target.note
    finally:
        other.shutdown()
        other.server_close()


def test_local_server_refuses_deploy_flags_and_a_taken_port(capsys: Any) -> None:
    code, out = run(capsys, "--local-server", "--destroy")
    assert code == 2 and "--local-server runs the emulator" in out
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code, out = run(capsys, "--local-server", "--local-port", str(taken.getsockname()[1]))
    assert code == 1 and "cannot listen on 127.0.0.1" in out and "--local-port" in out


def test_missing_moto_says_what_to_install(capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local.importlib.util, "find_spec", lambda name: None)
    code, out = run(capsys, "--local-server")
    assert code == 1 and "pip install -e '.[dev]'" in out


def test_a_busy_listener_is_not_taken_for_no_emulator() -> None:
    # Accepts, never answers: --local must not deploy to a throwaway emulator instead.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        with pytest.raises(local.LocalEmulatorError, match="did not answer"):
            with local.local_target(silent.getsockname()[1], probe_timeout=0.2):
                pass


def test_an_emulator_running_other_code_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    with emulator.start() as server:
        with local.local_target(server.port) as target:
            assert target.kept and "other emulator code" not in target.note
        monkeypatch.setattr(local, "code_digest", lambda: "edited-since")
        with local.local_target(server.port) as target:
            assert target.kept and "runs other emulator code than this checkout" in target.note
