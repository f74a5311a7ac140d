"""libllama's structs laid out from the build's record: only the fields the binding uses, at the recorded
offsets, in a structure of the recorded size; a used field that vanished or changed size is refused by name."""

from __future__ import annotations

import copy
import ctypes
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from helpers.support import REPO_ROOT
from llama_cpp_runtime import AbiMismatch
from llama_cpp_runtime._llama.abi import USED, declared_layout, first_mismatch, lay_out

from buildsys.builder.header_structs import struct_fields, used_fields

VOID_P = ctypes.c_void_p
PROBE = REPO_ROOT / "buildsys" / "cmake" / "llama-abi-probe.cmake"
FIXTURE_HEADER = REPO_ROOT / "tests" / "fixtures" / "miniggml" / "include" / "llama.h"


class PinModelParams(ctypes.Structure):  # llama_model_params as the pin's llama.h declares it
    _fields_ = [
        ("devices", VOID_P),
        ("tensor_buft_overrides", VOID_P),
        ("n_gpu_layers", ctypes.c_int32),
        ("split_mode", ctypes.c_int),
        ("load_mode", ctypes.c_int),
        ("main_gpu", ctypes.c_int32),
        ("tensor_split", VOID_P),
        ("progress_callback", VOID_P),
        ("progress_callback_user_data", VOID_P),
        ("kv_overrides", VOID_P),
        ("vocab_only", ctypes.c_bool),
        ("check_tensors", ctypes.c_bool),
        ("use_extra_bufts", ctypes.c_bool),
        ("no_host", ctypes.c_bool),
        ("no_alloc", ctypes.c_bool),
        ("load_mtp", ctypes.c_bool),
    ]


class NewerModelParams(ctypes.Structure):  # 0.3.36: `enum llama_lazy_mode lazy_mode` after load_mode
    _fields_ = [*PinModelParams._fields_[:5], ("lazy_mode", ctypes.c_int), *PinModelParams._fields_[5:]]


class ContextParams(ctypes.Structure):
    _fields_ = [
        ("n_ctx", ctypes.c_uint32),
        ("n_batch", ctypes.c_uint32),
        ("n_ubatch", ctypes.c_uint32),
        ("n_seq_max", ctypes.c_uint32),
        ("n_threads", ctypes.c_int32),
        ("n_threads_batch", ctypes.c_int32),
        ("pooling_type", ctypes.c_int),
        ("flash_attn_type", ctypes.c_int),
        ("rope_freq_base", ctypes.c_float),
        ("cb_eval", VOID_P),
        ("type_k", ctypes.c_int),
        ("type_v", ctypes.c_int),
        ("embeddings", ctypes.c_bool),
        ("offload_kqv", ctypes.c_bool),
        ("samplers", VOID_P),
        ("n_samplers", ctypes.c_size_t),
    ]


class Batch(ctypes.Structure):
    _fields_ = [
        ("n_tokens", ctypes.c_int32),
        ("token", VOID_P),
        ("embd", VOID_P),
        ("pos", VOID_P),
        ("n_seq_id", VOID_P),
        ("seq_id", VOID_P),
        ("logits", VOID_P),
    ]


def record(model_params: type[ctypes.Structure] = PinModelParams) -> dict[str, Any]:
    structs = {"llama_model_params": model_params, "llama_context_params": ContextParams, "llama_batch": Batch}
    return {"commit": "c0ffee", "structs": {name: declared_layout(struct) for name, struct in structs.items()}}


def field_bytes(instance: ctypes.Structure, declaration: type[ctypes.Structure], field: str) -> bytes:
    place = getattr(declaration, field)
    return bytes(instance)[place.offset : place.offset + place.size]


@pytest.mark.parametrize("model_params", [PinModelParams, NewerModelParams])
def test_used_fields_land_at_the_recorded_offsets_in_a_struct_of_the_recorded_size(
    model_params: type[ctypes.Structure],
) -> None:
    structs = lay_out(record(model_params), "stage")
    laid_out = structs["llama_model_params"]
    assert ctypes.sizeof(laid_out) == ctypes.sizeof(model_params)
    params = laid_out()
    params.n_gpu_layers, params.load_mode, params.vocab_only = 7, 3, True
    assert field_bytes(params, model_params, "n_gpu_layers") == (7).to_bytes(4, "little")
    assert field_bytes(params, model_params, "load_mode") == (3).to_bytes(4, "little")
    assert field_bytes(params, model_params, "vocab_only") == b"\x01"
    assert ctypes.sizeof(structs["llama_batch"]) == ctypes.sizeof(Batch)
    assert ctypes.sizeof(structs["llama_context_params"]) == ctypes.sizeof(ContextParams)


def test_a_value_returned_by_c_keeps_the_fields_the_binding_does_not_know() -> None:
    laid_out = lay_out(record(NewerModelParams), "stage")["llama_model_params"]
    upstream = NewerModelParams(n_gpu_layers=-1, lazy_mode=2, main_gpu=5, check_tensors=True)
    copied = laid_out.from_buffer_copy(bytes(upstream))
    copied.n_gpu_layers = 4
    back = NewerModelParams.from_buffer_copy(bytes(copied))
    assert (back.n_gpu_layers, back.lazy_mode, back.main_gpu, back.check_tensors) == (4, 2, 5, True)


