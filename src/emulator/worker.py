"""One local Lambda execution environment: run as a script in its own interpreter.

`python -S worker.py TASK_ROOT RUNTIME_DIR...`: the deployed zip, extracted, comes first on
sys.path (as /var/task does on Lambda), then the directories that provide what the Lambda
runtime provides (boto3 and its dependencies, nothing else of the host). The handler module
is imported once (init, where our handlers read their configuration) and then invoked once
per request line. Standard library only: nothing of the emulator is importable here, as
nothing of the host is on Lambda.

Protocol, one JSON object per line: the host writes {"event", "context"}; the worker answers
{"result": ..., "handlerMs": ...} or {"error": {"errorType", "errorMessage"}} on the pipe it
was given (the original stdout); the function's own prints and logs go to stderr, as Lambda
sends them to CloudWatch Logs.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import time
import traceback


class LambdaContext:
    """The context object the Lambda Python runtime passes to a handler."""

    def __init__(self, data: dict, deadline: float) -> None:
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.invoked_function_arn = data["invokedFunctionArn"]
        self.aws_request_id = data["awsRequestId"]
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _error(error: BaseException) -> dict:
    # The shape Lambda reports for an unhandled error; the trace goes to the function's log.
    traceback.print_exception(error, file=sys.stderr)
    return {"error": {"errorType": type(error).__name__, "errorMessage": str(error)}}


def main() -> None:
    # Ctrl-C in the terminal reaches the whole process group: the host stops its workers
    # (closing their stdin), so a worker must not die mid-invocation with a traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    task_root, *runtime_dirs = sys.argv[1:]
    # The task root, then the runtime's modules; not this script's directory (the emulator's
    # modules), which Python put first.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [task_root, *runtime_dirs] + [
        path for path in sys.path if os.path.abspath(path) != here
    ]
    os.chdir(task_root)
    # Requests and answers use the pipe; whatever the function prints goes to stderr.
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    timeout = float(os.environ["_EMULATOR_TIMEOUT_SECONDS"])
    module_name, _, function_name = os.environ["_HANDLER"].rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as error:  # noqa: BLE001 - an init error is the answer, as on Lambda
        answer = _error(error)
        answer["error"]["errorType"] = "Runtime.InitError: " + answer["error"]["errorType"]
        channel.write(json.dumps(answer) + "\n")
        return
    channel.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        context = LambdaContext(request["context"], time.monotonic() + timeout)
        started = time.perf_counter()
        try:
            result = handler(request["event"], context)
            took = (time.perf_counter() - started) * 1000
            text = json.dumps({"result": result, "handlerMs": took})
        except Exception as error:  # noqa: BLE001 - Lambda reports any handler error
            text = json.dumps(_error(error))
        channel.write(text + "\n")
    # The host ended this environment. Lambda ends one without the interpreter's shutdown
    # (no atexit, no finalizers), which here took ~1 s per worker on a busy machine.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
