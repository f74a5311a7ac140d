"""A Model's lock and a Context's decoding, with a stand-in for libllama (no library): a child of fork()
whose parent held the lock when it forked does not wait for it; the garbage collector finalising a context
while the same thread is inside one of the model's calls does not deadlock; the checks a decoding call
makes (the file, Ctrl-C's handler) are made once per call, not per token, and Ctrl-C ends a generation
between two tokens. Every wait is bounded."""

from __future__ import annotations

import gc
import os
import signal
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from helpers import tiny_models
from helpers.forking import in_child
from llama_cpp_runtime._ggml.log import LogBridge
from llama_cpp_runtime._handle import Handle
from llama_cpp_runtime._llama.gguf import read_header
from llama_cpp_runtime._llama.model import Model


class _FakeLlama:
    """The few libllama functions a Model and a Context call, in Python; tokenize runs `during_tokenize`
    first, and each decode `during_decode`. A decode of n tokens moves the memory n positions on."""

    def __init__(self) -> None:
        self.freed: list[int] = []
        self.during_tokenize: Any = None
        self.during_decode: Any = None
        self.decoded: list[int] = []  # the size of each batch
        self.position = 0

    def llama_context_default_params(self) -> SimpleNamespace:
        return SimpleNamespace(n_ubatch=512, n_batch=2048)

    def llama_init_from_model(self, model: int, params: object) -> int:
        return 7

    def llama_free(self, handle: int) -> None:
        self.freed.append(handle)

    def llama_get_memory(self, handle: int) -> int:
        return 8

    def llama_sampler_init_greedy(self) -> int:
        return 9

    def llama_sampler_free(self, sampler: int) -> None:
        pass

    def llama_n_ctx(self, handle: int) -> int:
        return 4096

    def llama_n_batch(self, handle: int) -> int:
        return 16

    def llama_n_threads(self, handle: int) -> int:
        return 1

    def llama_memory_seq_pos_max(self, memory: int, sequence: int) -> int:
        return self.position - 1

    def llama_memory_clear(self, memory: int, data: bool) -> None:
        self.position = 0

    def llama_batch_get_one(self, tokens: object, n: int) -> int:
        return n

    def llama_decode(self, handle: int, batch: int) -> int:
        self.decoded.append(batch)
        self.position += batch
        if self.during_decode is not None:
            self.during_decode()
        return 0

    def llama_sampler_sample(self, sampler: int, handle: int, index: int) -> int:
        return 3

    def llama_vocab_is_eog(self, vocab: int, token: int) -> bool:
        return False

    def ggml_backend_reg_by_name(self, name: bytes) -> None:
        return None  # no CPU backend registry: no threadpool

    def __getattr__(self, name: str) -> Any:
        if name.startswith("llama_model_n_") or name in ("llama_model_size", "llama_vocab_n_tokens"):
            return lambda *_: 10
        raise AttributeError(name)

    def llama_model_default_params(self) -> SimpleNamespace:
        return SimpleNamespace()

    def llama_model_load_from_file(self, path: bytes, params: object) -> int:
        return 1

    def llama_model_free(self, handle: int) -> None:
        self.freed.append(handle)

    def llama_model_get_vocab(self, handle: int) -> int:
        return 2

    def llama_model_meta_count(self, handle: int) -> int:
        return 0

    def llama_tokenize(self, *args: object) -> int:
        if self.during_tokenize is not None:
            self.during_tokenize()
        return 0


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_models.write_llama_model(tmp_path_factory.mktemp("handles") / "spm.gguf")


def _model(path: Path, llama: _FakeLlama, vocab_only: bool = True) -> Model:
    options: dict[str, Any] = {"n_gpu_layers": None, "mmap": True, "mlock": False, "vocab_only": vocab_only}
    return Model(llama, llama, LogBridge(), read_header(path), devices=None, progress=None, **options)  # type: ignore[arg-type]


class _Context(Handle):
    """A context's hold on its model: acquired when made, released when freed (as Context does)."""

    def __init__(self, model: Model) -> None:
        super().__init__(threading.RLock())
        self.model = model
        self._handle = model._acquire()

    def _free(self, handle: int) -> None:
        self.model._release()


def test_a_context_finalised_by_the_gc_inside_a_model_call_on_the_same_thread_does_not_deadlock(
    model_file: Path,
) -> None:
    llama = _FakeLlama()
    model = _model(model_file, llama)
    cycle: dict[str, object] = {}
    cycle["self"], cycle["context"] = cycle, _Context(model)  # unreachable only to the cycle collector
    del cycle
    llama.during_tokenize = gc.collect  # the collector runs while tokenize holds the model's lock
    done: list[object] = []
    caller = threading.Thread(target=lambda: done.append(model.tokenize("x")), daemon=True)
    caller.start()
    caller.join(30)
    assert done == [[]], "tokenize deadlocked on the model's own lock"
    assert model._contexts == 0
    model.close()
    assert llama.freed == [1]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX")
def test_a_model_whose_lock_a_parent_thread_held_at_fork_is_usable_in_the_child(model_file: Path) -> None:
    llama = _FakeLlama()
    model = _model(model_file, llama)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with model._held():
            holding.set()
            release.wait(30)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert holding.wait(30)
    try:

        def child() -> bool:
            model.tokenize("x")  # the parent's thread holds the copied lock; the child's is a new one
            handle = model._acquire()
            model._release()
            return handle == 1

        assert in_child(child) == 0
    finally:
        release.set()
        holder.join(30)
    model.tokenize("x")  # the parent's lock is its own again
    model.close()
    assert llama.freed == [1]


def test_decoding_calls_check_once_per_call_and_ctrl_c_ends_a_generation_between_tokens(
    model_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    llama = _FakeLlama()
    model = _model(model_file, llama, vocab_only=False)
    ctx = model.context(n_ctx=4096, n_threads=1)
    stats: list[Path] = []
    real_stat = os.stat

    def counted_stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        if Path(path) == model.path:
            stats.append(Path(path))
        return real_stat(path, *args, **kwargs)

    handlers: list[object] = []
    real_signal = signal.signal

    def counted_signal(signum: int, handler: Any) -> Any:
        if signum == signal.SIGINT and handler is not signal.default_int_handler:
            handlers.append(handler)
        return real_signal(signum, handler)

    monkeypatch.setattr(os, "stat", counted_stat)
    monkeypatch.setattr(signal, "signal", counted_signal)
    assert ctx.generate([1, 2, 3] * 10, 50) == [3] * 50
    assert llama.decoded == [16, 14] + [1] * 49  # the prompt in n_batch chunks, then each token but the last
    assert len(stats) == 1 and len(handlers) == 1  # once per call, not per token or per chunk
    stats.clear(), handlers.clear()
    assert list(ctx.stream([1, 2], 20)) == [3] * 20
    assert len(stats) == 1  # the stream holds Ctrl-C anew for each token: the caller's code runs between them

    llama.decoded.clear()
    llama.during_decode = lambda: len(llama.decoded) == 5 and os.kill(os.getpid(), signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        ctx.generate([1, 2], 50)
    assert len(llama.decoded) == 5  # the decode under way ended; no other one began
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    ctx.close()
    model.close()
    assert llama.freed == [7, 1]
