"""`sdist`: the core distribution as a source archive that builds where no wheel fits (musl, an older glibc,
another architecture): the synced tree with our patches applied, the toolkit that builds it and the binding,
with a PEP 517 backend that builds the `cpu` preset and packages the core wheel. Building it needs a C/C++
compiler and CMake and Ninja (from the index, as build requirements), never git or the network.

The archive is laid out as this repository is (buildsys/, bindings/python/, wheels/wheel_backend.py, the
project's vendoring.toml, patches/ and synced tree), so the one wheel backend serves both. Its bytes depend
only on its inputs: sorted members, one timestamp (SOURCE_DATE_EPOCH), no owner, fixed modes, gzip without
a name or time."""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..builder.driver import current_manifest
from ..config import CONFIG_NAME, WHEEL_FOLDER, Config
from ..errors import UsageError
from .wheelfile import ZIP_EPOCH_MINIMUM, normalise

TOOLKIT_ROOT = Path(__file__).resolve().parents[2]  # the checkout that holds buildsys/ and the binding
BUILD_REQUIRES = ("cmake>=3.25", "ninja>=1.11")
BACKEND_FOLDER = "wheels"
BACKEND_FILES = ("wheel_backend.py", "pyproject.toml")  # the backend, and the project table the pages read
TOOLKIT_FOLDERS = ("buildsys", "bindings/python/llama_cpp_runtime")
PROJECT_FILES = ("LICENSE",)  # this project's licence, beside llama.cpp's in the synced tree
_SKIPPED_PARTS = {"__pycache__", ".mypy_cache", ".ruff_cache"}


@dataclass(frozen=True)
class BuiltSdist:
    path: Path
    files: int
    size: int


def sdist_name(distribution: str, version: str) -> str:
    """PEP 625: the normalised name, the version, .tar.gz."""
    return f"{normalise(distribution)}-{version}.tar.gz"


_PYPROJECT_HEADER = """\
# The source distribution of llama-cpp-runtime:
# `pip install --no-binary llama-cpp-runtime llama-cpp-runtime` builds the cpu preset from the synced
# llama.cpp tree in vendor/ (our patches applied) through `python -m buildsys wheels`; the metadata is in
# PKG-INFO and in the wheel it builds.
"""


def pyproject_text() -> str:
    requires = ", ".join(f'"{r}"' for r in BUILD_REQUIRES)
    return (
        f"{_PYPROJECT_HEADER}[build-system]\nrequires = [{requires}]\n"
        f'build-backend = "wheel_backend"\nbackend-path = ["{BACKEND_FOLDER}"]\n'
    )


def _members(config: Config) -> Iterator[tuple[str, Path]]:
    """(path in the archive, file) for everything the build needs."""
    for folder in TOOLKIT_FOLDERS:
        yield from _tree(TOOLKIT_ROOT / folder, folder)
    for name in BACKEND_FILES:
        yield f"{BACKEND_FOLDER}/{name}", TOOLKIT_ROOT / BACKEND_FOLDER / name
    for name in PROJECT_FILES:
        if (TOOLKIT_ROOT / name).is_file():
            yield name, TOOLKIT_ROOT / name
    yield CONFIG_NAME, config.source
    yield from _tree(config.patches, config.relative(config.patches), suffix=".patch")
    yield from _tree(config.sync.destination, config.relative(config.sync.destination))


def _tree(folder: Path, prefix: str, *, suffix: str = "") -> Iterator[tuple[str, Path]]:
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        skipped = bool(_SKIPPED_PARTS & set(relative.parts)) or path.suffix == ".pyc"
        if path.is_file() and not skipped and path.name.endswith(suffix):
            yield f"{prefix}/{relative.as_posix()}", path


def write_sdist(config: Config, *, distribution: str, version: str, metadata: str, epoch: int) -> BuiltSdist:
    """dist/<name>-<version>.tar.gz; refuses (as `build` does) a synced tree that is missing or stale."""
    current_manifest(config)
    if not (TOOLKIT_ROOT / BACKEND_FOLDER / "wheel_backend.py").is_file():
        raise UsageError(f"no wheel backend in {TOOLKIT_ROOT / BACKEND_FOLDER}", hint="run from a checkout")
    top = f"{normalise(distribution)}-{version}"
    generated = {"PKG-INFO": metadata.encode(), "pyproject.toml": pyproject_text().encode()}
    members = dict(_members(config))
    clash = sorted(set(members) & set(generated))
    if clash:
        raise UsageError(f"the project holds {', '.join(clash)} at its root, which the sdist writes itself")
    target = config.root / WHEEL_FOLDER / sdist_name(distribution, version)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    stamp = max(epoch, ZIP_EPOCH_MINIMUM)
    with (
        partial.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        _add_folder(archive, top, stamp)
        entries: list[tuple[str, bytes, bool]] = [(name, data, False) for name, data in generated.items()]
        entries += [(name, path.read_bytes(), _executable(path)) for name, path in members.items()]
        folders = sorted({"/".join(n.split("/")[:i]) for n, _, _ in entries for i in range(1, n.count("/") + 1)})
        for folder in folders:
            _add_folder(archive, f"{top}/{folder}", stamp)
        for name, data, executable in sorted(entries):
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size, info.mtime, info.mode = len(data), stamp, 0o755 if executable else 0o644
            archive.addfile(info, io.BytesIO(data))
    partial.replace(target)
    return BuiltSdist(target, len(entries), target.stat().st_size)


def _add_folder(archive: tarfile.TarFile, name: str, stamp: int) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mtime, info.mode = tarfile.DIRTYPE, stamp, 0o755
    archive.addfile(info)


def _executable(path: Path) -> bool:
    return bool(path.stat().st_mode & 0o111)
