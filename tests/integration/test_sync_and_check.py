"""sync and check, end to end: the destination is exactly pinned upstream + patches, filtered."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers.support import Project, expected_subset, hold_project_lock, snapshot


def test_sync_writes_the_filtered_subset_with_modes_and_manifest(patched_project: Project) -> None:
    vendor = patched_project.vendor
    files = sorted(p.relative_to(vendor).as_posix() for p in vendor.rglob("*") if p.is_file())
    assert files == [".buildsys-manifest.json", *expected_subset()]
    for outside in ("docs/build.md", "examples/simple/main.c", "README.md", "src/llama.c", "ggml/src/old-scalar.c"):
        assert outside not in files  # not in the subset, renamed away, or deleted upstream
    assert (vendor / "ggml/src/gen-version.sh").stat().st_mode & 0o111
    assert not (vendor / "ggml/src/ggml.c").stat().st_mode & 0o111
    assert (vendor / "ggml/src/weights.bin").read_bytes() == bytes(range(256)) * 4
    assert (vendor / "ggml/src/resources.rc").read_bytes() == b"LINE ONE\r\nLINE TWO\r\n"
    assert "/* ours */" in (vendor / "ggml/src/ggml.c").read_text()
    manifest = (vendor / ".buildsys-manifest.json").read_text()
    assert patched_project.commits[2] in manifest and "0002-llama-declare-llama_patched.patch" in manifest


def test_second_sync_rewrites_nothing(patched_project: Project) -> None:
    before = snapshot(patched_project.vendor)
    result = patched_project.run("sync")
    assert f"0 written, 0 deleted, {len(expected_subset())} unchanged" in result.stderr
    assert snapshot(patched_project.vendor) == before


def test_sync_deletes_what_left_the_subset_and_touches_nothing_outside(patched_project: Project) -> None:
    project = patched_project
    (project.root / "vendor" / "other-library").mkdir()
    (project.root / "vendor" / "other-library" / "keep.c").write_text("/* not ours */\n")
    (project.root / "notes.txt").write_text("mine\n")
    project.configure(project.commits[2], '[sync]\nexclude = ["**/*.md", "cmake/", "ggml/src/*.bin"]\n')
    outside = snapshot(project.root, skip=("vendor/llama.cpp", "build"))

    result = project.run("sync")

    assert "3 deleted" in result.stderr  # cmake/common.cmake, cmake/build-info.cmake, the .bin
    assert not (project.vendor / "cmake").exists()  # emptied folder removed too
    assert not (project.vendor / "ggml/src/weights.bin").exists()
    assert snapshot(project.root, skip=("vendor/llama.cpp", "build")) == outside
    project.run("check")


def test_sync_follows_upstream_renames_and_deletions_across_a_base_change(project: Project) -> None:
    project.configure(project.commits[1])
    project.run("apply-patches")
    project.run("sync")
    assert (project.vendor / "src/llama.c").exists() and (project.vendor / "ggml/src/old-scalar.c").exists()

    project.configure(project.commits[2])
    project.run("apply-patches")
    project.run("sync")

    assert not (project.vendor / "src/llama.c").exists()
    assert not (project.vendor / "ggml/src/old-scalar.c").exists()
    assert (project.vendor / "src/llama-core.c").exists()
    project.run("check")


def test_sync_refuses_to_overwrite_hand_edits_in_the_destination(patched_project: Project) -> None:
    edited = patched_project.vendor / "ggml/src/ggml.c"
    edited.write_text("/* edited in vendor/ by hand */\n")
    (patched_project.vendor / "src/extra.c").write_text("/* added by hand */\n")
    patched_project.tracking.write("LICENSE", "changed\n")
    patched_project.tracking.commit("a third patch")
    patched_project.run("create-patches")

    refused = patched_project.run("sync", expect=3)

    assert "2 file(s) in vendor/llama.cpp were edited or added by hand" in refused.stderr
    assert "ggml/src/ggml.c" in refused.stderr and "src/extra.c" in refused.stderr
    assert "discard them with `nox -s sync -- --force`" in refused.stderr
    assert edited.read_text() == "/* edited in vendor/ by hand */\n"
    patched_project.run("sync", "--force")
    assert "/* ours */" in edited.read_text()
    assert not (patched_project.vendor / "src/extra.c").exists()


def test_sync_refuses_while_tracking_and_patches_disagree(patched_project: Project) -> None:
    tracking = patched_project.tracking
    tracking.write("LICENSE", "relicensed\n")
    tracking.commit("not exported")
    result = patched_project.run("sync", expect=5)
    assert "1 commit(s) in the tracking repository are not in patches/" in result.stderr
    assert "create-patches sync" in result.stderr

    tracking.git("reset", "-q", "--hard", "HEAD~1")
    name = "0002-llama-declare-llama_patched.patch"
    (patched_project.patches / name).write_bytes(
        (patched_project.patches / name).read_bytes().replace(b"llama_patched", b"llama_pulled")
    )
    result = patched_project.run("sync", expect=5)
    assert "patches/ differs from the commits in the tracking repository" in result.stderr
    assert "apply-patches" in result.stderr


def test_check_passes_on_a_clean_tree_and_without_a_tracking_repository(patched_project: Project) -> None:
    assert f"{len(expected_subset())} files, no drift" in patched_project.run("check").stderr
    shutil.rmtree(patched_project.root / "build")
    assert (
        f"{len(expected_subset())} files, no drift" in patched_project.run("check").stderr
    )  # fetched from the upstream URL
    assert not (patched_project.root / "build").exists()


def test_check_lists_every_drifted_file(patched_project: Project) -> None:
    vendor = patched_project.vendor
    (vendor / "ggml/src/ggml.c").write_text("/* drift */\n")
    (vendor / "include/llama.h").unlink()
    (vendor / "src/stray.c").write_text("/* stray */\n")
    (vendor / "ggml/src/gen-version.sh").chmod(0o644)

    result = patched_project.run("check", expect=6)

    assert "modified  vendor/llama.cpp/ggml/src/ggml.c" in result.stderr
    assert "missing   vendor/llama.cpp/include/llama.h" in result.stderr
    assert "extra     vendor/llama.cpp/src/stray.c" in result.stderr
    assert "mode      vendor/llama.cpp/ggml/src/gen-version.sh (100644, expected 100755)" in result.stderr
    assert "4 difference(s)" in result.stderr


def test_check_detects_a_patch_series_changed_behind_the_tree(patched_project: Project) -> None:
    name = "0002-llama-declare-llama_patched.patch"
    (patched_project.patches / name).unlink()
    result = patched_project.run("check", expect=6)
    assert "modified  vendor/llama.cpp/include/llama.h" in result.stderr
    assert "manifest is stale" in result.stderr
    assert "tracking: patches/ differs" in result.stderr


def test_check_reports_a_patch_that_no_longer_applies(patched_project: Project) -> None:
    patched_project.configure(patched_project.commits[3])
    result = patched_project.run("check", expect=6)
    assert "0001-ggml-mark-our-accumulator.patch does not apply on the pinned commit" in result.stderr


def test_interrupted_sync_is_detected_and_repaired(project: Project) -> None:
    tracking_files = 3000
    project.run("apply-patches")
    tracking = project.tracking
    for index in range(tracking_files):
        tracking.write(f"ggml/src/generated/kernel_{index:04d}.c", f"int kernel_{index}(void) {{ return {index}; }}\n")
    tracking.commit("many generated kernels")
    project.run("create-patches")
    marker = project.vendor / ".buildsys-sync-incomplete.json"

    process = subprocess.Popen(
        [sys.executable, "-m", "buildsys", "sync"],
        cwd=project.root,
        env=project.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    process.kill()  # SIGKILL; TerminateProcess on Windows, which has no signal.SIGKILL
    process.wait()
    assert marker.exists(), "sync finished before it could be interrupted"
    written = (
        len(list((project.vendor / "ggml/src/generated").glob("*.c")))
        if (project.vendor / "ggml/src/generated").exists()
        else 0
    )
    assert written < tracking_files

    assert "a sync was interrupted" in project.run("status").stdout
    assert "a sync was interrupted" in project.run("check", expect=6).stderr
    project.run("sync")
    assert not marker.exists()
    assert len(list((project.vendor / "ggml/src/generated").glob("*.c"))) == tracking_files
    project.run("check")


def test_buildsys_config_points_the_commands_at_another_project(patched_project: Project, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**patched_project.env, "BUILDSYS_CONFIG": str(patched_project.root / "vendoring.toml")}
    result = patched_project.run("check", env=env, cwd=elsewhere)
    assert "no drift" in result.stderr, result.stderr
    assert list(elsewhere.iterdir()) == []  # nothing written where the command ran


def test_a_second_writing_command_refuses_or_waits_while_one_holds_the_project(patched_project: Project) -> None:
    project = patched_project
    holder = hold_project_lock(project, "sync", seconds=3)  # a `sync` in progress, as far as the lock can tell
    try:
        before = snapshot(project.root, skip=("build",))
        for command in ("sync", "apply-patches", "create-patches"):
            busy = project.run(command, expect=8)
            assert f"`sync` (pid {holder.pid}, running for" in busy.stderr, busy.stderr
            assert "BUILDSYS_LOCK_TIMEOUT" in busy.stderr and "Traceback" not in busy.stderr
        assert project.run("status").returncode == 0  # reading commands do not wait
        assert snapshot(project.root, skip=("build",)) == before
        patient = dataclasses.replace(project, env={**project.env, "BUILDSYS_LOCK_TIMEOUT": "60"})
        patient.run("sync")  # waits for the holder, then syncs
    finally:
        holder.kill()
        holder.wait()
    assert project.run("sync", "--force").returncode == 0  # a dead holder leaves nothing locked


@pytest.mark.parametrize(
    ("command", "blocker", "words"),
    [
        ("sync", "vendor/llama.cpp", "a file is where a directory belongs"),
        ("create-patches", "patches", "a file is where a directory belongs"),
    ],
)
def test_a_file_where_a_directory_belongs_is_one_line_naming_it(
    patched_project: Project, command: str, blocker: str, words: str
) -> None:
    project = patched_project
    target = project.root / blocker
    if target.is_dir():
        shutil.rmtree(target)
    target.write_text("not a directory\n")
    if command == "create-patches":
        project.tracking.write("ggml/src/new-file.c", "int x;\n")
        project.tracking.commit("a commit to export")

    failed = project.run(command, expect=1)

    assert "Traceback" not in failed.stderr
    errors = [line for line in failed.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and blocker in errors[0], failed.stderr
    assert words in failed.stderr
    assert target.read_text() == "not a directory\n"


def test_a_changed_sync_subset_is_noticed_by_status_build_and_check(patched_project: Project) -> None:
    project = patched_project
    project.configure(project.commits[2], extra='[sync]\nexclude = ["ggml/src/ggml.c"]\n')

    status = project.run("status").stdout
    assert "stale: [sync] exclude (+ggml/src/ggml.c" in status and "changed (run sync)" in status, status
    refused = project.run("build", "--dry-run", "--backend", "cpu", expect=5)
    assert "is stale: [sync] exclude (+ggml/src/ggml.c" in refused.stderr, refused.stderr
    assert "run: nox -s sync" in refused.stderr
    drift = project.run("check", expect=6)
    assert "manifest is stale: [sync] exclude (+ggml/src/ggml.c" in drift.stderr, drift.stderr

    project.run("sync")
    assert "up to date" in project.run("status").stdout
    assert "no drift" in project.run("check").stderr


def test_status_shows_hand_edits_in_the_destination(patched_project: Project) -> None:
    project = patched_project
    (project.vendor / "ggml/src/ggml.c").write_text("/* by hand */\n")
    (project.vendor / "ggml/src/added.c").write_text("int added;\n")

    status = project.run("status").stdout

    assert "2 file(s) edited or added by hand: ggml/src/added.c, ggml/src/ggml.c (sync refuses" in status, status
