"""A second platform on this machine: the miniature upstream cross-built for linux-aarch64 with Debian's cross
compiler, its wheel repaired and tagged manylinux_*_aarch64 here, installed for an arm64 interpreter and run under
qemu-user as each CPU model that maps to a distinct ggml variant. The fixture has no llama model runtime (its
libllama only answers the calls the loader makes), so no tokens are compared here."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers import arm64_python
from helpers.support import Project, fresh_project, readelf_dynamic
from helpers.toolchains_present import aarch64

pytestmark = [
    pytest.mark.slow,
    aarch64,
    pytest.mark.skipif(
        not (sys.platform.startswith("linux") and os.uname().machine == "x86_64"),
        reason="cross-builds linux-aarch64 on an x86-64 Linux host",
    ),
]
PLATFORM = "linux-aarch64"
# What the fixture declares for Linux on ARM (ggml's list), and what GCC 12 builds of it: no armv9.2-a, so no SME.
BUILT = ("armv8.0_1", "armv8.2_1", "armv8.2_2", "armv8.2_3", "armv8.6_1", "armv8.6_2")
NOT_BUILT = ("armv9.2_1", "armv9.2_2")
# qemu's CPU model -> (the variant ggml's scoring picks, the variants it can run). a64fx has SVE but no dot
# product, and every fixture variant above armv8.0 needs the dot product, as ggml's do.
MODELS = {
    "cortex-a53": ("armv8.0_1", BUILT[:1]),
    "cortex-a72": ("armv8.0_1", BUILT[:1]),
    "neoverse-n1": ("armv8.2_2", BUILT[:3]),
    "a64fx": ("armv8.0_1", BUILT[:1]),
    "max": ("armv8.6_2", BUILT),
}
ARM64_PLATFORM_TAG = "manylinux_2_34_aarch64"  # what pip is told the arm64 interpreter runs on (Debian 12: glibc 2.36)


def _wheel(project: Project, pattern: str) -> Path:
    [wheel] = sorted((project.root / "dist").glob(pattern))
    return wheel


@pytest.fixture(scope="module")
def crossed(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A project (not synced: `wheels` must do it) whose aarch64 core wheel `wheels --platform` made."""
    project = fresh_project(tmp_path_factory.mktemp("crossed"))
    project.run("wheels", "--platform", PLATFORM, timeout=600)
    return project


@pytest.fixture(scope="module")
def arm64() -> Path:
    return arm64_python.for_tests()


