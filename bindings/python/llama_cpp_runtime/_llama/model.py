"""A GGUF model loaded by libllama: where its layers go, its metadata, its vocabulary, and contexts on it.

A model is read-only once loaded and may be shared between threads; each context is one thread's at a
time. close() is idempotent; the memory is released when the model and every context on it are closed.
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .._errors import InvalidModel, LoadCancelled, MlockWarning, ModelLoadError
from .._ggml.interrupts import HeldInterrupt, interrupts_held, kept
from .._handle import Handle
from . import api as C
from .abi import PROGRESS_CALLBACK
from .gguf import FileState, GGUFHeader
from .tokenizer import Tokenizer

if TYPE_CHECKING:
    from .._ggml.log import CapturedLog, LogBridge
    from .._report import Device
    from .context import Context

Progress = Callable[[float], "bool | None"]
_MLOCK_FAILED = ("failed to mlock", "mlock failed")


def load_mode(mmap: bool, mlock: bool) -> int:
    if mmap:
        return C.LOAD_MODE_MMAP_MLOCK if mlock else C.LOAD_MODE_MMAP
    return C.LOAD_MODE_MLOCK if mlock else C.LOAD_MODE_NONE


class _ProgressBridge:
    """Calls the user's progress callback (if any) from C; an exception cancels the load and is re-raised
    after. Ctrl-C, held while llama.cpp loads, stops the load too (it is raised once the load returns)."""

    def __init__(self, progress: Progress | None, interrupt: HeldInterrupt) -> None:
        self.progress = progress
        self.interrupt = interrupt
        self.error: BaseException | None = None
        self.cancelled = False
        self.callback = PROGRESS_CALLBACK(self._call)

    def _call(self, fraction: float, user_data: object) -> bool:
        if self.interrupt.pending:
            return False
        if self.progress is None:
            return True
        try:
            keep_going = self.progress(float(fraction)) is not False
        except BaseException as error:
            self.error, keep_going = error, False
        self.cancelled = self.cancelled or not keep_going
        return keep_going


class Model(Handle):
    """Load with `Runtime.load_model(path, ...)`; use as a context manager or call close()."""

    _usable_after_fork = True  # its weights are memory a child of fork() shares: a new context there works

    def __init__(
        self,
        llama: ctypes.CDLL,
        ggml: ctypes.CDLL,
        bridge: LogBridge,
        header: GGUFHeader,
        *,
        devices: Sequence[Device] | None,
        n_gpu_layers: int | None,
        mmap: bool,
        mlock: bool,
        vocab_only: bool,
        progress: Progress | None,
    ) -> None:
        self._llama = llama
        self._ggml = ggml
        self._bridge = bridge
        # Reentrant: the garbage collector may finalise a context (whose free releases it from the model)
        # while this thread is inside one of the model's calls.
        super().__init__(threading.RLock())
        self._contexts = 0
        self.header = header
        self.path = header.path
        # With mmap the weights are read from the file as they are used, until the model is freed; the file
        # is the one the header was read from (its fstat), not whatever is at the path a moment later.
        self._mapped = mmap and not vocab_only
        self._file: FileState = header.file_state
        params = llama.llama_model_default_params()
        params.load_mode = load_mode(mmap, mlock)
        params.vocab_only = vocab_only
        if n_gpu_layers is not None:
            params.n_gpu_layers = n_gpu_layers
        device_array = None
        if devices is not None:  # NULL-terminated; the CPU is not listed: it always holds what is not offloaded
            handles = [d._handle for d in devices if d.type != "CPU"]
            device_array = (ctypes.c_void_p * (len(handles) + 1))(*handles, None)
            params.devices = ctypes.cast(device_array, ctypes.c_void_p)
        with interrupts_held() as interrupt:
            bridge_progress = _ProgressBridge(progress, interrupt)
            params.progress_callback = bridge_progress.callback
            with bridge.capture() as lines:
                loaded = llama.llama_model_load_from_file(os.fsencode(self.path), params)
            handle = kept(loaded, interrupt, llama.llama_model_free)  # loaded before Ctrl-C could stop it
        del device_array  # llama.cpp copies the list while loading
        if not handle:
            if bridge_progress.cancelled:
                raise LoadCancelled(f"{self.path}: the load was cancelled by the progress callback") from (
                    bridge_progress.error
                )
            raise ModelLoadError(f"{self.path}: llama.cpp could not load it: {_reason(lines)}")
        self._handle = handle
        if mlock:
            for line in lines:
                if any(marker in line for marker in _MLOCK_FAILED):
                    advice = "the model is loaded but may be swapped out; raise RLIMIT_MEMLOCK (ulimit -l)"
                    warnings.warn(f"{self.path}: {line.strip()}: {advice}", MlockWarning, stacklevel=3)
        self.load_log = tuple(lines)
        self.tokenizer = Tokenizer(llama, llama.llama_model_get_vocab(handle))
        self.vocab_only = vocab_only
        self.n_embd = int(llama.llama_model_n_embd(handle))
        self.n_ctx_train = int(llama.llama_model_n_ctx_train(handle))
        self.n_params = int(llama.llama_model_n_params(handle))
        self.size = int(llama.llama_model_size(handle))
        self.metadata: dict[str, str] = self._read_metadata(handle)

    # ---- lifetime ---------------------------------------------------------------------------------

    def _free(self, handle: int) -> None:
        self._llama.llama_model_free(handle)

    def _describe(self) -> str:
        return f"model {self.path.name}"

    def _may_free(self) -> bool:
        return self._contexts == 0  # contexts still open keep the memory until they are closed too

    def _acquire(self) -> int:
        """For a new context: the handle, kept alive until _release()."""
        with self._using() as handle:
            self._contexts += 1
            return handle

    def _release(self) -> None:
        with self._held():
            self._contexts -= 1
            self._free_if_unused()

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{self.n_params:,} parameters"
        return f"<Model {self.path.name}: {self.metadata.get('general.architecture', '?')}, {state}>"

    def check_file(self) -> None:
        """InvalidModel when the file the weights are mapped from changed on disk since the load: a file cut
        short faults (SIGBUS) at the next read of a weight, one rewritten in place silently computes with
        other weights. Checked once per call that creates a context or decodes; a model loaded with mmap=False
        holds its weights in memory and is not affected."""
        if not self._mapped:
            return
        change = _change(_stat(self.path), self._file)
        if change:
            raise InvalidModel(
                f"{self.path}: changed on disk since it was loaded ({change}): load it again "
                "(mmap=False reads the weights into memory, and then the file may change)"
            )

    # ---- what the model is ------------------------------------------------------------------------

    def _read_metadata(self, handle: int) -> dict[str, str]:
        metadata = {}
        llama = self._llama
        for index in range(llama.llama_model_meta_count(handle)):
            key = _read_string(functools.partial(llama.llama_model_meta_key_by_index, handle, index))
            metadata[key] = _read_string(functools.partial(llama.llama_model_meta_val_str_by_index, handle, index))
        return metadata

    @property
    def description(self) -> str:
        """llama.cpp's one-line description: architecture, size and weight type (e.g. "llama 26M F16")."""
        with self._using() as handle:
            return _read_string(lambda b, n: self._llama.llama_model_desc(handle, b, n))

    @property
    def n_vocab(self) -> int:
        """How many tokens the vocabulary has."""
        return self.tokenizer.n_vocab

    # ---- the vocabulary ---------------------------------------------------------------------------

    def tokenize(self, text: str | bytes, *, add_special: bool = True, parse_special: bool = False) -> list[int]:
        """Token ids of the text; add_special adds BOS/EOS where the model asks for them,
        parse_special reads control-token texts such as `<s>` as those tokens."""
        with self._using():  # close() on another thread waits until this call is done
            return self.tokenizer.tokenize(text, add_special=add_special, parse_special=parse_special)

    def detokenize(self, ids: Sequence[int], *, remove_special: bool = False, unparse_special: bool = False) -> str:
        """The text of the ids (invalid UTF-8 becomes U+FFFD); ids outside the vocabulary raise TokenizeError."""
        with self._using():  # close() on another thread waits until this call is done
            return self.tokenizer.detokenize(ids, remove_special=remove_special, unparse_special=unparse_special)

    def token_to_piece(self, token: int, *, special: bool = False) -> bytes:
        """One token's bytes, for streaming output (a piece may hold part of a UTF-8 character)."""
        with self._using():  # close() on another thread waits until this call is done
            return self.tokenizer.piece(token, special=special)

    def is_end_of_generation(self, token: int) -> bool:
        """Whether the token ends a generation (end of sequence, end of turn, ...), as the vocabulary says."""
        with self._using():  # close() on another thread waits until this call is done
            return self.tokenizer.is_end_of_generation(token)

    # ---- contexts ---------------------------------------------------------------------------------

    def context(
        self, n_ctx: int = 512, n_threads: int | None = None, n_batch: int | None = None, embeddings: bool = False
    ) -> Context:
        """A context (KV memory and compute buffers) on this model. n_ctx 0 means the model's training
        context; n_threads None means every CPU this process may run on; n_batch None means upstream's."""
        from .context import Context

        if self.vocab_only:
            raise InvalidModel(f"{self.path.name} was loaded with vocab_only=True: it has no weights to run")
        self.check_file()
        return Context(self, n_ctx=n_ctx, n_threads=n_threads, n_batch=n_batch, embeddings=embeddings)


