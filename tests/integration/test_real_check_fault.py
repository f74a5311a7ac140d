"""`check` catches a wrong kernel of real llama.cpp. The pin's q8_0 dot product (`ggml_vec_dot_q8_0_q8_0`, the
x86 code every variant compiles; one token's q8_0 matrix product and the tiny model's q8_0 output layer run it)
is made to return 1.25 times its sum in a copy of the vendored tree; only the variant this CPU loads is rebuilt
from that copy and put in a copy of the stage. `check` must fail that variant, naming the operation and the
model row, and pass every other one: issue 29's injected fault on real kernels (the miniature's fault test has
no quantized types)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.module_build import build_library
from helpers.support import Project

from buildsys.builder.presets import load_matrix

pytestmark = [
    pytest.mark.real_upstream,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (sys.platform.startswith("linux") and os.uname().machine == "x86_64"),
        reason="breaks the x86 q8_0 kernel",
    ),
]
FUNCTION = "void ggml_vec_dot_q8_0_q8_0("
WRONG = "*s = 1.25f * sumf;"


def binding(project: Project, stage: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """This checkout's binding on a stage, in the project's hermetic environment."""
    env = {**project.env, "LLAMA_CPP_RUNTIME_LIBRARY_DIR": str(stage), "LLAMA_CPP_RUNTIME_CACHE_DIR": "off"}
    command = [sys.executable, "-m", "llama_cpp_runtime", *args]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=600, check=False)


def break_q8_0_dot_product(ggml: Path) -> None:
    quants = ggml / "src/ggml-cpu/arch/x86/quants.c"
    text = quants.read_text()
    start = text.index(FUNCTION)
    end = text.index("\n}\n", start)
    body = text[start:end]
    assert body.count("*s = sumf;") == 1, "the pin's q8_0 dot product no longer ends as this test expects"
    quants.write_text(text[:start] + body.replace("*s = sumf;", WRONG) + text[end:])


def test_check_names_the_variant_and_the_operation_of_a_broken_real_kernel(pinned: Project, tmp_path: Path) -> None:
    stage = pinned.root / "build/stage/cpu"
    info = binding(pinned, stage, "info", "--json", cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    variant = json.loads(info.stdout)["cpu_variant"]
    if variant == "x64":
        pytest.skip("this CPU loads the baseline variant itself: there is nothing to compare a broken one with")

    source = tmp_path / "llama.cpp"
    shutil.copytree(pinned.vendor, source)
    break_q8_0_dot_product(source / "ggml")
    broken_stage = tmp_path / "stage"
    shutil.copytree(stage, broken_stage, symlinks=True)
    # the cpu preset's options, without the superbuild's own: as a module, every variant
    preset = load_matrix().get("cpu").cache_variables
    options = {name: value for name, value in preset.items() if not name.startswith("LLAMA_CPP_RUNTIME_")}
    module = build_library(source, tmp_path / "tree", options, f"ggml-cpu-{variant}")
    shutil.copy2(module, broken_stage / f"modules/libggml-cpu-{variant}.so")

    result = binding(pinned, broken_stage, "check", cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    rows = {line.split()[1].strip("()"): line for line in result.stdout.splitlines() if line.startswith("CPU (")}
    broken = rows.pop(variant)
    # one token: the decode path, the dot product (9 tokens go through llamafile's sgemm, which does not use it)
    assert " FAILED " in broken and "MISMATCH: MUL_MAT q8_0 64x1x256 error" in broken, broken
    assert "against x64 (tolerance 2e-03)" in broken and "MODEL tiny-llama q4_0 step 0 logits error" in broken, broken
    assert rows and all(" ok " in row for row in rows.values()), rows
    assert result.stderr.strip().splitlines()[-1] == f"error: check failed: CPU ({variant})", result.stderr
