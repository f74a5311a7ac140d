"""The GitHub Actions wheel matrix, derived from the presets: CMakePresets.json stays the one declaration.

Declared here, and only here: the platforms CI builds on (runner and cibuildwheel identifiers), the
presets deliberately left out of a platform (each with its reason), and the toolchain releases CI installs.
Which distributions a platform builds, and which presets go into each, come from the presets' host
condition and `vendor.llama-cpp-runtime.wheel`, exactly as the wheel backend (wheels/wheel_backend.py)
chooses them on the runner itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..builder.presets import Matrix, Preset, load_matrix
from ..config import Config
from ..errors import ConfigError, UsageError
from ..vendoring.patchqueue import read_series, series_hash


@dataclass(frozen=True, kw_only=True)
class Platform:
    name: str
    runner: str
    system: str  # CMake's ${hostSystemName} on the runner: Linux, Darwin or Windows
    cibw_archs: str
    cibw_build: str  # one cp311 identifier: the wheels are py3-none, one per platform


@dataclass(frozen=True, kw_only=True)
class Exclusion:
    platform: str
    preset: str
    reason: str


PLATFORMS = (
    Platform(
        name="linux-x86_64",
        runner="ubuntu-24.04",
        system="Linux",
        cibw_archs="x86_64",
        cibw_build="cp311-manylinux_x86_64",
    ),
    Platform(
        name="linux-aarch64",
        runner="ubuntu-24.04-arm",
        system="Linux",
        cibw_archs="aarch64",
        cibw_build="cp311-manylinux_aarch64",
    ),
    Platform(
        name="macos-arm64", runner="macos-15", system="Darwin", cibw_archs="arm64", cibw_build="cp311-macosx_arm64"
    ),
    Platform(
        name="windows-x86_64", runner="windows-2022", system="Windows", cibw_archs="AMD64", cibw_build="cp311-win_amd64"
    ),
)

EXCLUSIONS = (
    Exclusion(platform="linux-aarch64", preset="hip", reason="ROCm has no aarch64 release"),
    Exclusion(platform="windows-x86_64", preset="hip", reason="the HIP SDK for Windows is not in this matrix yet"),
)

# The toolchain releases CI installs: CUDA by major version (the presets name nvcc-<major>), ROCm for
# the manylinux_2_28 (RHEL 8) container, the LunarG Vulkan SDK on Windows and, in the manylinux container
# (RHEL 8 has no glslc and older headers), the same SDK generation's Vulkan-Headers and shaderc's glslc
# built from source: `tag@commit`, the commit checked after cloning.
CUDA_RELEASES = {"12": "12.9.1", "13": "13.0.2"}
ROCM_RELEASE = "6.4.3"
VULKAN_SDK_RELEASE = "1.4.313.0"
VULKAN_HEADERS_SOURCE = "v1.4.313@409c16be502e39fe70dd6fe2d9ad4842ef2c9a53"
SHADERC_SOURCE = "v2025.2@3362e24c42ab5bf7ad32c0fec64b0a0ddeb2fda1"

# What each requirement of a preset asks CI to install; None: nothing beyond the runner's own tools
# (compilers, Xcode), or comes with another requirement's toolchain (cuBLAS and the driver stub with CUDA).
_SETUP: dict[str, str | None] = {
    "c-compiler": None,
    "cublas": None,
    "cuda-driver": None,
    "xcode-metal": None,
    "nvcc-12": "cuda",
    "nvcc-13": "cuda",
    "glslc": "vulkan",
    "vulkan-headers": "vulkan",
    "spirv-headers": "vulkan",
    "hip": "rocm",
}

NO_GPU_REASON = (
    "GPU plugin wheel: it needs the core wheel that another entry builds, so the job `test-plugins` installs "
    "both into a fresh environment and runs wheels/check_plugin.py (with lavapipe, a real Vulkan device, "
    "for the Vulkan plugin on Linux)"
)


@dataclass(frozen=True, kw_only=True)
class Toolchain:
    cuda: str = ""  # CUDA major version ("12", "13") or "" for none
    vulkan: bool = False
    rocm: bool = False


@dataclass(frozen=True, kw_only=True)
class Entry:
    platform: Platform
    distribution: str
    presets: tuple[str, ...]
    toolchain: Toolchain
    ships_core: bool
    core_artifact: str = ""  # the artifact holding the core wheel this plugin needs (itself, for the core)

    @property
    def artifact(self) -> str:
        return artifact_name(self.platform, self.distribution)

    def as_json(self) -> dict[str, object]:
        cuda = self.toolchain.cuda
        return {
            "name": f"{self.platform.name} {self.distribution}",
            "platform": self.platform.name,
            "runner": self.platform.runner,
            "system": self.platform.system,
            "cibw_archs": self.platform.cibw_archs,
            "cibw_build": self.platform.cibw_build,
            "distribution": self.distribution,
            "presets": ",".join(self.presets),
            "cuda": cuda,
            "cuda_version": CUDA_RELEASES[cuda] if cuda else "",
            "vulkan": self.toolchain.vulkan,
            "vulkan_sdk_version": VULKAN_SDK_RELEASE if self.toolchain.vulkan else "",
            "vulkan_headers": VULKAN_HEADERS_SOURCE if self.toolchain.vulkan else "",
            "shaderc": SHADERC_SOURCE if self.toolchain.vulkan else "",
            "rocm": self.toolchain.rocm,
            "rocm_version": ROCM_RELEASE if self.toolchain.rocm else "",
            "test_skip": "" if self.ships_core else "*",
            "test_skip_reason": "" if self.ships_core else NO_GPU_REASON,
            "artifact": self.artifact,
            "core_artifact": self.core_artifact or self.artifact,
            # lavapipe (Mesa's Vulkan on the CPU) is a real device on GitHub's Linux runners
            "lavapipe": self.toolchain.vulkan and self.platform.system == "Linux",
        }


def artifact_name(platform: Platform, distribution: str) -> str:
    return f"wheels-{platform.name}-{distribution}"


def toolchain_for(presets: Sequence[Preset]) -> Toolchain:
    """What CI installs so that every requirement of these presets (one distribution) is met."""
    problems: list[str] = []
    majors: set[str] = set()
    kinds: set[str] = set()
    for preset in presets:
        for requirement in preset.requires:
            if requirement not in _SETUP:
                problems.append(f"{preset.name}: CI does not know how to provide the requirement {requirement!r}")
                continue
            kind = _SETUP[requirement]
            if kind == "cuda":
                majors.add(requirement.removeprefix("nvcc-"))
            if kind:
                kinds.add(kind)
    problems += [
        f"no CUDA {major} release declared in buildsys.ci_matrix.CUDA_RELEASES"
        for major in sorted(majors - set(CUDA_RELEASES))
    ]
    if len(majors) > 1:
        names = ", ".join(p.name for p in presets)
        problems.append(f"{names}: one wheel cannot need CUDA {' and '.join(sorted(majors))}")
    if problems:
        raise ConfigError(problems, source="buildsys/ci/matrix.py")
    return Toolchain(cuda=next(iter(majors), ""), vulkan="vulkan" in kinds, rocm="rocm" in kinds)


def entries(matrix: Matrix | None = None) -> list[Entry]:
    """One entry per (platform, distribution) that has at least one preset to build there."""
    matrix = matrix or load_matrix()
    _check_declarations(matrix)
    result = []
    for platform in PLATFORMS:
        chosen = [preset for preset in matrix.presets if _builds(platform, preset)]
        core = next((p.wheel for p in chosen if p.installs_core), "")
        for distribution in _unique(p.wheel for p in chosen):
            presets = [p for p in chosen if p.wheel == distribution]
            result.append(
                Entry(
                    platform=platform,
                    distribution=distribution,
                    presets=tuple(p.name for p in presets),
                    toolchain=toolchain_for(presets),
                    ships_core=any(p.installs_core for p in presets),
                    core_artifact=artifact_name(platform, core) if core else "",
                )
            )
    return result


def _check_declarations(matrix: Matrix) -> None:
    """Every exclusion names a real platform and preset it would otherwise build, every preset is a wheel's,
    and every preset is built on some platform: the matrix cannot silently lose a backend."""
    platforms = {p.name: p for p in PLATFORMS}
    problems = []
    for exclusion in EXCLUSIONS:
        platform = platforms.get(exclusion.platform)
        if platform is None:
            problems.append(f"exclusion of {exclusion.preset}: no platform {exclusion.platform!r}")
        elif exclusion.preset not in matrix.names():
            problems.append(f"exclusion on {exclusion.platform}: no preset {exclusion.preset!r}")
        elif not matrix.get(exclusion.preset).applies_to(platform.system):
            problems.append(f"exclusion of {exclusion.preset} on {exclusion.platform}: its condition already does")
    for preset in matrix.presets:
        if not preset.wheel:
            problems.append(f"{preset.name}: names no wheel (vendor.llama-cpp-runtime.wheel)")
        if not any(_builds(platform, preset) for platform in PLATFORMS):
            problems.append(
                f"{preset.name}: built on no platform of buildsys.ci_matrix.PLATFORMS (add one, or fix its condition)"
            )
    if problems:
        raise ConfigError(problems, source="buildsys/ci/matrix.py")


def _builds(platform: Platform, preset: Preset) -> bool:
    excluded = any(e.platform == platform.name and e.preset == preset.name for e in EXCLUSIONS)
    return preset.applies_to(platform.system) and not excluded


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


def github_matrix(matrix: Matrix | None = None) -> dict[str, list[dict[str, object]]]:
    """The value of a job's `strategy.matrix`: `{"include": [entry, ...]}`."""
    return _include(entries(matrix))


