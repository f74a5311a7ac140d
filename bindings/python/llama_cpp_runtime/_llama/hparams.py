"""The hyperparameters in a GGUF's metadata that llama.cpp asserts on instead of rejecting.

llama.cpp reads them in `llama_model::load_hparams` and checks them with GGML_ASSERT, which aborts the
process; a norm's epsilon below zero is only asserted on by the CPU kernel, at the first token. Each
check here mirrors one of those assertions (llama.cpp 0.3.35 and 0.3.36), so that such a file is an
InvalidModel naming the key and its value before libllama sees it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

MAX_LAYERS = 512  # LLAMA_MAX_LAYERS, src/llama-hparams.h
MAX_EXPERTS = 1024  # LLAMA_MAX_EXPERTS, src/llama-hparams.h
ROPE_SCALING_TYPES = ("none", "linear", "yarn", "longrope")  # LLAMA_ROPE_SCALING_TYPES, src/llama-model.cpp
# The norms' epsilons: ggml's norm, rms_norm, group_norm and l2_norm kernels assert eps >= 0.
EPSILONS = ("attention.layer_norm_epsilon", "attention.layer_norm_rms_epsilon", "attention.group_norm_epsilon")
# Architectures whose loader turns one expert into none (llama-model.cpp, before the expert checks).
_ONE_EXPERT_IS_NONE = ("hunyuan-dense", "hunyuan_vl")
_ABORTS = "llama.cpp would abort the process on it"


def hparam_problems(metadata: Mapping[str, object]) -> Iterator[str]:
    """What llama.cpp would assert on in these hyperparameters, each naming the key and its value."""
    arch = metadata.get("general.architecture")
    if not isinstance(arch, str):
        return  # llama.cpp refuses a model without an architecture with an error of its own
    yield from _layers(metadata, arch)
    yield from _experts(metadata, arch)
    yield from _epsilons(metadata, arch)
    scaling = metadata.get(f"{arch}.rope.scaling.type")
    if isinstance(scaling, str) and scaling not in ROPE_SCALING_TYPES:
        yield f"{arch}.rope.scaling.type is {scaling!r}, not one of {', '.join(ROPE_SCALING_TYPES)}: {_ABORTS}"


def _count(metadata: Mapping[str, object], key: str) -> int | None:
    """An integer hyperparameter (the largest, when the file gives one per layer); None when absent or of
    another type (llama.cpp refuses a wrong type with an error, not an abort)."""
    value = metadata.get(key)
    values = value if isinstance(value, list) else [value]
    numbers = [v for v in values if isinstance(v, int) and not isinstance(v, bool)]
    if not numbers or len(numbers) != len(values):
        return None
    return max(numbers)


def _layers(metadata: Mapping[str, object], arch: str) -> Iterator[str]:
    key = f"{arch}.block_count"
    layers = _count(metadata, key)
    if layers is None:
        return
    if not 0 < layers <= MAX_LAYERS:
        yield f"{key} is {layers}: llama.cpp allows 1 to {MAX_LAYERS} layers (LLAMA_MAX_LAYERS); {_ABORTS}"
        return
    for part in ("nextn_predict_layers", "posnet.block_count", "convnext.block_count"):
        count = _count(metadata, f"{arch}.{part}")
        if count is not None and count > layers:
            yield f"{arch}.{part} is {count}, more than {key} ({layers}): {_ABORTS}"


def _experts(metadata: Mapping[str, object], arch: str) -> Iterator[str]:
    def count(part: str) -> tuple[str, int]:
        key = f"{arch}.{part}"
        return key, _count(metadata, key) or 0  # absent is 0, as llama.cpp's defaults

    (experts_key, experts), (used_key, used) = count("expert_count"), count("expert_used_count")
    (groups_key, groups), (group_used_key, group_used) = count("expert_group_count"), count("expert_group_used_count")
    if arch in _ONE_EXPERT_IS_NONE and experts <= 1:
        return
    if experts > MAX_EXPERTS:
        yield f"{experts_key} is {experts}: llama.cpp allows at most {MAX_EXPERTS} (LLAMA_MAX_EXPERTS); {_ABORTS}"
    elif used > experts:
        yield f"{used_key} is {used}, more than {experts_key} ({experts}): {_ABORTS}"
    elif experts and not used:
        yield f"{experts_key} is {experts} but {used_key} is missing or 0: {_ABORTS}"
    elif experts and groups >= experts:
        yield f"{groups_key} is {groups}, not fewer than {experts_key} ({experts}): {_ABORTS}"
    elif experts and groups > 1 and (experts % groups or not 0 < group_used < groups):
        yield (
            f"{groups_key} is {groups} with {experts_key} {experts} and {group_used_key} {group_used}: llama.cpp "
            f"needs the experts to divide into the groups and 0 < used groups < groups; {_ABORTS}"
        )
    elif not experts and groups:
        yield f"{groups_key} is {groups} but {experts_key} is missing or 0: {_ABORTS}"


def _epsilons(metadata: Mapping[str, object], arch: str) -> Iterator[str]:
    for part in EPSILONS:
        key = f"{arch}.{part}"
        value = metadata.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and not value >= 0:  # NaN too
            shown = "NaN" if math.isnan(value) else f"{value:g}"  # float32: -1e-05, not -9.99999974e-06
            yield f"{key} is {shown}: a norm's epsilon must be 0 or more; {_ABORTS} at the first token"
