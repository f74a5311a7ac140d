"""The binding's libllama struct declarations, the build's probe, and the check between them."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from helpers.support import REPO_ROOT
from llama_cpp_runtime import AbiMismatch
from llama_cpp_runtime._llama.abi import STRUCTS, declared_layout, first_mismatch, verify

PROBE = REPO_ROOT / "buildsys" / "cmake" / "llama-abi-probe.c"


def record() -> dict[str, Any]:
    return {"commit": "c0ffee", "structs": {name: declared_layout(struct) for name, struct in STRUCTS.items()}}


def test_the_probe_records_exactly_the_fields_the_binding_declares() -> None:
    text = PROBE.read_text()
    for name, struct in STRUCTS.items():
        block = text.split(f"#define {name.upper()}_FIELDS(type)", 1)[1].split("\n\n", 1)[0]
        assert re.findall(r"FIELD\(type, (\w+)\)", block) == [field for field, *_ in struct._fields_], name
        assert f"STRUCT({name}, " in text


def test_a_record_of_the_same_layout_passes() -> None:
    assert first_mismatch(record()) is None
    verify(record(), "stage")


def test_the_first_moved_field_is_named_with_both_offsets() -> None:
    moved = record()
    fields = moved["structs"]["llama_model_params"]["fields"]
    for name in list(fields)[5:]:  # upstream inserted an int after load_mode (as llama.cpp did in 0.3.36)
        fields[name] = [fields[name][0] + 4, fields[name][1]]
    moved["structs"]["llama_model_params"]["size"] += 8
    with pytest.raises(AbiMismatch) as refused:
        verify(moved, "stage")
    assert str(refused.value) == (
        "libllama (c0ffee) does not match this binding: llama_model_params.main_gpu is at offset 32 (size 4) "
        "in the build's headers, the binding declares offset 28 (size 4)"
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda r: r["structs"].pop("llama_batch"), "llama_batch is not in the build's record"),
        (lambda r: r["structs"]["llama_batch"]["fields"].pop("logits"), "llama_batch.logits is declared by the"),
        (lambda r: r["structs"]["llama_context_params"].update(size=168), "sizeof(llama_context_params) is 168"),
    ],
)
def test_missing_structs_fields_and_other_sizes_are_refused(change: Any, expected: str) -> None:
    changed = copy.deepcopy(record())
    change(changed)
    assert (first_mismatch(changed) or "").startswith(expected)


def test_no_record_is_refused_too() -> None:
    with pytest.raises(AbiMismatch, match=r"no llama-abi\.json in /somewhere"):
        verify(None, "/somewhere")
