"""The fields of the C structs the binding passes to libllama, read from llama.h, and how a bump changes them.

The probe the superbuild runs (cmake/llama-abi-probe.cmake) records every field of `llama_model_params`,
`llama_context_params` and `llama_batch`; the binding lays out the fields it uses (its structs.json) from
that record. Upstream changes these structs without a version symbol, so `bump` compares their fields in
the old and new header, says what moved, and whether a field the binding uses is among them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PROBE = Path(__file__).resolve().parent.parent / "cmake" / "llama-abi-probe.cmake"
# What the binding reads or writes in each struct: declared once, beside the binding that uses it.
BINDING_STRUCTS = Path(__file__).resolve().parents[2] / "bindings/python/llama_cpp_runtime/_llama/structs.json"
HEADER = "include/llama.h"

_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)
_NAME = re.compile(r"([A-Za-z_]\w*)\s*(?:\[[^\]]*\]\s*)*$")


@dataclass(frozen=True)
class StructChange:
    line: str  # what changed, in words
    used: tuple[str, ...]  # the fields the binding uses that were removed or retyped (empty: not affected)


def probed_structs(probe: Path = PROBE) -> list[str]:
    """The structs the probe records, in its order (`"<name>|<C type>"` in its list)."""
    return re.findall(r'^\s*"(\w+)\|', probe.read_text(encoding="utf-8"), re.MULTILINE)


def used_fields(declarations: Path = BINDING_STRUCTS) -> dict[str, frozenset[str]]:
    """struct -> the fields the binding reads or writes."""
    document = json.loads(declarations.read_text(encoding="utf-8"))
    return {struct: frozenset(fields) for struct, fields in document["structs"].items()}


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


def describe_changes(old_header: str, new_header: str, used: Mapping[str, frozenset[str]]) -> list[StructChange]:
    """One change per struct whose fields changed: added (after which field), removed, retyped, reordered,
    with the used fields among the removed or retyped ones."""
    changes = []
    for name, fields in used.items():
        old, new = struct_fields(old_header, name), struct_fields(new_header, name)
        if old == new:
            continue
        if new is None:
            changes.append(StructChange(f"struct {name} is gone from {HEADER}", tuple(sorted(fields)) or (name,)))
            continue
        old_types, new_types = {f: t for t, f in old or []}, {f: t for t, f in new}
        broken = tuple(
            f for f in sorted(fields) if f not in new_types or old_types.get(f, new_types[f]) != new_types[f]
        )
        line = f"struct {name} changed in {HEADER}: {'; '.join(_field_changes(old or [], new))}"
        changes.append(StructChange(line, broken))
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
