"""What `check` computes: the operations a model runs, each on small odd shapes with its weight types.

Every case is compared with the baseline CPU variant's result (the portable `x64`, or the lowest-scoring one
this CPU runs) within `tolerance`, and where a float32 Python result is cheap, with that too (`python`).
Errors are measured as reference.worst_error does: against each element's scale, so 1.0 is a wrong value
of typical size. Quantized weights are made by ggml's own `ggml_quantize_chunk` (libggml-base, the same code
in every variant's process), so every variant multiplies the very same bytes."""

from __future__ import annotations

import ctypes
import math
import struct
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .._errors import Unsupported
from . import api as _api
from . import reference as _reference
from .compute import Input

Build = Callable[[int, list[int]], int]
# (expected, scale, tolerance): a float32 Python result of the same computation
PythonResult = tuple[list[float], list[float], float]

# Quantized weights: rows a multiple of 8 and 256 per row (a K-quant block), as the CPU backend's repacked
# layouts need, so CPU_REPACK (and AMX, where the CPU has it) take them; 9 tokens run the repacked gemm on
# 8 rows and its gemv on the ninth, one token the decode path.
M, K = 64, 256
QUANTIZED = {"f16": _api.GGML_TYPE_F16, "q8_0": _api.GGML_TYPE_Q8_0, "q4_0": _api.GGML_TYPE_Q4_0}
QUANTIZED["q4_K"] = _api.GGML_TYPE_Q4_K
# Against the baseline variant, as a fraction of each element's scale (sum of |w*x| for MUL_MAT, 1 elsewhere).
# Measured on the pin's CPU variants against x64 (AVX-512 EPYC, CPU_REPACK included): at most 6e-8 for every
# MUL_MAT, 1.2e-7 for ROPE, 7e-5 for FLASH_ATTN_EXT, 0 for GET_ROWS and the norms. The tolerances stay far below
# what a wrong kernel gives (a wrong block: 0.1, a wrong value: 1; a crash is a crash).
TOLERANCE_F32 = 1e-3
TOLERANCE_F16 = 1e-3
TOLERANCE_QUANTIZED = 2e-3
# A GPU against the CPU baseline where it computes in f16 or in blocks of its own: MUL_MAT with f16 or quantized
# weights may round the activations to f16 or quantize them its way (q8_1 per 32 values where the CPU's q4_K
# takes q8_K per 256), FLASH_ATTN_EXT may round Q to f16: each a legitimate half step. Measured on lavapipe
# (Mesa's Vulkan): MUL_MAT f16 1.2e-3, q4_K 2.2e-3, FLASH_ATTN_EXT 9.3e-4.
TOLERANCE_GPU_F16 = 1e-2
TOLERANCE_EXACT = 1e-6  # GET_ROWS copies (or dequantizes) and SOFT_MAX's values are at most 1
TOLERANCE_PYTHON = 1e-2  # against float32 Python: room for f16 paths, far below a wrong value


@dataclass(frozen=True)
class Case:
    label: str  # "MUL_MAT q4_0 64x9x256": the operation as ggml names it, then the weights' type and shape
    inputs: Callable[[], tuple[Input, ...]]
    build: Build
    tolerance: float
    scale: Callable[[], list[float]] | None = None  # per element; None: 1.0 everywhere
    python: Callable[[], PythonResult] | None = None
    weighted: bool = False  # has weights a model would keep in the device's extra buffer types
    gpu_tolerance: float | None = None  # against the baseline on a GPU (None: the same as on a CPU variant)

    def tolerance_on(self, gpu: bool) -> float:
        return self.gpu_tolerance if gpu and self.gpu_tolerance is not None else self.tolerance


def f32(values: Sequence[float]) -> bytes:
    return array("f", values).tobytes()


def f16(values: Sequence[float]) -> bytes:
    return struct.pack(f"<{len(values)}e", *values)


def i32(values: Sequence[int]) -> bytes:
    return array("i", values).tobytes()


def quantize(ggml: ctypes.CDLL, kind: int, values: Sequence[float], rows: int, per_row: int) -> bytes:
    """`values` in ggml's layout for `kind`, quantized by ggml itself (ggml_quantize_chunk)."""
    if kind == _api.GGML_TYPE_F16:
        return f16(values)
    quantize_chunk, row_size = _api.optional(ggml, "ggml_quantize_chunk"), _api.optional(ggml, "ggml_row_size")
    if quantize_chunk is None or row_size is None:
        raise Unsupported("this ggml has no ggml_quantize_chunk")
    source = array("f", values)
    out = ctypes.create_string_buffer(row_size(kind, per_row) * rows)
    written = quantize_chunk(kind, source.buffer_info()[0], out, 0, rows, per_row, None)
    return out.raw[:written]


