"""The build driver on the miniature upstream: real CMake, Ninja and compilers, real staged libraries."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers.cpu_features import cpu_flags, declared_x86_variants, elf_linux, supported, x86_linux
from helpers.ggml_probe import SHAPE, inputs
from helpers.support import Project, fresh_project, readelf_dynamic
from helpers.toolchains_present import vulkan, with_ccache
from llama_cpp_runtime._llama.abi import lay_out

from buildsys.builder import reach_record
from buildsys.builder.header_structs import struct_fields
from buildsys.builder.presets import load_matrix

pytestmark = [pytest.mark.slow]

PROBE = Path(__file__).parent.parent / "helpers" / "ggml_probe.py"


def probe(*args: str, cwd: Path, env: dict[str, str] | None = None) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, str(PROBE), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert result.returncode == 0, f"probe {args} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    loaded: dict[str, object] = json.loads(result.stdout)
    return loaded


@elf_linux
def test_cpu_preset_stages_core_libraries_apart_from_every_variant(built: Project) -> None:
    stage = built.root / "build/stage/cpu"
    lib = sorted(p.name for p in (stage / "lib").iterdir())
    modules = sorted(p.name for p in (stage / "modules").iterdir())
    assert lib == [
        "libggml-base.so.0",
        "libggml-base.so.0.1.0",
        "libggml.so.0",
        "libggml.so.0.1.0",
        "libllama.so.0",
        "libllama.so.0.0.1",
        "libmtmd.so.0",
        "libmtmd.so.0.0.1",
    ]  # no unversioned development links: nothing links against a stage
    assert all((stage / "lib" / name).is_symlink() for name in lib if re.search(r"\.so\.\d+$", name))
    if sys.platform.startswith("linux") and os.uname().machine == "x86_64":
        assert modules == sorted(f"libggml-cpu-{v}.so" for v in declared_x86_variants())
    assert {"ggml.h", "ggml-backend.h", "llama.h", "mtmd.h", "mtmd-helper.h"} <= {
        p.name for p in (stage / "include").iterdir()
    }

    abi = json.loads((stage / "llama-abi.json").read_text())  # the probe ran on the staged headers
    assert abi["commit"] == built.commits[-1] and lay_out(abi, str(stage))
    header = (stage / "include" / "llama.h").read_text()
    for name, recorded in abi["structs"].items():  # every field the header declares, in its order
        assert list(recorded["fields"]) == [field for _, field in struct_fields(header, name) or []], name

    record = json.loads((stage / "stage.json").read_text())
    assert record["preset"] == "cpu" and record["upstream"]["commit"] == built.commits[-1]
    assert record["cmake_options"]["GGML_CPU_ALL_VARIANTS"] == "ON"
    recorded = {f["path"] for f in record["files"]}
    assert recorded == {p.relative_to(stage).as_posix() for p in stage.rglob("*") if not p.is_dir()} - {"stage.json"}

    built.run("build", "--backend", "cpu")  # the session's project may have built other presets since
    report = json.loads((built.root / "build/build-report.json").read_text())
    assert [(p["preset"], p["status"]) for p in report["presets"]] == [("cpu", "built")]


@elf_linux
def test_every_staged_library_has_a_relocatable_runpath_and_links_no_variant(built: Project) -> None:
    stage = built.root / "build/stage/cpu"
    for library in sorted(stage.glob("*/*.so*")):
        if library.is_symlink():
            continue
        dynamic = readelf_dynamic(library)
        expected = "$ORIGIN/../lib" if library.parent.name == "modules" else "$ORIGIN"
        assert dynamic["RUNPATH"] == [expected], f"{library.name}: {dynamic}"
        assert dynamic.get("RPATH", []) == []
        assert not [n for n in dynamic["NEEDED"] if n.startswith("libggml-cpu")], f"{library.name} links a variant"
        if library.parent.name == "modules":
            assert "libggml-base.so.0" in dynamic["NEEDED"]
            assert "libggml.so.0" not in dynamic["NEEDED"]  # modules never link the loader


@x86_linux
def test_every_variant_scores_what_this_cpu_allows_and_the_best_is_chosen(built: Project, tmp_path: Path) -> None:
    relocated = tmp_path / "elsewhere" / "stage"
    shutil.copytree(built.root / "build/stage/cpu", relocated, symlinks=True)  # RUNPATHs are relative
    scores = probe("scores", str(relocated), cwd=tmp_path)
    flags = cpu_flags()
    variants = declared_x86_variants()
    assert set(scores) == {f"ggml-cpu-{v}" for v in variants}
    for variant, features in variants.items():
        score = scores[f"ggml-cpu-{variant}"]
        assert (score > 0) == supported(features, flags), f"{variant} scored {score}, needs {features}"
    runnable = [v for v, features in variants.items() if supported(features, flags)]
    best = max(runnable, key=lambda v: len(variants[v]))
    assert max(scores, key=lambda name: scores[name]) == f"ggml-cpu-{best}"


@x86_linux
def test_every_runnable_variant_computes_correctly_with_its_own_kernel(built: Project, tmp_path: Path) -> None:
    k, m, n = SHAPE["k"], SHAPE["m"], SHAPE["n"]
    a, b = inputs()
    expected_product = [sum(a[row * k + i] * b[col * k + i] for i in range(k)) for col in range(n) for row in range(m)]
    expected_norm = []
    for row in range(m):
        values = a[row * k : (row + 1) * k]
        mean = sum(values) / k
        variance = sum((v - mean) ** 2 for v in values) / k
        expected_norm += [(v - mean) / math.sqrt(variance + 1e-5) for v in values]

    flags = cpu_flags()
    kernels = {}
    for variant, features in declared_x86_variants().items():
        if not supported(features, flags):
            continue
        result = probe("compute", str(built.root / "build/stage/cpu"), f"ggml-cpu-{variant}", cwd=tmp_path)
        assert result["status"] == 0 and result["backend"] == "CPU"
        assert result["mul_mat"] == pytest.approx(expected_product, rel=1e-5, abs=1e-5), variant
        assert result["norm"] == pytest.approx(expected_norm, rel=1e-4, abs=1e-4), variant
        features_seen = result["features"]
        assert isinstance(features_seen, dict) and features_seen["VARIANT"] == variant
        kernels[variant] = features_seen["KERNEL"]
    assert kernels["x64"] == "sse2"  # the portable variant assumes nothing beyond x86-64
    if "haswell" in kernels:
        assert kernels["haswell"] == "avx2+fma"


@x86_linux  # names the x64 variant's module
def test_a_noop_rebuild_compiles_nothing_and_restages(built: Project) -> None:
    result = built.run("build", "--backend", "cpu")
    assert re.search(r"^cpu\s+built\b", result.stdout, re.MULTILINE)
    assert "ccache: nothing compiled" in result.stdout or "ccache" not in result.stdout
    assert (built.root / "build/stage/cpu/modules/libggml-cpu-x64.so").is_file()


def test_by_hand_preset_configures_the_same_options_as_the_driver(built: Project, tmp_path: Path) -> None:
    cmake = shutil.which("cmake", path=str(Path(sys.executable).parent)) or "cmake"
    by_hand = tmp_path / "by-hand"
    result = subprocess.run(
        [cmake, "--preset", "cpu", "-B", str(by_hand), f"-DLLAMA_CPP_RUNTIME_SOURCE_DIR={built.vendor}"],
        cwd=Path(__file__).parents[2] / "buildsys/cmake",
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr

    def options(cache: Path) -> dict[str, str]:
        entries = re.findall(r"^((?:GGML|LLAMA|BUILD_SHARED)\w*):\w+=(.*)$", cache.read_text(), re.MULTILINE)
        return {k: v for k, v in entries if not k.endswith(("_FOUND", "_DIR"))}

    assert options(by_hand / "CMakeCache.txt") == options(built.root / "build/cpu/CMakeCache.txt")


def test_build_refuses_a_vendor_tree_that_is_behind_the_configuration(built: Project, tmp_path: Path) -> None:
    stale = Project(tmp_path / "stale", built.upstream, built.commits, built.env)
    shutil.copytree(built.root, stale.root, symlinks=True, ignore=shutil.ignore_patterns("build"))
    stale.configure(built.commits[-2])
    refused = stale.run("build", "--backend", "cpu", expect=5)
    assert "vendor/llama.cpp is stale: the upstream commit (" in refused.stderr and "pinned) changed" in refused.stderr
    assert "nox -s apply-patches sync" in refused.stderr
    assert sorted(p.name for p in (stale.root / "build").glob("*")) in ([], [".buildsys-lock"])  # nothing built

    (stale.root / "vendor").rename(tmp_path / "moved-away")
    assert "has not been synced" in stale.run("build", expect=5).stderr


def test_a_build_tree_configured_before_a_pin_change_compiles_the_new_pin(tmp_path: Path) -> None:
    """CMake keeps a cache entry's first value: the commit compiled into ggml_commit() must follow the sync."""
    project = fresh_project(tmp_path)
    project.run("sync")
    project.run("build", "--backend", "cpu", "--configure-only")
    project.configure(project.commits[-2])
    project.run("apply-patches")
    project.run("sync")
    project.run("build", "--backend", "cpu", "--configure-only")
    cache = (project.root / "build/cpu/CMakeCache.txt").read_text()
    assert f"LLAMA_CPP_RUNTIME_UPSTREAM_COMMIT:STRING={project.commits[-2]}" in cache

    project.run("build", "--backend", "cpu", "--configure-only", "-D", "LLAMA_CPP_RUNTIME_UPSTREAM_COMMIT=mine")
    project.run("build", "--backend", "cpu", "--configure-only")  # a value the user set stays
    kept = (project.root / "build/cpu/CMakeCache.txt").read_text()
    assert re.search(r"^LLAMA_CPP_RUNTIME_UPSTREAM_COMMIT:\w+=mine$", kept, re.MULTILINE)


