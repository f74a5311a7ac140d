"""ggml's CPU threadpool, kept for the life of a context.

Without OpenMP (the wheels' choice), a context that has no threadpool attached makes ggml start and join
its worker threads for every graph it computes: for generation, once per token. llama-bench and
llama.cpp's own tools attach one; so does the binding. The pool's functions live in the CPU variant
module and are found through the CPU backend's registry, as llama-bench finds them.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

from . import api as _api

# ggml fills its ggml_threadpool_params (a 512-entry CPU mask and four scalars, ~530 bytes) itself; the
# binding only passes the buffer back, so it declares a size that holds it, not its fields.
_PARAMS_BYTES = 4096
_NEW = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)
_FREE = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class CpuThreadpool:
    """n_threads workers that wait between graphs instead of being started for each one."""

    def __init__(self, handle: int, free: Callable[[int], None]) -> None:
        self.handle = handle
        self._free = free

    def free(self) -> None:
        if self.handle:
            self._free(self.handle)
            self.handle = 0


def new_cpu_threadpool(ggml: ctypes.CDLL, n_threads: int) -> CpuThreadpool | None:
    """A threadpool of the loaded CPU backend, or None when there is none (or it has no pool: OpenMP)."""
    cpu = ggml.ggml_backend_reg_by_name(b"CPU")
    new = _api.backend_function(ggml, cpu, "ggml_threadpool_new", _NEW)
    free = _api.backend_function(ggml, cpu, "ggml_threadpool_free", _FREE)
    if new is None or free is None:
        return None
    params = ctypes.create_string_buffer(_PARAMS_BYTES)
    ggml.ggml_threadpool_params_init(params, n_threads)
    handle = new(ctypes.addressof(params))
    return CpuThreadpool(handle, free) if handle else None
