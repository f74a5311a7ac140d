"""llama-cpp-runtime: ggml and llama.cpp's shared libraries, the best CPU variant for this machine,
and every installed GPU backend plugin, loaded with a report of what happened and why.

    import llama_cpp_runtime as lcr
    rt = lcr.load()              # idempotent and thread-safe
    rt.devices()                 # [Device(name, description, type, memory_free, memory_total, backend)]
    rt.report()                  # every module: loaded / skipped (reason) / not chosen / absent
    rt.library_path("llama")     # absolute paths, for bindings that load the libraries themselves
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path

from ._compute import Backend
from ._discovery import ENTRY_POINT_GROUP, LIBRARY_DIR_VARIABLE, PLUGIN_DIRS_VARIABLE
from ._errors import ClosedError, ComputeError, LibraryNotFound, LlamaRuntimeError, LoadError
from ._llama_abi import AbiMismatch
from ._loader import (
    BACKENDS_VARIABLE,
    EXCLUDE_VARIANTS_VARIABLE,
    FORCE_VARIANT_VARIABLE,
    Loaded,
    enumerate_devices,
    load_everything,
)
from ._report import Device, ModuleReport, Report


def __getattr__(name: str) -> str:
    """`__version__` is the installed distribution's (the wheel's version), looked up only when asked for."""
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import metadata

    try:
        return metadata.version("llama-cpp-runtime")
    except metadata.PackageNotFoundError:
        return "0+source"  # imported from a checkout


__all__ = [
    "BACKENDS_VARIABLE", "ENTRY_POINT_GROUP", "EXCLUDE_VARIANTS_VARIABLE", "FORCE_VARIANT_VARIABLE",
    "LIBRARY_DIR_VARIABLE", "PLUGIN_DIRS_VARIABLE", "AbiMismatch", "Backend", "ClosedError", "ComputeError", "Device",
    "LibraryNotFound", "LlamaRuntimeError", "LoadError", "ModuleReport", "Report", "Runtime", "load",
]  # fmt: skip


class Runtime:
    """The loaded libraries. There is one per process: ggml keeps a process-wide registry."""

    def __init__(self, loaded: Loaded) -> None:
        self._loaded = loaded

    def devices(self) -> list[Device]:
        return list(enumerate_devices(self._loaded.ggml))

    def device(self, name: str) -> Device:
        for device in self.devices():
            if device.name == name:
                return device
        raise KeyError(f"no device {name!r}; devices: {', '.join(d.name for d in self.devices()) or 'none'}")

    def report(self) -> Report:
        return self._loaded.report

    def library_path(self, name: str) -> Path:
        """Absolute path of a core library (ggml-base, ggml, llama, mtmd) as loaded."""
        try:
            return self._loaded.libraries[name.removeprefix("lib")]
        except KeyError:
            raise KeyError(f"{name!r} is not loaded; core libraries: {', '.join(self._loaded.libraries)}") from None

    def require_llama_abi(self) -> None:
        """Raise AbiMismatch, naming the first differing field, unless libllama's structs are laid out as the
        binding declares them (checked against the build's llama-abi.json when the libraries were loaded).
        Every libllama call that passes a struct checks this first."""
        if "llama" not in self._loaded.libraries:
            raise LoadError(f"libllama is not in {self._loaded.layout.lib}")
        if self._loaded.llama_abi_problem is not None:
            raise AbiMismatch(self._loaded.llama_abi_problem)

    def open(self, device: Device | str) -> Backend:
        """A backend on the device, for compute: `with rt.open("CPU") as backend: backend.mul_mat(...)`."""
        return Backend(self._loaded.ggml, self.device(device) if isinstance(device, str) else device)

    @property
    def upstream(self) -> Mapping[str, str]:
        """The upstream commit and patch-series hash the libraries were built from, when recorded."""
        return dict(self._loaded.report.upstream)


_lock = threading.Lock()
_loaded: list[Runtime] = []  # at most one: ggml's registry is process-wide


def load(library_dir: str | os.PathLike[str] | None = None) -> Runtime:
    """Load everything once; later calls return the same Runtime. `library_dir` (or the
    LLAMA_CPP_RUNTIME_LIBRARY_DIR variable) points at a directory with lib/ and modules/ instead of
    the package's own, e.g. a build stage."""
    wanted = Path(library_dir).resolve() if library_dir is not None else None
    with _lock:
        if not _loaded:
            _loaded.append(Runtime(load_everything(wanted, os.environ)))
        runtime = _loaded[0]
        if wanted is not None and wanted != runtime._loaded.layout.root:
            raise LoadError(f"already loaded from {runtime._loaded.layout.root}; one runtime per process")
        return runtime