def test_an_option_a_preset_no_longer_sets_leaves_the_build_tree(tmp_path: Path) -> None:
    """CMake keeps a cache entry nobody sets again: after a change to the presets drops an option (GGML_RPC
    stayed ON that way), a re-configure of the same tree removes it instead of building what it asked for."""
    project = fresh_project(tmp_path)
    project.run("sync")
    project.run("build", "--backend", "cpu", "--configure-only", "-D", "GGML_MINE=1")
    record = project.root / "build/cpu/buildsys-options.json"
    options = json.loads(record.read_text())
    assert options["GGML_CPU_ALL_VARIANTS"] == "ON" and "GGML_MINE" not in options  # a -D is the user's
    record.write_text(json.dumps({**options, "GGML_DROPPED": "ON"}))  # what a configure of an older preset recorded
    cache = project.root / "build/cpu/CMakeCache.txt"
    cache.write_text(cache.read_text() + "GGML_DROPPED:BOOL=ON\n")  # and left in the cache
    project.run("build", "--backend", "cpu", "--configure-only")
    kept = cache.read_text()
    assert "GGML_DROPPED" not in kept and "GGML_MINE:UNINITIALIZED=1" in kept, kept
    assert "GGML_DROPPED" not in json.loads(record.read_text())


def test_a_copied_project_configures_from_an_empty_cache(built: Project, tmp_path: Path) -> None:
    """CMake refuses a cache made in another folder; the copy says why and configures afresh instead."""
    copy = Project(tmp_path / "copy", built.upstream, built.commits, built.env)
    shutil.copytree(built.root, copy.root, symlinks=True)
    result = copy.run("build", "--backend", "cpu", "--configure-only")
    assert f"its cache was made in {built.root / 'build/cpu'}: the project moved" in result.stderr, result.stderr
    assert re.search(r"^cpu\s+configured\b", result.stdout, re.MULTILINE), result.stdout
    assert copy.run("build", "--backend", "cpu", "--configure-only").stderr.count("the project moved") == 0