def _function(ggml: ctypes.CDLL, name: str) -> Callable[..., int]:
    found = _api.optional(ggml, name)
    if found is None:
        raise Unsupported(f"this ggml has no {name}")
    function: Callable[..., int] = found
    return function


def cases(ggml: ctypes.CDLL) -> list[Case]:
    """Every case, in the order they run (and a crash names the one it was in)."""
    return [*_mul_mats(ggml), *_get_rows(ggml), *_attention(ggml), *_norms(ggml)]


def _mul_mats(ggml: ctypes.CDLL) -> list[Case]:
    def mul_mat(ctx: int, t: list[int]) -> int:
        return _function(ggml, "ggml_mul_mat")(ctx, t[0], t[1])

    m, n, k = 33, 17, 129  # odd sizes: every vector path runs its scalar tail too
    a, b = _reference.inputs(m * k, 1), _reference.inputs(n * k, 2)

    def f32_python() -> PythonResult:
        expected, scale = _reference.mul_mat(a, b, m, n, k)
        return expected, scale, TOLERANCE_PYTHON

    found = [
        Case(
            f"MUL_MAT f32 {m}x{n}x{k}",
            lambda: (Input(_api.GGML_TYPE_F32, (k, m), f32(a), True), Input(_api.GGML_TYPE_F32, (k, n), f32(b))),
            mul_mat,
            TOLERANCE_F32,
            lambda: _reference.mul_mat(a, b, m, n, k)[1],
            f32_python,
            weighted=True,
        )
    ]
    weights = _reference.inputs(M * K, 3)
    for name, kind in QUANTIZED.items():
        for tokens in (9, 1):
            x = _reference.inputs(tokens * K, 4 + tokens)

            def inputs(kind: int = kind, x: list[float] = x, tokens: int = tokens) -> tuple[Input, ...]:
                w = Input(kind, (K, M), quantize(ggml, kind, weights, M, K), True)
                return w, Input(_api.GGML_TYPE_F32, (K, tokens), f32(x))

            def scale(x: list[float] = x, tokens: int = tokens) -> list[float]:
                return _reference.mul_mat(weights, x, M, tokens, K)[1]

            def f16_python(x: list[float] = x, tokens: int = tokens) -> PythonResult:
                rounded = list(struct.unpack(f"<{M * K}e", f16(weights)))
                expected, scale = _reference.mul_mat(rounded, x, M, tokens, K)
                return expected, scale, TOLERANCE_PYTHON

            tolerance = TOLERANCE_F16 if kind == _api.GGML_TYPE_F16 else TOLERANCE_QUANTIZED
            python = f16_python if kind == _api.GGML_TYPE_F16 else None
            label = f"MUL_MAT {name} {M}x{tokens}x{K}"
            found.append(Case(label, inputs, mul_mat, tolerance, scale, python, True, TOLERANCE_GPU_F16))
    return found


def _get_rows(ggml: ctypes.CDLL) -> list[Case]:
    """GET_ROWS: a model's token embeddings, looked up from f32 and from quantized rows."""
    table, rows = _reference.inputs(M * K, 5), [3, 0, 63, 17, 3]

    def get_rows(ctx: int, t: list[int]) -> int:
        return _function(ggml, "ggml_get_rows")(ctx, t[0], t[1])

    def python() -> PythonResult:
        expected = [v for r in rows for v in table[r * K : (r + 1) * K]]
        return expected, [1.0] * len(expected), 1e-6

    found = []
    for name, kind in (("f32", _api.GGML_TYPE_F32), ("q4_0", _api.GGML_TYPE_Q4_0)):

        def inputs(kind: int = kind) -> tuple[Input, ...]:
            data = f32(table) if kind == _api.GGML_TYPE_F32 else quantize(ggml, kind, table, M, K)
            return Input(kind, (K, M), data), Input(_api.GGML_TYPE_I32, (len(rows),), i32(rows))

        exact = python if kind == _api.GGML_TYPE_F32 else None
        found.append(Case(f"GET_ROWS {name} {len(rows)} of {M}x{K}", inputs, get_rows, TOLERANCE_EXACT, None, exact))
    return found


