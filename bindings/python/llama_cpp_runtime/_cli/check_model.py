"""`check`'s model case: the tiny generated llama model (q4_0 matrices, q8_0 embeddings and output) run through
libllama on one device, its logits at each step compared with the baseline variant's.

The baseline decodes a fixed prompt, then generates greedily; every other device decodes the same prompt and
then the baseline's tokens (so that one step's difference does not change every later input), and must pick
the same greedy token at each step where the baseline's choice is not a near tie, with every logit within
TOLERANCE of the step's largest logit."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._errors import LoadError, Unsupported
from .._llama import tiny_model as _tiny_model
from .._runtime import Runtime

LABEL = "MODEL tiny-llama q4_0"
PROMPT = (1, 260, 262, 75, 104, 40, 263)
STEPS = 8
# Of the step's largest |logit|. Measured here at most 2e-6 (CPU_REPACK's q4_0 kernels against x64's); a GPU
# keeps its activations in float where the CPU quantizes them to q8_0 per 32 values, about 1e-3 on this model.
TOLERANCE = 1e-2


def run(runtime: Runtime, device: str, folder: Path, ggml: Any, forced: Sequence[int] | None) -> dict[str, Any]:
    """{"tokens": the greedy (or forced) tokens, "logits": each step's logits}; {"skipped": why} when this
    libllama cannot run models at all (a LoadError: a library without the model functions), or this ggml
    cannot quantize the model's weights."""
    path = folder / "tiny-model.gguf"
    try:
        if not path.exists():
            _tiny_model.write(ggml, path)
        model = runtime.load_model(path, devices=[device])
    except (LoadError, Unsupported) as error:  # libllama without the model API; ggml without a quantizer
        return {"skipped": str(error)}
    with model, model.context(n_ctx=64) as context:
        steps = [list(context.decode(PROMPT))]
        tokens: list[int] = []
        for step in range(STEPS):
            tokens.append(forced[step] if forced is not None else _argmax(steps[-1]))
            if step + 1 < STEPS:
                steps.append(list(context.decode([tokens[-1]])))
    return {"tokens": tokens, "logits": steps}


def compare(got: dict[str, Any], baseline: dict[str, Any]) -> tuple[float, list[str]]:
    """The worst error (as a fraction of each step's largest logit) and what did not match."""
    problems, worst = [], 0.0
    for step, (mine, theirs) in enumerate(zip(got["logits"], baseline["logits"], strict=True)):
        scale = max([abs(v) for v in theirs] + [1e-6])
        error = max(abs(a - b) for a, b in zip(mine, theirs, strict=True)) / scale
        worst = max(worst, error)
        if not error <= TOLERANCE:
            problems.append(f"step {step} logits error {error:.1e} (tolerance {TOLERANCE:.0e})")
        ranked = sorted(theirs, reverse=True)
        clear = ranked[0] - ranked[1] > 2 * TOLERANCE * scale  # a near tie may go either way
        if clear and _argmax(mine) != _argmax(theirs):
            problems.append(f"step {step} greedy token {_argmax(mine)}, the baseline's {_argmax(theirs)}")
    return worst, problems


def _argmax(values: Sequence[float]) -> int:
    return max(range(len(values)), key=values.__getitem__)