def test_build_refuses_an_include_pattern_that_matches_nothing(tmp_path: Path) -> None:
    project = fresh_project(tmp_path)
    typo = '["CMakeLists.txt", "LICENSE", "cmake/", "include/", "src/", "ggm/", "vendor/", "tools/mtmd/"]'
    project.configure(project.commits[-1], f"[sync]\ninclude = {typo}\n")
    synced = project.run("sync")
    assert "[sync] include 'ggm/' matches no upstream path (did you mean 'ggml/'?)" in synced.stderr, synced.stderr

    refused = project.run("build", "--backend", "cpu", expect=2)
    assert "include 'ggm/' matches no upstream path (did you mean 'ggml/'?): fix it" in refused.stderr
    assert refused.stderr.count("error:") == 1 and "Traceback" not in refused.stderr, refused.stderr


def test_build_names_cmake_that_needs_a_folder_the_subset_lacks_before_configuring(tmp_path: Path) -> None:
    project = fresh_project(tmp_path)
    narrow = '["CMakeLists.txt", "LICENSE", "cmake/", "include/", "src/", "ggml/", "tools/mtmd/"]'
    project.configure(project.commits[-1], f"[sync]\ninclude = {narrow}\n")
    project.run("sync")

    refused = project.run("build", "--backend", "cpu", expect=5)

    line = "CMakeLists.txt:28 add_subdirectory(vendor): vendor/ is not synced; add it to [sync] include"
    assert line in refused.stderr and "Traceback" not in refused.stderr, refused.stderr
    # libmtmd links vendor::minihash, but nothing names that path: only the folder CMake would enter is reported
    assert refused.stderr.count("is not synced") == 1
    assert not (project.root / "build/cpu").exists()  # refused before CMake ran
    project.configure(project.commits[-1])  # the default subset has vendor/
    project.run("sync")
    assert project.run("build", "--backend", "cpu", "--configure-only").returncode == 0
    # The configure recorded the preset with the cache it wrote: the next build walks the CMake again for no preset
    cpu = load_matrix().get("cpu")
    kept = reach_record.kept_cache_entries(project.root / "build/cpu")
    configured = dataclasses.replace(cpu, cache_variables={**kept, **cpu.cache_variables})
    assert kept and reach_record.unchecked(project.root / "build", project.vendor, [configured]) == []

    # A passed check is remembered, but only for that synced tree: narrowed again, the build is refused again
    project.configure(project.commits[-1], f"[sync]\ninclude = {narrow}\n")
    project.run("sync")
    assert line in project.run("build", "--backend", "cpu", expect=5).stderr


