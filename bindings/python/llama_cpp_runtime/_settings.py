"""The binding's environment variables, read in one place and once per load() into a frozen Settings.

| variable | what it does |
|---|---|
| LLAMA_CPP_RUNTIME_LIBRARY_DIR | a directory with lib/ and modules/ (a build stage) instead of the package's own |
| LLAMA_CPP_RUNTIME_PLUGIN_DIRS | extra backend module directories, os.pathsep-separated |
| LLAMA_CPP_RUNTIME_BACKENDS | only these backends are loaded (comma-separated: cpu, cuda, vulkan, hip, metal, rpc) |
| LLAMA_CPP_RUNTIME_CPU_VARIANT | load this CPU variant (e.g. haswell) instead of the best-scoring one |
| LLAMA_CPP_RUNTIME_CPU_EXCLUDE | never load these CPU variants (comma-separated) |
| LLAMA_CPP_RUNTIME_BACKEND_ORDER | which backend is preferred when two drive one GPU (default cuda,hip,metal,vulkan) |
| LLAMA_CPP_RUNTIME_CACHE_DIR | where variant scores and library links are kept (an absolute path); "off" keeps none |
| LLAMA_CPP_RUNTIME_REQUIRE | load() raises GpuUnavailable unless these serve a device (cuda, hip, vulkan, metal, gpu) |
| LLAMA_CPP_RUNTIME_QUIET_GPU | 1: no UnusedGpuWarning when a GPU here is served by no plugin (doctor still says it) |
| LLAMA_CPP_RUNTIME_SYSFS_ROOT | for tests: a directory standing for /sys (a fake machine; ROCm: <root>/opt/rocm) |
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ._errors import SettingError
from ._report import backend_of

LIBRARY_DIR = "LLAMA_CPP_RUNTIME_LIBRARY_DIR"
PLUGIN_DIRS = "LLAMA_CPP_RUNTIME_PLUGIN_DIRS"
BACKENDS = "LLAMA_CPP_RUNTIME_BACKENDS"
CPU_VARIANT = "LLAMA_CPP_RUNTIME_CPU_VARIANT"
CPU_EXCLUDE = "LLAMA_CPP_RUNTIME_CPU_EXCLUDE"
BACKEND_ORDER = "LLAMA_CPP_RUNTIME_BACKEND_ORDER"
CACHE_DIR = "LLAMA_CPP_RUNTIME_CACHE_DIR"
REQUIRE = "LLAMA_CPP_RUNTIME_REQUIRE"
QUIET_GPU = "LLAMA_CPP_RUNTIME_QUIET_GPU"
SYSFS_ROOT = "LLAMA_CPP_RUNTIME_SYSFS_ROOT"
VARIABLES = (
    LIBRARY_DIR,
    PLUGIN_DIRS,
    BACKENDS,
    CPU_VARIANT,
    CPU_EXCLUDE,
    BACKEND_ORDER,
    CACHE_DIR,
    REQUIRE,
    QUIET_GPU,
    SYSFS_ROOT,
)

DEFAULT_ORDER = ("cuda", "hip", "metal", "vulkan")
REQUIREMENTS = ("cuda", "hip", "vulkan", "metal", "gpu")  # "gpu": any GPU device, whichever backend drives it
_TRUE, _FALSE = frozenset({"1", "true", "yes", "on"}), frozenset({"", "0", "false", "no", "off"})


@dataclass(frozen=True)
class Settings:
    library_dir: Path | None
    plugin_dirs: tuple[Path, ...]
    backends: frozenset[str] | None  # None: every backend
    cpu_variant: str | None
    cpu_exclude: frozenset[str]
    backend_order: tuple[str, ...]
    cache_dir: Path | None  # None: nothing is remembered
    require: tuple[str, ...]  # backends that must serve a device, in REQUIREMENTS' spelling
    quiet_gpu: bool  # no UnusedGpuWarning
    sysfs_root: Path  # where the GPUs are looked for on Linux


def read_settings(env: Mapping[str, str]) -> Settings:
    """Every variable, parsed; a value the binding cannot use raises SettingError naming it."""
    return Settings(
        library_dir=Path(env[LIBRARY_DIR]) if env.get(LIBRARY_DIR) else None,
        plugin_dirs=tuple(Path(p) for p in env.get(PLUGIN_DIRS, "").split(os.pathsep) if p),
        backends=frozenset(_names(env.get(BACKENDS, ""))) or None,
        cpu_variant=env.get(CPU_VARIANT, "").strip().removeprefix("ggml-cpu-") or None,
        cpu_exclude=frozenset(name.removeprefix("ggml-cpu-") for name in _names(env.get(CPU_EXCLUDE, ""), lower=False)),
        backend_order=_backend_order(env),
        cache_dir=_cache_dir(env),
        require=required(env.get(REQUIRE, ""), REQUIRE),
        quiet_gpu=_flag(env, QUIET_GPU),
        sysfs_root=Path(env[SYSFS_ROOT]) if env.get(SYSFS_ROOT) else Path("/sys"),
    )


def required(text: str, source: str) -> tuple[str, ...]:
    """What must be served (cuda, hip, vulkan, metal, gpu; "rocm" is hip, as ggml registers it), from the variable
    or load(require=...); `source` names where the text came from in the SettingError for an unknown name."""
    names = [backend_of(name) or name for name in _names(text)]
    unknown = [name for name in names if name not in REQUIREMENTS]
    if unknown:
        raise SettingError(f"{source}={text}: unknown backend {unknown[0]!r} (known: {', '.join(REQUIREMENTS)})")
    return tuple(dict.fromkeys(names))


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value not in _TRUE | _FALSE:
        raise SettingError(f"{name}={env[name]}: expected 1 or 0")
    return value in _TRUE


def _names(text: str, *, lower: bool = True) -> list[str]:
    return [name.strip().lower() if lower else name.strip() for name in text.split(",") if name.strip()]


def _backend_order(env: Mapping[str, str]) -> tuple[str, ...]:
    """The preference among GPU backends: the variable's first (comma-separated), then the default order
    for the backends it leaves out."""
    given = _names(env.get(BACKEND_ORDER, ""))
    unknown = [name for name in given if name not in DEFAULT_ORDER]
    if unknown:
        raise SettingError(
            f"{BACKEND_ORDER}={env[BACKEND_ORDER]}: unknown backend {unknown[0]!r} (known: {', '.join(DEFAULT_ORDER)})"
        )
    return tuple(dict.fromkeys([*given, *DEFAULT_ORDER]))


def _cache_dir(env: Mapping[str, str]) -> Path | None:
    configured = env.get(CACHE_DIR)
    if configured is not None:
        if configured.strip().lower() in {"", "off"}:
            return None
        if not Path(configured).is_absolute():  # relative: every process would write into its own working folder
            raise SettingError(f'{CACHE_DIR}={configured}: not an absolute path (or "off" to keep nothing)')
        return Path(configured)
    if sys.platform == "win32":
        base = env.get("LOCALAPPDATA")
        return Path(base) / "llama-cpp-runtime" / "Cache" if base and Path(base).is_absolute() else None
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "llama-cpp-runtime"
    base = env.get("XDG_CACHE_HOME")  # a relative one is invalid, the XDG specification says, and ignored
    return (Path(base) if base and Path(base).is_absolute() else Path.home() / ".cache") / "llama-cpp-runtime"
