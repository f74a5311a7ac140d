"""The computations of `check`, done again in plain Python to compare devices against."""

from __future__ import annotations

import math
from collections.abc import Sequence


def inputs(count: int, seed: int) -> list[float]:
    """Deterministic values in [-1, 1) from a linear congruential generator (no NumPy, no random)."""
    state = seed
    values = []
    for _ in range(count):
        state = (state * 6364136223846793005 + 1442695040888963407) % 2**64
        values.append(((state >> 40) / 2**24) * 2.0 - 1.0)
    return values


def mul_mat(a: Sequence[float], b: Sequence[float], m: int, n: int, k: int) -> tuple[list[float], list[float]]:
    """ggml's MUL_MAT and, per element, the sum of |a*b| (the scale an error is judged against)."""
    result, scale = [], []
    for j in range(n):
        row_b = b[j * k : (j + 1) * k]
        for i in range(m):
            row_a = a[i * k : (i + 1) * k]
            result.append(math.fsum(x * y for x, y in zip(row_a, row_b, strict=True)))
            scale.append(math.fsum(abs(x * y) for x, y in zip(row_a, row_b, strict=True)))
    return result, scale


def norm(x: Sequence[float], rows: int, cols: int, eps: float) -> list[float]:
    out = []
    for r in range(rows):
        row = x[r * cols : (r + 1) * cols]
        mean = math.fsum(row) / cols
        variance = math.fsum((v - mean) ** 2 for v in row) / cols
        out += [(v - mean) / math.sqrt(variance + eps) for v in row]
    return out


def rms_norm(x: Sequence[float], rows: int, cols: int, eps: float) -> list[float]:
    out = []
    for r in range(rows):
        row = x[r * cols : (r + 1) * cols]
        scale = 1.0 / math.sqrt(math.fsum(v * v for v in row) / cols + eps)
        out += [v * scale for v in row]
    return out


def soft_max(x: Sequence[float], rows: int, cols: int, scale: float) -> list[float]:
    out = []
    for r in range(rows):
        row = [v * scale for v in x[r * cols : (r + 1) * cols]]
        top = max(row)
        exps = [math.exp(v - top) for v in row]
        total = math.fsum(exps)
        out += [e / total for e in exps]
    return out


def rope(x: Sequence[float], positions: Sequence[int], dims: int, heads: int, base: float) -> list[float]:
    """ggml's ROPE in normal mode (adjacent pairs rotated) on x[tokens][heads][dims], every dimension rotated."""
    out = list(x)
    for t, position in enumerate(positions):
        for h in range(heads):
            row = (t * heads + h) * dims
            for i in range(0, dims, 2):
                theta = position * base ** (-i / dims)
                x0, x1 = x[row + i], x[row + i + 1]
                out[row + i] = x0 * math.cos(theta) - x1 * math.sin(theta)
                out[row + i + 1] = x0 * math.sin(theta) + x1 * math.cos(theta)
    return out


def worst_error(got: Sequence[float], expected: Sequence[float], scale: Sequence[float]) -> float:
    """The largest error relative to each element's scale (1.0 for a wrong value of typical size)."""
    return max(abs(g - e) / max(s, 1e-6) for g, e, s in zip(got, expected, scale, strict=True))
