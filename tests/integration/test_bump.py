"""`bump`: the pin moves to a later upstream commit and the patch queue comes along, over real git."""

from __future__ import annotations

import os
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.support import GitRepo, Project, fresh_project, snapshot

ACCUMULATOR = "    double sum = 0.0;"
LOG_LINE = "    fputs(text, stderr);"
CCACHE_OPTION = 'option(GGML_CCACHE           "ggml: use ccache if available" ON)'


@dataclass
class Upstream:
    """Commits made upstream after the pin, each exercising one way a patch of ours can fare."""

    merged_identically: str  # the very change of our llama.h patch, as upstream's own commit
    merged_in_larger_commit: str  # the change of our log patch, inside a commit touching more
    accumulator_commented: str  # edits two lines above our 3-way patch's line
    version_two: str  # our version patch's change, amid edits one line above and below it
    build_changes: str  # option renamed and added, CPU variant, backend, CMake minimum, files in/out


def _replace(repo: GitRepo, path: str, old: str, new: str) -> None:
    text = repo.read(path)
    assert old in text, f"{old!r} not in {path}"
    repo.write(path, text.replace(old, new, 1))


def grow_upstream(repo: GitRepo) -> Upstream:
    _replace(repo, "include/llama.h", "int llama_version(void);", "int llama_version(void);\nint llama_patched(void);")
    merged = repo.commit("llama : add llama_patched (#101)")
    _replace(repo, "ggml/src/ggml.c", LOG_LINE, '    fputs("ggml: ", stderr);\n' + LOG_LINE)
    _replace(
        repo,
        "ggml/src/ggml.c",
        "static void * g_log_user_data = NULL;",
        "static void * g_log_user_data = NULL; // the callback's",
    )
    larger = repo.commit("ggml : prefix log lines (#102)")
    _replace(repo, "ggml/src/ggml.c", ACCUMULATOR, ACCUMULATOR + " // accumulate in double precision")
    commented = repo.commit("ggml : comment the accumulator (#103)")
    _replace(repo, "src/llama-core.c", "#include <stdio.h>\n", "#include <stdio.h>\n#include <string.h>\n")
    _replace(repo, "src/llama-core.c", "{ return 1; }", "{ return 2; }")
    _replace(
        repo,
        "src/llama-core.c",
        "const char * llama_print_system_info(void) {",
        "// one line per backend\nconst char * llama_print_system_info(void) {",
    )
    version_two = repo.commit("llama : version 2, include string.h (#104)")
    _replace(
        repo,
        "ggml/CMakeLists.txt",
        "cmake_minimum_required(VERSION 3.14...3.28)",
        "cmake_minimum_required(VERSION 3.18...3.28)",
    )
    _replace(repo, "ggml/CMakeLists.txt", CCACHE_OPTION, CCACHE_OPTION.replace("GGML_CCACHE ", "GGML_USE_CCACHE"))
    _replace(
        repo,
        "ggml/CMakeLists.txt",
        "option(GGML_METAL ",
        'option(GGML_OPENCL               "ggml: use OpenCL"               OFF)\noption(GGML_METAL ',
    )
    _replace(repo, "ggml/src/CMakeLists.txt", "GGML_CCACHE AND", "GGML_USE_CCACHE AND")
    _replace(
        repo,
        "ggml/src/CMakeLists.txt",
        "        ggml_add_cpu_backend_variant(alderlake",
        "        ggml_add_cpu_backend_variant(zen4        SSE42 AVX F16C FMA AVX2 BMI2 AVX512)\n"
        "        ggml_add_cpu_backend_variant(alderlake",
    )
    _replace(
        repo,
        "ggml/src/CMakeLists.txt",
        "ggml_add_backend(Vulkan)",
        "ggml_add_backend(Vulkan)\nggml_add_backend(OpenCL)",
    )
    repo.write("ggml/src/ggml-opencl/CMakeLists.txt", "ggml_add_backend_library(ggml-opencl ggml-opencl.c)\n")
    repo.write("ggml/src/ggml-opencl/ggml-opencl.c", "/* an OpenCL backend */\n")
    repo.git("rm", "-q", "ggml/src/gen-version.sh")
    build = repo.commit("ggml : OpenCL backend, zen4 variant, GGML_USE_CCACHE (#105)")
    repo.git("tag", "b0105")
    return Upstream(merged, larger, commented, version_two, build)


