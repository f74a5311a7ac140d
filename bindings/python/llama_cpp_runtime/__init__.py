"""llama-cpp-runtime: ggml and llama.cpp's shared libraries, the best CPU variant for this machine,
and every installed GPU backend plugin, loaded with a report of what happened and why.

    import llama_cpp_runtime as lcr
    rt = lcr.load()              # idempotent and thread-safe
    rt.devices()                 # [Device(name, description, type, memory_free, memory_total, backend)]
    rt.report()                  # every module: loaded / skipped (reason) / not chosen / absent
    rt.library_path("llama")     # absolute paths, for bindings that load the libraries themselves
    lcr.load(require="gpu")      # or "cuda", "vulkan", ...: GpuUnavailable instead of running on the CPU
    lcr.doctor()                 # every GPU here: what serves it, and the pip install that would

    with rt.load_model("model.gguf") as model:          # a GGUF model, on every device (or devices=[...])
        ids = model.tokenize("Hello world")
        with model.context(n_ctx=512) as ctx:
            print(model.detokenize(ctx.generate(ids, max_tokens=16)))

The environment variables the binding reads are listed in docs/binding.md.
"""

from __future__ import annotations

import importlib
import logging

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ._errors import (
        AbiMismatch,
        ClosedError,
        ComputeError,
        ContextError,
        DecodeError,
        DownstreamError,
        ForkError,
        GpuUnavailable,
        InvalidModel,
        LibraryNotFound,
        LlamaRuntimeError,
        LoadCancelled,
        LoadError,
        MlockWarning,
        ModelLoadError,
        ModelNotFound,
        SettingError,
        ThreadsWarning,
        TokenizeError,
        UnknownDevice,
        Unsupported,
        UnusedGpuWarning,
    )
    from ._ggml.compute import Backend
    from ._gpu.doctor import doctor
    from ._gpu.findings import DoctorProbe, DoctorReport, GpuFinding
    from ._llama.context import Context
    from ._llama.gguf import GGUFHeader, read_header
    from ._llama.inspect import ModelInfo, inspect_model
    from ._llama.model import Model, Progress
    from ._loading.discovery import ENTRY_POINT_GROUP
    from ._report import Device, ModuleReport, Report
    from ._runtime import Runtime, load, use_for

# Where each public name lives, imported on first use: a program that only loads the libraries (or another
# binding, through use_for()) does not pay for the model runtime's modules.
_ERRORS = (
    "AbiMismatch",
    "ClosedError",
    "ComputeError",
    "ContextError",
    "DecodeError",
    "DownstreamError",
    "ForkError",
    "GpuUnavailable",
    "InvalidModel",
    "LibraryNotFound",
    "LlamaRuntimeError",
    "LoadCancelled",
    "LoadError",
    "MlockWarning",
    "ModelLoadError",
    "ModelNotFound",
    "SettingError",
    "ThreadsWarning",
    "TokenizeError",
    "UnknownDevice",
    "Unsupported",
    "UnusedGpuWarning",
)
_HOMES = {
    **dict.fromkeys(_ERRORS, "._errors"),
    **dict.fromkeys(("Runtime", "load", "use_for"), "._runtime"),
    **dict.fromkeys(("Device", "ModuleReport", "Report"), "._report"),
    "ENTRY_POINT_GROUP": "._loading.discovery",
    "Backend": "._ggml.compute",
    **dict.fromkeys(("DoctorProbe", "DoctorReport", "GpuFinding"), "._gpu.findings"),
    "doctor": "._gpu.doctor",
    "Context": "._llama.context",
    **dict.fromkeys(("GGUFHeader", "read_header"), "._llama.gguf"),
    **dict.fromkeys(("ModelInfo", "inspect_model"), "._llama.inspect"),
    **dict.fromkeys(("Model", "Progress"), "._llama.model"),
}

__all__ = [
    "ENTRY_POINT_GROUP",
    "AbiMismatch",
    "Backend",
    "ClosedError",
    "ComputeError",
    "Context",
    "ContextError",
    "DecodeError",
    "Device",
    "DoctorProbe",
    "DoctorReport",
    "DownstreamError",
    "ForkError",
    "GGUFHeader",
    "GpuFinding",
    "GpuUnavailable",
    "InvalidModel",
    "LibraryNotFound",
    "LlamaRuntimeError",
    "LoadCancelled",
    "LoadError",
    "MlockWarning",
    "Model",
    "ModelInfo",
    "ModelLoadError",
    "ModelNotFound",
    "ModuleReport",
    "Progress",
    "Report",
    "Runtime",
    "SettingError",
    "ThreadsWarning",
    "TokenizeError",
    "UnknownDevice",
    "Unsupported",
    "UnusedGpuWarning",
    "doctor",
    "inspect_model",
    "load",
    "read_header",
    "use_for",
]

# A library's log goes where the application sends it: without this, Python would print llama.cpp's
# warnings (e.g. "n_ctx_seq > n_ctx_train") on stderr by itself.
logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name: str) -> object:
    """A public name on first use; `__version__` is the installed distribution's."""
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name], __name__), name)
        globals()[name] = value
        return value
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import metadata

    try:
        return metadata.version("llama-cpp-runtime")
    except metadata.PackageNotFoundError:
        return "0+source"  # imported from a checkout


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, "__version__"})
