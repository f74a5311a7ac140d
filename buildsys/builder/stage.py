"""The staged tree of one preset (`build/stage/<preset>/`): what is in it, and the record written beside it.

Layout (fixed by the superbuild's install rules): `lib/` core shared libraries, `modules/` backend
modules, `include/` headers, `bin/` an upstream program and the libraries only it uses (the server preset).
`stage.json` says what produced it, so later stages (wheels) and people can tell a stale stage from a current one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

STAGE_RECORD = "stage.json"
KINDS = {"lib": "core", "modules": "module", "include": "header", "bin": "program"}


@dataclass(frozen=True)
class StagedFile:
    path: str  # relative to the stage directory, with forward slashes
    kind: str  # core | module | header | other
    size: int
    sha256: str
    symlink_to: str | None = None

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


def scan_stage(stage: Path) -> list[StagedFile]:
    files = []
    for path in sorted(stage.rglob("*")):
        relative = path.relative_to(stage).as_posix()
        if relative == STAGE_RECORD or path.is_dir():
            continue
        kind = KINDS.get(relative.split("/", 1)[0], "other")
        if path.is_symlink():
            files.append(StagedFile(relative, kind, 0, "", symlink_to=str(path.readlink())))
            continue
        data = path.read_bytes()
        files.append(StagedFile(relative, kind, len(data), hashlib.sha256(data).hexdigest()))
    return files


def module_name(file: StagedFile) -> str:
    return module_file_name(file.name)


def module_file_name(name: str) -> str:
    """libggml-cpu-haswell.so -> ggml-cpu-haswell, libggml-cpu-armv8.2_1.so -> ggml-cpu-armv8.2_1 (the name the
    binding and the report use: only the suffix is cut, since ggml's ARM variant names hold a dot)."""
    for suffix in (".so", ".dll", ".dylib"):
        if name.endswith(suffix):
            return name.removesuffix(suffix).removeprefix("lib")
    return name.split(".", 1)[0].removeprefix("lib")


def write_stage_record(
    stage: Path,
    *,
    preset: str,
    backend: str,
    provenance: Mapping[str, Any],
    options: Mapping[str, str],
    requires: Sequence[str],
    files: list[StagedFile],
    driver_floor: Mapping[str, str] | None = None,
    platform: str = "",
    not_built: Mapping[str, str] | None = None,
) -> None:
    document: dict[str, Any] = {
        "format": 1,
        "preset": preset,
        "backend": backend,
        "upstream": dict(provenance),
        "cmake_options": dict(sorted(options.items())),
        "requires": list(requires),  # the toolchains it was built with: nvcc-13 tells the binding its CUDA major
        # the oldest driver it runs on (the preset's): the binding compares it with the installed one before dlopen
        "driver_floor": dict(sorted((driver_floor or {}).items())),
        "files": [
            {"path": f.path, "kind": f.kind, "size": f.size, "sha256": f.sha256}
            | ({"symlink_to": f.symlink_to} if f.symlink_to else {})
            for f in files
        ],
    }
    if platform:  # a cross build: the platform it is for (a native stage is the host's)
        document["platform"] = platform
    if not_built:  # modules the compiler could not build, in its words: listed, never silently missing
        document["not_built"] = dict(sorted(not_built.items()))
    (stage / STAGE_RECORD).write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
