"""The fields of the C structs the binding passes to libllama, read from llama.h, and how a bump changes them.

The probe the superbuild runs (cmake/llama-abi-probe.cmake) records every field of the structs the binding's
structs.json names (`llama_model_params`, `llama_context_params`, `llama_batch`); the binding lays out the
fields it uses from that record. Upstream changes these structs without a version symbol, so `bump` compares
their fields in the old and new header, says what moved, and whether a field the binding uses is among them
(removed, or of a type other than the one the binding declares).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PROBE = Path(__file__).resolve().parent.parent / "cmake" / "llama-abi-probe.cmake"
# What the binding reads or writes in each struct: declared once, beside the binding that uses it.
BINDING_STRUCTS_PATH = "bindings/python/llama_cpp_runtime/_llama/structs.json"  # in this repository
BINDING_STRUCTS = Path(__file__).resolve().parents[2] / BINDING_STRUCTS_PATH
HEADER = "include/llama.h"

_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)
_NAME = re.compile(r"([A-Za-z_]\w*)\s*(?:\[[^\]]*\]\s*)*$")


@dataclass(frozen=True)
class StructChange:
    line: str  # what changed, in words
    used: tuple[str, ...]  # the fields the binding uses that were removed or retyped (empty: not affected)


def used_fields(declarations: Path = BINDING_STRUCTS) -> dict[str, dict[str, str]]:
    """struct -> the fields the binding reads or writes -> the C type it declares them with."""
    document = json.loads(declarations.read_text(encoding="utf-8"))
    return {
        struct: {name: " ".join(str(c_type).split()) for name, (c_type, *_) in fields.items()}
        for struct, fields in document["structs"].items()
    }


def struct_fields(header: str, name: str) -> list[tuple[str, str]] | None:
    """[(type, field)] of `struct name { ... }` in declaration order; None when the header has no such struct."""
    text = _COMMENTS.sub("", header)
    match = re.search(rf"\bstruct\s+{re.escape(name)}\s*\{{(.*?)\}}", text, re.DOTALL)
    if match is None:
        return None
    fields = []
    for raw in match.group(1).split(";"):
        declaration = " ".join(raw.split())
        found = _NAME.search(declaration)
        if found:
            fields.append((declaration[: found.start()].strip(), found.group(1)))
    return fields


def describe_changes(old_header: str, new_header: str, used: Mapping[str, Mapping[str, str]]) -> list[StructChange]:
    """One change per struct whose fields changed: added (after which field), removed, retyped, reordered,
    with the used fields among the removed or retyped ones; `used`: struct -> field -> the C type the binding
    declares. A used field the new header types otherwise than the binding declares is named even when the
    header did not change it."""
    changes = []
    for name, fields in used.items():
        old, new = struct_fields(old_header, name), struct_fields(new_header, name)
        if new is None:
            if old is not None:
                changes.append(StructChange(f"struct {name} is gone from {HEADER}", tuple(sorted(fields)) or (name,)))
            continue
        old_types, new_types = {f: t for t, f in old or []}, {f: t for t, f in new}
        retyped = {  # not said already as a change between the headers
            f: t for f, t in fields.items() if f in new_types and t != new_types[f] == old_types.get(f, new_types[f])
        }
        broken = tuple(
            f
            for f in sorted(fields)
            if f not in new_types or f in retyped or old_types.get(f, new_types[f]) != new_types[f]
        )
        said = _field_changes(old or [], new) if old != new else []
        said += [f"the binding declares {f} as {t}, {HEADER} as {new_types[f]}" for f, t in sorted(retyped.items())]
        if said:
            changes.append(StructChange(f"struct {name} changed in {HEADER}: {'; '.join(said)}", broken))
    return changes


def _field_changes(old: list[tuple[str, str]], new: list[tuple[str, str]]) -> list[str]:
    old_types, new_types = {f: t for t, f in old}, {f: t for t, f in new}
    changes = []
    for position, (kind, field) in enumerate(new):
        if field not in old_types:
            after = f"after {new[position - 1][1]}" if position else "first"
            changes.append(f"+ {kind} {field} ({after})")
        elif old_types[field] != kind:
            changes.append(f"{field}: {old_types[field]} → {kind}")
    changes += [f"- {field}" for _, field in old if field not in new_types]
    kept = [f for _, f in new if f in old_types]
    if kept != [f for _, f in old if f in new_types]:
        changes.append("fields reordered")
    return changes
