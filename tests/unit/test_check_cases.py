"""`check`'s comparisons without a build: which variant is the baseline, what a mismatch, a NaN or an unsupported
case says, when a model's greedy token counts, the Python references, and the tiny model's GGUF file."""

from __future__ import annotations

import ctypes
import math
from array import array
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from llama_cpp_runtime._cli import check, check_model
from llama_cpp_runtime._ggml import api, op_cases, reference
from llama_cpp_runtime._llama import gguf, tiny_model
from llama_cpp_runtime._report import ModuleReport


def report_of(*modules: tuple[str, str, int | None]) -> Any:
    return SimpleNamespace(modules=[ModuleReport(name, "cpu", status, score=score) for name, status, score in modules])  # type: ignore[arg-type]


def test_the_baseline_is_x64_else_the_lowest_scoring_runnable_variant() -> None:
    runnable = [
        ("ggml-cpu-haswell", "loaded", 64),
        ("ggml-cpu-x64", "not chosen", 1),
        ("ggml-cpu-sse42", "not chosen", 5),
    ]
    assert check.baseline_variant(report_of(*runnable)) == "x64"
    without_x64 = [
        ("ggml-cpu-haswell", "loaded", 64),
        ("ggml-cpu-sse42", "not chosen", 5),
        ("ggml-cpu-zen4", "skipped", 0),
    ]
    assert check.baseline_variant(report_of(*without_x64)) == "sse42"
    assert check.baseline_variant(report_of(("ggml-cpu", "loaded", None))) is None  # no variants: the CPU itself


def test_a_result_beyond_its_tolerance_is_a_mismatch_naming_the_case_and_the_baseline() -> None:
    findings = check.Findings()
    expected = [1.0, -2.0, 0.5]
    findings.compare(
        "MUL_MAT q4_0 64x9x256 in CPU_REPACK", array("f", [1.0, -2.0, 0.5005]), expected, [1.0] * 3, 2e-3, "x64"
    )
    assert findings.detail("x64")[0]  # 5e-4 is within 2e-3
    findings.compare(
        "MUL_MAT q4_0 64x9x256 in CPU_REPACK", array("f", [1.0, -2.0, 1.5]), expected, [1.0] * 3, 2e-3, "x64"
    )
    ok, detail = findings.detail("x64")
    assert not ok
    assert detail == "MISMATCH: MUL_MAT q4_0 64x9x256 in CPU_REPACK error 1.0e+00 against x64 (tolerance 2e-03)"


def test_nan_and_a_wrong_length_are_mismatches() -> None:
    findings = check.Findings()
    findings.compare("SOFT_MAX 37x6", array("f", [math.nan]), [0.5], [1.0], 1e-6, "x64")
    findings.compare("ROPE neox 64x4x7", array("f", [0.0] * 2), [0.0] * 3, [1.0] * 3, 1e-3, "x64")
    assert findings.mismatches == [
        "SOFT_MAX 37x6 error nan against x64 (tolerance 1e-06)",
        "ROPE neox 64x4x7: 2 values, x64 gave 3",
    ]


def test_a_passing_row_says_what_was_compared_placed_and_not_supported() -> None:
    findings = check.Findings(compared=3, worst=(0.07, "FLASH_ATTN_EXT f16"))
    findings.placed["CPU_REPACK"] = ["q4_0", "q4_K"]
    findings.unsupported += ["GET_ROWS q4_0", "ROPE normal"]
    findings.notes.append("MODEL not run: no model functions")
    assert findings.detail("x64") == (
        True,
        "3 results within tolerance of x64 (worst 0.07 of it: FLASH_ATTN_EXT f16), CPU_REPACK took q4_0, q4_K, "
        "GET_ROWS q4_0, ROPE normal not supported by this device, MODEL not run: no model functions",
    )


@pytest.mark.parametrize(
    ("label", "kind"),
    [
        ("MUL_MAT q4_0 64x9x256", "MUL_MAT q4_0"),
        ("SOFT_MAX 37x6", "SOFT_MAX"),
        ("GET_ROWS f32 5 of 64x256", "GET_ROWS f32"),
    ],
)
def test_an_unsupported_case_is_named_by_operation_and_type(label: str, kind: str) -> None:
    assert check._kind(label) == kind


