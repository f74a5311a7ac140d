"""What differs between Linux, macOS and Windows: file names, how a library is opened, DLL search."""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

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
    """libggml-cpu-haswell.so -> ggml-cpu-haswell; ggml-vulkan.dll -> ggml-vulkan."""
    return path.name.split(".", 1)[0].removeprefix("lib")


def is_module_file(path: Path) -> bool:
    suffix = ".dll" if IS_WINDOWS else ".so"
    return path.is_file() and path.name.endswith(suffix) and module_stem(path).startswith("ggml-")


def allow_dll_directory(directory: Path) -> None:
    """Windows resolves a DLL's dependencies only from registered directories (Python 3.8+)."""
    if IS_WINDOWS and directory.is_dir():
        _dll_directories.append(os.add_dll_directory(str(directory)))  # type: ignore[attr-defined,unused-ignore]


def open_library(path: Path, *, global_symbols: bool) -> ctypes.CDLL:
    if IS_WINDOWS:
        return ctypes.CDLL(str(path), winmode=0)
    return ctypes.CDLL(str(path), mode=GLOBAL if global_symbols else LOCAL)


def default_threads() -> int:
    """Every CPU this process may run on (its affinity mask, where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)
