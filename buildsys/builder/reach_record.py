"""Remember that the synced CMake reaches nothing the subset lacks, so that a no-op build does not parse
every CMakeLists.txt again (a third of its time on real llama.cpp). The record is keyed on everything
the answer depends on: the synced tree's manifest, the presets' cache variables and this checker's code.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from ..fileops import write_atomically
from ..vendoring.manifest import MANIFEST_NAME
from .presets import Preset

RECORD_NAME = "reach-checked.json"


def _key(destination: Path, presets: Sequence[Preset]) -> str | None:
    try:
        manifest = (destination / MANIFEST_NAME).read_bytes()
        checker = Path(__file__).with_name("cmake_reach.py").read_bytes()  # not imported: it is the slow part
    except OSError:
        return None
    options = json.dumps([[p.name, sorted(p.cache_variables.items())] for p in presets], sort_keys=True)
    digest = hashlib.sha256()
    for part in (manifest, checker, options.encode()):
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
