"""wheels/: the cibuildwheel configuration and the PEP 517 backend it builds through."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from helpers.support import REPO_ROOT, Project

from buildsys.packaging.wheels import CORE_SONAMES, REPAIR_EXCLUDES

WHEELS = REPO_ROOT / "wheels"


@pytest.mark.parametrize(
    ("platform", "identifiers"),
    [
        ("linux", ["cp311-manylinux_x86_64", "cp311-manylinux_aarch64"]),
        ("macos", ["cp311-macosx_arm64"]),
        ("windows", ["cp311-win_amd64"]),
    ],
)
def test_cibuildwheel_accepts_the_configuration_with_one_build_per_platform(
    platform: str, identifiers: list[str]
) -> None:
    cibuildwheel = shutil.which("cibuildwheel", path=str(Path(sys.executable).parent)) or "cibuildwheel"
    result = subprocess.run(
        [cibuildwheel, "--print-build-identifiers", "--platform", platform, str(WHEELS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == identifiers


def test_the_linux_repair_excludes_what_buildsys_excludes() -> None:
    settings = tomllib.loads((WHEELS / "pyproject.toml").read_text())["tool"]["cibuildwheel"]
    command = settings["linux"]["repair-wheel-command"]
    excluded = re.findall(r"--exclude '([^']+)'", command)
    assert set(excluded) == set(REPAIR_EXCLUDES) | set(CORE_SONAMES)
    assert settings["test-command"] == "python -m llama_cpp_runtime check"


@pytest.mark.slow
def test_pip_builds_a_distribution_through_the_backend(built: Project, tmp_path: Path) -> None:
    env = {**built.env, "LLAMA_CPP_RUNTIME_PROJECT": str(built.root), "LLAMA_CPP_RUNTIME_VERSION": "2.0.0"}
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-w", str(tmp_path), str(WHEELS)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    [wheel] = tmp_path.glob("*.whl")
    assert re.fullmatch(r"llama_cpp_runtime-2\.0\.0-py3-none-linux_x86_64\.whl", wheel.name) or sys.platform != "linux"
    with zipfile.ZipFile(wheel) as archive:
        # libggml-cpu-<variant>.so / .dylib; ggml-cpu-<variant>.dll on Windows
        assert any(
            n.startswith(("llama_cpp_runtime/modules/libggml-cpu-", "llama_cpp_runtime/modules/ggml-cpu-"))
            for n in archive.namelist()
        )
