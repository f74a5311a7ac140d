"""The default configuration on real llama.cpp trees: llama-cpp-python 0.3.35's (the tree of our pin)
and 0.3.36's (newer), from the sdists on PyPI, turned into a local git repository by
tests/helpers/real_llama_cpp.py and cached outside the checkout.

Without BUILDSYS_REAL_LLAMA_CPP the repository is made here (downloading the sdists once); when PyPI
cannot be reached the tests skip and say so, unless BUILDSYS_REQUIRE_TOOLCHAINS names real-llama.cpp
(as .ci/run does), which makes that a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import zipfile
from pathlib import Path

import pytest
from helpers.real_projects import project_at, tagged_commit
from helpers.support import readelf_dynamic
from helpers.venvs import pip, runtime, venv, wheels_of

pytestmark = [
    pytest.mark.real_upstream,
    # Real llama.cpp runs in the Linux job (its tree and ccache are cached there); macOS and Windows build
    # the fixture until their first real run.
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="real llama.cpp trees are tested on Linux"),
]
linux_x86 = pytest.mark.skipif(
    os.uname().machine != "x86_64" if hasattr(os, "uname") else True, reason="x86-64 stage names"
)
# Every CPU variant of real llama.cpp, cold, on 2 cores: ~8 minutes; with the shared ccache, seconds.
BUILD_TIMEOUT = 60 * 60
# The subset of our default before llama.cpp added `add_subdirectory(vendor)` and libmtmd.
OLD_INCLUDE = '["CMakeLists.txt", "LICENSE", "licenses/", "cmake/", "include/", "src/", "ggml/", "tools/mtmd/"]'


@pytest.mark.slow
@linux_x86
def test_the_default_configuration_builds_packages_and_loads_real_llama_cpp(
    real_llama_cpp: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    project = project_at(tmp_path / "project", real_llama_cpp, "0.3.35", env)
    ours = project.patch_bytes()

    applied = project.run("apply-patches")
    assert re.search(r"clean\s+0001-vulkan-build-with-Vulkan-Headers", applied.stderr), applied.stderr
    project.run("create-patches")
    assert project.patch_bytes() == ours  # our queue is exactly what the real tree of the pin gives back
    project.run("sync")
    assert "no drift" in project.run("check").stderr

    vendor = project.vendor
    top = sorted(p.name for p in vendor.iterdir())
    assert top == [
        ".buildsys-manifest.json",
        "CMakeLists.txt",
        "LICENSE",
        "cmake",
        "common",
        "ggml",
        "include",
        "licenses",
        "scripts",
        "src",
        "tools",
        "vendor",
    ]
    assert {"mtmd", "server", "ui", "llama-bench"} <= {p.name for p in (vendor / "tools").iterdir()}
    assert not (vendor / "tools/mtmd/tests").exists() and not list((vendor / "tools/mtmd").glob("test-*"))
    assert (vendor / "vendor/stb").is_dir() and (vendor / "tools/server/server.cpp").is_file()  # the server preset's
    assert (vendor / "tools/ui/CMakeLists.txt").is_file() and not (vendor / "tools/ui/src").exists()  # no npm sources

    result = project.run("wheels", "--backend", "cpu", timeout=BUILD_TIMEOUT)
    assert re.search(r"^cpu\s+built\b", result.stdout, re.MULTILINE), result.stdout

    stage = project.root / "build/stage/cpu"
    lib = sorted(p.name for p in (stage / "lib").iterdir() if re.search(r"\.so\.\d+$", p.name))
    assert lib == ["libggml-base.so.0", "libggml.so.0", "libllama.so.0", "libmtmd.so.0"]
    modules = sorted(p.name for p in (stage / "modules").iterdir())
    assert modules == sorted([*(f"libggml-cpu-{v}.so" for v in x86_variants(vendor)), "libggml-rpc.so"])
    headers = {p.name for p in (stage / "include").iterdir()}
    assert {"llama.h", "llama-cpp.h", "mtmd.h", "mtmd-helper.h", "ggml.h", "ggml-backend.h"} <= headers
    for library in sorted(stage.glob("*/*.so*")):
        if library.is_symlink():
            continue
        dynamic = readelf_dynamic(library)
        assert dynamic["RUNPATH"] == ["$ORIGIN/../lib" if library.parent.name == "modules" else "$ORIGIN"]
        assert not [n for n in dynamic["NEEDED"] if n.startswith(("libnccl", "libcurl", "libssl", "libibverbs"))]

    cache = (project.root / "build/cpu/CMakeCache.txt").read_text()
    for off in (
        "LLAMA_BUILD_TESTS",
        "LLAMA_BUILD_TOOLS",
        "LLAMA_BUILD_EXAMPLES",
        "LLAMA_BUILD_SERVER",
        "LLAMA_BUILD_COMMON",
        "LLAMA_BUILD_APP",
        "LLAMA_BUILD_UI",
        "MTMD_VIDEO",
        "GGML_BLAS",
        "GGML_RPC_RDMA",  # TCP only: RDMA would make the RPC module need libibverbs on every machine
    ):
        assert re.search(rf"^{off}:BOOL=OFF$", cache, re.MULTILINE), off

    core = wheels_of(project)["llama_cpp_runtime"]
    with zipfile.ZipFile(core) as archive:
        libraries = sorted(n for n in archive.namelist() if "/lib/" in n and ".so" in n)
    assert libraries == [f"llama_cpp_runtime/lib/{name}" for name in lib]
    print(f"\ncore wheel {core.name}: {core.stat().st_size / 2**20:.2f} MiB")

    python = venv(tmp_path)
    pip(python, "install", "--no-index", str(core))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    info = runtime(python, "info", cwd=elsewhere)
    assert info.returncode == 0, info.stderr
    assert "core: ggml-base (loaded), ggml (loaded), llama (loaded), mtmd (loaded)" in info.stdout
    series = json.loads((vendor / ".buildsys-manifest.json").read_text())["patches"]["series_sha256"]
    commit = project.commits[0]
    assert f"upstream: {commit} + patch series {series[:12]}; ggml_commit() {commit}" in info.stdout, info.stdout
    assert "libllama structs: matches" in info.stdout  # the binding's ctypes layout is the pin's
    check = runtime(python, "check", cwd=elsewhere)
    assert check.returncode == 0, check.stdout + check.stderr
    print(info.stdout)


def x86_variants(vendor: Path) -> list[str]:
    text = (vendor / "ggml/src/CMakeLists.txt").read_text()
    block = text.split("if (GGML_CPU_ALL_VARIANTS)", 1)[1].split('GGML_SYSTEM_ARCH STREQUAL "ARM"', 1)[0]
    return re.findall(r"ggml_add_cpu_backend_variant\((\w+)", block)


def test_build_names_the_cmake_line_that_needs_a_path_outside_the_subset(
    real_llama_cpp: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    """llama.cpp of 0.3.36 calls add_subdirectory(vendor) unconditionally; 0.3.35's libmtmd only includes it."""
    project = project_at(tmp_path / "project", real_llama_cpp, "0.3.35", env, include=OLD_INCLUDE)
    project.run("apply-patches")
    project.run("sync")
    old = project.run("build", "--backend", "cpu", expect=5)
    assert (
        "tools/mtmd/CMakeLists.txt:84 target_include_directories(mtmd PRIVATE ../../vendor): "
        "vendor/ is not synced; add it to [sync] include" in old.stderr
    ), old.stderr

    newer = tagged_commit(project.upstream, "0.3.36")
    bumped = project.run("bump", newer).stdout
    assert "### Needs attention" in bumped
    line = "CMakeLists.txt:237 add_subdirectory(vendor): vendor/ is not synced; add it to [sync] include"
    assert f"`{line}` (`build` refuses until it is)" in bumped, bumped
    assert '`[downstream] llama-cpp-python = "0.3.35"` names the release that vendors' in bumped, bumped
    assert re.search(r"0001-vulkan-build-with-Vulkan-Headers.*\| applied (cleanly|with a 3-way merge)", bumped)

    refused = project.run("build", "--backend", "cpu", expect=5)
    assert refused.stderr.count("error:") == 1 and line in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr and not (project.root / "build/cpu").exists()


