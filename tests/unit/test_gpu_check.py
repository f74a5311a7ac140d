"""benchmarks/gpu_check.sh on a machine without a usable NVIDIA GPU: it says so and exits 2, never
falling back to the CPU. (With a GPU it builds, installs and runs the CUDA plugin: not possible here.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.support import REPO_ROOT

SCRIPT = REPO_ROOT / "benchmarks" / "gpu_check.sh"
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="a bash script for Linux GPU machines")


def _path_with(tmp_path: Path, **fakes: str) -> str:
    """A PATH holding the text tools the script uses and the given fake tools (shell scripts): whatever
    this machine has installed, no NVIDIA driver or toolkit is on it unless faked."""
    tools = tmp_path / "bin"
    tools.mkdir()
    for name in ("dirname", "head", "tr"):
        found = shutil.which(name)
        assert found, name
        (tools / name).symlink_to(found)
    for name, body in fakes.items():
        (tools / name).write_text(f"#!/bin/sh\n{body}\n")
        (tools / name).chmod(0o755)
    return str(tools)


def _run(path: str) -> subprocess.CompletedProcess[str]:
    bash = shutil.which("bash")
    assert bash
    env = {k: v for k, v in os.environ.items() if k != "CUDA_PATH"} | {"PATH": path}
    return subprocess.run([bash, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_without_a_driver_it_refuses_to_run_and_says_why(tmp_path: Path) -> None:
    result = _run(_path_with(tmp_path))

    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        "gpu_check: cannot run here: no NVIDIA driver (nvidia-smi is not on PATH); this check needs a CUDA GPU"
    )


def test_a_driver_without_a_gpu_is_refused_too(tmp_path: Path) -> None:
    no_gpu = 'case "$*" in -L) echo "No devices were found" ;; *) echo "No devices were found"; exit 6 ;; esac'

    result = _run(_path_with(tmp_path, **{"nvidia-smi": no_gpu}))

    assert result.returncode == 2, result.stderr
    assert "gpu_check: cannot run here: nvidia-smi found no GPU (No devices were found)" in result.stderr
