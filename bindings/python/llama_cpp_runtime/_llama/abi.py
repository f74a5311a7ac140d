"""libllama's structs as the binding declares them, and the check against the layout the build recorded.

llama.cpp passes these structs by value and changes them between releases without a version symbol; a
ctypes layout one field off passes garbage. The build compiles a probe against the very headers it
built with (buildsys/cmake/llama-abi-probe.c lists the same fields as below) and stages its answer as
`llama-abi.json`; `verify()` compares that record with these declarations field by field.
"""

from __future__ import annotations

import ctypes
from collections.abc import Mapping
from typing import Any

from .._errors import AbiMismatch

RECORD_NAME = "llama-abi.json"

VOID_P = ctypes.c_void_p
ENUM = ctypes.c_int  # C enums are int-sized on every platform we build for
PROGRESS_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_bool, ctypes.c_float, VOID_P)
EVAL_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_bool, VOID_P, ctypes.c_bool, VOID_P)
ABORT_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_bool, VOID_P)


class LlamaModelParams(ctypes.Structure):
    _fields_ = [
        ("devices", VOID_P),  # NULL-terminated ggml_backend_dev_t array
        ("tensor_buft_overrides", VOID_P),
        ("n_gpu_layers", ctypes.c_int32),
        ("split_mode", ENUM),
        ("load_mode", ENUM),  # llama_load_mode: replaced use_mmap/use_mlock
        ("main_gpu", ctypes.c_int32),
        ("tensor_split", ctypes.POINTER(ctypes.c_float)),
        ("progress_callback", PROGRESS_CALLBACK),
        ("progress_callback_user_data", VOID_P),
        ("kv_overrides", VOID_P),
        ("vocab_only", ctypes.c_bool),
        ("check_tensors", ctypes.c_bool),
        ("use_extra_bufts", ctypes.c_bool),
        ("no_host", ctypes.c_bool),
        ("no_alloc", ctypes.c_bool),
        ("load_mtp", ctypes.c_bool),
    ]


class LlamaContextParams(ctypes.Structure):
    _fields_ = [
        ("n_ctx", ctypes.c_uint32),
        ("n_batch", ctypes.c_uint32),
        ("n_ubatch", ctypes.c_uint32),
        ("n_seq_max", ctypes.c_uint32),
        ("n_rs_seq", ctypes.c_uint32),
        ("n_outputs_max", ctypes.c_uint32),
        ("n_outputs_max_per_seq", ctypes.c_uint32),
        ("n_threads", ctypes.c_int32),
        ("n_threads_batch", ctypes.c_int32),
        ("ctx_type", ENUM),
        ("rope_scaling_type", ENUM),
        ("pooling_type", ENUM),
        ("attention_type", ENUM),
        ("flash_attn_type", ENUM),
        ("rope_freq_base", ctypes.c_float),
        ("rope_freq_scale", ctypes.c_float),
        ("yarn_ext_factor", ctypes.c_float),
        ("yarn_attn_factor", ctypes.c_float),
        ("yarn_beta_fast", ctypes.c_float),
        ("yarn_beta_slow", ctypes.c_float),
        ("yarn_orig_ctx", ctypes.c_uint32),
        ("defrag_thold", ctypes.c_float),
        ("cb_eval", EVAL_CALLBACK),
        ("cb_eval_user_data", VOID_P),
        ("type_k", ENUM),
        ("type_v", ENUM),
        ("abort_callback", ABORT_CALLBACK),
        ("abort_callback_data", VOID_P),
        ("embeddings", ctypes.c_bool),
        ("offload_kqv", ctypes.c_bool),
        ("no_perf", ctypes.c_bool),
        ("op_offload", ctypes.c_bool),
        ("swa_full", ctypes.c_bool),
        ("kv_unified", ctypes.c_bool),
        ("samplers", VOID_P),
        ("n_samplers", ctypes.c_size_t),
        ("ctx_other", VOID_P),
    ]


class LlamaBatch(ctypes.Structure):
    _fields_ = [
        ("n_tokens", ctypes.c_int32),
        ("token", ctypes.POINTER(ctypes.c_int32)),
        ("embd", ctypes.POINTER(ctypes.c_float)),
        ("pos", ctypes.POINTER(ctypes.c_int32)),
        ("n_seq_id", ctypes.POINTER(ctypes.c_int32)),
        ("seq_id", ctypes.POINTER(ctypes.POINTER(ctypes.c_int32))),
        ("logits", ctypes.POINTER(ctypes.c_int8)),
    ]


STRUCTS: dict[str, type[ctypes.Structure]] = {
    "llama_model_params": LlamaModelParams,
    "llama_context_params": LlamaContextParams,
    "llama_batch": LlamaBatch,
}


def declared_layout(struct: type[ctypes.Structure]) -> dict[str, Any]:
    """{"size": n, "fields": {name: [offset, size]}} in the probe's format."""
    fields = {name: [getattr(struct, name).offset, getattr(struct, name).size] for name, *_ in struct._fields_}
    return {"size": ctypes.sizeof(struct), "fields": fields}


def first_mismatch(
    record: Mapping[str, Any], structs: Mapping[str, type[ctypes.Structure]] = STRUCTS, declarer: str = "the binding"
) -> str | None:
    """The first difference between ctypes declarations (the binding's, or another binding's: `declarer`)
    and the build's record, in words; None if they agree."""
    recorded_structs = record.get("structs", {})
    for name, struct in structs.items():
        recorded = recorded_structs.get(name)
        if not isinstance(recorded, Mapping):
            return f"{name} is not in the build's record"
        declared = declared_layout(struct)
        recorded_fields = recorded.get("fields", {})
        for field, (offset, size) in declared["fields"].items():
            found = recorded_fields.get(field)
            if found is None:
                return f"{name}.{field} is declared by {declarer} but not in the build's headers"
            if list(found) != [offset, size]:
                return (
                    f"{name}.{field} is at offset {found[0]} (size {found[1]}) in the build's headers, "
                    f"{declarer} declares offset {offset} (size {size})"
                )
        if recorded.get("size") != declared["size"]:
            recorded_size = recorded.get("size")
            return f"sizeof({name}) is {recorded_size} in the build's headers, {declarer} declares {declared['size']}"
    return None


def verify(record: Mapping[str, Any] | None, source: str) -> None:
    """Raise AbiMismatch naming the first difference (or a missing record)."""
    if record is None:
        raise AbiMismatch(f"no {RECORD_NAME} in {source}: the layout of libllama's structs cannot be checked")
    problem = first_mismatch(record)
    if problem is not None:
        commit = record.get("commit", "an unknown commit")
        raise AbiMismatch(f"libllama ({commit}) does not match this binding: {problem}")