def _attention(ggml: ctypes.CDLL) -> list[Case]:
    """ROPE (normal and NeoX), SOFT_MAX and FLASH_ATTN_EXT on a small multi-head, grouped-query shape."""
    dims, heads, tokens, kv_heads, kv = 64, 4, 7, 2, 32
    x, positions = _reference.inputs(dims * heads * tokens, 6), [0, 1, 2, 5, 9, 31, 100]

    def rope(mode: int) -> Build:
        def build(ctx: int, t: list[int]) -> int:
            floats = (10000.0, 1.0, 0.0, 1.0, 32.0, 1.0)  # base, scale, ext_factor, attn_factor, beta fast, slow
            return _function(ggml, "ggml_rope_ext")(ctx, t[0], t[1], None, dims, mode, 0, *floats)

        return build

    def rope_inputs() -> tuple[Input, ...]:
        return Input(_api.GGML_TYPE_F32, (dims, heads, tokens), f32(x)), Input(
            _api.GGML_TYPE_I32, (tokens,), i32(positions)
        )

    def rope_python() -> PythonResult:
        expected = _reference.rope(x, positions, dims, heads, 10000.0)
        return expected, [1.0] * len(expected), 1e-3

    cols, rows = 37, 6
    logits = [3 * v for v in _reference.inputs(cols * rows, 7)]

    def soft_max(ctx: int, t: list[int]) -> int:
        return _function(ggml, "ggml_soft_max_ext")(ctx, t[0], None, 0.7, 0.0)

    def soft_max_python() -> PythonResult:
        expected = _reference.soft_max(logits, rows, cols, 0.7)
        return expected, [1.0] * len(expected), 1e-5

    def attention(head_dim: int) -> Case:
        """FLASH_ATTN_EXT with F16 K and V (as llama.cpp's KV cache holds them, and casts F32 ones to). Head
        dimension 64 runs the CPU's F16 vector loops; 16 (the check model's) is shorter than one step of the
        NEON and x86 loops (GGML_F16_STEP 32, 64 with AVX-512), so only SVE's predicated tail runs vector code there."""
        q, k, v = (
            _reference.inputs(head_dim * count, seed)
            for count, seed in ((tokens * heads, 8), (kv * kv_heads, 9), (kv * kv_heads, 10))
        )

        def attention_inputs() -> tuple[Input, ...]:
            return (
                Input(_api.GGML_TYPE_F32, (head_dim, tokens, heads), f32(q)),
                Input(_api.GGML_TYPE_F16, (head_dim, kv, kv_heads), f16(k)),
                Input(_api.GGML_TYPE_F16, (head_dim, kv, kv_heads), f16(v)),
            )

        def flash_attn(ctx: int, t: list[int]) -> int:
            scale = 1 / math.sqrt(head_dim)
            out = _function(ggml, "ggml_flash_attn_ext")(ctx, t[0], t[1], t[2], None, scale, 0.0, 0.0)
            _function(ggml, "ggml_flash_attn_ext_set_prec")(out, _api.GGML_PREC_F32)
            return out

        label = f"FLASH_ATTN_EXT f16 {head_dim}x{tokens}x{heads} kv {kv}x{kv_heads}"
        return Case(label, attention_inputs, flash_attn, TOLERANCE_F16, gpu_tolerance=TOLERANCE_GPU_F16)

    return [
        Case(f"ROPE normal {dims}x{heads}x{tokens}", rope_inputs, rope(0), TOLERANCE_F32, None, rope_python),
        Case(f"ROPE neox {dims}x{heads}x{tokens}", rope_inputs, rope(2), TOLERANCE_F32),
        Case(
            f"SOFT_MAX {cols}x{rows}",
            lambda: (Input(_api.GGML_TYPE_F32, (cols, rows), f32(logits)),),
            soft_max,
            TOLERANCE_EXACT,
            None,
            soft_max_python,
        ),
        attention(dims),
        attention(16),
    ]


def _norms(ggml: ctypes.CDLL) -> list[Case]:
    rows, cols, eps = 33, 129, 1e-5
    x = _reference.inputs(rows * cols, 1)
    found = []
    for name, rms in (("RMS_NORM", True), ("NORM", False)):

        def build(ctx: int, t: list[int], rms: bool = rms) -> int:
            return _function(ggml, "ggml_rms_norm" if rms else "ggml_norm")(ctx, t[0], eps)

        def python(rms: bool = rms) -> PythonResult:
            expected = _reference.rms_norm(x, rows, cols, eps) if rms else _reference.norm(x, rows, cols, eps)
            return expected, [1.0] * len(expected), TOLERANCE_PYTHON

        def inputs() -> tuple[Input, ...]:
            return (Input(_api.GGML_TYPE_F32, (cols, rows), f32(x)),)

        found.append(Case(f"{name} {cols}x{rows}", inputs, build, TOLERANCE_F32, None, python))
    return found