def test_a_field_the_layout_lacks_cannot_be_set_silently() -> None:
    params = lay_out(record(), "stage")["llama_model_params"]()
    with pytest.raises(AttributeError, match="no field 'use_mmap'"):
        params.use_mmap = True


def test_a_removed_used_field_is_refused_naming_it_and_both_layouts() -> None:
    removed = record()
    del removed["structs"]["llama_model_params"]["fields"]["load_mode"]
    with pytest.raises(AbiMismatch) as refused:
        lay_out(removed, "stage")
    message = str(refused.value)
    assert message.startswith(
        "libllama (c0ffee) does not match this binding: llama_model_params.load_mode (enum llama_load_mode, 4 bytes; "
        "load_model(mmap=..., mlock=...)) is not in the build's headers, whose llama_model_params has: devices@0+8, "
    ), message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda r: r["structs"].pop("llama_batch"), "llama_batch is not in the build's record"),
        (
            lambda r: r["structs"]["llama_context_params"]["fields"].update(n_ctx=[0, 8]),
            "llama_context_params.n_ctx is 8 bytes at offset 0 in the build's headers, the binding declares "
            "uint32_t (4 bytes; model.context(n_ctx=...))",
        ),
    ],
)
def test_missing_structs_and_used_fields_of_another_size_are_refused(change: Any, expected: str) -> None:
    changed = copy.deepcopy(record())
    change(changed)
    with pytest.raises(AbiMismatch, match=re.escape(expected)):
        lay_out(changed, "stage")


def test_fields_the_binding_does_not_use_may_change_freely() -> None:
    changed = copy.deepcopy(record())
    fields = changed["structs"]["llama_context_params"]["fields"]
    del fields["offload_kqv"], fields["samplers"]
    fields["rope_freq_base"] = [32, 8]
    assert ctypes.sizeof(lay_out(changed, "stage")["llama_context_params"]) == ctypes.sizeof(ContextParams)


def test_no_record_is_refused_too() -> None:
    with pytest.raises(AbiMismatch, match=r"no llama-abi\.json in /somewhere"):
        lay_out(None, "/somewhere")


def test_another_bindings_complete_declarations_are_compared_field_by_field() -> None:
    assert first_mismatch(record(), {"llama_model_params": PinModelParams}, "llama-cpp-python 0.3.35") is None
    assert first_mismatch(record(NewerModelParams), {"llama_model_params": PinModelParams}, "llama-cpp-python") == (
        "llama_model_params.main_gpu is at offset 32 (size 4) in the build's headers, llama-cpp-python declares "
        "offset 28 (size 4)"
    )


def test_the_binding_and_buildsys_read_one_declaration_of_the_used_fields(tmp_path: Path) -> None:
    declared = used_fields()
    assert {name: frozenset(f.name for f in fields) for name, fields in USED.items()} == {
        name: frozenset(fields) for name, fields in declared.items()
    }
    assert {name: {f.name: f.c_type for f in fields} for name, fields in USED.items()} == declared
    assert sorted(probe_fields(FIXTURE_HEADER, tmp_path)) == sorted(USED)  # the probe reads the binding's list
    assert all(field.ctype is not None for fields in USED.values() for field in fields)


def probe_fields(header: Path, tmp_path: Path) -> dict[str, list[str]]:
    """The fields the superbuild's generated probe records for a header (cmake -P, as the build runs it)."""
    cmake = shutil.which("cmake")
    assert cmake is not None
    output = tmp_path / "probe.c"
    subprocess.run([cmake, f"-DHEADER={header}", f"-DOUTPUT={output}", "-P", str(PROBE)], check=True, timeout=60)
    lines = re.findall(r"STRUCT\((\w+), [^,]+,(.*)\)$", output.read_text(), re.MULTILINE)
    return {name: re.findall(r"FIELD\([^,]+, (\w+)\)", fields) for name, fields in lines}


def test_the_probe_records_every_field_the_header_declares(tmp_path: Path) -> None:
    header = FIXTURE_HEADER.read_text()
    expected = {name: [field for _, field in struct_fields(header, name) or []] for name in USED}
    assert probe_fields(FIXTURE_HEADER, tmp_path) == expected
    assert all(expected.values())
    assert all(f.name in expected[name] for name, fields in USED.items() for f in fields)


def test_the_used_fields_declarations_parse() -> None:
    document = json.loads((REPO_ROOT / "bindings/python/llama_cpp_runtime/_llama/structs.json").read_text())
    assert set(document["structs"]) == set(USED)


def test_the_probe_and_the_bump_report_read_array_fields_alike(tmp_path: Path) -> None:
    header = tmp_path / "llama.h"
    header.write_text(
        "struct llama_model_params {\n    char name[16];\n    int32_t n_gpu_layers;\n"
        "    float split [ 4 ][2]; // comment\n    bool vocab_only;\n};\n"
        "struct llama_context_params { uint32_t n_ctx; char tag[LLAMA_MAX]; };\n"
        "typedef struct llama_batch { int32_t n_tokens; } llama_batch;\n"
    )
    expected = {name: [field for _, field in struct_fields(header.read_text(), name) or []] for name in USED}
    assert expected["llama_model_params"] == ["name", "n_gpu_layers", "split", "vocab_only"]
    assert probe_fields(header, tmp_path) == expected
