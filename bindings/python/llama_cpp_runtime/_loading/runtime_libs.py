"""Runtime libraries a GPU module needs, preloaded from NVIDIA's PyPI wheels when they are installed.

A CUDA module asks for libcudart.so.N and libcublas.so.N by name. NVIDIA's wheels install them inside
site-packages, where the dynamic loader never looks: CUDA 13 wheels under nvidia/cu13/lib, CUDA 12
wheels under nvidia/<component>/lib (cublas, cuda_runtime, ...). Loading those files globally first
lets the module's own load find them; without the wheels the system's libraries are used, and when
neither exists the loader's message says which library is missing.
"""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path

from .._platform import IS_WINDOWS, open_library
from .elf import needed_libraries

_preloaded: dict[str, ctypes.CDLL] = {}


# Windows: the DLLs a CUDA module imports, in the order they depend on each other.
RUNTIME_DLL_PATTERNS = ("cudart64_*.dll", "cublasLt64_*.dll", "cublas64_*.dll")


def nvidia_library_dirs(paths: list[str] | None = None, *, windows: bool = IS_WINDOWS) -> list[Path]:
    """Where NVIDIA's wheels put their libraries, in every sys.path entry (looked up once per load()):
    lib/ on Linux; bin/ on Windows, and bin/x86_64/ for the CUDA 13 wheels."""
    found = []
    for entry in sys.path if paths is None else paths:
        root = Path(entry) / "nvidia"
        if root.is_dir():
            patterns = ("*/bin", "*/bin/x86_64") if windows else ("*/lib",)
            found += sorted(p for pattern in patterns for p in root.glob(pattern) if p.is_dir())
    return found


def windows_runtime_dlls(directories: list[Path]) -> list[Path]:
    """The runtime DLLs to load by full path: Python's winmode=0 and ggml's LoadLibraryW search neither
    os.add_dll_directory's directories nor site-packages, but a DLL already loaded resolves by name."""
    chosen: list[Path] = []
    for pattern in RUNTIME_DLL_PATTERNS:
        for directory in directories:
            chosen += sorted(directory.glob(pattern))
    return chosen


def _needed_in(module: Path, directories: list[Path]) -> list[Path]:
    """Linux: the libraries the module's DT_NEEDED names, where NVIDIA's wheels have them (first found)."""
    found = []
    for name in needed_libraries(module):
        candidates = [directory / name for directory in directories if (directory / name).is_file()]
        found += candidates[:1]
    return found


def preload_runtime_libraries(module: Path, directories: list[Path]) -> list[str]:
    """Load, from NVIDIA's wheels (`directories`), every library the module needs that they provide;
    returns their paths. One that fails to load is left to the module's own load, which then names it."""
    if not directories:
        return []
    loaded = []
    for library in windows_runtime_dlls(directories) if IS_WINDOWS else _needed_in(module, directories):
        if library.name in _preloaded:
            continue
        try:
            _preloaded[library.name] = open_library(library, global_symbols=True)
        except OSError:
            continue
        loaded.append(str(library))
    return loaded
