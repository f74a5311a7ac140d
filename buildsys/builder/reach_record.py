"""Remember that the synced CMake reaches nothing the subset lacks, so that a no-op build does not parse
every CMakeLists.txt again (a third of its time on real llama.cpp). The record is keyed on everything
the answer depends on: the synced tree's manifest, the presets' cache variables with the `-D` definitions
and what an earlier configure left in the CMake cache, the superbuild that adds the tree, and this
checker's code.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from ..fileops import write_atomically
from ..vendoring.manifest import MANIFEST_NAME
from .presets import CMAKE_DIR, Preset

RECORD_NAME = "reach-checked.json"
# Entries CMake keeps for itself (INTERNAL, STATIC) or fills in from the platform (CMAKE_*): not choices.
_OWN_TYPES = frozenset({"INTERNAL", "STATIC"})


def kept_cache_entries(binary_dir: Path) -> dict[str, str]:
    """The choices an earlier configure left in `binary_dir`'s CMakeCache.txt: CMake keeps using them (a `-D`
    given once stays) unless the preset or a new `-D` says otherwise, or the build starts from a fresh cache."""
    try:
        text = (binary_dir / "CMakeCache.txt").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    kept: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line.startswith(("#", "//")) or "=" not in line:
            continue
        declared, _, value = line.partition("=")
        name, _, kind = declared.partition(":")
        if kind not in _OWN_TYPES and not name.startswith("CMAKE_"):
            kept[name] = value
    return kept


def _key(destination: Path, presets: Sequence[Preset]) -> str | None:
    try:
        manifest = (destination / MANIFEST_NAME).read_bytes()
        checker = Path(__file__).with_name("cmake_reach.py").read_bytes()  # not imported: it is the slow part
        superbuild = (CMAKE_DIR / "CMakeLists.txt").read_bytes()  # what it sets before adding the tree
    except OSError:
        return None
    options = json.dumps([[p.name, sorted(p.cache_variables.items())] for p in presets], sort_keys=True)
    digest = hashlib.sha256()
    for part in (manifest, checker, superbuild, options.encode()):
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def already_checked(build_dir: Path, destination: Path, presets: Sequence[Preset]) -> bool:
    key = _key(destination, presets)
    try:
        recorded = json.loads((build_dir / RECORD_NAME).read_text(encoding="utf-8")).get("key")
    except (OSError, ValueError, AttributeError):
        return False
    return key is not None and recorded == key


def remember_checked(build_dir: Path, destination: Path, presets: Sequence[Preset]) -> None:
    key = _key(destination, presets)
    if key is not None:
        build_dir.mkdir(parents=True, exist_ok=True)
        write_atomically(build_dir / RECORD_NAME, json.dumps({"key": key}).encode())
