"""A PEP 517 backend that builds one distribution of the matrix through `python -m buildsys wheels`.

The distribution comes from LLAMA_CPP_RUNTIME_DISTRIBUTION (default llama-cpp-runtime); its presets are
the ones whose `vendor.llama-cpp-runtime.wheel` names it and that apply to this platform. Repair
(auditwheel, delocate, delvewheel) is left to the caller, as cibuildwheel expects.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
DISTRIBUTION_VARIABLE = "LLAMA_CPP_RUNTIME_DISTRIBUTION"
PROJECT_VARIABLE = "LLAMA_CPP_RUNTIME_PROJECT"  # the project (vendoring.toml) to build; default this repository


sys.path.insert(0, str(REPOSITORY))  # buildsys, from this checkout

from buildsys.builder.presets import host_system, load_matrix  # noqa: E402
from buildsys.packaging.wheelfile import normalise  # noqa: E402
from buildsys.packaging.wheels import CORE_DISTRIBUTION  # noqa: E402


def _distribution() -> str:
    if _sdist_version():  # an sdist holds the core distribution only
        return CORE_DISTRIBUTION
    return os.environ.get(DISTRIBUTION_VARIABLE, CORE_DISTRIBUTION)


def _sdist_version() -> str | None:
    """The version in PKG-INFO when building from our sdist (`buildsys sdist` writes it); None in a checkout."""
    info = REPOSITORY / "PKG-INFO"
    if not info.is_file():
        return None
    for line in info.read_text(encoding="utf-8").splitlines():
        if not line:  # the headers end at the first empty line
            break
        if line.startswith("Version:"):
            return line.partition(":")[2].strip()
    return None


def _presets(distribution: str) -> list[str]:
    chosen = [p.name for p in load_matrix().presets if p.wheel == distribution and p.applies_to(host_system())]
    if not chosen:
        raise SystemExit(f"{DISTRIBUTION_VARIABLE}={distribution}: no preset builds it on {host_system()}")
    return chosen


def get_requires_for_build_wheel(config_settings: dict[str, str] | None = None) -> list[str]:
    return []


def build_wheel(
    wheel_directory: str, config_settings: dict[str, str] | None = None, metadata_directory: str | None = None
) -> str:
    distribution = _distribution()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "buildsys", "wheels", "--no-repair", "--no-sdist"]
    command += ["--backend", ",".join(_presets(distribution))]
    version = _sdist_version()
    if version:
        command += ["--wheel-version", version]
    project = Path(os.environ.get(PROJECT_VARIABLE, REPOSITORY))
    subprocess.run(command, cwd=project, env=env, check=True)  # noqa: S603 - our own CLI, argument list
    # `llama_cpp_runtime-*` cannot match a plugin's `llama_cpp_runtime_vulkan-*`: the name ends at the dash.
    built = (project / "dist").glob(f"{normalise(distribution)}-*.whl")
    newest = max(built, key=lambda p: p.stat().st_mtime)
    shutil.copy2(newest, Path(wheel_directory) / newest.name)
    return newest.name
