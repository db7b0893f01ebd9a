"""Deployed Lambda functions run locally, each in worker processes of its own.

A worker is one execution environment: its own interpreter (the declared runtime's Python
when this machine has it), the deployed zip extracted as its task root, exactly the deployed
function's environment variables plus what Lambda sets (no variable of this process leaks
in), and its own module state, since our handlers read their configuration at import. A
worker serves one invocation at a time; concurrent invocations start more workers, up to a
limit per function, as Lambda scales out execution environments.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WORKER_SCRIPT = Path(__file__).with_name("worker.py")
# What an execution environment gets besides the function's own variables: what Lambda
# sets, the emulator's endpoint and placeholder credentials (Lambda gives the role's).
LAMBDA_VARIABLES = (
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_EXECUTION_ENV",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "LAMBDA_TASK_ROOT",
    "_HANDLER",
    "_EMULATOR_TIMEOUT_SECONDS",
    "TZ",
    "LANG",
    "PATH",
    "PYTHONUNBUFFERED",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
)
DEFAULT_MAX_WORKERS = 4
# The error type of an invocation its caller stopped waiting for (see Worker.invoke).
CALLER_TIMEOUT = "Emulator.CallerTimeout"


class FunctionsError(RuntimeError):
    """A function cannot be run locally (its code, runtime or definition)."""


@dataclass(frozen=True)
class FunctionSpec:
    """What Lambda knows about a deployed function, as the emulator's Lambda reports it."""

    name: str
    arn: str
    handler: str
    runtime: str
    timeout: float
    memory: int
    environment: dict[str, str]
    code: bytes
    log_group: str


@dataclass(frozen=True)
class Invocation:
    """The outcome of one invocation: the handler's result, or Lambda's error shape."""

    result: Any = None
    error: dict[str, str] | None = None
    duration_ms: float = 0.0  # as the host waited for it (the pipe included)
    handler_ms: float = 0.0  # the handler alone, measured in the worker

    @property
    def ok(self) -> bool:
        return self.error is None


def read_function(lambda_client: Any, code_of: Callable[[str], bytes], name: str) -> FunctionSpec:
    """A function's configuration from Lambda's API and its deployed zip (checked against the
    CodeSha256 the API reports)."""
    config = lambda_client.get_function(FunctionName=name)["Configuration"]
    code = code_of(config["FunctionName"])
    digest = base64.b64encode(hashlib.sha256(code).digest()).decode()
    if config.get("CodeSha256") and digest != config["CodeSha256"]:
        raise FunctionsError(f"{name}: the code read does not match the deployed CodeSha256")
    logging = config.get("LoggingConfig") or {}
    return FunctionSpec(
        name=config["FunctionName"],
        arn=config["FunctionArn"],
        handler=config["Handler"],
        runtime=config.get("Runtime", ""),
        timeout=float(config.get("Timeout", 3)),
        memory=int(config.get("MemorySize", 128)),
        environment=dict((config.get("Environment") or {}).get("Variables") or {}),
        code=code,
        log_group=logging.get("LogGroup") or f"/aws/lambda/{config['FunctionName']}",
    )


def moto_code(account: str, region: str) -> Callable[[str], bytes]:
    """The zip moto's Lambda backend holds for a function (its API gives no download URL)."""

    def code_of(name: str) -> bytes:
        from moto.backends import get_backend

        return get_backend("lambda")[account][region].get_function(name).code_bytes

    return code_of


def runtime_python(runtime: str) -> tuple[str, str | None]:
    """The interpreter for a `pythonX.Y` runtime, and a warning when it is not that version."""
    wanted = runtime.removeprefix("python")
    current = f"{sys.version_info.major}.{sys.version_info.minor}"
    if wanted == current:
        return sys.executable, None
    found = shutil.which(f"python{wanted}")
    if found:
        return found, None
    return sys.executable, (
        f"runtime {runtime} not found on this machine; running on Python {current}"
    )


# What the Lambda Python runtime provides besides the zip: boto3 and what boto3 imports.
RUNTIME_MODULES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")


def runtime_dir(root: Path) -> Path:
    """A directory holding only the runtime's modules (links to this installation's), so a
    function sees what Lambda gives it and nothing else of this machine's site-packages: a
    dependency missing from the zip fails here as it would on Lambda."""
    import importlib

    target = root / "runtime"
    target.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_MODULES:
        location = Path(importlib.import_module(name).__file__ or "").resolve()
        source = location.parent if location.name == "__init__.py" else location
        link = target / source.name
        if not link.exists():
            link.symlink_to(source)
    return target


