"""The Lambda zip: byte-identical for the same sources, wherever and whenever it is built."""

from __future__ import annotations

import io
import os
import shutil
import zipfile
from pathlib import Path

import pytest

from deployer.errors import PackagingError, PinMismatchError
from deployer.packaging import (
    DEFAULT_SETUP_CFG,
    DEFAULT_SOURCE,
    FIXED_DATE,
    build_package,
    pinned_version,
)


def copy_source(dest: Path) -> Path:
    shutil.copytree(DEFAULT_SOURCE, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


@pytest.fixture(scope="module")
def package_bytes() -> bytes:
    return build_package().data


def test_same_bytes_from_two_copies_in_different_places(tmp_path: Path) -> None:
    one = copy_source(tmp_path / "a" / "handlers")
    two = copy_source(tmp_path / "somewhere" / "else" / "handlers")
    # What differs between machines: mtimes, modes, stray bytecode.
    for path in two.rglob("*.py"):
        os.utime(path, (1_700_000_000, 1_700_000_000))
        path.chmod(0o755)
    (two / "__pycache__").mkdir(exist_ok=True)
    (two / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0junk")
    first, second = build_package(one), build_package(two)
    assert first.data == second.data
    assert first.key == second.key
    assert str(tmp_path).encode() not in first.data


def test_entries_are_sorted_timeless_relative_and_clean(package_bytes: bytes) -> None:
    archive = zipfile.ZipFile(io.BytesIO(package_bytes))
    names = archive.namelist()
    assert names == sorted(names)
    assert len(names) == len(set(names))
    for info in archive.infolist():
        assert info.date_time == FIXED_DATE
        assert (info.external_attr >> 16) & 0o777 == 0o644
        assert not info.filename.startswith("/") and ".." not in info.filename.split("/")
        assert "__pycache__" not in info.filename and not info.filename.endswith(".pyc")
        assert not info.filename.endswith("dist-info/RECORD")


def test_zip_holds_handlers_and_the_runtime_dependencies(package_bytes: bytes) -> None:
    names = set(zipfile.ZipFile(io.BytesIO(package_bytes)).namelist())
    assert "handlers/__init__.py" in names
    assert "aws_lambda_powertools/__init__.py" in names
    assert "typing_extensions.py" in names
    assert "jmespath/__init__.py" in names
    pinned = pinned_version(DEFAULT_SETUP_CFG)
    assert f"aws_lambda_powertools-{pinned}.dist-info/METADATA" in names
    # boto3/botocore come with the runtime; shipping them would only add megabytes.
    assert not any(name.startswith(("boto3/", "botocore/")) for name in names)


def test_a_handler_change_changes_the_key(tmp_path: Path) -> None:
    source = copy_source(tmp_path / "handlers")
    before = build_package(source)
    (source / "__init__.py").write_text((source / "__init__.py").read_text() + "# edit\n")
    after = build_package(source)
    assert after.key != before.key
    assert after.key.startswith("lambda/") and after.key.endswith(".zip")


def test_installed_powertools_must_equal_the_pin(tmp_path: Path) -> None:
    setup_cfg = tmp_path / "setup.cfg"
    setup_cfg.write_text(
        DEFAULT_SETUP_CFG.read_text().replace(
            f"aws-lambda-powertools=={pinned_version(DEFAULT_SETUP_CFG)}",
            "aws-lambda-powertools==0.0.1",
        )
    )
    with pytest.raises(PinMismatchError) as error:
        build_package(setup_cfg=setup_cfg)
    assert "pip install 'aws-lambda-powertools==0.0.1'" in str(error.value)


def test_an_unpinned_powertools_is_refused(tmp_path: Path) -> None:
    setup_cfg = tmp_path / "setup.cfg"
    setup_cfg.write_text("[options]\ninstall_requires =\n    aws-lambda-powertools>=3\n")
    with pytest.raises(PackagingError, match="pin"):
        build_package(setup_cfg=setup_cfg)


def test_source_must_be_a_package(tmp_path: Path) -> None:
    with pytest.raises(PackagingError, match=r"no __init__\.py"):
        build_package(tmp_path)


def test_console_packaging_writes_the_same_zip_the_deployer_uploads(tmp_path, capsys):
    from deployer.packaging import build_package, main

    assert main(["--out", str(tmp_path)]) == 0
    (written,) = tmp_path.iterdir()
    package = build_package()
    assert written.name == f"lambda-{package.content_hash}.zip"
    assert written.read_bytes() == package.data
    assert str(written) in capsys.readouterr().out


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("/dev/null/zips", "/dev/null is not a directory"),
        ("a-file", "is a file; give a directory"),
    ],
)
def test_a_bad_out_of_either_command_exits_2_in_one_line(tmp_path, capsys, out, message):
    # Issue 10, defect 7: a bad --out ended in a traceback. Checked before anything is built.
    import generate
    from deployer.packaging import main

    (tmp_path / "a-file").write_text("")
    target = out if out.startswith("/") else str(tmp_path / out)
    assert main(["--out", target]) == 2
    assert generate.main(["--suffix", "qa", "--out", target, "--no-lint"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(message in line and "Traceback" not in line for line in err), err
