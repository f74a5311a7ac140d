"""Prompt processing and generation speed of a model on one device, measured as llama-bench does:
a warm-up, then repetitions from an empty KV memory; pp<P> decodes P prompt tokens in batches, tg<N>
decodes N tokens one at a time; tokens/s is the mean over repetitions (with its standard deviation)."""

from __future__ import annotations

import random
import statistics
import time
from dataclasses import dataclass

from .._ggml.interrupts import interrupts_held
from .context import Context


@dataclass(frozen=True)
class BenchRow:
    device: str
    test: str  # pp512, tg128: llama-bench's names
    tokens_per_second: float
    stddev: float
    n_tokens: int
    repetitions: int
    n_threads: int
    seconds: list[float]


def _random_tokens(ctx: Context, n: int, seed: int) -> list[int]:
    generator = random.Random(seed)
    return [generator.randrange(ctx.model.n_vocab) for _ in range(n)]


def _timed(ctx: Context, runs: list[list[int]]) -> float:
    """Seconds to decode each list in turn, starting from an empty memory. The checks a public call makes
    (the file, the ids, the room) are made once, before the clock starts: only the decoding is timed."""
    ctx.reset()
    handle, _ = ctx._checked([token for tokens in runs for token in tokens])
    with interrupts_held() as interrupt:
        start = time.perf_counter()
        for tokens in runs:
            ctx._run(handle, tokens, interrupt)
        ctx._llama.llama_synchronize(handle)
        return time.perf_counter() - start


def bench(ctx: Context, device: str, *, n_prompt: int, n_gen: int, repetitions: int) -> list[BenchRow]:
    rows = []
    with ctx._held():
        if n_prompt:
            prompt = _random_tokens(ctx, n_prompt, 1)
            _timed(ctx, [prompt[: ctx.n_batch]])  # warm-up: graphs, buffers, caches
            seconds = [_timed(ctx, [prompt]) for _ in range(repetitions)]
            rows.append(_row(ctx, device, f"pp{n_prompt}", n_prompt, seconds))
        if n_gen:
            tokens = [[t] for t in _random_tokens(ctx, n_gen, 2)]
            _timed(ctx, tokens[:1])
            seconds = [_timed(ctx, tokens) for _ in range(repetitions)]
            rows.append(_row(ctx, device, f"tg{n_gen}", n_gen, seconds))
        ctx.reset()
    return rows


def _row(ctx: Context, device: str, test: str, n_tokens: int, seconds: list[float]) -> BenchRow:
    speeds = [n_tokens / s for s in seconds]
    spread = statistics.stdev(speeds) if len(speeds) > 1 else 0.0
    return BenchRow(device, test, statistics.mean(speeds), spread, n_tokens, len(seconds), ctx.n_threads, seconds)
