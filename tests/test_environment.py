"""The test environment is made on the Python the Lambda functions run on."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from templates.functions import RUNTIME
from templates.naming import Naming
from templates.registry import build_templates

ROOT = Path(__file__).resolve().parent.parent


def load_venv_script():
    spec = importlib.util.spec_from_file_location("venv_script", ROOT / "scripts" / "venv.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_venv_script_targets_the_runtime_every_function_declares():
    runtimes = {
        resource["Properties"]["Runtime"]
        for template in build_templates(Naming("qa")).values()
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Lambda::Function"
    }
    assert runtimes == {RUNTIME}
    assert load_venv_script().LAMBDA_RUNTIME == RUNTIME


def test_venv_script_reads_the_version_of_an_existing_environment(tmp_path):
    script = load_venv_script()
    (tmp_path / "pyvenv.cfg").write_text("home = /usr/bin\nversion = 3.12.1\n")
    assert script.venv_version(tmp_path) == "3.12"
    assert script.venv_version(tmp_path / "missing") is None
