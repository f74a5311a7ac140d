"""A context on a model: its KV memory, decode, greedy generation and embeddings.

A context is one thread's at a time: every method takes the context's lock, so two threads that share
one wait for each other. Use one context per thread for parallel work. ctypes releases the GIL while
llama.cpp computes, so contexts on other threads run at the same time.
"""

from __future__ import annotations

import ctypes
import math
import threading
from array import array
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from .._errors import ContextError, DecodeError
from .._ggml.interrupts import interrupts_held
from .._ggml.threadpool import CpuThreadpool, new_cpu_threadpool
from .._handle import Handle
from .._platform import UINT32_MAX, check_int, thread_count
from . import api as C

if TYPE_CHECKING:
    from .._ggml.log import LogBridge
    from .model import Model

_DECODE_RESULTS = {
    1: "no room in the KV memory for the batch (the context is full: reset() it or use a larger n_ctx)",
    2: "aborted",
    -1: "invalid input batch",
}


class Context(Handle):
    """Create with `model.context(...)`; use as a context manager or call close()."""

    def __init__(
        self,
        model: Model,
        llama: ctypes.CDLL,
        ggml: ctypes.CDLL,
        bridge: LogBridge,
        *,
        n_ctx: int,
        n_threads: int | None,
        n_batch: int | None,
        embeddings: bool,
    ) -> None:
        # The C fields are uint32_t (n_ctx, n_batch) and int32_t (n_threads): ctypes would wrap a larger value.
        check_int("n_ctx", n_ctx, 0, UINT32_MAX, ContextError)
        if n_batch is not None:
            check_int("n_batch", n_batch, 1, UINT32_MAX, ContextError)
        threads = thread_count(n_threads, ContextError)
        super().__init__(threading.RLock())
        self._llama = llama
        self.model = model  # a context keeps its model alive
        self.embeddings = embeddings
        params = llama.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_threads = params.n_threads_batch = threads
        if n_batch is not None:
            params.n_batch = n_batch
        if embeddings:
            # Pooling needs the whole text in one micro-batch; a model without its own pooling gets the mean.
            params.embeddings = True
            params.n_batch = params.n_ubatch = max(n_ctx or model.n_ctx_train, 1)
            has_pooling = f"{model.metadata.get('general.architecture')}.pooling_type" in model.metadata
            params.pooling_type = C.POOLING_UNSPECIFIED if has_pooling else C.POOLING_MEAN
        else:
            params.n_ubatch = min(params.n_ubatch, params.n_batch)
        model_handle = model._acquire()
        try:
            with interrupts_held() as interrupt, bridge.capture() as lines:
                handle = llama.llama_init_from_model(model_handle, params)
                if handle and interrupt.pending:  # made before Ctrl-C could be raised: not kept
                    llama.llama_free(handle)
            if not handle:
                reason = "; ".join(line.strip() for line in lines if "error" in line.lower() or "fail" in line.lower())
                raise ContextError(
                    f"could not create a context (n_ctx={n_ctx}): {reason or 'llama.cpp gave no reason'}"
                )
        except BaseException:
            model._release()
            raise
        self._threadpool: CpuThreadpool | None = None
        self._handle = handle
        self._threadpool = new_cpu_threadpool(ggml, threads)
        if self._threadpool is not None:
            llama.llama_attach_threadpool(handle, self._threadpool.handle, None)
        self._memory = llama.llama_get_memory(handle)
        self._sampler = llama.llama_sampler_init_greedy()
        self.n_ctx = int(llama.llama_n_ctx(handle))
        self.n_batch = int(llama.llama_n_batch(handle))
        self.n_threads = int(llama.llama_n_threads(handle))

    # ---- lifetime ---------------------------------------------------------------------------------

    def _free(self, handle: int) -> None:
        """The context's memory, then its threadpool and its hold on the model."""
        self._llama.llama_sampler_free(self._sampler)
        self._llama.llama_free(handle)
        if self._threadpool is not None:  # after the context: it computes with the pool until freed
            self._threadpool.free()
        self.model._release()

    def _describe(self) -> str:
        return "context"

    # ---- the KV memory ----------------------------------------------------------------------------

    @property
    def n_past(self) -> int:
        """How many positions of sequence 0 the memory holds."""
        with self._held():
            self._live()
            return int(self._llama.llama_memory_seq_pos_max(self._memory, 0)) + 1

    def reset(self) -> None:
        """Clear the KV memory: the next decode starts a new text."""
        with self._held():
            self._live()
            self._llama.llama_memory_clear(self._memory, True)

    # ---- decoding ---------------------------------------------------------------------------------

    def decode(self, ids: Sequence[int]) -> array[float]:
        """Run the ids after what the memory holds; the logits of the last position (n_vocab floats)."""
        with self._held():
            self._evaluate(ids)
            return self._last_logits()

    def _evaluate(self, ids: Sequence[int]) -> None:
        handle = self._live()
        self.model.check_file()  # a weight read from a file changed under the model faults or lies
        tokens = self.model.tokenizer.check_ids(ids)
        if not tokens:
            raise DecodeError("nothing to decode: the list of ids is empty")
        room = self.n_ctx - self.n_past
        if len(tokens) > room:
            raise DecodeError(
                f"{len(tokens)} tokens do not fit: the context holds {self.n_ctx} and "
                f"{self.n_ctx - room} are used (reset() it or use a larger n_ctx)"
            )
        for start in range(0, len(tokens), self.n_batch):
            chunk = tokens[start : start + self.n_batch]
            buffer = (ctypes.c_int32 * len(chunk))(*chunk)
            with interrupts_held():  # Ctrl-C is raised after the chunk, not lost in a callback during it
                status = self._llama.llama_decode(handle, self._llama.llama_batch_get_one(buffer, len(chunk)))
            if status != 0:
                raise DecodeError(f"llama_decode returned {status}: {_DECODE_RESULTS.get(status, 'backend error')}")

    def _last_logits(self) -> array[float]:
        pointer = self._llama.llama_get_logits_ith(self._live(), -1)
        if not pointer:
            raise DecodeError("no logits: this context computes embeddings")
        n_vocab = self.model.n_vocab
        result = array("f", bytes(4 * n_vocab))
        ctypes.memmove(result.buffer_info()[0], pointer, 4 * n_vocab)
        return result

    def generate(self, ids: Sequence[int], max_tokens: int = 16, *, reset: bool = True) -> list[int]:
        """Greedy continuation of `ids`: at most max_tokens new ids, ending before an end-of-generation
        token. Deterministic for a given model, device and thread count. reset=False continues after what
        the memory already holds."""
        return list(self.stream(ids, max_tokens, reset=reset))

    def stream(self, ids: Sequence[int], max_tokens: int = 16, *, reset: bool = True) -> Iterator[int]:
        """generate(), one id at a time as each is decoded (for printing text as it comes)."""
        if max_tokens < 0:
            raise ValueError(f"max_tokens={max_tokens}: expected 0 or more")
        with self._held():
            if reset:
                self.reset()
            self._evaluate(ids)
            for produced in range(max_tokens):
                token = int(self._llama.llama_sampler_sample(self._sampler, self._live(), -1))
                if self.model.tokenizer.is_end_of_generation(token):
                    return
                yield token
                if produced + 1 < max_tokens:
                    self._evaluate([token])

    # ---- embeddings -------------------------------------------------------------------------------

    def embed(self, text: str | Sequence[int], *, normalize: bool = False) -> list[float]:
        """The pooled embedding of a text (or of ids): n_embd floats, pooled the model's way, else the mean
        over the tokens. Needs a context made with embeddings=True. normalize scales it to unit length."""
        with self._held():
            handle = self._live()
            if not self.embeddings:
                raise ContextError("embed() needs a context created with embeddings=True")
            ids = self.model.tokenize(text) if isinstance(text, str) else list(text)
            self.reset()
            self._evaluate(ids)
            pointer = self._llama.llama_get_embeddings_seq(handle, 0)
            if not pointer:
                raise DecodeError("llama.cpp returned no pooled embedding")
            vector = [float(v) for v in pointer[: self.model.n_embd]]
            self.reset()
        if normalize:
            length = math.sqrt(sum(v * v for v in vector)) or 1.0
            vector = [v / length for v in vector]
        return vector
