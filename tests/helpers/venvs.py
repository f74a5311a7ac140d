"""Fresh virtual environments outside the repository, for installing the wheels the tests build."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from helpers.support import Project


def wheels_of(project: Project) -> dict[str, Path]:
    return {re.sub(r"-\d.*", "", p.name): p for p in sorted((project.root / "dist").glob("*.whl"))}


def venv(tmp_path: Path) -> Path:
    environment = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(environment)], check=True, timeout=300)
    return environment / "bin" / "python"


def pip(python: Path, *args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run(
        [str(python), "-m", "pip", "-q", "--disable-pip-version-check", *args], check=True, timeout=300, env=env
    )


def in_venv(python: Path, *args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The venv's Python, without this process's runtime, Python and ggml settings leaking in."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("LLAMA_CPP_", "PYTHON", "GGML_", "MTMD_"))}
    clean["XDG_CACHE_HOME"] = str(python.parent.parent.parent / "cache")  # the binding's cache: the venv's, not ours
    return subprocess.run(
        [str(python), *args],
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def runtime(python: Path, *args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return in_venv(python, "-m", "llama_cpp_runtime", *args, cwd=cwd, env=env)
