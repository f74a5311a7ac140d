"""The wheels of releases as an index would hold them, for the index rehearsal: the core and the Vulkan
plugin built for real from the miniature upstream, and the CUDA and ROCm wheels — which need nvcc and cuBLAS
for every architecture family, or ROCm, more than a test can build here — written by buildsys's own packaging
code around a stand-in module; NVIDIA's runtime wheels are the real ones from PyPI."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from buildsys.builder.driver import BuildReport, BuildRequest, PresetResult
from buildsys.builder.presets import Preset, host_system, load_matrix
from buildsys.builder.stage import StagedFile
from buildsys.config import load_config
from buildsys.packaging.wheels import BuiltWheel, WheelsRequest, package
from helpers.real_llama_cpp import cache_root, locked
from helpers.support import Project

STANDIN_BACKENDS = ("cuda", "hip")  # GPU plugins whose toolkits this machine lacks (nvcc 12, cuBLAS builds, ROCm)


def standin_presets() -> list[Preset]:
    return [p for p in load_matrix().presets if p.backend in STANDIN_BACKENDS and p.applies_to(host_system())]


def _staged(stage: Path, relative: str) -> StagedFile:
    data = (stage / relative).read_bytes()
    kind = "module" if relative.startswith("modules/") else "other"
    return StagedFile(relative, kind, len(data), hashlib.sha256(data).hexdigest())


def _standin_stage(project: Project, preset: Preset, module: bytes, upstream: dict[str, str]) -> PresetResult:
    stage = project.root / "build" / "standin-stage" / preset.name
    (stage / "modules").mkdir(parents=True, exist_ok=True)
    module_path = f"modules/libggml-{preset.backend}.so"
    (stage / module_path).write_bytes(module)
    targets = ("CMAKE_CUDA_ARCHITECTURES", "GPU_TARGETS", "AMDGPU_TARGETS")
    options = {key: preset.cache_variables[key] for key in targets if key in preset.cache_variables}
    files = [_staged(stage, module_path)]
    record = {
        "format": 1,
        "preset": preset.name,
        "backend": preset.backend,
        "upstream": upstream,
        "cmake_options": options,
        "requires": list(preset.requires),
        "driver_floor": dict(preset.driver_floor),
        "files": [{"path": f.path, "kind": f.kind, "size": f.size, "sha256": f.sha256} for f in files],
    }
    (stage / "stage.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
    return PresetResult(preset=preset, status="built", options=options, files=files, stage=stage)


def standin_wheels(project: Project, modules: Mapping[str, Path], version: str) -> list[BuiltWheel]:
    """The CUDA member wheels, their family wheels and the ROCm wheel of `version` in the project's dist/, each
    around the stand-in module of its backend (`modules`: backend -> library), through
    `buildsys.packaging.wheels.package` (the metadata, auditwheel repair and family wheels of a real run)."""
    core_record = json.loads((project.root / "build" / "stage" / "cpu" / "stage.json").read_text(encoding="utf-8"))
    upstream = {str(k): str(v) for k, v in core_record["upstream"].items()}
    presets = standin_presets()
    results = tuple(_standin_stage(project, p, modules[p.backend].read_bytes(), upstream) for p in presets)
    names = tuple(p.name for p in presets)
    report = BuildReport(results=results, requested=names, provenance=upstream)
    request = WheelsRequest(build=BuildRequest(presets=names), version=version)
    config = load_config(project.root / "vendoring.toml", env=project.env)
    return package(config, report, request)


def nvidia_wheels() -> list[Path]:
    """NVIDIA's runtime wheels that the CUDA presets require (CUDA runtime, cuBLAS, and what they require),
    for this platform, downloaded from PyPI once into the user's cache (1.2 GB: 17 s here)."""
    folder = cache_root() / "nvidia-wheels"
    requirements = sorted({d for p in standin_presets() for d in p.dependencies})
    stamp = folder / "requirements.txt"
    with locked(cache_root() / ".nvidia-wheels.lock"):
        if not stamp.is_file() or stamp.read_text(encoding="utf-8").splitlines() != requirements:
            shutil.rmtree(folder, ignore_errors=True)
            download = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
            subprocess.run(
                [*download, "--only-binary=:all:", "--dest", str(folder), *requirements],
                check=True,
                timeout=1800,
                capture_output=True,
            )
            stamp.write_text("\n".join(requirements) + "\n", encoding="utf-8")
        return sorted(folder.glob("*.whl"))