def with_patches(project: Project, *edits: tuple[str, str, str, str]) -> Project:
    project.add_patch_commits(*edits)
    project.run("create-patches")
    project.run("sync")
    return project


CLEAN = (
    "build: say we build a runtime",
    "CMakeLists.txt",
    "option(LLAMA_BUILD_COMMON",
    "# ours: a runtime, no tools\noption(LLAMA_BUILD_COMMON",
)
IDENTICAL = (
    "llama: declare llama_patched",
    "include/llama.h",
    "int llama_version(void);",
    "int llama_version(void);\nint llama_patched(void);",
)
CONTAINED = ("ggml: prefix our log lines", "ggml/src/ggml.c", LOG_LINE, '    fputs("ggml: ", stderr);\n' + LOG_LINE)
THREE_WAY = ("ggml: widen before multiplying", "ggml/src/ggml.c", "sum += a[i] * b[i];", "sum += (double) a[i] * b[i];")
MERGED_BY_3WAY = ("llama: report version 2", "src/llama-core.c", "{ return 1; }", "{ return 2; }")
CONFLICTING = ("ggml: long double accumulator", "ggml/src/ggml.c", ACCUMULATOR, "    long double sum = 0.0L;")


@pytest.fixture
def bumping(tmp_path: Path) -> tuple[Project, Upstream]:
    project = fresh_project(tmp_path)
    return project, grow_upstream(project.upstream)


def pin(project: Project) -> dict[str, str]:
    return dict(tomllib.loads((project.root / "vendoring.toml").read_text())["upstream"])


def test_bump_carries_each_patch_its_own_way_and_reports_the_build_changes(bumping: tuple[Project, Upstream]) -> None:
    project, upstream = bumping
    with_patches(project, CLEAN, IDENTICAL, CONTAINED, THREE_WAY, MERGED_BY_3WAY)
    toml_before = (project.root / "vendoring.toml").read_text()
    shutil.rmtree(project.root / "build")  # a fresh clone: patches/ alone is the queue

    result = project.run("bump", "b0105")

    out = result.stdout
    assert (
        "| `0001-build-say-we-build-a-runtime.patch` | applied cleanly | `0001-build-say-we-build-a-runtime.patch` |"
        in out
    )
    merged = upstream.merged_identically[:12]
    assert (
        f"| `0002-llama-declare-llama_patched.patch` | already upstream, dropped: same change as upstream "
        f"{merged} 'llama : add llama_patched (#101)' (patch-id) | — |"
    ) in out
    assert (
        "| `0003-ggml-prefix-our-log-lines.patch` | already upstream, dropped: its change is already in the "
        "upstream tree (reverse-applies, does not apply) | — |"
    ) in out
    assert (
        "| `0004-ggml-widen-before-multiplying.patch` | applied with a 3-way merge | "
        "`0002-ggml-widen-before-multiplying.patch` |"
    ) in out
    assert (
        "| `0005-llama-report-version-2.patch` | already upstream, dropped: the 3-way merge left nothing "
        "to change | — |"
    ) in out
    assert "Patches: 5 → 2 (1 applied cleanly, 1 applied with a 3-way merge, 3 already upstream, dropped)." in out
    assert "option renamed: `GGML_CCACHE` → `GGML_USE_CCACHE` (same description)" in out
    assert "option added: `GGML_OPENCL` ('ggml: use OpenCL', default `OFF`) in `ggml/CMakeLists.txt`" in out
    assert "new backend(s): `OpenCL`" in out
    assert "new CPU variant(s): `zen4`" in out
    assert "minimum CMake: 3.14...3.28 → 3.18...3.28 (`ggml/CMakeLists.txt`)" in out
    assert (
        "2 file(s) enter the synced subset: `ggml/src/ggml-opencl/CMakeLists.txt`, `ggml/src/ggml-opencl/ggml-opencl.c`"
        in out
    )
    assert "1 file(s) leave the synced subset: `ggml/src/gen-version.sh`" in out
    assert "set GGML_CCACHE, renamed upstream to GGML_USE_CCACHE: update CMakePresets.json" in out
    assert "new backend OpenCL: no preset builds it" in out
    assert (project.root / "build" / "bump-summary.md").read_text() == out

    assert pin(project) == {"url": str(project.upstream.path), "commit": upstream.build_changes, "ref": "b0105"}
    assert (
        toml_before.replace(project.commits[-1], upstream.build_changes)
        in (project.root / "vendoring.toml").read_text()
    )
    assert sorted(project.patch_bytes()) == [
        "0001-build-say-we-build-a-runtime.patch",
        "0002-ggml-widen-before-multiplying.patch",
    ]
    assert "(double) a[i] * b[i]" in (project.vendor / "ggml/src/ggml.c").read_text()
    assert (project.vendor / "ggml/src/ggml-opencl/CMakeLists.txt").exists()
    assert not (project.vendor / "ggml/src/gen-version.sh").exists()
    project.run("check")
    exported = project.patch_bytes()
    project.run("apply-patches")
    project.run("create-patches")
    assert project.patch_bytes() == exported  # the new queue round-trips on the new pin

    back = project.run("bump", upstream.accumulator_commented).stdout  # the pin can move back too
    assert "**Moves back** 2 upstream commit(s): the target is an ancestor of the old pin." in back
    assert pin(project)["commit"] == upstream.accumulator_commented and "ref" not in pin(project)
    project.run("check")


