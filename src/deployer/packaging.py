"""One deterministic Lambda zip: src/handlers plus the runtime dependencies, keyed by content.

The same sources give the same bytes: entries sorted, fixed timestamps and modes,
no `__pycache__`, no absolute paths. The key is a hash of the entries (names and
file hashes), not of the compressed bytes, so two machines whose zlib compresses
differently still agree on the key and never upload the same code twice.
"""

from __future__ import annotations

import configparser
import hashlib
import importlib.metadata as metadata
import io
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from packaging.requirements import Requirement

from deployer.errors import PackagingError, PinMismatchError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SOURCE = REPO_ROOT / "src" / "handlers"
DEFAULT_SETUP_CFG = REPO_ROOT / "setup.cfg"
PINNED_DISTRIBUTION = "aws-lambda-powertools"
# Pure-Python packages Powertools imports that the python3.12 runtime lacks.
# jmespath ships with the runtime's boto3 today, but Powertools' logger imports it
# directly, so we ship the version we test with rather than rely on the runtime's.
RUNTIME_DEPENDENCIES = ("typing_extensions", "jmespath")
# The DOS epoch: the earliest timestamp a zip entry can hold.
FIXED_DATE = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644
# Written by the installer, not part of the distribution: they differ between machines.
INSTALL_RECORDS = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
NATIVE_SUFFIXES = (".so", ".pyd", ".dylib", ".dll")


@dataclass(frozen=True)
class Package:
    """The built zip and the content hash it is stored under."""

    data: bytes
    content_hash: str
    files: int

    @property
    def key(self) -> str:
        """The object key below the suffix prefix: `lambda/<sha256>.zip`."""
        return f"lambda/{self.content_hash}.zip"

    @property
    def size(self) -> int:
        """Size of the zip in bytes."""
        return len(self.data)


def pinned_version(setup_cfg: Path, distribution: str = PINNED_DISTRIBUTION) -> str:
    """The exact version setup.cfg pins for `distribution` (`name==X`)."""
    parser = configparser.ConfigParser()
    if not parser.read(setup_cfg):
        raise PackagingError(reason=f"{setup_cfg} not found")
    requires = parser.get("options", "install_requires", fallback="")
    for line in requires.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        if canonical(req.name) == canonical(distribution):
            pins = [spec.version for spec in req.specifier if spec.operator == "=="]
            if len(pins) != 1:
                raise PackagingError(
                    reason=f"setup.cfg must pin {distribution} exactly (==), found {line!r}"
                )
            return pins[0]
    raise PackagingError(reason=f"setup.cfg does not list {distribution} in install_requires")


def canonical(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _distribution(name: str) -> metadata.Distribution:
    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError:
        raise PackagingError(
            reason=f"{name} is not installed; pip install -e '.[dev]' installs it"
        ) from None


def runtime_distributions(setup_cfg: Path) -> list[metadata.Distribution]:
    """Powertools at its pinned version plus the runtime dependencies, version-checked."""
    pinned = pinned_version(setup_cfg)
    powertools = _distribution(PINNED_DISTRIBUTION)
    if powertools.version != pinned:
        raise PinMismatchError(
            distribution=PINNED_DISTRIBUTION, installed=powertools.version, pinned=pinned
        )
    dists = [powertools]
    requirements = {
        canonical(req.name): req
        for req in map(Requirement, powertools.requires or [])
        if req.marker is None
    }
    for name in RUNTIME_DEPENDENCIES:
        dist = _distribution(name)
        req = requirements.get(canonical(name))
        if req is not None and not req.specifier.contains(dist.version, prereleases=True):
            raise PackagingError(
                reason=f"{name} {dist.version} does not satisfy Powertools' {req}; "
                f"pip install '{req}'"
            )
        dists.append(dist)
    return dists


def _wanted(path: PurePosixPath) -> bool:
    if ".." in path.parts or path.is_absolute():
        return False  # console scripts installed outside site-packages
    if "__pycache__" in path.parts or path.suffix in {".pyc", ".pyo"}:
        return False
    return not (path.parent.name.endswith(".dist-info") and path.name in INSTALL_RECORDS)


def distribution_files(dist: metadata.Distribution) -> Iterable[tuple[str, Path]]:
    """(path inside the zip, file on disk) for each file the distribution installed."""
    for entry in dist.files or []:
        path = PurePosixPath(entry.as_posix())
        if not _wanted(path):
            continue
        if path.suffix in NATIVE_SUFFIXES:
            raise PackagingError(
                reason=f"{dist.metadata['Name']} contains native code ({path}); the zip "
                "carries only pure-Python packages built for any platform"
            )
        yield str(path), Path(str(dist.locate_file(entry)))


def source_files(source_dir: Path, prefix: str = "handlers") -> Iterable[tuple[str, Path]]:
    """(path inside the zip, file on disk) for the handler sources."""
    if not (source_dir / "__init__.py").is_file():
        raise PackagingError(reason=f"{source_dir} is not a Python package (no __init__.py)")
    for path in source_dir.rglob("*"):
        rel = PurePosixPath(path.relative_to(source_dir).as_posix())
        if path.is_dir() or any(part.startswith(".") for part in rel.parts):
            continue
        if _wanted(rel):
            yield f"{prefix}/{rel}", path


def build_package(
    source_dir: Path = DEFAULT_SOURCE, setup_cfg: Path = DEFAULT_SETUP_CFG
) -> Package:
    """Zip the handlers and the runtime dependencies deterministically."""
    entries: dict[str, Path] = {}
    for dist in runtime_distributions(setup_cfg):
        entries.update(distribution_files(dist))
    handler_entries = dict(source_files(source_dir))
    clash = sorted(set(entries) & set(handler_entries))
    if clash:
        raise PackagingError(reason=f"handler files collide with dependencies: {clash[:3]}")
    entries.update(handler_entries)

    buffer = io.BytesIO()
    manifest = hashlib.sha256()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            data = entries[name].read_bytes()
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
            info.create_system = 3  # unix, so the mode bits below mean the same everywhere
            info.external_attr = (0o100000 | FILE_MODE) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data, compresslevel=9)
            manifest.update(f"{name}\0{FILE_MODE:o}\0{hashlib.sha256(data).hexdigest()}\n".encode())
    return Package(data=buffer.getvalue(), content_hash=manifest.hexdigest(), files=len(entries))


def main(argv: list[str] | None = None) -> int:
    """`python -m deployer.packaging`: write the zip to a directory, for a console upload."""
    import argparse
    import sys

    from deployer.paths import unwritable

    parser = argparse.ArgumentParser(
        prog="python -m deployer.packaging",
        description="Build the functions' zip into DIR as lambda-<sha256>.zip, to upload to S3 "
        "by hand and give as CodeBucket/CodeKey in the CloudFormation console.",
    )
    parser.add_argument("--out", type=Path, default=Path("build"), help="directory (default build)")
    args = parser.parse_args(argv)
    problem = unwritable(args.out, directory=True)
    if problem:
        print(f"packaging: error: --out {args.out}: {problem}", file=sys.stderr)
        return 2
    try:
        package = build_package()
    except (PackagingError, PinMismatchError) as error:
        print(f"packaging: error: {error}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"lambda-{package.content_hash}.zip"
    path.write_bytes(package.data)
    print(f"wrote {path} ({package.size} bytes, {package.files} files)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
