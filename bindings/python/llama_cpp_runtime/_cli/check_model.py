"""`check`'s model case: the tiny generated llama model (q4_0 matrices, q8_0 embeddings and output) run through
libllama on one device, its logits at each step compared with the baseline variant's.

The baseline decodes a fixed prompt, then generates greedily; every other device decodes the same prompt and
then the baseline's tokens (so that one step's difference does not change every later input), and must pick
the same greedy token at each step where the baseline's choice is not a near tie, with every logit within its
tolerance of the step's largest logit.

CPU variants run attention in F32 (no flash attention, an F32 KV cache) and must agree within TOLERANCE. With
flash attention the CPU keeps the V accumulator in F16 and its SIMD paths round into it differently: SVE
multiplies in F16 (the softmax weight rounded to F16, ggml_vec_mad_f16), NEON and x86 in F32 at this head size
(16). That differs by about 5e-4 of the attention's output, which this model's q8_0 activations (a rounding flip
moves a value by a 1/127 step of its block) turn into 1e-2 to 3e-2 of the logits: more than TOLERANCE between
correct kernels (measured under qemu-aarch64: armv8.2_3 against armv8.0_1 1.4e-2; armv8.0_1's own flash
attention against F32 attention 3.3e-2). FLASH_ATTN_EXT is checked as an operation of its own (_ggml.op_cases).

A GPU runs the model as models run (upstream's attention defaults; an F32 KV cache would also make lavapipe
compile another 30 s of shaders) against the baseline's run with the same defaults, within GPU_TOLERANCE: its
activations are not the CPU's q8_0 blocks, and the same amplification applies."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._errors import LoadError, Unsupported
from .._llama import tiny_model as _tiny_model
from .._llama.context import Context
from .._llama.model import Model
from .._runtime import Runtime

LABEL = "MODEL tiny-llama q4_0"
PROMPT = (1, 260, 262, 75, 104, 40, 263)
STEPS = 8
# Of the step's largest |logit|. CPU variants, F32 attention: measured at most 2e-6 (CPU_REPACK's q4_0 kernels
# against x64's; arm64 under qemu, SVE and NEON variants against armv8.0_1, 1.5e-7). A GPU, default attention:
# 1.3e-2 to 3.5e-2 on lavapipe against x64. A wrong kernel gives logits of another size altogether (about 1).
TOLERANCE = 1e-2
GPU_TOLERANCE = 1e-1


def run(
    runtime: Runtime, device: str, folder: Path, ggml: Any, forced: Sequence[int] | None, *, f32_attention: bool
) -> dict[str, Any]:
    """{"tokens": the greedy (or forced) tokens, "logits": each step's logits}; {"skipped": why} when this
    libllama cannot run models at all (a LoadError: a library without the model functions), or this ggml
    cannot quantize the model's weights. f32_attention: no flash attention and an F32 KV cache (else upstream's
    defaults)."""
    path = folder / "tiny-model.gguf"
    try:
        if not path.exists():
            _tiny_model.write(ggml, path)
        model = runtime.load_model(path, devices=[device])
    except (LoadError, Unsupported) as error:  # libllama without the model API; ggml without a quantizer
        return {"skipped": str(error)}
    assert isinstance(model, Model)  # devices=[device]: never an RPC device, so never a RemoteModel
    with (
        model,
        Context(
            model, n_ctx=64, n_threads=None, n_batch=None, embeddings=False, f32_attention=f32_attention
        ) as context,
    ):
        steps = [list(context.decode(PROMPT))]
        tokens: list[int] = []
        for step in range(STEPS):
            tokens.append(forced[step] if forced is not None else _argmax(steps[-1]))
            if step + 1 < STEPS:
                steps.append(list(context.decode([tokens[-1]])))
    return {"tokens": tokens, "logits": steps}


def compare(got: dict[str, Any], baseline: dict[str, Any], tolerance: float = TOLERANCE) -> tuple[float, list[str]]:
    """The worst error (as a fraction of each step's largest logit) and what did not match."""
    problems, worst = [], 0.0
    for step, (mine, theirs) in enumerate(zip(got["logits"], baseline["logits"], strict=True)):
        scale = max([abs(v) for v in theirs] + [1e-6])
        error = max(abs(a - b) for a, b in zip(mine, theirs, strict=True)) / scale
        worst = max(worst, error)
        if not error <= tolerance:
            problems.append(f"step {step} logits error {error:.1e} (tolerance {tolerance:.0e})")
        ranked = sorted(theirs, reverse=True)
        clear = ranked[0] - ranked[1] > 2 * tolerance * scale  # a near tie may go either way
        if clear and _argmax(mine) != _argmax(theirs):
            problems.append(f"step {step} greedy token {_argmax(mine)}, the baseline's {_argmax(theirs)}")
    return worst, problems


def _argmax(values: Sequence[float]) -> int:
    return max(range(len(values)), key=values.__getitem__)
