"""The record each wheel carries of what it is: `<name>-<version>.dist-info/release.json`.

What the wheel covers (per preset: backend, CPU variants, CUDA architectures, ROCm targets, driver floor,
ggml options), the pin (upstream commit), the patch series (each patch's name and sha256) and the
llama-cpp-python release it serves. It is made from the stage.json of each preset the wheel holds, so it
says what the build staged, not what the presets asked for.

Why in .dist-info and not in the package: every wheel has a .dist-info, including the family wheels that
hold no package, so one reader finds it in any of them without knowing the import name; installers keep
it (`importlib.metadata.distribution(name).read_text("release.json")`), and the repair tools (auditwheel,
delocate, delvewheel) carry .dist-info files over. A file cannot hold its own sha256: the hashes of the
published files are in dist/release-manifest.json (buildsys/packaging/release_manifest.py).
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..builder.stage import module_file_name
from ..errors import OutOfDate, UsageError
from ..vendoring.patchqueue import read_series, series_hash

RECORD_NAME = "release.json"
FORMAT = 1
CPU_MODULE_PREFIX = "ggml-cpu-"


@dataclass(frozen=True)
class PatchEntry:
    name: str
    sha256: str


def patch_entries(patches: Path, expected_series_sha256: str) -> list[PatchEntry]:
    """Each patch of `patches` with its sha256, refused unless the series is the one the build used."""
    series = read_series(patches)
    found = series_hash(series)
    if found != expected_series_sha256:
        raise OutOfDate(
            f"{patches.name}/ (series sha256 {found[:12]}) is not the series the stages were built from "
            f"({expected_series_sha256[:12]})",
            hint="run `nox -s wheels` again: it re-syncs and rebuilds what is stale",
        )
    return [PatchEntry(patch.name, hashlib.sha256(patch.content).hexdigest()) for patch in series]


def preset_coverage(stage_record: Mapping[str, Any]) -> dict[str, Any]:
    """What one staged preset covers, from its stage.json document."""
    options: Mapping[str, str] = stage_record.get("cmake_options", {})
    modules = [
        module_file_name(Path(entry["path"]).name)
        for entry in stage_record.get("files", [])
        if entry.get("kind") == "module"
    ]
    return {
        "preset": stage_record["preset"],
        "backend": stage_record["backend"],
        "cpu_variants": sorted(m.removeprefix(CPU_MODULE_PREFIX) for m in modules if m.startswith(CPU_MODULE_PREFIX)),
        "cuda_architectures": _listed(options.get("CMAKE_CUDA_ARCHITECTURES", "")),
        "gpu_targets": _listed(options.get("GPU_TARGETS", "") or options.get("AMDGPU_TARGETS", "")),
        "driver_floor": dict(sorted(stage_record.get("driver_floor", {}).items())),
        "ggml_options": {k: v for k, v in sorted(options.items()) if k.startswith("GGML_")},
    }


def _listed(value: str) -> list[str]:
    return [item for item in value.split(";") if item]


def wheel_record(
    *,
    distribution: str,
    version: str,
    kind: str,  # core, plugin, program (llama-server) or family
    upstream: Mapping[str, str],
    patches: Sequence[PatchEntry],
    presets: Sequence[Mapping[str, Any]],
    members: Sequence[str] = (),
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "distribution": distribution,
        "version": version,
        "kind": kind,
        "upstream_commit": upstream.get("commit", ""),
        "patch_series": {
            "sha256": upstream.get("patch_series_sha256", ""),
            "patches": [{"name": p.name, "sha256": p.sha256} for p in patches],
        },
        "llama_cpp_python": upstream.get("llama_cpp_python") or None,
        "presets": list(presets),
        "members": list(members),
    }


def record_bytes(record: Mapping[str, Any]) -> bytes:
    return (json.dumps(record, indent=1, sort_keys=True) + "\n").encode()


def read_wheel_record(wheel: Path) -> dict[str, Any]:
    """The release.json of a wheel file; UsageError naming the wheel when it has none or it is unreadable."""
    record = find_wheel_record(wheel)
    if record is None:
        raise UsageError(
            f"{wheel.name} has no .dist-info/{RECORD_NAME}",
            hint="it was not written by this buildsys (or by an older one): rebuild it with `wheels`",
        )
    return record


def find_wheel_record(wheel: Path) -> dict[str, Any] | None:
    """The release.json of a wheel file, None when it has none; UsageError when the wheel or it is unreadable."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = [n for n in archive.namelist() if n.count("/") == 1 and n.endswith(f".dist-info/{RECORD_NAME}")]
            if len(names) != 1:
                return None
            document = json.loads(archive.read(names[0]))
    except (zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"{wheel.name}: not a readable wheel ({error})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise UsageError(f"{wheel.name}: {RECORD_NAME} is not format {FORMAT}")
    return document
