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
from .._ggml.interrupts import HeldInterrupt, interrupts_held, kept
from .._ggml.threadpool import CpuThreadpool, new_cpu_threadpool
from .._handle import Handle
from .._platform import UINT32_MAX, check_int, thread_count
from . import api as C

if TYPE_CHECKING:
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
        *,
        n_ctx: int,
        n_threads: int | None,
        n_batch: int | None,
        embeddings: bool,
        f32_attention: bool = False,
    ) -> None:
        # The C fields are uint32_t (n_ctx, n_batch) and int32_t (n_threads): ctypes would wrap a larger value.
        check_int("n_ctx", n_ctx, 0, UINT32_MAX, ContextError)
        if n_batch is not None:
            check_int("n_batch", n_batch, 1, UINT32_MAX, ContextError)
        threads = thread_count(n_threads, ContextError)
        super().__init__(threading.RLock())
        self._llama = llama = model._llama  # the model's libraries and log bridge
        self.model = model  # a context keeps its model alive
        self.embeddings = embeddings
        params = llama.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_threads = params.n_threads_batch = threads
        if n_batch is not None:
            params.n_batch = n_batch
        if f32_attention:
            # F32 K and V, no flash attention: with flash attention the CPU keeps its V accumulator in F16 (F32
            # K and V are cast to F16 for it), and each SIMD path rounds that differently (check's model case)
            params.flash_attn_type = C.FLASH_ATTN_DISABLED
            params.type_k = params.type_v = C.GGML_TYPE_F32
        if embeddings:
            # Pooling needs the whole text in one micro-batch; a model without its own pooling gets the mean.
            params.embeddings = True
            params.n_batch = params.n_ubatch = max(n_ctx or model.n_ctx_train, 1)
            has_pooling = f"{model.metadata.get('general.architecture')}.pooling_type" in model.metadata
            params.pooling_type = C.POOLING_UNSPECIFIED if has_pooling else C.POOLING_MEAN
        else:
            params.n_ubatch = min(params.n_ubatch, params.n_batch)
        model_handle = model._acquire()
        handle: int | None = None
        threadpool: CpuThreadpool | None = None
        try:
            with interrupts_held() as interrupt, model._bridge.capture() as lines:
                made = llama.llama_init_from_model(model_handle, params)
                handle = kept(made, interrupt, llama.llama_free)  # made before Ctrl-C could be raised
            if not handle:
                reason = "; ".join(line.strip() for line in lines if "error" in line.lower() or "fail" in line.lower())
                raise ContextError(
                    f"could not create a context (n_ctx={n_ctx}): {reason or 'llama.cpp gave no reason'}"
                )
            threadpool = new_cpu_threadpool(model._ggml, threads)
            if threadpool is not None:
                llama.llama_attach_threadpool(handle, threadpool.handle, None)
            self._threadpool = threadpool
            self._memory = llama.llama_get_memory(handle)
            self._sampler = llama.llama_sampler_init_greedy()
            self.n_ctx = int(llama.llama_n_ctx(handle))
            self.n_batch = int(llama.llama_n_batch(handle))
            self.n_threads = int(llama.llama_n_threads(handle))
        except BaseException:  # nothing is the finaliser's yet: what was made is freed here
            if handle:
                llama.llama_free(handle)
            if threadpool is not None:
                threadpool.free()
            model._release()
            raise
        self._handle = handle  # last: from here on, _free() (close() or the finaliser) has all it frees

    # ---- lifetime ---------------------------------------------------------------------------------

    def _free(self, handle: int) -> None:
        """The context's memory, then its threadpool and its hold on the model."""
        self._llama.llama_sampler_free(self._sampler)
        self._llama.llama_free(handle)
        if self._threadpool is not None:  # after the context: it computes with the pool until freed
            self._threadpool.free()
        self.model._release()

    # ---- the KV memory ----------------------------------------------------------------------------

    @property
    def n_past(self) -> int:
        """How many positions of sequence 0 the memory holds."""
        with self._using():
            return int(self._llama.llama_memory_seq_pos_max(self._memory, 0)) + 1

    def reset(self) -> None:
        """Clear the KV memory: the next decode starts a new text."""
        with self._using():
            self._llama.llama_memory_clear(self._memory, True)

    # ---- decoding ---------------------------------------------------------------------------------

    def decode(self, ids: Sequence[int]) -> array[float]:
        """Run the ids after what the memory holds; the logits of the last position (n_vocab floats)."""
        with self._held():
            handle, tokens = self._checked(ids)
            with interrupts_held() as interrupt:
                self._run(handle, tokens, interrupt)
            return self._last_logits()

    def _checked(self, ids: Sequence[int]) -> tuple[int, list[int]]:
        """What every public call checks once, before it decodes: the handle, the model's file (a weight
        read from a file changed under the model faults or lies), the ids, and room for them."""
        handle = self._live()
        self.model.check_file()
        tokens = self.model.tokenizer.check_ids(ids)
        if not tokens:
            raise DecodeError("nothing to decode: the list of ids is empty")
        self._check_room(len(tokens))
        return handle, tokens

    def _check_room(self, n_tokens: int) -> None:
        room = self.n_ctx - 1 - int(self._llama.llama_memory_seq_pos_max(self._memory, 0))
        if n_tokens > room:
            raise DecodeError(
                f"{n_tokens} tokens do not fit: the context holds {self.n_ctx} and "
                f"{self.n_ctx - room} are used (reset() it or use a larger n_ctx)"
            )

    def _run(self, handle: int, tokens: Sequence[int], interrupt: HeldInterrupt) -> None:
        """Decode checked tokens in n_batch chunks, under the caller's interrupts_held(): Ctrl-C is raised
        after a chunk (when the caller's hold ends), not lost in a callback during it; no chunk starts
        once it came."""
        for start in range(0, len(tokens), self.n_batch):
            if interrupt.pending:
                return
            chunk = tokens[start : start + self.n_batch]
            buffer = (ctypes.c_int32 * len(chunk))(*chunk)
            status = self._llama.llama_decode(handle, self._llama.llama_batch_get_one(buffer, len(chunk)))
            if status != 0:
                raise DecodeError(f"llama_decode returned {status}: {_DECODE_RESULTS.get(status, 'backend error')}")

    def _sample(self, handle: int) -> int | None:
        """The greedy next id after what was decoded; None at an end-of-generation token."""
        token = int(self._llama.llama_sampler_sample(self._sampler, handle, -1))
        return None if self.model.tokenizer.is_end_of_generation(token) else token

    def _decode_one(self, handle: int, token: int, interrupt: HeldInterrupt) -> None:
        """A generated id, so that the one after it can be sampled (it came from the vocabulary)."""
        self._check_room(1)
        self._run(handle, (token,), interrupt)

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
        _check_max_tokens(max_tokens)
        generated: list[int] = []
        with self._held():
            if reset:
                self.reset()
            handle, tokens = self._checked(ids)
            with interrupts_held() as interrupt:  # once for the whole generation: Ctrl-C ends it between tokens
                self._run(handle, tokens, interrupt)
                while len(generated) < max_tokens and not interrupt.pending:
                    token = self._sample(handle)
                    if token is None:
                        break
                    generated.append(token)
                    if len(generated) < max_tokens:
                        self._decode_one(handle, token, interrupt)
        return generated

    def stream(self, ids: Sequence[int], max_tokens: int = 16, *, reset: bool = True) -> Iterator[int]:
        """generate(), one id at a time as each is decoded (for printing text as it comes)."""
        _check_max_tokens(max_tokens)
        with self._held():
            if reset:
                self.reset()
            handle, tokens = self._checked(ids)
            with interrupts_held() as interrupt:
                self._run(handle, tokens, interrupt)
            for produced in range(max_tokens):
                token = self._sample(self._live())
                if token is None:
                    return
                yield token
                if produced + 1 < max_tokens:
                    # Held anew for each token: the caller's code runs between them, and Ctrl-C there is raised there.
                    with interrupts_held() as interrupt:
                        self._decode_one(self._live(), token, interrupt)

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
            _, tokens = self._checked(ids)
            with interrupts_held() as interrupt:
                self._run(handle, tokens, interrupt)
            pointer = self._llama.llama_get_embeddings_seq(handle, 0)
            if not pointer:
                raise DecodeError("llama.cpp returned no pooled embedding")
            vector = [float(v) for v in pointer[: self.model.n_embd]]
            self.reset()
        if normalize:
            length = math.sqrt(sum(v * v for v in vector)) or 1.0
            vector = [v / length for v in vector]
        return vector


def _check_max_tokens(max_tokens: int) -> None:
    if max_tokens < 0:
        raise ValueError(f"max_tokens={max_tokens}: expected 0 or more")
