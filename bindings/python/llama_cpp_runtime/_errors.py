"""Errors of the binding: each carries the loader's own words where there are any."""

from __future__ import annotations


class LlamaRuntimeError(Exception):
    """Base of the binding's errors."""


class LibraryNotFound(LlamaRuntimeError):
    """The core libraries are not where the package (or LLAMA_CPP_RUNTIME_LIBRARY_DIR) says."""


class LoadError(LlamaRuntimeError):
    """A core library could not be loaded; the message is the dynamic loader's."""


class ClosedError(LlamaRuntimeError):
    """A handle was used after close()."""


class ComputeError(LlamaRuntimeError):
    """A device could not run the computation (the message says which and why)."""
