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

from ._elf import needed_libraries
from ._platform import IS_WINDOWS, open_library

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


def preload_runtime_libraries(module: Path, directories: list[Path]) -> list[str]:
    """Load, from NVIDIA's wheels (`directories`), every library the module needs that they provide;
    returns their paths."""
    if not directories:
        return []
    if IS_WINDOWS:
        loaded_dlls = []
        for dll in windows_runtime_dlls(directories):
            if dll.name not in _preloaded:
                try:
                    _preloaded[dll.name] = open_library(dll, global_symbols=True)
                except OSError:
                    continue  # the module's own load then says which DLL is missing
                loaded_dlls.append(str(dll))
        return loaded_dlls
    loaded = []
    for name in needed_libraries(module):
        if name in _preloaded:
            continue
        for directory in directories:
            candidate = directory / name
            if candidate.is_file():
                try:
                    _preloaded[name] = open_library(candidate, global_symbols=True)
                except OSError:
                    continue  # the module's own load will then report what is missing
                loaded.append(str(candidate))
                break
    return loaded