@pytest.mark.skipif(sys.platform == "darwin", reason="its presets (vulkan, cuda) do not apply to macOS")
def test_a_missing_toolchain_is_a_skip_with_its_reason_or_a_failure_when_asked_for(
    built: Project, tmp_path: Path
) -> None:
    bare_path = tmp_path / "bin"
    bare_path.mkdir()
    for tool in ("cc", "gcc"):  # a compiler, and neither glslc nor nvcc nor hipconfig
        found = shutil.which(tool)
        if found:
            (bare_path / tool).symlink_to(found)
    narrowed = {**built.env, "PATH": str(bare_path)}
    narrowed.pop("CUDA_PATH", None)
    narrowed.pop("CUDAToolkit_ROOT", None)

    plan = built.run("build", "--dry-run", env=narrowed, timeout=120)
    rows = {line.split()[0]: line for line in plan.stdout.splitlines() if line and not line.startswith((" ", "-"))}
    assert "planned" in rows["cpu"]
    assert "skipped" in rows["vulkan"] and "glslc (the GLSL to SPIR-V compiler) not found on PATH" in rows["vulkan"]
    assert "apt-get install glslc" in rows["vulkan"]
    for family_member in ("cuda13-sm75", "cuda13-sm90"):
        assert "skipped" in rows[family_member] and "nvcc not found" in rows[family_member]

    # asked for by its family's name: both members fail, each with its reason
    family = built.run("build", "--dry-run", "--backend", "cuda13", env=narrowed, timeout=120, expect=7)
    assert [line.split()[:2] for line in family.stdout.splitlines() if line.startswith("cuda")] == [
        ["cuda13-sm75", "failed"],
        ["cuda13-sm90", "failed"],
    ]

    vulkan_stage = built.root / "build/stage/vulkan"
    before = sorted(p.stat().st_mtime_ns for p in vulkan_stage.rglob("*")) if vulkan_stage.exists() else None
    asked = built.run("build", "--backend", "vulkan", env=narrowed, timeout=120, expect=7)
    assert re.search(r"^vulkan\s+failed\b.*glslc", asked.stdout, re.MULTILINE)
    assert "error: not built: vulkan" in asked.stderr
    after = sorted(p.stat().st_mtime_ns for p in vulkan_stage.rglob("*")) if vulkan_stage.exists() else None
    assert after == before  # nothing was built, staged or removed for it


