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
if TYPE_CHECKING:  # for static tools, which do not run __getattr__ (names as `X as X`: re-exported)
    from ._errors import (
        AbiMismatch as AbiMismatch,
    )
    from ._errors import (
        ClosedError as ClosedError,
    )
    from ._errors import (
        ComputeError as ComputeError,
    )
    from ._errors import (
        ContextError as ContextError,
    )
    from ._errors import (
        DecodeError as DecodeError,
    )
    from ._errors import (
        DownstreamError as DownstreamError,
    )
    from ._errors import (
        ForkError as ForkError,
    )
    from ._errors import (
        GpuUnavailable as GpuUnavailable,
    )
    from ._errors import (
        InvalidModel as InvalidModel,
    )
    from ._errors import (
        LibraryNotFound as LibraryNotFound,
    )
    from ._errors import (
        LlamaRuntimeError as LlamaRuntimeError,
    )
    from ._errors import (
        LoadCancelled as LoadCancelled,
    )
    from ._errors import (
        LoadError as LoadError,
    )
    from ._errors import (
        MlockWarning as MlockWarning,
    )
    from ._errors import (
        ModelLoadError as ModelLoadError,
    )
    from ._errors import (
        ModelNotFound as ModelNotFound,
    )
    from ._errors import (
        RpcError as RpcError,
    )
    from ._errors import (
        SettingError as SettingError,
    )
    from ._errors import (
        ThreadsWarning as ThreadsWarning,
    )
    from ._errors import (
        TokenizeError as TokenizeError,
    )
    from ._errors import (
        UnknownDevice as UnknownDevice,
    )
    from ._errors import (
        Unsupported as Unsupported,
    )
    from ._errors import (
        UnusedGpuWarning as UnusedGpuWarning,
    )
    from ._ggml.compute import Backend as Backend
    from ._gpu.doctor import doctor as doctor
    from ._gpu.findings import DoctorProbe as DoctorProbe
    from ._gpu.findings import DoctorReport as DoctorReport
    from ._gpu.findings import GpuFinding as GpuFinding
    from ._llama.context import Context as Context
    from ._llama.gguf import GGUFArray as GGUFArray
    from ._llama.gguf import GGUFHeader as GGUFHeader
    from ._llama.gguf import read_header as read_header
    from ._llama.inspect import ModelInfo as ModelInfo
    from ._llama.inspect import inspect_model as inspect_model
    from ._llama.model import Model as Model
    from ._llama.model import Progress as Progress
    from ._loading.discovery import ENTRY_POINT_GROUP as ENTRY_POINT_GROUP
    from ._report import Device as Device
    from ._report import ModuleReport as ModuleReport
    from ._report import Report as Report
    from ._rpc.client import RemoteContext as RemoteContext
    from ._rpc.client import RemoteModel as RemoteModel
    from ._runtime import Runtime as Runtime
    from ._runtime import load as load
    from ._runtime import use_for as use_for

# Where each public name lives, imported on first use: a program that only loads the libraries (or another
# binding, through use_for()) does not pay for the model runtime's modules. The one list of them:
# the imports above and __all__ below say the same (tests/unit/test_public_api.py checks).
_PUBLIC = {
    "._errors": (
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
        "RpcError",
        "SettingError",
        "ThreadsWarning",
        "TokenizeError",
        "UnknownDevice",
        "Unsupported",
        "UnusedGpuWarning",
    ),
    "._runtime": ("Runtime", "load", "use_for"),
    "._report": ("Device", "ModuleReport", "Report"),
    "._loading.discovery": ("ENTRY_POINT_GROUP",),
    "._ggml.compute": ("Backend",),
    "._gpu.findings": ("DoctorProbe", "DoctorReport", "GpuFinding"),
    "._gpu.doctor": ("doctor",),
    "._llama.context": ("Context",),
    "._llama.gguf": ("GGUFArray", "GGUFHeader", "read_header"),
    "._llama.inspect": ("ModelInfo", "inspect_model"),
    "._llama.model": ("Model", "Progress"),
    "._rpc.client": ("RemoteContext", "RemoteModel"),
}
_HOMES = {name: module for module, names in _PUBLIC.items() for name in names}

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
    "GGUFArray",
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
    "RemoteContext",
    "RemoteModel",
    "Report",
    "RpcError",
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
