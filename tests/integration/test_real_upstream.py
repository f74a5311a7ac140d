"""The workflow on real ggml history, from the local mirror named by BUILDSYS_REAL_UPSTREAM."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from helpers.support import REPO_ROOT, GitRepo, Project

from buildsys.builder.presets import load_matrix
from buildsys.git import Git
from buildsys.pathfilter import PathFilter
from buildsys.upkeep.bumpreport import build_lines
from buildsys.upkeep.upstream_changes import describe_range

pytestmark = [pytest.mark.real_upstream]

MIRROR = os.environ.get("BUILDSYS_REAL_UPSTREAM")
# ggml-org/ggml's mirror of the pinned llama.cpp ggml/ tree (its scripts/sync-llama.last).
GGML_AT_PIN = "8599e0ea3756c4bac4ef813af2241cb1a8bbfb0b"
GGML_LAYOUT = (
    '[sync]\ndestination = "vendor/ggml"\n'
    'include = ["CMakeLists.txt", "LICENSE", "ggml.pc.in", "cmake/", "include/", "src/"]\n'
)


@pytest.fixture
def real_project(tmp_path: Path, env: dict[str, str]) -> Project:
    if not MIRROR:
        pytest.skip("set BUILDSYS_REAL_UPSTREAM to a local mirror of ggml-org/ggml")
    root = tmp_path / "project"
    root.mkdir()
    project = Project(root, GitRepo(Path(MIRROR), env), [GGML_AT_PIN], env)
    project.configure(GGML_AT_PIN, GGML_LAYOUT)
    return project


def test_patch_round_trip_sync_and_check_on_real_ggml(real_project: Project) -> None:
    project = real_project
    project.run("apply-patches")
    tracking = project.tracking
    cmake = tracking.read("src/CMakeLists.txt")
    tracking.write("src/CMakeLists.txt", cmake + "# buildsys: real-upstream round trip\n")
    tracking.commit("cmake: mark the tree as vendored")
    project.run("create-patches")
    exported = project.patch_bytes()

    project.run("apply-patches")
    project.run("create-patches")
    project.run("sync")

    assert project.patch_bytes() == exported
    vendor = project.root / "vendor" / "ggml"
    assert (vendor / "src/CMakeLists.txt").read_text().endswith("# buildsys: real-upstream round trip\n")
    assert (vendor / "include/ggml-backend.h").is_file()
    assert not (vendor / "examples").exists() and not (vendor / "README.md").exists()
    assert "no drift" in project.run("check").stderr


def test_our_patches_apply_to_real_ggml_and_every_buildable_preset_configures(real_project: Project) -> None:
    """patches/ of this repository (llama.cpp paths) on the ggml mirror, then the superbuild over it."""
    project = real_project
    project.patches.mkdir()
    for patch in sorted((REPO_ROOT / "patches").glob("*.patch")):
        ggml_paths = re.sub(rb"(?m)^(diff --git a/|--- a/|\+\+\+ b/| )ggml/", rb"\1", patch.read_bytes())
        ggml_paths = ggml_paths.replace(b" b/ggml/", b" b/")
        (project.patches / patch.name).write_bytes(ggml_paths)
    applied = project.run("apply-patches")
    assert re.search(r"clean\s+0001-vulkan-build-with-Vulkan-Headers", applied.stderr)
    project.run("sync")

    presets = "cpu,vulkan" if shutil.which("glslc") else "cpu"
    result = project.run("build", "--configure-only", "--backend", presets)
    for preset in presets.split(","):
        assert re.search(rf"^{preset}\s+configured\b", result.stdout, re.MULTILINE), result.stdout
    cache = (project.root / "build/cpu/CMakeCache.txt").read_text()
    assert "GGML_CPU_ALL_VARIANTS:BOOL=ON" in cache


def test_a_backend_left_out_of_the_subset_is_needed_only_when_a_definition_turns_it_on(
    real_project: Project,
) -> None:
    """ggml_add_backend(CANN) tests GGML_CANN, which no option() declares: unset, so false, as CMake says."""
    project = real_project
    project.configure(GGML_AT_PIN, GGML_LAYOUT + 'exclude = ["src/ggml-cann/**"]\n')
    project.run("apply-patches")
    project.run("sync")
    assert not (project.root / "vendor/ggml/src/ggml-cann").exists()

    assert project.run("build", "--dry-run", "--backend", "cpu").returncode == 0
    refused = project.run("build", "--dry-run", "--backend", "cpu", "-D", "GGML_CANN=ON", expect=5)
    line = "src/CMakeLists.txt:588 ggml_add_backend(CANN): src/ggml-cann/ is not synced; add it to [sync] include"
    assert line in refused.stderr, refused.stderr


# Three points of ggml's real history (June to July 2026): 150 commits apart, with an option rename
# (GGML_SYCL_SUPPORT_LEVEL_ZERO) and a HIP change that we carry as a patch before it lands upstream.
GGML_JUNE = "812c5772e6ec72641c085bfb0259c3be26603f63"
GGML_JULY = "9f186280fea410f1602c74cf3b83c4d526dcd286"
HIP_FAST_MATH = "40423e6ddf5d0ded7f66e2291f9b6d73a441da6f"  # between the two


def test_bump_across_real_ggml_drops_the_patch_upstream_merged_and_names_the_rename(
    real_project: Project,
) -> None:
    project = real_project
    project.configure(GGML_JUNE, GGML_LAYOUT)
    project.run("apply-patches")
    tracking = project.tracking
    tracking.git("fetch", "-q", "upstream", HIP_FAST_MATH)
    tracking.git("cherry-pick", HIP_FAST_MATH)  # carried as our patch until upstream has it
    text = tracking.read("src/ggml-hip/CMakeLists.txt")
    tracking.write(
        "src/ggml-hip/CMakeLists.txt",
        text.replace(
            "    add_compile_definitions(GGML_HIP_NO_VMM)\n",
            '    add_compile_definitions(GGML_HIP_NO_VMM)\n    message(STATUS "HIP: VMM disabled")\n',
        ),
    )
    tracking.commit("hip: say when VMM is disabled")
    project.run("create-patches")
    project.run("sync")

    summary = project.run("bump", GGML_JULY).stdout

    assert "Patches: 2 → 1 (1 applied cleanly, 1 already upstream, dropped)." in summary
    assert f"same change as upstream {HIP_FAST_MATH[:12]}" in summary
    assert "option renamed: `GGML_SYCL_SUPPORT_LEVEL_ZERO` → `GGML_SYCL_SUPPORT_LEVEL_ZERO_API`" in summary
    assert sorted(project.patch_bytes()) == ["0001-hip-say-when-VMM-is-disabled.patch"]
    assert f'commit = "{GGML_JULY}"' in (project.root / "vendoring.toml").read_text()
    assert "no drift" in project.run("check").stderr


@pytest.mark.parametrize(
    ("commit", "expected"),
    [
        (
            "62b6d8ce",
            "- new CPU variant(s): `cannonlake`, `cascadelake`, `cooperlake`, `ivybridge`, `piledriver`, `zen4`",
        ),
        ("7b7bb1b2", "- minimum CMake: 3.14 → 3.14...3.28 (`CMakeLists.txt`)"),
        ("2e2ec9cc", "- minimum CMake: 3.19 (new in `src/ggml-virtgpu/CMakeLists.txt`)"),
    ],
)
def test_the_build_report_reads_real_ggml_commits(commit: str, expected: str) -> None:
    """Single upstream commits that added CPU variants, moved the CMake minimum, added a backend."""
    if not MIRROR:
        pytest.skip("set BUILDSYS_REAL_UPSTREAM to a local mirror of ggml-org/ggml")
    git = Git(Path(MIRROR))
    full = git.text("rev-parse", commit)
    subset = PathFilter(("CMakeLists.txt", "LICENSE", "ggml.pc.in", "cmake/", "include/", "src/"), ("**/*.md",))

    changes = describe_range(git, f"{full}^", full, subset, load_matrix().presets)

    assert expected in build_lines(changes)