def test_unknown_preset_and_bad_definitions_are_one_line_errors(built: Project) -> None:
    unknown = built.run("build", "--backend", "cuda", expect=2)
    assert "no preset named 'cuda'" in unknown.stderr and "Traceback" not in unknown.stderr
    bad = built.run("build", "-D", "GGML_NATIVE", expect=2)
    assert "is not NAME=VALUE" in bad.stderr
    empty = built.run("build", "--backend", "", expect=2)  # not "every preset"
    assert "--backend names no preset" in empty.stderr and "Traceback" not in empty.stderr
    for version in ("not a version!", "1.0.0-rc1", "v1"):
        refused = built.run("wheels", "--wheel-version", version, expect=2)
        assert f"--wheel-version {version!r} is not a PEP 440 version" in refused.stderr, refused.stderr
        assert not list(built.root.glob(f"dist/*{version}*"))  # refused before a wheel was written


@with_ccache
def test_ccache_serves_a_wiped_build_tree_and_a_new_patch_recompiles_only_what_it_touched(tmp_path: Path) -> None:
    project = fresh_project(tmp_path)
    project.run("sync")
    cold = project.run("build", "--backend", "cpu").stdout
    compiled = int(re.search(r"ccache 0/(\d+) hits", cold)[1])  # type: ignore[index]
    assert (project.root / "build/ccache").is_dir()

    shutil.rmtree(project.root / "build/cpu")
    warm = project.run("build", "--backend", "cpu").stdout
    assert f"ccache {compiled}/{compiled} hits" in warm

    # A new patch series (as after a bump or a patch edit) that changes one translation unit
    project.add_patch_commits(("llama: version 2", "src/llama-core.c", "{ return 1; }", "{ return 2; }"))
    project.run("create-patches")
    project.run("sync")
    shutil.rmtree(project.root / "build/cpu")
    patched = project.run("build", "--backend", "cpu").stdout
    assert f"ccache {compiled - 1}/{compiled} hits" in patched, patched


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler named cc to reach by another path")
def test_a_compiler_change_reconfigures_from_an_empty_cache_keeping_the_preset(tmp_path: Path) -> None:
    """CMake deletes its cache when a compiler variable changes and re-runs configure without the preset's
    variables: a real cuda13-sm90 tree, built with one nvcc and rebuilt with another, lost GGML_CUDA and
    then had no ggml-cuda target. The driver then configures again from an empty cache."""
    project = fresh_project(tmp_path)
    project.run("sync")
    first = project.run("build", "--backend", "cpu").stdout
    elsewhere = tmp_path / "bin" / "cc"  # the same compiler, reached by another path
    elsewhere.parent.mkdir()
    elsewhere.symlink_to(shutil.which("cc"))  # type: ignore[arg-type]

    again = project.run("build", "--backend", "cpu", "-D", f"CMAKE_C_COMPILER={elsewhere}")

    modules = sorted(p.name for p in (project.root / "build/stage/cpu/modules").iterdir())
    assert len(modules) > 1 and re.search(r"(\d+) modules", first)[1] == str(len(modules))  # type: ignore[index]
    assert "configure cpu from an empty cache (CMake reset it: a compiler changed)" in again.stderr
    cache = (project.root / "build/cpu/CMakeCache.txt").read_text()
    assert "GGML_CPU_ALL_VARIANTS:BOOL=ON" in cache and f"CMAKE_C_COMPILER:STRING={elsewhere}" in cache


