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


def worst_error(got: Sequence[float], expected: Sequence[float], scale: Sequence[float]) -> float:
    """The largest error relative to each element's scale (1.0 for a wrong value of typical size)."""
    return max(abs(g - e) / max(s, 1e-6) for g, e, s in zip(got, expected, scale, strict=True))
