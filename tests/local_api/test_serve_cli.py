"""`deploy.py --local --serve` as the README says, and Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import deploy

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def readme_block(marker: str) -> str:
    """The fenced bash block after `<!-- marker -->` in the README, as a user copies it."""
    match = re.search(rf"<!-- {marker} -->\n```bash\n(.*?)```", README, re.S)
    assert match, f"README has no block marked {marker}"
    return match.group(1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def workers_of(pid: int) -> list[int]:
    """Child processes of `pid` that are function workers."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid and b"emulator/worker.py" in cmdline:
            found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_the_readme_commands_serve_the_api_and_ctrl_c_stops_everything(tmp_path):
    command = readme_block("local-api-serve").strip().split()
    assert command[:2] == [".venv/bin/python", "deploy.py"]
    outputs = tmp_path / "build" / "local-api.json"
    # Word for word, but on ports no other test or developer uses, and the file in tmp_path.
    argv = [sys.executable, str(ROOT / "deploy.py"), *command[2:]]
    argv[argv.index("--outputs-file") + 1] = str(outputs)
    argv += ["--serve-port", "0", "--local-port", str(free_port())]
    process = subprocess.Popen(
        argv,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,  # its own process group, as a terminal gives a command
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 120
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "serving; Ctrl-C stops it" in line:
                break
        output = "".join(lines)
        assert "serving; Ctrl-C stops it" in output, output
        data = json.loads(outputs.read_text())
        local = data["payment-platform-qa"]["Local"]
        assert f"[payment-platform-qa] Local InvokeUrl: {local['InvokeUrl']}" in output
        assert f"[payment-platform-qa] Local ApiKeyValue: {local['ApiKeyValue']}" in output
        assert set(data["payment-api-qa"]["Local"]) == {"InvokeUrl", "ApiKeyValue"}
        assert data["payment-platform-qa"]["Outputs"]["ProcessorFunctionName"]

        curl = subprocess.run(
            ["bash", "-c", "set -euo pipefail\n" + readme_block("local-api-curl")],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert curl.returncode == 0, curl.stderr
        answer = json.loads(curl.stdout)
        assert answer["status"] in {"AUTHORIZED", "SUCCEEDED"}, curl.stdout
        workers = workers_of(process.pid)
        assert workers, "no function worker process found"
    finally:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole group
        rest, _ = process.communicate(timeout=60)
    assert process.returncode == 0, rest
    assert "--serve: stopped" in rest
    # "The answer is the 201 of the deployed processing function" (README): the access line.
    assert re.search(r" POST /process-payment 201 ", output + rest), output + rest
    assert "Traceback" not in rest
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--serve"], "--serve goes with --local or --local-server"),
        (["--local", "--serve", "--destroy"], "not with --destroy"),
        # --outputs-file is the deployer's (issue 10): without --serve it holds the Outputs.
        (["--outputs-file", "/dev/null/x.json"], "/dev/null is not a directory"),
    ],
)
def test_serve_options_are_checked_before_anything_runs(extra, message, monkeypatch, capsys):
    """Exit 2 with the reason, before the plan is even prepared (in this process: the
    README test above runs deploy.py as a user does)."""

    def must_not_run(*_args, **_kwargs):
        raise AssertionError("deploy.py prepared a deployment before checking its options")

    monkeypatch.setattr(deploy, "prepare", must_not_run)
    assert deploy.main(["--suffix", "qa", "--yes", *extra]) == 2
    assert message in capsys.readouterr().err
