"""CMakePresets.json, the one declaration of the backend matrix, read into frozen dataclasses.

Only what the build driver needs is interpreted: inheritance of cache variables, the host condition,
build targets, and our vendor block (backend name, required toolchains, wheel). CMake itself reads
the same file when someone runs `cmake --preset <name>` by hand.
"""

from __future__ import annotations

import json
import platform
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..cmake_tool import is_on
from ..errors import ConfigError
from .toolchains import REQUIREMENTS

CMAKE_DIR = Path(__file__).resolve().parent.parent / "cmake"
PRESETS_FILE = CMAKE_DIR / "CMakePresets.json"
VENDOR_KEY = "llama-cpp-runtime"
# The drivers a plugin's floor may name: NVIDIA's per system (Linux and Windows versions differ), ROCm's release;
# (key, how the driver is called, the system it applies to), in the order a wheel's description lists them.
DRIVER_FLOORS = (
    ("nvidia-linux", "NVIDIA driver", "Linux"),
    ("nvidia-windows", "NVIDIA driver", "Windows"),
    ("rocm", "ROCm", ""),
)
DRIVER_FLOOR_KEYS = frozenset(key for key, _, _ in DRIVER_FLOORS)
_FLOOR_VERSION = re.compile(r"\d+(\.\d+)*")  # what the binding compares: a string of another shape disables it
# build/<preset> sits beside these, so no preset may take their names.
RESERVED_NAMES = frozenset({"upstream", "stage", "logs", "ccache"})


@dataclass(frozen=True, kw_only=True)
class Preset:
    name: str
    backend: str
    wheel: str
    family: str = ""  # the distribution that requires this wheel and its siblings ("" when the wheel stands alone)
    requires: tuple[str, ...]
    dependencies: tuple[str, ...]  # what its wheel requires at run time, besides the core wheel
    default: bool = True  # built when no preset is named; false: only when named (`--backend server`)
    driver_floor: Mapping[str, str] = field(default_factory=dict)  # the oldest driver it runs on: nvidia-linux, ...
    cache_variables: Mapping[str, str]
    build_targets: tuple[str, ...]
    condition: Mapping[str, Any] | None

    def applies_to(self, host_system: str) -> bool:
        return _evaluate(self.condition, host_system)

    @property
    def installs_core(self) -> bool:
        return is_on(self.cache_variables.get("LLAMA_CPP_RUNTIME_CORE", "ON"))

    @property
    def ships_program(self) -> bool:
        """Its wheel holds one of upstream's programs (llama-server), run on the core wheel's libraries."""
        return is_on(self.cache_variables.get("LLAMA_CPP_RUNTIME_SERVER", "OFF"))

    @property
    def builds_llama_cpp(self) -> bool:
        """The superbuild enters llama.cpp's top level (the core, upstream's programs), not ggml's alone."""
        return self.installs_core or self.ships_program


@dataclass(frozen=True, kw_only=True)
class Matrix:
    presets: tuple[Preset, ...]

    def names(self) -> list[str]:
        return [preset.name for preset in self.presets]

    def get(self, name: str) -> Preset:
        for preset in self.presets:
            if preset.name == name:
                return preset
        raise KeyError(name)

    def family_members(self) -> dict[str, tuple[str, ...]]:
        """Each family distribution and the plugin wheels it requires (e.g. llama-cpp-runtime-cuda13 ->
        the -sm75 and -sm90 wheels): one CUDA major split by architecture to fit PyPI's file size limit."""
        families: dict[str, dict[str, None]] = {}
        for preset in self.presets:
            if preset.family:
                families.setdefault(preset.family, {})[preset.wheel] = None
        return {family: tuple(members) for family, members in families.items()}

    def expand(self, name: str) -> list[str]:
        """A preset name, or a family's short name (cuda13) standing for every member's preset."""
        if name in self.names():
            return [name]
        return [p.name for p in self.presets if p.family.endswith(f"-{name}")]


def host_system() -> str:
    """CMake's ${hostSystemName}: Linux, Darwin or Windows."""
    return platform.system()


