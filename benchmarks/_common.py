"""Helpers the benchmarks share: running a step, fresh venvs, a throwaway fixture project, the README table."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from buildsys.builder.driver import default_jobs  # noqa: E402
from buildsys.builder.presets import CMAKE_DIR  # noqa: E402
from buildsys.cmake_tool import Tools  # noqa: E402
from buildsys.git import Git  # noqa: E402

README = Path(__file__).resolve().parent / "README.md"


def run(args: list[str], cwd: Path, env: dict[str, str]) -> None:
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"benchmark step failed: {' '.join(args)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def clean_environment() -> dict[str, str]:
    """This process's environment without what would steer a benchmark's interpreters or the binding."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "LLAMA_CPP_", "VIRTUAL_ENV"))}


def fresh_venv(where: Path, env: dict[str, str]) -> Path:
    """`python -m venv where` (this interpreter's Python, with its pip); its python."""
    run([sys.executable, "-m", "venv", str(where)], where.parent, env)
    return where / "bin" / "python"


def fixture_project(base: Path) -> Path:
    """The miniature upstream as a one-commit git repository, pinned, applied and synced."""
    upstream = base / "upstream"
    shutil.copytree(REPO / "tests" / "fixtures" / "miniggml", upstream)
    git_env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@invalid",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@invalid",
    }
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "fixture"]):
        run(["git", *args], upstream, git_env)
    commit = Git(upstream).text("rev-parse", "HEAD")
    project = base / "project"
    project.mkdir()
    (project / "vendoring.toml").write_text(f'[upstream]\nurl = "{upstream}"\ncommit = "{commit}"\n')
    for command in ("apply-patches", "sync"):
        run([sys.executable, "-m", "buildsys", "-q", command], project, {**os.environ, "PYTHONPATH": str(REPO)})
    return project


def write_readme(title: str, section: str) -> None:
    text = README.read_text() if README.exists() else "# Benchmarks\n\nWritten by `nox -s bench`.\n"
    marker = f"### {title}"
    if marker in text:
        before, rest = text.split(marker, 1)
        # the section ends where the next one starts, a `## benchmark` or a `### section`
        after = re.search(r"^#{2,3} ", rest, flags=re.MULTILINE)
        text = before + section + (("\n" + rest[after.start() :]) if after else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    README.write_text(text)


def raw_cmake_build(tools: Tools, source: Path, tree: Path, stage: Path, env: dict[str, str], *extra: str) -> None:
    """What the driver runs for preset `cpu`, by hand: configure, build, install the stage component."""
    cmake = str(tools.cmake)
    located = [f"-DLLAMA_CPP_RUNTIME_SOURCE_DIR={source}", f"-DCMAKE_MAKE_PROGRAM={tools.ninja}"]
    run([cmake, "--preset", "cpu", "-S", str(CMAKE_DIR), "-B", str(tree), *extra, *located], CMAKE_DIR, env)
    run([cmake, "--build", str(tree), "--parallel", str(default_jobs())], CMAKE_DIR, env)
    install = [cmake, "--install", str(tree), "--component", "stage", "--prefix", str(stage), "--strip"]
    run(install, CMAKE_DIR, env)


def machine_cpu_seconds() -> tuple[float, float] | None:
    """The CPU-seconds every process of the machine has been busy since boot, and those the hypervisor stole
    (/proc/stat, Linux); None elsewhere. A benchmark subtracts its own to say how busy the machine was."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick
