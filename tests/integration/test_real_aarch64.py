"""Real llama.cpp at the pin, cross-built for linux-aarch64 here and run under qemu-user: the same tiny models
(tests/helpers/tiny_models.py) give the same greedy tokens on emulated ARM CPUs, each with the variant ggml's
scoring picks for it, as the x86-64 wheel gives on this machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from helpers import arm64_python, tiny_models
from helpers.support import Project
from helpers.toolchains_present import aarch64
from helpers.venvs import wheels_of

pytestmark = [
    pytest.mark.real_upstream,
    pytest.mark.slow,
    aarch64,
    pytest.mark.skipif(
        not (sys.platform.startswith("linux") and os.uname().machine == "x86_64"),
        reason="cross-builds linux-aarch64 on an x86-64 Linux host",
    ),
]
# qemu's CPU model -> the variant of the pin's eight that ggml's scoring picks (GCC 12 builds no SME variant)
MODELS = {"cortex-a53": "armv8.0_1", "neoverse-n1": "armv8.2_2", "max": "armv8.6_2"}
GENERATE = textwrap.dedent(
    """
    import json, sys
    import llama_cpp_runtime as lcr
    rt = lcr.load()
    out = {"variant": rt.report().cpu_variant}
    for path in sys.argv[1:]:
        with rt.load_model(path) as model:
            prompt = model.tokenize("the model is")
            with model.context(n_ctx=128, n_threads=1) as ctx:
                out[path.rsplit("/", 1)[-1]] = ctx.generate(prompt, max_tokens=24)
    print(json.dumps(out))
    """
)


def _install(wheel: Path, target: Path, platform: str) -> Path:
    args = ["--target", str(target), "--platform", platform, "--only-binary=:all:", "--no-deps", "--no-index"]
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *args, str(wheel)], check=True, timeout=300)
    return target


def _arm64_env(site: Path, extra: dict[str, str]) -> dict[str, str]:
    """The emulated interpreter's environment: the installed wheel's folder, the qemu CPU, nothing of ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "QEMU_", "LLAMA_CPP_"))}
    env.update(extra, PYTHONPATH=str(site), LLAMA_CPP_RUNTIME_CACHE_DIR="off", PYTHONDONTWRITEBYTECODE="1")
    return env


def _tokens(command: list[str], site: Path, models: list[Path], extra: dict[str, str], cwd: Path) -> dict[str, object]:
    result = subprocess.run(
        [*command, "-c", GENERATE, *map(str, models)],
        env=_arm64_env(site, extra),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    answer: dict[str, object] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def test_the_pins_aarch64_wheel_gives_the_x86_64_tokens_under_qemu(
    pinned: Project, pinned_aarch64: Project, tmp_path: Path
) -> None:
    [arm_wheel] = (pinned_aarch64.root / "dist").glob("llama_cpp_runtime-*_aarch64.whl")
    with zipfile.ZipFile(arm_wheel) as archive:
        stage = json.loads(archive.read("llama_cpp_runtime/stage.json"))
        assert stage["platform"] == "linux-aarch64"
        assert set(stage["not_built"]) == {"ggml-cpu-armv9.2_1", "ggml-cpu-armv9.2_2"}  # GCC 12: no armv9.2-a
        assert "llama_cpp_runtime/llama-abi.json" in archive.namelist()
    models = [
        tiny_models.write_llama_model(tmp_path / f"{vocab}-{dtype}.gguf", vocab=vocab, dtype=dtype)
        for vocab in ("spm", "bpe")
        for dtype in ("f32", "q8_0")
    ]
    x86_site = _install(wheels_of(pinned)["llama_cpp_runtime"], tmp_path / "x86", "manylinux_2_34_x86_64")
    arm_site = _install(arm_wheel, tmp_path / "arm64", "manylinux_2_34_aarch64")
    x86 = _tokens([sys.executable], x86_site, models, {}, tmp_path)
    x86.pop("variant")
    folder = arm64_python.for_tests()
    for cpu, variant in MODELS.items():
        command, extra = arm64_python.command(folder, cpu)
        arm = _tokens(command, arm_site, models, extra, tmp_path)
        assert arm.pop("variant") == variant, cpu
        assert arm == x86, (cpu, arm, x86)


def test_check_passes_on_every_aarch64_variant_under_qemu_max(pinned_aarch64: Project, tmp_path: Path) -> None:
    """`check` on the CPU qemu calls max (SVE, i8mm, bf16): every variant runs its operations and the tiny model
    against armv8.0_1. The SVE variants round flash attention's F16 accumulator differently from NEON's scalar tail
    (ggml_vec_mad_f16 at head size 16), which the model's q8_0 activations turned into 1.4e-2 of the logits: the
    model row failed on correct kernels until it ran attention in F32 (flash attention is an operation case)."""
    [arm_wheel] = (pinned_aarch64.root / "dist").glob("llama_cpp_runtime-*_aarch64.whl")
    site = _install(arm_wheel, tmp_path / "arm64", "manylinux_2_34_aarch64")
    command, extra = arm64_python.command(arm64_python.for_tests(), "max", "-m", "llama_cpp_runtime", "check")
    env = _arm64_env(site, extra)
    result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {line.split()[1].strip("()"): line for line in result.stdout.splitlines() if line.startswith("CPU (")}
    assert set(rows) >= {"armv8.0_1", "armv8.2_2", "armv8.2_3", "armv8.6_1", "armv8.6_2"}, result.stdout
    for variant in ("armv8.2_3", "armv8.6_1", "armv8.6_2"):  # the SVE ones
        assert " ok " in rows[variant] and "MODEL: 8 greedy tokens as armv8.0_1's" in rows[variant], rows[variant]