def task_root_of(root: Path, code: bytes) -> Path:
    """The zip extracted once per distinct zip: our functions share one package, so they
    share one extraction and the bytecode its first environment writes (each function had
    a copy, extracted, compiled and deleted one by one). On Lambda /var/task is read-only;
    nothing of ours writes there, so sharing it shares nothing a function could change."""
    target = root / "code" / hashlib.sha256(code).hexdigest()[:16]
    if not target.exists():
        with zipfile.ZipFile(io.BytesIO(code)) as archive:
            archive.extractall(target)
    return target


class Worker:
    """One worker process (execution environment) of a function."""

    def __init__(
        self, spec: FunctionSpec, task_root: Path, env: dict[str, str], python: str, runtime: Path
    ):
        self.spec = spec
        self.process = subprocess.Popen(  # noqa: S603 - our interpreter and our script
            [python, "-S", str(WORKER_SCRIPT), str(task_root), str(runtime)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            text=True,
            encoding="utf-8",
            bufsize=1,
        )
        self.logs = threading.Thread(target=self._forward_logs, daemon=True)
        self.logs.start()
        self.answers: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.reader = threading.Thread(target=self._read_answers, daemon=True)
        self.reader.start()
        self.log_sink: Callable[[str, str], None] | None = None
        ready = self._next(timeout=max(30.0, spec.timeout))
        self.init_error = None if ready.get("ready") else ready.get("error")

    def _forward_logs(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            sink = self.log_sink
            if sink is not None:
                sink(self.spec.name, line.rstrip("\n"))

    def _read_answers(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.answers.put(json.loads(line))
        self.answers.put(None)

    def _next(self, timeout: float, kind: str = "Sandbox.Timedout") -> dict[str, Any]:
        try:
            answer = self.answers.get(timeout=timeout)
        except queue.Empty:
            # Lambda ends an execution environment whose invocation timed out. Reaped before
            # anyone looks at it again: a killed but unreaped process still polls alive, and
            # reused it would answer the next request with the late answer of this one.
            self.process.kill()
            self.process.wait()
            return {
                "error": {
                    "errorType": kind,
                    "errorMessage": f"Task timed out after {timeout:.2f} seconds",
                }
            }
        if answer is None:
            return {
                "error": {
                    "errorType": "Runtime.ExitError",
                    "errorMessage": f"the runtime exited ({self.process.poll()})",
                }
            }
        return answer

    @property
    def alive(self) -> bool:
        return self.process.poll() is None and self.init_error is None

    def invoke(self, event: Any, request_id: str, limit: float | None = None) -> Invocation:
        """Run the handler once; a timeout or crash kills this environment. `limit`: the
        caller gives up sooner than the function's timeout (API Gateway's 29 s)."""
        if self.init_error is not None:
            return Invocation(error=self.init_error)
        start = time.monotonic()
        request = {
            "event": event,
            "context": {"awsRequestId": request_id, "invokedFunctionArn": self.spec.arn},
        }
        try:
            assert self.process.stdin is not None
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
        except OSError:
            return Invocation(
                error={"errorType": "Runtime.ExitError", "errorMessage": "the runtime is gone"}
            )
        if limit is not None and limit < self.spec.timeout:
            answer = self._next(timeout=limit, kind=CALLER_TIMEOUT)
        else:
            answer = self._next(timeout=self.spec.timeout)
        duration = (time.monotonic() - start) * 1000
        if "error" in answer:
            return Invocation(error=answer["error"], duration_ms=duration)
        return Invocation(
            result=answer.get("result"),
            duration_ms=duration,
            handler_ms=float(answer.get("handlerMs", 0.0)),
        )

    def end_input(self) -> None:
        """Close stdin: the worker's loop ends after its current invocation."""
        try:
            assert self.process.stdin is not None
            self.process.stdin.close()
        except OSError:
            pass

    def stop(self) -> None:
        """End the process (closing stdin ends its loop; kill if it does not)."""
        if self.process.poll() is None:
            self.end_input()
            try:
                self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def stop_all(workers: list[Worker]) -> None:
    """Stop workers together: each is told first, so they shut down in parallel (one by
    one, twenty environments took ~10 s of the test session's teardown)."""
    for worker in workers:
        worker.end_input()
    for worker in workers:
        worker.stop()


@dataclass
class FunctionRunner:
    """All workers of one function: idle ones are reused, more start up to `max_workers`."""

    spec: FunctionSpec
    endpoint: str
    region: str
    task_root: Path
    runtime: Path  # runtime_dir(): the modules the Lambda runtime provides
    max_workers: int = DEFAULT_MAX_WORKERS
    log_sink: Callable[[str, str], None] | None = None
    warn: Callable[[str], None] = print
    idle: list[Worker] = field(default_factory=list)
    started: int = 0  # environments ever started
    gone: int = 0  # of which stopped (timed out, crashed)
    workers: list[Worker] = field(default_factory=list)
    lock: threading.Condition = field(default_factory=threading.Condition)
    closed: bool = False

    def environment(self) -> dict[str, str]:
        """The deployed variables, what Lambda sets, and the emulator's endpoint."""
        spec = self.spec
        stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        return {
            **spec.environment,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory),
            "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "LAMBDA_TASK_ROOT": str(self.task_root),
            "_HANDLER": spec.handler,
            "_EMULATOR_TIMEOUT_SECONDS": str(spec.timeout),
            "TZ": "UTC",
            "LANG": "C.UTF-8",
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "PYTHONUNBUFFERED": "1",
            # Lambda gives the function its role's credentials; the emulator takes any.
            "AWS_ACCESS_KEY_ID": "local-function-key",
            "AWS_SECRET_ACCESS_KEY": "local-function-secret",
            "AWS_SESSION_TOKEN": "local-function-session",
            "AWS_ENDPOINT_URL": self.endpoint,
        }

    def _start_worker(self) -> Worker:
        python, warning = runtime_python(self.spec.runtime)
        if warning and self.started == 0:
            self.warn(f"{self.spec.name}: {warning}")
        worker = Worker(self.spec, self.task_root, self.environment(), python, self.runtime)
        worker.log_sink = self.log_sink
        return worker

    def _acquire(self) -> Worker | None:
        with self.lock:
            while True:
                if self.closed:
                    return None
                while self.idle:
                    worker = self.idle.pop()
                    if worker.alive:
                        return worker
                    self.workers.remove(worker)
                    self.gone += 1
                if self.started - self.gone < self.max_workers:
                    self.started += 1
                    break
                self.lock.wait()
        worker = self._start_worker()
        with self.lock:
            self.workers.append(worker)
            if not self.closed:
                return worker
        worker.stop()
        return None

    def _release(self, worker: Worker) -> None:
        with self.lock:
            if worker.alive and not self.closed:
                self.idle.append(worker)
            else:
                worker.stop()
                if worker in self.workers:
                    self.workers.remove(worker)
                    self.gone += 1
            self.lock.notify()

    def warm(self) -> None:
        """Start one environment now (init errors show up at start, not on a request)."""
        worker = self._acquire()
        if worker is not None:
            self._release(worker)

    def invoke(
        self, event: Any, request_id: str | None = None, limit: float | None = None
    ) -> Invocation:
        """Invoke the function once in a free execution environment."""
        worker = self._acquire()
        if worker is None:
            return Invocation(
                error={"errorType": "Emulator.Stopped", "errorMessage": "the emulator is stopping"}
            )
        try:
            return worker.invoke(event, request_id or str(uuid.uuid4()), limit)
        finally:
            self._release(worker)

    def detach(self) -> list[Worker]:
        """Take no more invocations; the workers, for the caller to stop."""
        with self.lock:
            self.closed = True
            workers, self.workers, self.idle = list(self.workers), [], []
            self.lock.notify_all()
        return workers

    def close(self) -> None:
        """Stop every worker."""
        stop_all(self.detach())


class Functions:
    """The deployed functions the emulator runs, by name and by ARN."""

    def __init__(
        self,
        specs: list[FunctionSpec],
        *,
        endpoint: str,
        region: str,
        max_workers: int = DEFAULT_MAX_WORKERS,
        log_sink: Callable[[str, str], None] | None = None,
        warn: Callable[[str], None] = print,
    ) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="payment-emulator-functions-"))
        self.runners: dict[str, FunctionRunner] = {}
        runtime = runtime_dir(self.root)
        for spec in specs:
            task_root = task_root_of(self.root, spec.code)
            self.runners[spec.name] = FunctionRunner(
                spec, endpoint, region, task_root, runtime, max_workers, log_sink, warn
            )
        self.by_arn = {runner.spec.arn: runner for runner in self.runners.values()}

    def runner(self, name_or_arn: str) -> FunctionRunner | None:
        """The runner of a function given by name or ARN (a `:$LATEST` qualifier is ignored)."""
        key = name_or_arn.removesuffix(":$LATEST")
        return self.runners.get(key) or self.by_arn.get(key)

    def warm(self) -> None:
        """One environment per function, started in parallel."""
        threads = [threading.Thread(target=r.warm) for r in self.runners.values()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def close(self) -> None:
        """Stop every worker and remove the extracted code."""
        stop_all([worker for runner in self.runners.values() for worker in runner.detach()])
        shutil.rmtree(self.root, ignore_errors=True)