@pytest.mark.parametrize("resolution", ["resolve", "skip"])
def test_a_conflict_stops_with_nothing_changed_and_continue_finishes(
    bumping: tuple[Project, Upstream], resolution: str
) -> None:
    project, upstream = bumping
    with_patches(project, CLEAN, CONFLICTING)
    before = snapshot(project.root, skip=("build",))

    stopped = project.run("bump", upstream.accumulator_commented[:10], expect=4)

    assert "error: patch 0002-ggml-long-double-accumulator.patch (2 of 2) does not apply on" in stopped.stderr
    assert "vendoring.toml and patches/ are unchanged" in stopped.stderr
    assert "build/upstream/ggml/src/ggml.c" in stopped.stderr
    assert "then `nox -s bump -- --continue`" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert snapshot(project.root, skip=("build",)) == before
    assert "then `nox -s bump -- --continue`" in project.run("status").stdout
    second = project.run("bump", "b0105", expect=2)
    assert "is in progress" in second.stderr and "--continue" in second.stderr
    tracking = project.tracking
    if resolution == "resolve":
        text = tracking.read("ggml/src/ggml.c")
        start = text.index("<<<<<<<")
        end = text.index(">>>>>>>")
        end = text.index("\n", end) + 1
        tracking.write(
            "ggml/src/ggml.c", text[:start] + "    long double sum = 0.0L; // accumulate in long double\n" + text[end:]
        )
        tracking.git("add", "ggml/src/ggml.c")
        tracking.git("am", "--continue")
    else:
        tracking.git("am", "--skip")

    assert "under way at patch 2: `nox -s bump -- --continue`" in project.run("status").stdout
    habit = project.run("create-patches", expect=2)  # what a maintainer types after `am --continue` elsewhere
    assert "a bump from" in habit.stderr and "is in progress" in habit.stderr and "--continue" in habit.stderr
    project.run("sync", expect=2)
    config = project.root / "vendoring.toml"
    kept = project.root / "vendoring.toml.kept"
    shutil.copy2(config, kept)
    project.configure(upstream.accumulator_commented)  # the pin moved to the target by hand
    for command in ("create-patches", "sync"):  # neither may drop the patch the bump has not carried yet
        moved = project.run(command, expect=2)
        assert "is in progress" in moved.stderr and "removed" not in moved.stderr, moved.stderr
    os.replace(kept, config)  # as it was, modification time included
    assert snapshot(project.root, skip=("build",)) == before

    finished = project.run("bump", "--continue")

    assert pin(project)["commit"] == upstream.accumulator_commented
    assert "ref" not in pin(project)  # an abbreviated commit names no branch or tag
    if resolution == "resolve":
        assert "| `0002-ggml-long-double-accumulator.patch` | conflicted, resolved by hand |" in finished.stdout
        assert "long double sum = 0.0L; // accumulate" in (project.vendor / "ggml/src/ggml.c").read_text()
        assert len(project.patch_bytes()) == 2
    else:
        assert (
            "| `0002-ggml-long-double-accumulator.patch` | conflicted, dropped by hand: git am --skip | — |"
            in finished.stdout
        )
        assert sorted(project.patch_bytes()) == ["0001-build-say-we-build-a-runtime.patch"]
    project.run("check")