def load_matrix(path: Path = PRESETS_FILE) -> Matrix:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError([f"cannot read the presets: {error}"], source=str(path)) from None
    configure = {entry["name"]: entry for entry in document.get("configurePresets", [])}
    build = {entry["configurePreset"]: entry for entry in document.get("buildPresets", [])}
    problems: list[str] = []
    presets = []
    for name, entry in configure.items():
        if entry.get("hidden"):
            continue
        if name in RESERVED_NAMES:
            problems.append(f"configurePresets.{name}: the name is reserved for build/{name}/")
        vendor = _vendor(name, configure)
        if not vendor:
            problems.append(f"configurePresets.{name}: no vendor.{VENDOR_KEY} block (backend, requires, wheel)")
            continue
        unknown = sorted(set(vendor.get("requires", [])) - REQUIREMENTS)
        if unknown:
            problems.append(f"configurePresets.{name}.vendor.{VENDOR_KEY}.requires: unknown {', '.join(unknown)}")
        if name not in build:
            problems.append(f"buildPresets: no build preset for configure preset {name!r}")
        floor = vendor.get("driver_floor", {})
        if not isinstance(floor, dict) or set(floor) - DRIVER_FLOOR_KEYS:
            known = ", ".join(sorted(DRIVER_FLOOR_KEYS))
            problems.append(f"configurePresets.{name}.vendor.{VENDOR_KEY}.driver_floor: an object of {known}")
            floor = {}
        malformed = sorted(k for k, v in floor.items() if not (isinstance(v, str) and _FLOOR_VERSION.fullmatch(v)))
        if malformed:
            problems.append(
                f"configurePresets.{name}.vendor.{VENDOR_KEY}.driver_floor: {', '.join(malformed)} is no version "
                "(digits and dots, e.g. 525.60.13)"
            )
            floor = {}
        presets.append(
            Preset(
                name=name,
                backend=vendor.get("backend", name),
                wheel=vendor.get("wheel", ""),
                family=vendor.get("family", ""),
                requires=tuple(vendor.get("requires", [])),
                dependencies=tuple(vendor.get("dependencies", [])),
                default=vendor.get("default", True) is not False,
                driver_floor={str(k): str(v) for k, v in floor.items()},
                cache_variables=_cache_variables(name, configure),
                build_targets=tuple(build.get(name, {}).get("targets", [])),
                condition=_inherited_condition(name, configure),
            )
        )
    if problems:
        raise ConfigError(problems, source=str(path))
    return Matrix(presets=tuple(presets))


def _lineage(name: str, configure: Mapping[str, Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The preset, then what it inherits, nearest first (CMake's order: the preset's own fields win, then
    its first parent's, with that parent's own parents, then the next parent's)."""
    entry = configure[name]
    parents = entry.get("inherits", [])
    return [
        entry,
        *(e for parent in ([parents] if isinstance(parents, str) else parents) for e in _lineage(parent, configure)),
    ]


def _vendor(name: str, configure: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Our vendor block after inheritance, key by key (the nearest declaration wins): a family's hidden preset
    declares what its members share (CMake itself ignores vendor blocks)."""
    merged: dict[str, Any] = {}
    for entry in reversed(_lineage(name, configure)):
        block = entry.get("vendor", {}).get(VENDOR_KEY)
        if isinstance(block, dict):
            merged.update(block)
    return merged


def _cache_variables(name: str, configure: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """The preset's cache variables after inheritance (the nearest declaration wins, like CMake's)."""
    merged: dict[str, str] = {}
    for entry in reversed(_lineage(name, configure)):
        for key, value in entry.get("cacheVariables", {}).items():
            merged[key] = value["value"] if isinstance(value, dict) else str(value)
    return merged


def _inherited_condition(name: str, configure: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The nearest condition in the preset's lineage (CMake inherits every field but the names)."""
    conditions: list[Mapping[str, Any]] = [e["condition"] for e in _lineage(name, configure) if "condition" in e]
    return conditions[0] if conditions else None


def _evaluate(condition: Mapping[str, Any] | None, host: str) -> bool:
    """CMake's preset conditions, evaluated for this host (unknown kinds count as true, like a missing one)."""
    if condition is None:
        return True
    kind = condition.get("type", "")
    negated = kind in {"notEquals", "notInList", "not"}
    evaluator = _CONDITIONS.get(kind.removeprefix("not").lower() or "not")
    if evaluator is None:
        return True
    return evaluator(condition, host) != negated


_CONDITIONS: dict[str, Callable[[Mapping[str, Any], str], bool]] = {
    "equals": lambda c, h: _expand(c["lhs"], h) == _expand(c["rhs"], h),
    "inlist": lambda c, h: _expand(c["string"], h) in [_expand(item, h) for item in c["list"]],
    "allof": lambda c, h: all(_evaluate(item, h) for item in c["conditions"]),
    "anyof": lambda c, h: any(_evaluate(item, h) for item in c["conditions"]),
    "not": lambda c, h: _evaluate(c["condition"], h),
    "const": lambda c, h: bool(c["value"]),
}


def _expand(text: str, host: str) -> str:
    return text.replace("${hostSystemName}", host)