def plugin_tests(matrix: Matrix | None = None) -> dict[str, list[dict[str, object]]]:
    """The entries whose wheel is a GPU plugin, for the job that installs each with its core wheel."""
    return _include([entry for entry in entries(matrix) if not entry.ships_core])


def _include(chosen: Iterable[Entry]) -> dict[str, list[dict[str, object]]]:
    return {"include": [entry.as_json() for entry in chosen]}


def outputs(config: Config, planned: list[Entry]) -> dict[str, str]:
    """The plan job's outputs: the matrices, and the parts of the ccache key (the ccache namespace's inputs)."""
    return {
        "matrix": _one_line(_include(planned)),
        "plugin-tests": _one_line(_include(e for e in planned if not e.ships_core)),
        "upstream-commit": config.upstream.commit,
        "patch-series": series_hash(read_series(config.patches)),
    }


def _one_line(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def write_github_output(path: str, values: Mapping[str, str]) -> None:
    """Append `name=value` lines to the file GitHub names in $GITHUB_OUTPUT."""
    if not path:
        raise UsageError("--github-output: $GITHUB_OUTPUT is not set (it is, inside a GitHub Actions step)")
    try:
        with Path(path).open("a", encoding="utf-8") as file:
            file.writelines(f"{name}={value}\n" for name, value in values.items())
    except OSError as error:
        raise UsageError(f"--github-output: cannot append to {path}: {error.strerror}") from None


def run_matrix(config: Config, *, github_output: str | None) -> str:
    """The matrix as JSON (what `python -m buildsys matrix` prints); with a path, also the step outputs."""
    planned = entries()
    if github_output is not None:
        write_github_output(github_output, outputs(config, planned))
    return json.dumps(_include(planned), indent=1)
