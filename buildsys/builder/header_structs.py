"""The fields of the C structs the binding passes to libllama, read from llama.h, and how a bump changes them.

The binding declares `llama_model_params`, `llama_context_params` and `llama_batch` in ctypes; the probe
the superbuild runs (cmake/llama-abi-probe.c) lists the same fields. Upstream changes these structs
without a version symbol, so `bump` compares their fields in the old and new header and says what moved.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

PROBE = Path(__file__).resolve().parent.parent / "cmake" / "llama-abi-probe.c"
HEADER = "include/llama.h"

_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)
_NAME = re.compile(r"([A-Za-z_]\w*)\s*(?:\[[^\]]*\]\s*)*$")


def probed_structs(probe: Path = PROBE) -> list[str]:
    """The structs the probe records, in its order (`STRUCT(name, type, fields)`)."""
    return re.findall(r"^\s*STRUCT\((\w+),", probe.read_text(encoding="utf-8"), re.MULTILINE)


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


def describe_changes(old_header: str, new_header: str, names: Iterable[str]) -> list[str]:
    """One line per struct whose fields changed: added (after which field), removed, retyped, reordered."""
    lines = []
    for name in names:
        old, new = struct_fields(old_header, name), struct_fields(new_header, name)
        if old == new:
            continue
        if new is None:
            lines.append(f"struct {name} is gone from {HEADER}")
            continue
        changes = _field_changes(old or [], new)
        lines.append(f"struct {name} changed in {HEADER}: {'; '.join(changes)}")
    return lines


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
