"""benchmarks/bump_bench.py end to end: two fresh checkouts of the miniature upstream built by it (whose libllama
cannot load a model, so the benchmark cannot run: one error line), and the real pin's stage against itself with
a slower CPU variant on the new side (the table, its marks and the verdict)."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.support import REPO_ROOT, Project, make_upstream

SCRIPT = REPO_ROOT / "benchmarks" / "bump_bench.py"
SMALL = ["--rounds", "2", "--dtypes", "q4_0", "-p", "64", "-n", "16", "-r", "1", "--threads", "1"]


def bump_bench(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False
    )


def said(stderr: str) -> list[str]:
    """stderr without the progress lines (`  … round 1/2`)."""
    return [line for line in stderr.splitlines() if not line.startswith("  … ")]


def test_fresh_checkouts_are_built_and_a_stage_that_cannot_bench_is_one_error_line(
    tmp_path: Path, env: dict[str, str]
) -> None:
    upstream, commits = make_upstream(tmp_path / "upstream", env)
    pins = {"old": commits[-2], "new": commits[-1]}
    for name, commit in pins.items():
        (tmp_path / name).mkdir()
        Project(tmp_path / name, upstream, commits, env).configure(commit)  # vendoring.toml alone: no vendor/
    report = tmp_path / "speed.md"

    result = bump_bench("old", "new", *SMALL, "--report", str(report), env=env, cwd=tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == "" and not report.exists()
    (error,) = said(result.stderr)
    assert error.startswith("bump_bench: error: `") and "on the old side" in error, result.stderr
    assert "apply-patches" in result.stderr and "sync" in result.stderr  # what a checkout without vendor/ needed
    for name, commit in pins.items():
        stage = json.loads((tmp_path / name / "build" / "stage" / "cpu" / "stage.json").read_text())
        assert stage["upstream"]["commit"] == commit


@pytest.mark.real_upstream
@pytest.mark.slow
@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.machine() != "x86_64",
    reason="the real pin's x86-64 CPU variants",
)
def test_the_pin_against_its_own_x64_variant_is_marked_critical(pinned: Project, tmp_path: Path) -> None:
    """The slow side is honest: the same stage with ggml's baseline `x64` CPU variant forced (no SIMD kernels)
    instead of the best one this CPU runs."""
    report = tmp_path / "speed.md"
    slowed = ["--new-env", "LLAMA_CPP_RUNTIME_CPU_VARIANT=x64"]
    project = str(pinned.root)

    result = bump_bench(
        project, project, "--no-build", *SMALL, *slowed, "--report", str(report), env=pinned.env, cwd=tmp_path
    )

    assert result.returncode == 0, result.stderr  # slower informs, it does not fail
    lines = result.stdout.splitlines()
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines if line.startswith("| q4_0 |")]
    assert [row[1] for row in rows] == ["pp64", "tg16"]
    for _, _, threads, old, new, ratio, marked, _ in rows:
        assert threads == "1" and float(new) < float(old) and float(ratio) < 0.85 and marked == "critical"
    assert lines[-1].startswith("**Verdict: slower (critical)**: 2 of 2 rows below 0.95×")
    assert "and `x64` on the new one" in lines[2] and "LLAMA_CPP_RUNTIME_CPU_VARIANT=x64" in lines[2]
    assert report.read_text() == result.stdout