def test_abort_goes_back_to_the_pinned_commit_and_patches(bumping: tuple[Project, Upstream]) -> None:
    project, upstream = bumping
    with_patches(project, CLEAN, CONFLICTING)
    before = snapshot(project.root, skip=("build",))
    project.run("bump", upstream.accumulator_commented, expect=4)
    refused = project.run("bump", "--abort", expect=3)
    assert "git -C build/upstream am --abort" in refused.stderr  # the half-resolved am is the maintainer's to drop

    project.tracking.git("am", "--abort")
    project.run("bump", "--abort")

    assert snapshot(project.root, skip=("build",)) == before
    assert project.tracking.out("rev-parse", "HEAD~2") == project.commits[-1]
    project.run("check")
    project.run("bump", "--continue", expect=2)


def test_bump_refuses_what_would_lose_work_or_cannot_be_done(bumping: tuple[Project, Upstream]) -> None:
    project, _ = bumping
    with_patches(project, CLEAN)
    before = snapshot(project.root, skip=("build", "vendor"))

    assert project.run("bump", expect=2).stderr.startswith("error: bump takes exactly one of")
    assert project.run("bump", "--continue", expect=2).stderr.startswith("error: no bump is in progress")
    unknown = project.run("bump", "no-such-tag", expect=1)
    assert "error: 'no-such-tag' is neither a branch, a tag nor a commit of" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    same = project.run("bump", project.commits[-1])
    assert "the commit already pinned: nothing to do" in same.stderr

    edited = project.vendor / "ggml/src/ggml.c"
    edited.write_text(edited.read_text() + "/* by hand */\n")
    hand_edit = project.run("bump", "b0105", expect=3)
    assert "1 file(s) in vendor/llama.cpp were edited or added by hand" in hand_edit.stderr
    # the hint is a command that exists (bump has no --force)
    assert "discard them with `nox -s sync -- --force`, then run the bump again" in hand_edit.stderr
    project.run("sync", "--force")

    project.add_patch_commits(
        ("ggml: not yet exported", "ggml/src/ggml.c", "#include <stdio.h>", "#include <stdio.h> ")
    )
    unexported = project.run("bump", "b0105", expect=3)
    assert "1 commit(s) not exported to patches/" in unexported.stderr
    assert snapshot(project.root, skip=("build", "vendor")) == before
    assert pin(project)["commit"] == project.commits[-1]


def test_bumping_to_a_tag_of_the_pinned_commit_only_records_the_tag(bumping: tuple[Project, Upstream]) -> None:
    project, _ = bumping
    with_patches(project, CLEAN)
    patches = project.patch_bytes()
    project.upstream.git("tag", "b0100", project.commits[-1])

    named = project.run("bump", "b0100")

    assert "the commit already pinned: only [upstream] ref set to b0100" in named.stderr
    assert pin(project) == {"url": str(project.upstream.path), "commit": project.commits[-1], "ref": "b0100"}
    assert project.patch_bytes() == patches


# Installed as the tracking repository's post-checkout hook: scribbles on the tree as a checkout killed
# half-way would leave it (a half-written file, git's index lock), then SIGKILLs buildsys, and removes
# itself so that the recovery's own checkouts run normally.
KILL_AFTER_CHECKOUT = """#!/bin/sh
rm -f -- "$0"
echo half-written > ggml/src/ggml.c
: > .git/index.lock
buildsys=$(cut -d' ' -f4 /proc/$PPID/stat)
kill -9 "$buildsys"
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="the hook finds buildsys through /proc")
@pytest.mark.parametrize("recovery", ["--continue", "--abort"])
def test_a_bump_killed_during_its_checkout_can_be_continued_or_aborted(
    bumping: tuple[Project, Upstream], recovery: str
) -> None:
    project, upstream = bumping
    with_patches(project, CLEAN)
    before = snapshot(project.root, skip=("build",))
    project.tracking.write(".git/hooks/post-checkout", KILL_AFTER_CHECKOUT, executable=True)

    killed = project.run("bump", upstream.accumulator_commented, expect=None)

    assert killed.returncode == -9, killed.stderr
    status = project.run("status").stdout
    assert "under way" in status and "--continue" in status, status
    again = project.run("bump", upstream.accumulator_commented, expect=2)
    assert "is in progress" in again.stderr and "exists nowhere else" not in again.stderr

    project.run("bump", recovery)

    assert project.tracking.out("status", "--porcelain") == ""
    if recovery == "--continue":
        assert pin(project)["commit"] == upstream.accumulator_commented
    else:
        assert snapshot(project.root, skip=("build",)) == before
    assert "half-written" not in project.tracking.read("ggml/src/ggml.c")
    project.run("check")
