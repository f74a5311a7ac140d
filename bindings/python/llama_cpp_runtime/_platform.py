"""What differs between Linux, macOS and Windows: file names, how a library is opened, DLL search."""

from __future__ import annotations

import _ctypes
import contextlib
import ctypes
import os
import sys
from collections.abc import Callable
from pathlib import Path

# Formerly defined here, now in ._numbers (the numbers the C API takes): still importable from here.
from ._numbers import INT32_MAX as INT32_MAX  # noqa: PLC0414 - an explicit re-export, for mypy
from ._numbers import MAX_THREADS as MAX_THREADS  # noqa: PLC0414
from ._numbers import UINT32_MAX as UINT32_MAX  # noqa: PLC0414
from ._numbers import check_int as check_int  # noqa: PLC0414
from ._numbers import default_threads as default_threads  # noqa: PLC0414
from ._numbers import thread_count as thread_count  # noqa: PLC0414

IS_WINDOWS = sys.platform == "win32"
IS_MACOS = sys.platform == "darwin"

# Core libraries are opened globally so that modules loaded later resolve ggml-base against the copy
# already in the process instead of searching for another one.
GLOBAL = getattr(os, "RTLD_GLOBAL", 0) | getattr(os, "RTLD_NOW", 0)
LOCAL = getattr(os, "RTLD_LOCAL", 0) | getattr(os, "RTLD_NOW", 0)


_dll_directories: list[object] = []  # handles from os.add_dll_directory, kept for the process


def core_library_candidates(directory: Path, name: str) -> list[Path]:
    """Files that may hold core library `name` (e.g. ggml-base), best first."""
    if IS_WINDOWS:
        return [directory / f"{name}.dll", directory / f"lib{name}.dll"]
    if IS_MACOS:
        return sorted(directory.glob(f"lib{name}.*dylib"), key=lambda p: len(p.name))
    # libggml-base.so.0 (the soname the modules ask for) before libggml-base.so.0.21.0
    return sorted(directory.glob(f"lib{name}.so*"), key=lambda p: (p.name.count("."), p.name))


def module_stem(path: Path) -> str:
    """libggml-cpu-haswell.so -> ggml-cpu-haswell; ggml-vulkan.dll -> ggml-vulkan; libggml-cpu-armv8.2_1.so ->
    ggml-cpu-armv8.2_1 (ggml's ARM variant names hold a dot: only the file's suffix is cut)."""
    name = path.name
    for suffix in (".so", ".dll", ".dylib"):
        if name.endswith(suffix):
            return name.removesuffix(suffix).removeprefix("lib")
    return name.split(".", 1)[0].removeprefix("lib")


def is_module_name(name: str) -> bool:
    """Whether a file of that name is a backend module (libggml-cpu-x64.so, ggml-vulkan.dll)."""
    suffix = ".dll" if IS_WINDOWS else ".so"
    return name.endswith(suffix) and module_stem(Path(name)).startswith("ggml-")


def is_module_file(path: Path) -> bool:
    return path.is_file() and is_module_name(path.name)


def allow_dll_directory(directory: Path) -> None:
    """Windows resolves a DLL's dependencies only from registered directories (Python 3.8+)."""
    if IS_WINDOWS and directory.is_dir():
        _dll_directories.append(os.add_dll_directory(str(directory)))  # type: ignore[attr-defined,unused-ignore]


def open_library(path: Path, *, global_symbols: bool) -> ctypes.CDLL:
    if IS_WINDOWS:
        return ctypes.CDLL(str(path), winmode=0)
    return ctypes.CDLL(str(path), mode=GLOBAL if global_symbols else LOCAL)


def close_library(library: ctypes.CDLL) -> None:
    """Unmap a library that was only scored or probed, as ggml's loader does with a module."""
    unload = getattr(_ctypes, "FreeLibrary" if IS_WINDOWS else "dlclose", None)
    if unload is not None:
        with contextlib.suppress(OSError):
            unload(library._handle)


def usable_cpus() -> int:
    """Every CPU this process may run on (its affinity mask, where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


class _DlInfo(ctypes.Structure):
    _fields_ = (
        ("dli_fname", ctypes.c_char_p),
        ("dli_fbase", ctypes.c_void_p),
        ("dli_sname", ctypes.c_char_p),
        ("dli_saddr", ctypes.c_void_p),
    )


def global_provider(symbol: str) -> Path | None:
    """The file whose `symbol` the process's global scope already resolves (what a library opened later
    with global symbols is bound to before its own dependencies), or None: absent, or no such scope (Windows)."""
    if IS_WINDOWS:
        return None
    process = ctypes.CDLL(None)  # dlopen(NULL): the program and every library opened with RTLD_GLOBAL
    function = getattr(process, symbol, None)
    dladdr = getattr(process, "dladdr", None) or _libdl_dladdr()
    if function is None or dladdr is None:
        return None
    info = _DlInfo()
    if not dladdr(ctypes.cast(function, ctypes.c_void_p), ctypes.byref(info)) or not info.dli_fname:
        return None
    return Path(os.fsdecode(info.dli_fname))


def _libdl_dladdr() -> Callable[..., int] | None:
    """dladdr from libdl, where libc does not export it (glibc before 2.34)."""
    try:
        function: Callable[..., int] = ctypes.CDLL("libdl.so.2").dladdr
    except (OSError, AttributeError):
        return None
    return function
