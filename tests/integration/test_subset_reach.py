"""The subset check on real llama.cpp trees (issue #32): CMake's own rule that a variable nothing sets is false
decides which backend folders a subset may leave out.

The check is called directly on the trees in the repository that tests/helpers/real_llama_cpp.py makes (the
same function `bump` calls), and once through `build --dry-run`, which runs it before anything is configured
and which passes `-D` definitions to it.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

import pytest
from helpers.real_projects import project_at
from helpers.support import REPO_ROOT

from buildsys.builder.cmake_reach import MissingPath, missing_for_presets, tracked_files
from buildsys.builder.presets import Preset, load_matrix
from buildsys.config import load_config
from buildsys.git import Git
from buildsys.pathfilter import PathFilter

pytestmark = [
    pytest.mark.real_upstream,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="real llama.cpp trees are tested on Linux"),
]

PIN = "v0.3.35"  # llama-cpp-python 0.3.35 vendors the commit vendoring.toml pins
UNBUILT = ("ggml/src/ggml-cann/", "ggml/src/ggml-sycl/", "ggml/src/ggml-musa/")  # the exclusions
CANN = "ggml/src/CMakeLists.txt:474 ggml_add_backend(CANN): ggml/src/ggml-cann/ is not synced; add it to [sync] include"
VULKAN = (
    "ggml/src/CMakeLists.txt:483 ggml_add_backend(Vulkan): ggml/src/ggml-vulkan/ is not synced; "
    "add it to [sync] include"
)
MTMD_VENDOR = (
    "tools/mtmd/CMakeLists.txt:84 target_include_directories(mtmd PRIVATE ../../vendor): vendor/ is not synced; "
    "add it to [sync] include"
)


def subset(*excluded: str, include: tuple[str, ...] | None = None) -> PathFilter:
    """This repository's [sync] subset, with more excluded (or another include list)."""
    sync = load_config(REPO_ROOT / "vendoring.toml", env={}).sync
    return PathFilter(include or sync.include, (*sync.exclude, *excluded))


def presets(*names: str, **definitions: str) -> list[Preset]:
    matrix = load_matrix()
    chosen = [matrix.get(name) for name in names] if names else list(matrix.presets)
    return [dataclasses.replace(p, cache_variables={**p.cache_variables, **definitions}) for p in chosen]


def check(real_llama_cpp: Path, filter_: PathFilter, chosen: list[Preset], revision: str = PIN) -> list[str]:
    missing: list[MissingPath] = missing_for_presets(tracked_files(Git(real_llama_cpp), revision, filter_), chosen)
    return [str(m) for m in missing]


@pytest.mark.parametrize("revision", [PIN, "v0.3.36"])
def test_the_default_subset_serves_every_preset(real_llama_cpp: Path, revision: str) -> None:
    assert check(real_llama_cpp, subset(), presets(), revision) == []


def test_backends_nobody_builds_here_may_be_left_out_of_the_subset(real_llama_cpp: Path) -> None:
    """GGML_CANN is no option() anywhere: unset, so false; SYCL and MUSA are options that default to OFF."""
    assert check(real_llama_cpp, subset(*UNBUILT), presets("cpu")) == []
    assert check(real_llama_cpp, subset(*UNBUILT), presets("vulkan")) == []


@pytest.mark.parametrize(
    "definition",
    [{"GGML_CANN": "ON"}, {"LLAMA_CANN": "ON"}],  # LLAMA_CANN: llama.cpp's deprecation helper sets GGML_CANN
    ids=["GGML_CANN", "LLAMA_CANN"],
)
def test_a_definition_that_turns_the_backend_on_makes_the_folder_needed(
    real_llama_cpp: Path, definition: dict[str, str]
) -> None:
    assert check(real_llama_cpp, subset(*UNBUILT), presets("cpu", **definition)) == [CANN]


def test_a_backend_a_preset_builds_is_still_needed_by_that_preset_only(real_llama_cpp: Path) -> None:
    without_vulkan = subset("ggml/src/ggml-vulkan/")
    assert check(real_llama_cpp, without_vulkan, presets("vulkan")) == [VULKAN]
    assert check(real_llama_cpp, without_vulkan, presets("cpu")) == []
    assert check(real_llama_cpp, without_vulkan, presets()) == [VULKAN]  # bump's report: every preset