def _stat(path: Path) -> FileState | None:
    """The file's state (as GGUFHeader.file_state has it), None when there is no file."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns


def _change(now: FileState | None, loaded: FileState | None) -> str:
    """How the file differs from the one loaded ("" when it does not)."""
    if now == loaded:
        return ""
    if now is None or loaded is None:
        return "it is gone"
    if now[:2] != loaded[:2]:
        return "another file is at its path now"
    if now[2] != loaded[2]:
        return f"{now[2]} bytes now, {loaded[2]} when it was loaded"
    return "modified in place"


def _read_string(call: Callable[[ctypes.Array[ctypes.c_char], int], int]) -> str:
    """Upstream's snprintf-style getters: they return the full length, so a second call fits."""
    capacity = 256
    while True:
        buffer = ctypes.create_string_buffer(capacity)
        n = call(buffer, capacity)
        if n < 0:
            return ""
        if n < capacity:
            return buffer.raw[:n].decode("utf-8", errors="replace")
        capacity = n + 1


def _reason(lines: CapturedLog) -> str:
    """llama.cpp's own words: what it logged at error level, else its last line."""
    chosen = lines.errors or [line.strip() for line in lines[-1:]]
    return "; ".join(dict.fromkeys(chosen)) or "llama.cpp gave no reason"