def test_bump_to_the_newer_tree_carries_our_queue_and_it_configures_offline(
    real_llama_cpp: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    project = project_at(tmp_path / "project", real_llama_cpp, "0.3.35", env)
    project.run("apply-patches")
    project.run("sync")
    newer = tagged_commit(project.upstream, "0.3.36")

    summary = project.run("bump", newer).stdout

    assert re.search(r"0001-vulkan-build-with-Vulkan-Headers.*\| applied (cleanly|with a 3-way merge)", summary)
    assert "is not synced" not in summary, summary  # the default subset already has vendor/
    # 0.3.36 inserts a field in llama_model_params: the binding lays the struct out from the build's record
    assert (
        "struct llama_model_params changed in include/llama.h: + enum llama_lazy_mode lazy_mode (after load_mode): "
        "the binding is not affected (none of the fields it uses changed" in summary
    ), summary
    assert f'commit = "{newer}"' in (project.root / "vendoring.toml").read_text()
    assert "no drift" in project.run("check").stderr
    presets = "cpu,vulkan" if shutil.which("glslc") else "cpu"
    result = project.run("build", "--configure-only", "--backend", presets, timeout=600)
    for preset in presets.split(","):
        assert re.search(rf"^{preset}\s+configured\b", result.stdout, re.MULTILINE), result.stdout
    assert f"llama-cpp-runtime: upstream commit {newer}" in (project.root / "build/logs/cpu.log").read_text()
    # this tree compiles its commit in through a configured header (0.3.35: a definition): both get the pin
    header = (project.root / "build/cpu/upstream/ggml/src/ggml-version.h").read_text()
    assert re.search(rf'#define GGML_COMMIT\s+"{newer}"', header), header
    assert "libmtmd.so" in (project.root / "build/cpu/build.ninja").read_text()
