"""Every error (and warning) of the binding: each carries the loader's own words where there are any."""

from __future__ import annotations


class LlamaRuntimeError(Exception):
    """Base of the binding's errors."""


class LibraryNotFound(LlamaRuntimeError):
    """The core libraries are not where the package (or LLAMA_CPP_RUNTIME_LIBRARY_DIR) says."""


class SettingError(LlamaRuntimeError):
    """An environment variable of the binding has a value it cannot use (the message names it)."""


class LoadError(LlamaRuntimeError):
    """A core library could not be loaded; the message is the dynamic loader's."""


class ClosedError(LlamaRuntimeError):
    """A handle was used after close()."""


class ForkError(LlamaRuntimeError):
    """A context (or a compute backend) was used in a child process made by fork() after it was created:
    its worker threads exist only in the parent, and the call would wait for them forever. Make a new one
    in the child (`model.context()` works there: a model may be shared with a child)."""


class GpuUnavailable(LlamaRuntimeError):
    """A GPU was required (`load(require=...)`, LLAMA_CPP_RUNTIME_REQUIRE, `load_model(devices="gpu")`) and
    none serves: the message names each module that could have, why it did not, and the fix. Nothing runs
    on the CPU in its place."""


class UnknownDevice(LlamaRuntimeError, ValueError):
    """A device name that no loaded backend offers."""


class ComputeError(LlamaRuntimeError):
    """A device could not run the computation (the message says which and why)."""


class Unsupported(ComputeError):
    """The device does not implement the operation (it was not run)."""


class AbiMismatch(LlamaRuntimeError):
    """libllama's struct layout differs from the binding's declaration; nothing was called."""


class DownstreamError(LlamaRuntimeError):
    """Another binding cannot be served by these libraries (not installed, imported too early, or
    declaring structs laid out differently from this libllama)."""


class ModelLoadError(LlamaRuntimeError):
    """llama.cpp could not load the model; the message carries its own reason (its log lines)."""


class ModelNotFound(ModelLoadError, FileNotFoundError):
    """The model file does not exist."""


class InvalidModel(ModelLoadError):
    """The file is not a GGUF model llama.cpp can load safely (refused before llama.cpp saw it), or it
    changed on disk under a loaded model (refused before a new context or a decode would read it)."""


class LoadCancelled(ModelLoadError):
    """The progress callback returned False (or raised: the exception is the __cause__)."""


class TokenizeError(LlamaRuntimeError, ValueError):
    """Text that cannot be tokenized, or ids that are not in the vocabulary."""


class ContextError(LlamaRuntimeError):
    """A context could not be created with the parameters asked for (the message says why)."""


class DecodeError(LlamaRuntimeError):
    """llama_decode failed: context full, invalid tokens, or a backend error (the message says which)."""


class RpcError(LlamaRuntimeError):
    """An RPC server could not be used: not reachable, not a ggml RPC server, another protocol version, or
    it went away while a model used it (the message names the server and what happened)."""


class MlockWarning(UserWarning):
    """mlock was asked for and failed (usually RLIMIT_MEMLOCK); the model is loaded, but may be swapped."""


class ThreadsWarning(UserWarning):
    """n_threads is more than the CPUs this process may use (or than ggml's limit of 512, which is then
    used): ggml's threads spin while they wait for each other, so the extra threads slow every step."""


class UnusedGpuWarning(RuntimeWarning):
    """A GPU is present and no loaded plugin serves it (none installed, or the one installed was skipped):
    the message says why and which wheel would. Issued once per process by load(); LLAMA_CPP_RUNTIME_QUIET_GPU=1
    silences it, and `python -m llama_cpp_runtime doctor` says the same at length."""
