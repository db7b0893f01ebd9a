"""The generated platform template and the code agree: every Handler imports to a
callable, and every function starts with exactly the environment the template gives it."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from unittest import mock

import pytest

from handlers.config import ConfigError, load_api, load_health, load_processing
from tests.handlers.platform import PlatformSpec, platform_template

LOADERS = {"validation": load_api, "processing": load_processing, "health": load_health}


@pytest.fixture(scope="module")
def functions():
    """Handler module -> the template's Handler string and environment."""
    return PlatformSpec.from_template(platform_template()).functions


def test_the_template_declares_the_three_functions(functions):
    assert set(functions) == {"validation", "processing", "health"}


def test_every_handler_string_imports_to_a_callable(functions):
    for module_name, function in functions.items():
        package_path, attribute = function["Handler"].rsplit(".", 1)
        with mock.patch.dict(os.environ, function["Environment"]):
            module = importlib.import_module(package_path)
        assert callable(getattr(module, attribute)), function["Handler"]
        assert package_path == f"handlers.{module_name}"


@pytest.mark.parametrize("module_name", sorted(LOADERS))
def test_template_environment_satisfies_the_config(functions, module_name):
    config = LOADERS[module_name](functions[module_name]["Environment"])
    assert config is not None


@pytest.mark.parametrize("module_name", sorted(LOADERS))
def test_each_missing_variable_fails_fast_naming_it(functions, module_name):
    env = functions[module_name]["Environment"]
    for name in env:
        if name == "POWERTOOLS_LOG_LEVEL":
            continue  # read by Powertools itself, with its own default
        without = {k: v for k, v in env.items() if k != name}
        with pytest.raises(ConfigError, match=name):
            LOADERS[module_name](without)


def test_malformed_values_are_refused_with_the_variable_name(functions):
    env = functions["health"]["Environment"]
    for name, bad in [
        ("REDRIVE_MAX_MESSAGES_PER_SECOND", "501"),
        ("REDRIVE_COOLDOWN_SECONDS", "-5"),
        ("HEALTH_DRY_RUN", "maybe"),
        ("STUCK_AFTER_SECONDS", "0"),
        ("FAILED_TRANSACTIONS_DLQ_ARN", "not-an-arn"),
        ("CORS_ALLOWED_ORIGIN", "*"),
    ]:
        with pytest.raises(ConfigError, match=name):
            load_health({**env, name: bad})
    api = functions["validation"]["Environment"]
    for name, bad in [("MAX_PAYMENT_AMOUNT", "lots"), ("ALLOWED_CURRENCIES", "USD,XYZ")]:
        with pytest.raises(ConfigError, match=name):
            load_api({**api, name: bad})


def test_importing_a_handler_without_its_environment_fails_at_cold_start(functions):
    """A fresh interpreter, as Lambda's init: the error names the missing variable."""
    env = {
        k: v for k, v in functions["processing"]["Environment"].items() if k != "TRANSACTIONS_TABLE"
    }
    env["PATH"] = os.environ.get("PATH", "")
    result = subprocess.run(
        [sys.executable, "-c", "import handlers.processing"],
        env={**env, "AWS_DEFAULT_REGION": "us-east-1"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "missing required environment variable TRANSACTIONS_TABLE" in result.stderr


def test_handlers_make_only_calls_the_contract_grants():
    """Processing never calls anything but its table and queue operations (docs/contract.md)."""
    import ast
    from pathlib import Path

    source = Path(__file__).resolve().parents[2] / "src" / "handlers"
    forbidden = {
        "purge_queue",
        "restore_table_to_point_in_time",
        "restore_table_from_backup",
        "delete_table",
    }
    called = set()
    for path in source.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute):
                called.add(node.attr)
    assert not (called & forbidden)
    assert not any(
        name.startswith(("create_role", "put_role_policy", "attach_role")) for name in called
    )