@pytest.mark.parametrize(
    ("excluded", "expected"),
    [
        (("vendor/",), MTMD_VENDOR),
        (("src/",), "CMakeLists.txt:221 add_subdirectory(src): src/ is not synced; add it to [sync] include"),
        (
            ("ggml/src/ggml-cpu/",),
            "ggml/src/CMakeLists.txt:369 ggml_add_backend(CPU): ggml/src/ggml-cpu/ is not synced; "
            "add it to [sync] include",
        ),
        (
            ("ggml/include/",),
            "ggml/src/CMakeLists.txt:192 add_library(ggml-base ../include/ggml.h ../include/ggml-alloc.h ../in...): "
            "ggml/include/ is not synced; add it to [sync] include",
        ),
    ],
    ids=["vendor", "src", "ggml-cpu", "ggml-include"],
)
def test_subset_drift_that_breaks_the_cpu_build_is_still_refused(
    real_llama_cpp: Path, excluded: tuple[str, ...], expected: str
) -> None:
    assert check(real_llama_cpp, subset(*excluded), presets("cpu")) == [expected]


def test_a_path_needed_only_on_some_platforms_names_the_condition_it_depends_on(real_llama_cpp: Path) -> None:
    """GGML_SYSTEM_ARCH comes from CMAKE_SYSTEM_PROCESSOR: only CMake knows it. The refusal says so, at the ARM
    variant's call: inside the x86 variants the walk knows the architecture is x86, as CMake would."""
    (found,) = check(real_llama_cpp, subset("ggml/src/ggml-cpu/arch/arm/"), presets("cpu"))
    assert found.startswith(
        "ggml/src/CMakeLists.txt:408 ggml_add_cpu_backend_variant(armv8.0_1): ggml/src/ggml-cpu/arch/arm/ is not "
        'synced; whether CMake needs it depends on `GGML_SYSTEM_ARCH STREQUAL "ARM"` (ggml/src/CMakeLists.txt:403) '
        'and `CMAKE_SYSTEM_NAME MATCHES "Linux"` (ggml/src/CMakeLists.txt:404), which cannot be decided before '
        "CMake runs"
    ), found


def test_the_x86_variants_keep_the_presets_native_off_so_findsimd_is_not_needed(real_llama_cpp: Path) -> None:
    """The x86 variants set GGML_NATIVE OFF, which the preset already has: FindSIMD.cmake (MSVC, native only)
    is not reported."""
    found = check(real_llama_cpp, subset("ggml/src/ggml-cpu/cmake/", "ggml/src/ggml-cpu/amx/"), presets("cpu"))
    assert [line.split(": ")[1].split(" ")[0] for line in found] == ["ggml/src/ggml-cpu/amx/"], found
    assert 'depends on `GGML_SYSTEM_ARCH STREQUAL "x86"` (ggml/src/CMakeLists.txt:377),' in found[0]


def test_the_newer_tree_adds_vendor_unconditionally(real_llama_cpp: Path) -> None:
    old_include = ("CMakeLists.txt", "LICENSE", "licenses/", "cmake/", "include/", "src/", "ggml/", "tools/mtmd/")
    assert check(real_llama_cpp, subset(include=old_include), presets("cpu")) == [MTMD_VENDOR]
    assert check(real_llama_cpp, subset(include=old_include), presets("cpu"), "v0.3.36") == [
        "CMakeLists.txt:237 add_subdirectory(vendor): vendor/ is not synced; add it to [sync] include"
    ]


def test_build_passes_definitions_and_the_cmake_cache_to_the_check(
    real_llama_cpp: Path, tmp_path: Path, env: dict[str, str]
) -> None:
    """`build --dry-run` checks the subset the way `build` does, and configures nothing."""
    project = project_at(tmp_path / "project", real_llama_cpp, PIN.removeprefix("v"), env)
    config = project.root / "vendoring.toml"
    unbuilt = "".join(f'    "{folder}",\n' for folder in UNBUILT)
    config.write_text(re.sub(r"(?m)^exclude = \[\n", lambda m: m.group(0) + unbuilt, config.read_text()))
    project.run("apply-patches")
    project.run("sync")

    assert project.run("build", "--dry-run", "--backend", "cpu").returncode == 0
    refused = project.run("build", "--dry-run", "--backend", "cpu", "-D", "GGML_CANN=ON", expect=5)
    assert "error: the synced CMake needs 1 path(s) that vendoring.toml does not sync" in refused.stderr
    assert CANN in refused.stderr and "Traceback" not in refused.stderr, refused.stderr
    assert project.run("build", "--dry-run", "--backend", "cpu").returncode == 0  # the record is keyed on -D

    # A -D given to an earlier configure stays in the CMake cache: CMake would enter the folder again.
    (project.root / "build/cpu").mkdir(parents=True)
    (project.root / "build/cpu/CMakeCache.txt").write_text("GGML_CANN:UNINITIALIZED=ON\n")
    assert CANN in project.run("build", "--dry-run", "--backend", "cpu", expect=5).stderr
    assert project.run("build", "--dry-run", "--fresh", "--backend", "cpu").returncode == 0
    assert not (project.root / "build/cpu/build.ninja").exists()