@pytest.fixture(scope="module")
def installed(crossed: Project, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The aarch64 wheel installed for an arm64 interpreter by this machine's pip, as a cross installer would."""
    target = tmp_path_factory.mktemp("arm64-site")
    _pip_for_arm64(crossed, target, _wheel(crossed, "*_aarch64.whl"), check=True)
    return target


def _pip_for_arm64(project: Project, target: Path, wheel: Path, *, check: bool) -> subprocess.CompletedProcess[str]:
    args = ["--target", str(target), "--platform", ARM64_PLATFORM_TAG, "--only-binary=:all:", "--no-deps"]
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-index", "--disable-pip-version-check", *args, str(wheel)],
        env=project.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert not check or result.returncode == 0, result.stdout + result.stderr
    return result


def _under_qemu(
    project: Project, arm64: Path, site: Path, cpu: str, *args: str, cache: Path | None = None
) -> subprocess.CompletedProcess[str]:
    command, extra = arm64_python.command(arm64, cpu, "-m", "llama_cpp_runtime", *args)
    env = {k: v for k, v in project.env.items() if not k.startswith(("PYTHON", "QEMU_"))}
    env.update(extra, PYTHONPATH=str(site), PYTHONDONTWRITEBYTECODE="1")
    env["LLAMA_CPP_RUNTIME_CACHE_DIR"] = str(cache) if cache else "off"
    return subprocess.run(command, env=env, cwd=site.parent, capture_output=True, text=True, timeout=300, check=False)


def test_the_cross_build_has_its_own_tree_stage_and_report_and_names_its_compiler(crossed: Project) -> None:
    build = crossed.root / "build"
    assert (build / f"cpu-{PLATFORM}" / "CMakeCache.txt").is_file()
    assert not (build / "cpu").exists() and not (build / "stage" / "cpu").exists()  # the native ones untouched
    toolchain = (build / "toolchains" / f"{PLATFORM}.cmake").read_text()
    assert "set(CMAKE_SYSTEM_PROCESSOR aarch64)" in toolchain and "aarch64-linux-gnu-g++" in toolchain
    report = json.loads((build / f"build-report-{PLATFORM}.json").read_text())
    assert report["platform"] == PLATFORM
    cpu = next(p for p in report["presets"] if p["preset"] == "cpu")
    assert cpu["status"] == "built" and "aarch64-linux-gnu-gcc" in cpu["toolchain"][0], cpu["toolchain"]
    assert set(cpu["not_built"]) == {f"ggml-cpu-{v}" for v in NOT_BUILT}
    for reason in cpu["not_built"].values():  # the compiler's own words
        assert re.search(r"-march=armv9\.2-a\S*sme: error: ", reason), reason
    others = [p for p in report["presets"] if p["preset"] != "cpu"]
    assert others and all(p["status"] == "skipped" and "not cross-built" in p["reason"] for p in others)


def test_the_aarch64_core_wheel_holds_each_library_once_relocatable_and_for_aarch64(
    crossed: Project, tmp_path: Path
) -> None:
    wheel = _wheel(crossed, "*_aarch64.whl")
    assert re.fullmatch(r"llama_cpp_runtime-0\.1\.0-py3-none-manylinux_2_\d+_aarch64\.whl", wheel.name), wheel.name
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        libraries = sorted(n for n in names if ".so" in n)
        assert libraries == sorted(
            [
                *(f"llama_cpp_runtime/lib/lib{name}.so.0" for name in ("ggml-base", "ggml", "llama", "mtmd")),
                *(f"llama_cpp_runtime/modules/libggml-cpu-{variant}.so" for variant in BUILT),
            ]
        )
        assert len({hashlib.sha256(archive.read(n)).digest() for n in libraries}) == len(libraries)
        assert re.search(
            r"Tag: py3-none-manylinux_2_\d+_aarch64",
            archive.read(next(n for n in names if n.endswith("WHEEL"))).decode(),
        )
        stage = json.loads(archive.read("llama_cpp_runtime/stage.json"))
        assert stage["platform"] == PLATFORM and set(stage["not_built"]) == {f"ggml-cpu-{v}" for v in NOT_BUILT}
        assert "llama_cpp_runtime/llama-abi.json" in names  # the probe ran under qemu at build time
        archive.extractall(tmp_path)
    for library in (tmp_path / "llama_cpp_runtime").rglob("*.so*"):
        header = subprocess.run(["readelf", "-h", str(library)], capture_output=True, text=True, check=True).stdout
        assert re.search(r"Machine:\s+AArch64", header), library
        ours = "$ORIGIN/../lib" if library.parent.name == "modules" else "$ORIGIN"
        dynamic = readelf_dynamic(library)
        assert (dynamic.get("RUNPATH") or [""])[0] == ours, (library.name, dynamic)
        sections = subprocess.run(["readelf", "-S", str(library)], capture_output=True, text=True, check=True).stdout
        assert ".symtab" not in sections, f"{library.name} is not stripped"


def test_the_aarch64_wheel_is_byte_identical_built_again_elsewhere(crossed: Project, tmp_path: Path) -> None:
    first = _wheel(crossed, "*_aarch64.whl").read_bytes()
    other = fresh_project(tmp_path / "elsewhere-with-a-longer-name")
    other.run("-q", "wheels", "--platform", PLATFORM, env={**other.env, "CCACHE_DISABLE": "1"}, timeout=600)
    assert _wheel(other, "*_aarch64.whl").read_bytes() == first


@pytest.mark.parametrize("cpu", list(MODELS))
def test_under_qemu_info_names_the_scored_variant_and_check_runs_every_runnable_one(
    crossed: Project, arm64: Path, installed: Path, cpu: str
) -> None:
    chosen, runnable = MODELS[cpu]
    info = _under_qemu(crossed, arm64, installed, cpu, "info")
    assert info.returncode == 0, info.stdout + info.stderr
    assert f"libraries: {installed / 'llama_cpp_runtime'}" in info.stdout
    assert re.search(rf"^CPU variant: {re.escape(chosen)} \(score \d+\)$", info.stdout, re.MULTILINE), info.stdout
    check = _under_qemu(crossed, arm64, installed, cpu, "check")
    output = check.stdout + check.stderr
    assert check.returncode == 0, output
    assert "SIGILL" not in output and "signal" not in output
    for variant in runnable:
        assert re.search(rf"^CPU \({re.escape(variant)}\)\s+ok\b", check.stdout, re.MULTILINE), output
    for variant in set(BUILT) - set(runnable):
        assert re.search(
            rf"^ggml-cpu-{re.escape(variant)}\s+-\s+-\s+not runnable here: this CPU lacks", check.stdout, re.MULTILINE
        ), output


def test_a_variant_cache_written_under_one_cpu_model_is_not_reused_under_another(
    crossed: Project, arm64: Path, installed: Path, tmp_path: Path
) -> None:
    """Under qemu-user /proc/cpuinfo is the host's for every model: the HWCAP words tell them apart."""
    cache = tmp_path / "cache"
    for cpu in ("cortex-a53", "max", "cortex-a53"):
        info = _under_qemu(crossed, arm64, installed, cpu, "info", cache=cache)
        assert info.returncode == 0, info.stdout + info.stderr
        assert f"CPU variant: {MODELS[cpu][0]} " in info.stdout, (cpu, info.stdout)
    assert len(list(cache.glob("cpu-variants-*.json"))) == 2


def test_an_x86_64_wheel_is_refused_by_pip_for_the_arm64_interpreter(crossed: Project, tmp_path: Path) -> None:
    """The native wheel, built beside the cross one in the same project without disturbing it."""
    cross_stage = crossed.root / "build" / "stage" / f"cpu-{PLATFORM}" / "stage.json"
    before = cross_stage.read_bytes()
    crossed.run("wheels", "--backend", "cpu", "--wheel-version", "0.2.0", timeout=600)
    assert cross_stage.read_bytes() == before
    native = _wheel(crossed, "llama_cpp_runtime-0.2.0-*_x86_64.whl")
    refused = _pip_for_arm64(crossed, tmp_path / "site", native, check=False)
    assert refused.returncode != 0
    assert "is not a supported wheel on this platform" in refused.stderr, refused.stdout + refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr
    shutil.rmtree(tmp_path / "site", ignore_errors=True)