@x86_linux  # the injected error sits in the AVX2 kernel
def test_a_compile_error_is_replayed_briefly_and_fails_the_build(tmp_path: Path) -> None:
    project = fresh_project(tmp_path)
    project.add_patch_commits(
        (
            "break the AVX2 kernel",
            "ggml/src/ggml-cpu/ops.c",
            "    __m256 acc = _mm256_setzero_ps();",
            "    __m256 acc = _mm256_setzero_ps();\n#ifdef __AVX2__\n    injected_compile_error;\n#endif",
        ),
    )
    project.run("create-patches")
    project.run("sync")

    failed = project.run("build", expect=7)
    assert re.search(r"^cpu\s+failed\s+\S+\s+build failed at ops.c.o", failed.stdout, re.MULTILINE)
    assert not (project.root / "build/stage/cpu").exists()
    assert "FAILED: " in failed.stderr and "ops.c" in failed.stderr
    assert "injected_compile_error" in failed.stderr and "error:" in failed.stderr
    assert "(full log: build/logs/cpu.log)" in failed.stderr
    assert len(failed.stderr.splitlines()) < 60  # the failing command and its lines, not the whole log
    assert "injected_compile_error" in (project.root / "build/logs/cpu.log").read_text()
    assert "error: not built: cpu" in failed.stderr


@vulkan
def test_vulkan_preset_stages_only_its_module_and_it_computes_on_lavapipe(built: Project, tmp_path: Path) -> None:
    result = built.run("build", "--backend", "vulkan")
    assert re.search(r"^vulkan\s+built\b.*1 modules", result.stdout, re.MULTILINE)
    stage = built.root / "build/stage/vulkan"
    assert sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file()) == [
        "modules/libggml-vulkan.so",
        "stage.json",
    ]  # no second copy of the core libraries
    dynamic = readelf_dynamic(stage / "modules/libggml-vulkan.so")
    assert dynamic["RUNPATH"] == ["$ORIGIN/../lib"]
    assert "libvulkan.so.1" in dynamic["NEEDED"] and "libggml-base.so.0" in dynamic["NEEDED"]

    # The core stage plus the plugin's module, as an installed core wheel plus plugin would be.
    combined = tmp_path / "combined"
    shutil.copytree(built.root / "build/stage/cpu", combined, symlinks=True)
    shutil.copy2(stage / "modules/libggml-vulkan.so", combined / "modules")
    lavapipe = {**os.environ, "GGML_VK_VISIBLE_DEVICES": "0"}
    computed = probe("compute", str(combined), "ggml-vulkan", cwd=tmp_path, env=lavapipe)
    reference = probe("compute", str(combined), "ggml-cpu-x64", cwd=tmp_path)
    assert computed["backend"] == "Vulkan" and computed["status"] == 0
    assert computed["mul_mat"] == pytest.approx(reference["mul_mat"], rel=1e-5, abs=1e-5)
    assert computed["norm"] == pytest.approx(reference["norm"], rel=1e-4, abs=1e-4)


@pytest.mark.skipif(not shutil.which("nvcc"), reason="needs a CUDA toolkit on PATH (the CI image has CUDA 13)")
def test_cuda_without_cublas_is_skipped_with_the_wheel_to_install(built: Project) -> None:
    plan = built.run("build", "--dry-run").stdout
    row = next(line for line in plan.splitlines() if line.startswith("cuda13-sm90 "))
    version = subprocess.run(["nvcc", "--version"], capture_output=True, text=True, check=False).stdout
    if "release 13." in version:
        assert "skipped" in row and "pip install nvidia-cublas" in row
    else:
        assert "skipped" in row and "this preset needs CUDA 13" in row
