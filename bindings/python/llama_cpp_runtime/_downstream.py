"""Other Python bindings on these libraries: llama-cpp-python (`llama_cpp`) loads libllama from
LLAMA_CPP_LIB_PATH and libmtmd from MTMD_CPP_LIB, by unversioned names (libllama.so, libllama.dylib,
llama.dll) that the wheel does not store: it stores each library once, under its SONAME.

A per-user directory of symbolic links gives those names (and the SONAMEs, which the libraries ask
each other for) without a second copy of any byte; it is checked, and repaired, on every use.
Windows needs none: its DLLs carry no version in their names.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from ._errors import DownstreamError
from ._llama.abi import USED, first_mismatch
from ._platform import IS_MACOS, IS_WINDOWS

LIB_PATH_VARIABLE = "LLAMA_CPP_LIB_PATH"
MTMD_VARIABLE = "MTMD_CPP_LIB"
BACKEND_PATH_VARIABLE = "GGML_BACKEND_PATH"  # ggml's loader adds this one module to what it finds
SUPPORTED = {"llama_cpp": "llama-cpp-python"}


def link_directory(libraries: Mapping[str, Path], cache: Path | None) -> Path:
    """A directory where each core library resolves by its unversioned name and by its SONAME."""
    if IS_WINDOWS:
        return next(iter(libraries.values())).parent
    targets = {}
    for name, path in libraries.items():
        targets[f"lib{name}.dylib" if IS_MACOS else f"lib{name}.so"] = path
        targets[path.name] = path  # libllama.so.0: what the other libraries' DT_NEEDED name
    lib_dir = next(iter(libraries.values())).parent.resolve()
    key = hashlib.sha256(str(lib_dir).encode()).hexdigest()[:16]
    root = cache or Path(tempfile.gettempdir()) / f"llama-cpp-runtime-{os.getuid()}"
    directory = root / "links" / key
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for link_name, target in targets.items():
            _ensure_link(directory / link_name, target)
    except OSError as error:
        raise DownstreamError(f"cannot make the library links in {directory}: {error}") from None
    return directory


def _ensure_link(link: Path, target: Path) -> None:
    with contextlib.suppress(OSError):
        if os.readlink(link) == str(target):
            return
    temporary = link.with_name(f".{link.name}.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    temporary.symlink_to(target)
    os.replace(temporary, link)  # atomic: another process never sees the name missing


def environment(libraries: Mapping[str, Path], chosen_module: Path | None, cache: Path | None) -> dict[str, str]:
    """The variables that make a binding in another process load these libraries and, through ggml's
    GGML_BACKEND_PATH, this machine's best CPU variant (its own loader would find none)."""
    directory = str(link_directory(libraries, cache))
    variables = {LIB_PATH_VARIABLE: directory, MTMD_VARIABLE: directory}
    if chosen_module is not None:
        variables[BACKEND_PATH_VARIABLE] = str(chosen_module)
    return variables


def layout_problem(module: ModuleType, record: Mapping[str, Any], declarer: str) -> str | None:
    """The first struct or field whose ctypes declaration in `module` differs from the build's record."""
    declared = {name: getattr(module, name, None) for name in USED}
    missing = next((name for name, struct in declared.items() if struct is None), None)
    if missing is not None:
        return f"{missing} is not declared by {declarer}"
    return first_mismatch(record, {name: struct for name, struct in declared.items() if struct is not None}, declarer)


def installed_version(distribution: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        raise DownstreamError(f"{distribution} is not installed") from None


def import_checked(package: str, record: Mapping[str, Any], served: str | None) -> ModuleType:
    """Import the binding (the variables set), then prove its structs match; refused, it is unimported.
    `served` is the release the build says it serves (stage.json), named when another one is refused."""
    import importlib

    distribution = SUPPORTED[package]
    version = installed_version(distribution)
    ours = f"libllama of llama.cpp {str(record.get('commit', 'unknown'))[:12]}"
    if served and served != version:
        ours += f", which serves {distribution} {served}"
    try:
        module = importlib.import_module(package)
        problem = layout_problem(importlib.import_module(f"{package}.{package}"), record, f"{distribution} {version}")
    except (OSError, AttributeError) as error:  # a missing symbol, or a library it could not open
        problem = f"its import failed: {error}"
    if problem is not None:
        for name in [n for n in sys.modules if n == package or n.startswith(f"{package}.")]:
            del sys.modules[name]
        raise DownstreamError(f"{distribution} {version} does not match {ours}: {problem}")
    return module
