"""Remember that the synced CMake reaches nothing the subset lacks, so that a no-op build does not parse
every CMakeLists.txt again (a third of its time on real llama.cpp). The record keeps one key per preset, on
everything that preset's answer depends on: the synced tree's manifest, the preset's cache variables with the
`-D` definitions and what an earlier configure left in its CMake cache, the superbuild that adds the tree, and
this checker's code. A configure that succeeded records its preset again with the cache it wrote: CMake itself
found what it needed there.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..fileops import write_atomically
from ..vendoring.manifest import MANIFEST_NAME
from .presets import CMAKE_DIR, Preset

RECORD_NAME = "reach-checked.json"
# Entries CMake keeps for itself (INTERNAL, STATIC) or fills in from the platform (CMAKE_*): not choices.
_OWN_TYPES = frozenset({"INTERNAL", "STATIC"})


@dataclass(frozen=True)
class CMakeCache:
    """A binary folder's CMakeCache.txt: each entry's type and value."""

    entries: dict[str, tuple[str, str]]

    @property
    def kept(self) -> dict[str, str]:
        """The choices an earlier configure left: CMake keeps using them (a `-D` given once stays) unless the
        preset or a new `-D` says otherwise, or the build starts from a fresh cache."""
        return {
            name: value
            for name, (kind, value) in self.entries.items()
            if kind not in _OWN_TYPES and not name.startswith("CMAKE_")
        }

    def made_elsewhere(self, binary_dir: Path) -> str | None:
        """The folder the cache was made in, when it is not `binary_dir` (a copied or moved project)."""
        made_in = self.entries.get("CMAKE_CACHEFILE_DIR", ("", ""))[1]
        if not made_in:
            return None
        return None if Path(made_in).resolve() == binary_dir.resolve() else made_in


def read_cmake_cache(binary_dir: Path) -> CMakeCache | None:
    """`binary_dir`'s CMake cache, None when there is none."""
    try:
        text = (binary_dir / "CMakeCache.txt").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    entries: dict[str, tuple[str, str]] = {}
    for line in text.splitlines():
        if not line or line.startswith(("#", "//")) or "=" not in line:
            continue
        declared, _, value = line.partition("=")
        name, _, kind = declared.partition(":")
        entries[name] = (kind, value)
    return CMakeCache(entries)


def kept_cache_entries(binary_dir: Path) -> dict[str, str]:
    """What a configure of `binary_dir` keeps from its cache: none when the cache was made in another folder
    (the driver configures a moved project from an empty cache)."""
    cache = read_cmake_cache(binary_dir)
    return {} if cache is None or cache.made_elsewhere(binary_dir) else cache.kept


def _common(destination: Path) -> bytes | None:
    """What every preset's key depends on."""
    try:
        manifest = (destination / MANIFEST_NAME).read_bytes()
        checker = Path(__file__).with_name("cmake_reach.py").read_bytes()  # not imported: it is the slow part
        superbuild = (CMAKE_DIR / "CMakeLists.txt").read_bytes()  # what it sets before adding the tree
    except OSError:
        return None
    digest = hashlib.sha256()
    for part in (manifest, checker, superbuild):
        digest.update(hashlib.sha256(part).digest())
    return digest.digest()


def _key(common: bytes, preset: Preset) -> str:
    options = json.dumps([preset.name, sorted(preset.cache_variables.items())], sort_keys=True)
    return hashlib.sha256(common + hashlib.sha256(options.encode()).digest()).hexdigest()


def _recorded(build_dir: Path) -> dict[str, str]:
    try:
        keys = json.loads((build_dir / RECORD_NAME).read_text(encoding="utf-8")).get("keys")
    except (OSError, ValueError, AttributeError):
        return {}
    return {str(k): str(v) for k, v in keys.items()} if isinstance(keys, dict) else {}


def unchecked(build_dir: Path, destination: Path, presets: Sequence[Preset]) -> list[Preset]:
    """The presets whose check is not remembered for what it depends on now."""
    common = _common(destination)
    if common is None:
        return list(presets)
    recorded = _recorded(build_dir)
    return [p for p in presets if recorded.get(p.name) != _key(common, p)]


def already_checked(build_dir: Path, destination: Path, presets: Sequence[Preset]) -> bool:
    return not unchecked(build_dir, destination, presets)


def remember_checked(build_dir: Path, destination: Path, presets: Sequence[Preset]) -> None:
    """Record the presets as checked, keeping the other presets' keys."""
    common = _common(destination)
    if common is None or not presets:
        return
    recorded = _recorded(build_dir)
    recorded.update((p.name, _key(common, p)) for p in presets)
    build_dir.mkdir(parents=True, exist_ok=True)
    write_atomically(build_dir / RECORD_NAME, json.dumps({"keys": dict(sorted(recorded.items()))}).encode())
