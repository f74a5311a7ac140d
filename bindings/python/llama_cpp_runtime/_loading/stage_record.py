"""What a build recorded beside lib/ and modules/: `stage.json` (the core's, and each plugin's, which its
wheel carries beside modules/). The upstream identity says whether a plugin belongs with the core libraries
loaded; a CUDA module's architectures and CUDA major say which GPUs and drivers it can serve, and its driver
floor the oldest driver it runs on."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._platform import is_module_name, module_stem

STAGE_RECORD = "stage.json"
IDENTITY_KEYS = ("commit", "patch_series_sha256")


@dataclass(frozen=True)
class StageRecord:
    upstream: dict[str, str] = field(default_factory=dict)  # commit, patch_series_sha256, llama_cpp_python
    architectures: tuple[str, ...] = ()  # CMAKE_CUDA_ARCHITECTURES, e.g. ("75-real", "100-virtual")
    cuda_major: int | None = None  # the CUDA toolkit it was built with (its runtime needs a driver this new)
    found: bool = False  # whether there was a stage.json at all
    files: tuple[str, ...] | None = None  # every file the build staged ("modules/libggml-cpu-x64.so"); None: no list
    driver_floor: dict[str, str] = field(default_factory=dict)  # the oldest driver it runs on: nvidia-linux, rocm

    def module_files(self) -> dict[str, str]:
        """The backend modules the build staged: module name -> file name (ggml-cpu-x64 -> libggml-cpu-x64.so)."""
        listed = [Path(f) for f in self.files or () if f.startswith("modules/")]
        return {module_stem(path): path.name for path in listed if is_module_name(path.name)}


def read_json_object(path: Path) -> dict[str, Any] | None:
    """A JSON object the build staged (stage.json, llama-abi.json); None when absent or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_stage_record(root: Path) -> StageRecord:
    """root/stage.json: a stage, the package, or a plugin package (root = its modules/ folder's parent)."""
    found = read_json_object(root / STAGE_RECORD)
    document = found or {}
    upstream = document.get("upstream")
    options = document.get("cmake_options")
    requires = document.get("requires")
    floor = document.get("driver_floor")
    architectures = options.get("CMAKE_CUDA_ARCHITECTURES", "") if isinstance(options, dict) else ""
    toolchains = [str(r) for r in requires] if isinstance(requires, list) else []
    majors = [int(m[1]) for r in toolchains if (m := re.fullmatch(r"nvcc-(\d+)", r))]
    return StageRecord(
        upstream={str(k): str(v) for k, v in upstream.items()} if isinstance(upstream, dict) else {},
        architectures=tuple(a for a in str(architectures).split(";") if a),
        cuda_major=majors[0] if majors else None,
        found=found is not None,
        files=_file_paths(document.get("files")),
        driver_floor={str(k): str(v) for k, v in floor.items()} if isinstance(floor, dict) else {},
    )


def _file_paths(files: object) -> tuple[str, ...] | None:
    if not isinstance(files, list):
        return None
    return tuple(str(f["path"]) for f in files if isinstance(f, dict) and "path" in f)


def identity_conflict(record: StageRecord, core: dict[str, str], versions: InstalledVersions | None = None) -> str:
    """Why a plugin built from another upstream commit or patch series than the core is refused ("" when
    it agrees, or when either side recorded nothing). With the installed versions of the plugin's and the
    core's distributions, it names both and the plugin release that matches the core."""
    plugin_identity = {k: record.upstream.get(k, "") for k in IDENTITY_KEYS}
    core_identity = {k: core.get(k, "") for k in IDENTITY_KEYS}
    if not all(plugin_identity.values()) or not all(core_identity.values()) or plugin_identity == core_identity:
        return ""
    if versions is None or not versions.plugin or not versions.core:
        return (
            f"built from upstream {_identity(plugin_identity)}, the core libraries from {_identity(core_identity)}: "
            "install the plugin of the core's version"
        )
    return (
        f"{versions.distribution} {versions.plugin} was built from upstream {_identity(plugin_identity)}, the core "
        f"libraries (llama-cpp-runtime {versions.core}) from {_identity(core_identity)}: "
        f'pip install "{versions.distribution}=={versions.core}" '
        f'(or go back: pip install "llama-cpp-runtime=={versions.plugin}")'
    )


@dataclass(frozen=True)
class InstalledVersions:
    distribution: str  # the plugin's: llama-cpp-runtime-vulkan
    plugin: str  # its installed version ("" when not installed as a distribution)
    core: str  # llama-cpp-runtime's installed version ("" when not known)


def _identity(identity: dict[str, str]) -> str:
    return f"{identity['commit'][:12]} + patch series {identity['patch_series_sha256'][:12]}"
