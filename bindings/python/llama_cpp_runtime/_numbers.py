"""The numbers the C API takes, checked before ctypes would wrap them silently: C int and uint32_t ranges,
and the CPU threads ggml is given."""

from __future__ import annotations

import warnings

from ._errors import ThreadsWarning

INT32_MAX = 2**31 - 1  # a C int: threads, layers, token counts
UINT32_MAX = 2**32 - 1  # a C uint32_t: the context size
MAX_THREADS = 512  # GGML_MAX_N_THREADS in ggml.h: ggml's per-thread arrays are this long


def default_threads() -> int:
    """A thread per CPU this process may run on, at most ggml's limit."""
    from . import _platform  # how many CPUs: the platform's to say (looked up on the module, as tests replace it)

    return min(_platform.usable_cpus(), MAX_THREADS)


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
    from . import _platform

    cpus = _platform.usable_cpus()
    if threads > cpus:
        capped = f"; ggml runs at most {MAX_THREADS}, so {MAX_THREADS} are used" if threads > MAX_THREADS else ""
        warnings.warn(
            f"n_threads={threads} is more than the {cpus} CPU(s) this process may use{capped}: "
            "each thread without a CPU of its own slows every step",
            ThreadsWarning,
            stacklevel=4,  # the caller of model.context() or Runtime.open()
        )
    return min(threads, MAX_THREADS)