def test_the_models_greedy_token_must_match_unless_the_baseline_had_a_near_tie() -> None:
    baseline = {"tokens": [0], "logits": [[5.0, 1.0, 0.0]]}
    assert check_model.compare({"logits": [[5.0, 1.0, 0.0]]}, baseline) == (0.0, [])
    worst, problems = check_model.compare({"logits": [[1.0, 5.0, 0.0]]}, baseline)
    assert worst == pytest.approx(0.8)
    assert problems == ["step 0 logits error 8.0e-01 (tolerance 1e-02)", "step 0 greedy token 1, the baseline's 0"]
    tie = {"tokens": [0], "logits": [[5.0, 4.99, 0.0]]}
    assert check_model.compare({"logits": [[4.995, 4.996, 0.0]]}, tie) == (pytest.approx(0.0012), [])


def test_a_gpu_row_has_room_for_f16_arithmetic_and_a_cpu_variant_does_not() -> None:
    baseline = {"tokens": [0], "logits": [[10.0, 2.0, 0.0]]}
    near = {"logits": [[10.0, 2.3, 0.0]]}  # 3e-2 of the largest logit: what lavapipe's Vulkan gives
    assert check_model.compare(near, baseline, check_model.GPU_TOLERANCE) == (pytest.approx(0.03), [])
    assert check_model.compare(near, baseline)[1] == ["step 0 logits error 3.0e-02 (tolerance 1e-02)"]
    wrong = {"logits": [[2.0, 10.0, 0.0]]}  # a wrong kernel: another answer altogether
    assert len(check_model.compare(wrong, baseline, check_model.GPU_TOLERANCE)[1]) == 2
    f16 = op_cases.Case("MUL_MAT f16", tuple, lambda c, t: 0, op_cases.TOLERANCE_F16, weighted=True, gpu_tolerance=1e-2)
    assert (f16.tolerance_on(gpu=False), f16.tolerance_on(gpu=True)) == (1e-3, 1e-2)
    exact = op_cases.Case("GET_ROWS f32", tuple, lambda c, t: 0, op_cases.TOLERANCE_EXACT)
    assert exact.tolerance_on(gpu=True) == op_cases.TOLERANCE_EXACT


def test_the_python_references_hold_their_invariants() -> None:
    x = reference.inputs(64 * 2 * 3, 1)
    assert reference.rope(x, [0, 0, 0], 64, 2, 10000.0) == x  # position 0 turns nothing
    turned = reference.rope(x, [0, 7, 100], 64, 2, 10000.0)
    pairs = [(i, i + 1) for i in range(0, len(x), 2)]
    assert all(math.isclose(x[a] ** 2 + x[b] ** 2, turned[a] ** 2 + turned[b] ** 2, rel_tol=1e-9) for a, b in pairs)
    soft = reference.soft_max(x[:60], 3, 20, 0.7)
    assert all(math.isclose(sum(soft[r * 20 : (r + 1) * 20]), 1.0) for r in range(3))
    normed = reference.rms_norm(x[:40], 2, 20, 0.0)
    assert all(math.isclose(sum(v * v for v in normed[r * 20 : (r + 1) * 20]) / 20, 1.0) for r in range(2))


class FakeQuantizer:
    """ggml_quantize_chunk and ggml_row_size as ggml answers for q4_0 and q8_0 (block sizes only, bytes zero)."""

    def __init__(self) -> None:
        self.BLOCK_BYTES = {api.GGML_TYPE_Q4_0: 18, api.GGML_TYPE_Q8_0: 34}
        self.ggml_row_size = lambda kind, n: self.BLOCK_BYTES[kind] * n // 32

        def quantize_chunk(kind: int, source: int, out: Any, start: int, rows: int, per_row: int, imatrix: None) -> int:
            size: int = self.ggml_row_size(kind, per_row) * rows
            assert ctypes.sizeof(out) >= size
            return size

        self.ggml_quantize_chunk = quantize_chunk


def test_the_tiny_model_is_a_gguf_the_bindings_own_reader_accepts(tmp_path: Path) -> None:
    path = tiny_model.write(FakeQuantizer(), tmp_path / "tiny.gguf")  # type: ignore[arg-type]
    header = gguf.read_header(path)  # every length checked against the file's size
    assert header.metadata["general.architecture"] == "llama"
    assert header.metadata["llama.attention.head_count_kv"] == tiny_model.N_HEAD_KV
    assert header.metadata["tokenizer.ggml.tokens"].count == len(tiny_model.TOKENS) == 273  # type: ignore[union-attr]
    shapes = {t.name: (t.shape, t.ggml_type) for t in header.tensors}
    assert shapes["blk.1.ffn_down.weight"] == ((tiny_model.N_FF, tiny_model.N_EMBD), api.GGML_TYPE_Q4_0)
    assert shapes["output.weight"] == ((tiny_model.N_EMBD, 273), api.GGML_TYPE_Q8_0)
    assert len(header.tensors) == 2 + 9 * tiny_model.N_LAYER + 1
    assert not list(tmp_path.glob("*.partial"))
