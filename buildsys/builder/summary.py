"""The end-of-matrix table a release engineer reads, and the same facts as JSON for CI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..ui import duration
from .driver import BuildReport, PresetResult
from .stage import module_name

# Shown for every preset: the options that tell presets apart. The rest are in stage.json.
_INTERESTING_PREFIXES = (
    "GGML_",
    "CMAKE_CUDA",
    "AMDGPU_",
    "GPU_",
    "CUDA_cublas",
    "LLAMA_CPP_RUNTIME_CORE",
    "LLAMA_CPP_RUNTIME_SERVER",
)
_QUIET_OPTIONS = frozenset({"GGML_BUILD_TESTS", "GGML_BUILD_EXAMPLES", "GGML_CCACHE"})


def size_text(size: int) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _time_text(result: PresetResult) -> str:
    if result.status in {"skipped", "planned"} or not result.seconds:
        return "-"
    return duration(result.seconds)


def _output_text(result: PresetResult) -> str:
    if result.status == "built":
        core = [f for f in result.files if f.kind == "core" and not f.symlink_to]
        modules = [f for f in result.files if f.kind == "module"]
        programs = [f for f in result.files if f.kind == "program" and not f.symlink_to]
        parts = []
        if core:
            parts.append(f"{len(core)} core ({size_text(sum(f.size for f in core))})")
        if programs:  # upstream's program and the libraries only it uses (the server preset)
            parts.append(f"{len(programs)} program files ({size_text(sum(f.size for f in programs))})")
        else:
            parts.append(f"{len(modules)} modules ({size_text(sum(f.size for f in modules))})")
        return ", ".join(parts + ([result.cache] if result.cache else []))
    if result.status == "planned":
        return "would build"
    if result.status == "configured":
        return "configured (not built: --configure-only)"
    return result.reason + (f" — {result.hint}" if result.hint else "")


def render(report: BuildReport) -> list[str]:
    rows = [("preset", "status", "time", "result")]
    rows += [(r.preset.name, r.status, _time_text(r), _output_text(r)) for r in report.results]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3])
        if index == 0:
            lines.append("-" * (sum(widths) + 6 + len("result")))
            continue
        result = report.results[index - 1]
        indent = " " * (widths[0] + 2)
        modules = [f for f in result.files if f.kind == "module"]
        if modules:
            lines.append(indent + "modules: " + ", ".join(f"{module_name(f)} {size_text(f.size)}" for f in modules))
        for module, reason in result.not_built.items():
            lines.append(indent + f"not built: {module}: {reason}")
        if report.platform and result.status != "skipped" and result.toolchain:
            lines.append(indent + f"toolchain ({report.platform}): " + "; ".join(result.toolchain))
        if result.status != "skipped" and result.options:
            shown = sorted(
                f"{k}={v}"
                for k, v in result.options.items()
                if k.startswith(_INTERESTING_PREFIXES) and k not in _QUIET_OPTIONS
            )
            lines.append(indent + "options: " + " ".join(shown))
    return lines


def to_json(report: BuildReport) -> dict[str, Any]:
    return {
        "format": 1,
        "requested": list(report.requested),
        "platform": report.platform,
        "presets": [
            {
                "preset": r.preset.name,
                "backend": r.preset.backend,
                "wheel": r.preset.wheel,
                "status": r.status,
                "seconds": round(r.seconds, 3),
                "reason": r.reason,
                "hint": r.hint,
                "toolchain": r.toolchain,
                "cache": r.cache,
                "cmake_options": dict(sorted(r.options.items())),
                "files": [{"path": f.path, "kind": f.kind, "size": f.size} for f in r.files],
                "not_built": dict(r.not_built),
            }
            for r in report.results
        ],
    }


def write_json(report: BuildReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_json(report), indent=1) + "\n", encoding="utf-8")
