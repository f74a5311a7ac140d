"""What differs between Linux, macOS and Windows: file names, how a library is opened, DLL search."""

from __future__ import annotations

import ctypes
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from ._errors import ThreadsWarning

IS_WINDOWS = sys.platform == "win32"
IS_MACOS = sys.platform == "darwin"

# Core libraries are opened globally so that modules loaded later resolve ggml-base against the copy
# already in the process instead of searching for another one.
GLOBAL = getattr(os, "RTLD_GLOBAL", 0) | getattr(os, "RTLD_NOW", 0)
LOCAL = getattr(os, "RTLD_LOCAL", 0) | getattr(os, "RTLD_NOW", 0)

INT32_MAX = 2**31 - 1
UINT32_MAX = 2**32 - 1
MAX_THREADS = 512  # GGML_MAX_N_THREADS in ggml.h: ggml's per-thread arrays are this long

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


def default_threads() -> int:
    """A thread per CPU this process may run on, at most ggml's limit."""
    return min(usable_cpus(), MAX_THREADS)


def check_int(name: str, value: object, low: int, high: int, error: type[Exception]) -> int:
    """value, when it is an integer from low to high (a C field's range: ctypes would wrap a larger one
    silently, 2**32 + 5 becoming 5); else `error` naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise error(f"{name}={value!r}: expected an integer from {low} to {high}")
    return value


def thread_count(n_threads: int | None, error: type[Exception]) -> int:
    """The CPU threads ggml is given for n_threads (None: default_threads()). A value outside a C int is
    `error`; above ggml's limit it is capped; above the CPUs this process may use, a ThreadsWarning: ggml's
    threads spin while they wait for each other, so each one without a CPU of its own slows every step
    (64 threads on 2 CPUs take minutes for a token)."""
    if n_threads is None:
        return default_threads()
    threads = check_int("n_threads", n_threads, 1, INT32_MAX, error)
    cpus = usable_cpus()
    if threads > cpus:
        capped = f"; ggml runs at most {MAX_THREADS}, so {MAX_THREADS} are used" if threads > MAX_THREADS else ""
        warnings.warn(
            f"n_threads={threads} is more than the {cpus} CPU(s) this process may use{capped}: "
            "each thread without a CPU of its own slows every step",
            ThreadsWarning,
            stacklevel=4,  # the caller of model.context() or Runtime.open()
        )
    return min(threads, MAX_THREADS)
