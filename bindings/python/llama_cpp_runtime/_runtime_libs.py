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
from ._platform import IS_WINDOWS, allow_dll_directory, open_library

_preloaded: dict[str, ctypes.CDLL] = {}


def nvidia_library_dirs() -> list[Path]:
    """Where NVIDIA's wheels put their libraries, in every sys.path entry (looked up once per load())."""
    found = []
    for entry in sys.path:
        root = Path(entry) / "nvidia"
        if root.is_dir():
            found += sorted(p for p in root.glob("*/lib") if p.is_dir())
            found += sorted(p for p in root.glob("*/bin") if p.is_dir() and IS_WINDOWS)
    return found


def preload_runtime_libraries(module: Path, directories: list[Path]) -> list[str]:
    """Load, from NVIDIA's wheels (`directories`), every library the module needs that they provide;
    returns their paths."""
    if not directories:
        return []
    if IS_WINDOWS:
        for directory in directories:
            allow_dll_directory(directory)
        return []
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
