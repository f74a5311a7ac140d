"""apply-patches and create-patches, end to end through the CLI and real git."""

from __future__ import annotations

import shutil

import pytest
from conftest import FIRST_PATCH, SECOND_PATCH
from helpers.support import PATCH_DAMAGE, Project


def test_fresh_apply_puts_every_patch_on_the_pinned_commit(patched_project: Project) -> None:
    shutil.rmtree(patched_project.root / "build")  # a fresh clone of the project

    result = patched_project.run("apply-patches")

    tracking = patched_project.tracking
    assert tracking.out("rev-parse", "HEAD~2") == patched_project.commits[2]
    assert tracking.out("rev-parse", "--abbrev-ref", "HEAD") == "patched"
    assert "/* ours */" in tracking.read("ggml/src/ggml.c")
    assert "llama_patched" in tracking.read("include/llama.h")
    assert tracking.out("log", "-1", "--format=%an") == "Test Author"  # authorship comes from the patch
    assert "apply 2 patch(es)" in result.stderr


def test_apply_then_create_leaves_patches_byte_identical(patched_project: Project) -> None:
    before = patched_project.patch_bytes()
    mtimes = {p.name: p.stat().st_mtime_ns for p in patched_project.patches.glob("*.patch")}

    patched_project.run("apply-patches")
    patched_project.run("create-patches")

    assert patched_project.patch_bytes() == before
    assert {p.name: p.stat().st_mtime_ns for p in patched_project.patches.glob("*.patch")} == mtimes
    assert sorted(before) == [FIRST_PATCH, SECOND_PATCH]
    first = before[FIRST_PATCH]
    assert first.startswith(b"From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n")
    assert b"Subject: [PATCH] ggml: mark our accumulator" in first
    assert b"\n-- \n" not in first  # no version signature


def test_binary_executable_and_crlf_changes_round_trip(project: Project) -> None:
    project.run("apply-patches")
    tracking = project.tracking
    tracking.write("ggml/src/weights.bin", bytes(reversed(range(256))) * 4)
    tracking.write("ggml/src/gen-version.sh", "#!/bin/sh\necho 0.0.2\n", executable=True)
    tracking.write("ggml/src/resources.rc", "LINE ONE\r\nLINE 2\r\n")
    tracking.git("mv", "ggml/src/ggml.c", "ggml/src/ggml-base.c")
    tracking.commit("[cpu] binary, crlf and a rename")
    project.run("create-patches")
    exported = project.patch_bytes()

    project.run("apply-patches")
    project.run("create-patches")

    assert project.patch_bytes() == exported
    assert (tracking.path / "ggml/src/weights.bin").read_bytes() == bytes(reversed(range(256))) * 4
    assert (tracking.path / "ggml/src/resources.rc").read_bytes() == b"LINE ONE\r\nLINE 2\r\n"
    assert (tracking.path / "ggml/src/gen-version.sh").stat().st_mode & 0o111
    assert tracking.out("log", "-1", "--format=%s") == "[cpu] binary, crlf and a rename"


def test_editing_one_patch_rewrites_only_that_file(patched_project: Project) -> None:
    tracking = patched_project.tracking
    first = FIRST_PATCH
    second = SECOND_PATCH
    untouched_mtime = (patched_project.patches / first).stat().st_mtime_ns
    tracking.write("include/llama.h", tracking.read("include/llama.h") + "int llama_more(void);\n")
    tracking.git("commit", "-q", "-a", "--amend", "--no-edit")

    result = patched_project.run("create-patches")

    assert f"wrote   patches/{second}" in result.stderr
    assert (patched_project.patches / first).stat().st_mtime_ns == untouched_mtime
    assert b"+int llama_more(void);" in (patched_project.patches / second).read_bytes()


def test_dropped_commit_removes_its_stale_patch(patched_project: Project) -> None:
    patched_project.tracking.git("reset", "-q", "--hard", "HEAD~1")
    (patched_project.patches / "notes.txt").write_text("not a patch; left alone\n")

    result = patched_project.run("create-patches")

    assert list(patched_project.patch_bytes()) == [FIRST_PATCH]
    assert "removed patches/0002-" in result.stderr
    assert (patched_project.patches / "notes.txt").read_text() == "not a patch; left alone\n"


def test_refuses_to_reset_a_dirty_tracking_repository(patched_project: Project) -> None:
    tracking = patched_project.tracking
    tracking.write("ggml/src/ggml.c", "/* unsaved edit */\n")
    tracking.write("ggml/src/new-file.c", "/* untracked work */\n")
    head = tracking.head()

    result = patched_project.run("apply-patches", expect=3)

    assert "has work that exists nowhere else; nothing was changed" in result.stderr
    assert "ggml/src/ggml.c" in result.stderr and "ggml/src/new-file.c" in result.stderr
    assert "stash -u" in result.stderr
    assert tracking.read("ggml/src/ggml.c") == "/* unsaved edit */\n"
    assert tracking.read("ggml/src/new-file.c") == "/* untracked work */\n"
    assert tracking.head() == head
    assert "Traceback" not in result.stderr


def test_refuses_to_reset_unexported_commits_until_they_are_saved(patched_project: Project) -> None:
    tracking = patched_project.tracking
    tracking.write("src/llama-core.c", tracking.read("src/llama-core.c") + "/* third patch */\n")
    work = tracking.commit("llama: third patch, not exported yet")

    refused = patched_project.run("apply-patches", expect=3)

    assert "1 commit(s) not exported to patches/" in refused.stderr
    assert f"{work[:12]} llama: third patch, not exported yet" in refused.stderr
    assert "create-patches" in refused.stderr
    assert tracking.head() == work

    patched_project.run("create-patches")
    patched_project.run("apply-patches")
    assert "/* third patch */" in tracking.read("src/llama-core.c")
    assert len(patched_project.patch_bytes()) == 3


def test_pulled_patch_changes_are_not_mistaken_for_unsaved_work(patched_project: Project) -> None:
    """A teammate's new version of patches/ replaces tracking commits that came from the old one."""
    name = FIRST_PATCH
    path = patched_project.patches / name
    path.write_bytes(path.read_bytes().replace(b"/* ours */", b"/* theirs */"))

    patched_project.run("apply-patches")

    assert "/* theirs */" in patched_project.tracking.read("ggml/src/ggml.c")


def test_conflict_after_base_change_stops_with_guidance_then_resolves(patched_project: Project) -> None:
    project = patched_project
    project.configure(project.commits[3])  # upstream rewrote the line our first patch changes

    conflict = project.run("apply-patches", expect=4)

    where = "build/upstream"
    assert f"patch {FIRST_PATCH} (1 of 2) does not apply" in conflict.stderr
    assert f"{where}/ggml/src/ggml.c" in conflict.stderr
    assert f"git -C {where} am --continue" in conflict.stderr
    assert "nox -s create-patches sync" in conflict.stderr
    assert f"git -C {where} am --abort" in conflict.stderr
    assert project.run("sync", expect=3).stderr.count("am --continue") == 1
    status = project.run("status").stdout
    assert "git am stopped at patch 1 of 2" in status

    tracking = project.tracking
    tracking.git("checkout", "--ours", "ggml/src/ggml.c")  # upstream's side, then redo our change on it
    tracking.write(
        "ggml/src/ggml.c", tracking.read("ggml/src/ggml.c").replace("double sum = 0.0;", "double sum = 0.0; /* ours */")
    )
    tracking.git("add", "ggml/src/ggml.c")
    tracking.git("am", "--continue")
    project.run("create-patches")
    project.run("sync")
    project.run("check")
    assert b"double sum = 0.0; /* ours */" in project.patch_bytes()[FIRST_PATCH]
    assert "double sum = 0.0; /* ours */" in (project.vendor / "ggml/src/ggml.c").read_text()


def test_base_change_without_conflict_rebases_cleanly(patched_project: Project) -> None:
    project = patched_project
    project.patches.joinpath(FIRST_PATCH).unlink()
    project.run("apply-patches")
    project.run("create-patches")
    project.configure(project.commits[3])

    project.run("apply-patches")
    project.run("create-patches")
    project.run("sync")

    assert "llama_patched" in (project.vendor / "include/llama.h").read_text()
    assert "double sum" in (project.vendor / "ggml/src/ggml.c").read_text()


def test_upstream_that_does_not_exist(project: Project, tmp_path: object) -> None:
    result = project.run("--upstream", "/nonexistent/upstream.git", "apply-patches", expect=1)
    assert "cannot fetch /nonexistent/upstream.git" in result.stderr
    assert "Traceback" not in result.stderr


def test_commit_that_is_not_in_the_upstream(project: Project) -> None:
    project.configure("0123456789abcdef0123456789abcdef01234567")
    result = project.run("apply-patches", expect=1)
    assert "commit 0123456789abcdef0123456789abcdef01234567 is not in" in result.stderr
    assert "Traceback" not in result.stderr


def test_command_line_upstream_beats_environment(project: Project, tmp_path: object) -> None:
    project.env["BUILDSYS_UPSTREAM_URL"] = "/nonexistent/from-environment.git"
    assert "[from BUILDSYS_UPSTREAM_URL]" in project.run("status").stdout
    project.run("--upstream", str(project.upstream.path), "apply-patches")
    assert "[from --upstream]" in project.run("--upstream", str(project.upstream.path), "status").stdout


def test_changed_context_is_reported_as_a_three_way_merge(project: Project) -> None:
    project.run("apply-patches")
    project.add_patch_commits(
        ("ggml: fused multiply-add", "ggml/src/ggml.c", "sum += a[i] * b[i];", "sum = fmaf(a[i], b[i], sum);"),
        ("llama: declare llama_patched", "include/llama.h", "int llama_version(void);", "int llama_patched(void);"),
    )
    project.run("create-patches")
    project.configure(project.commits[3])  # upstream edited a line inside the first patch's context

    result = project.run("apply-patches")

    assert "3-way merge 0001-ggml-fused-multiply-add.patch" in result.stderr
    assert "clean       0002-llama-declare-llama_patched.patch" in result.stderr
    merged = project.tracking.read("ggml/src/ggml.c")
    assert "double sum = 0.0;" in merged and "sum = fmaf(a[i], b[i], sum);" in merged


def test_create_after_an_aborted_apply_refuses_to_delete_the_series(patched_project: Project) -> None:
    """Found on real ggml: `am --abort` returns to the bare base, and exporting that would empty patches/."""
    project = patched_project
    before = project.patch_bytes()
    project.configure(project.commits[3])
    project.run("apply-patches", expect=4)
    project.tracking.git("am", "--abort")

    refused = project.run("create-patches", expect=3)

    assert "the last apply-patches stopped and was aborted" in refused.stderr
    assert "would delete all 2 patch(es)" in refused.stderr
    assert project.patch_bytes() == before
    project.configure(project.commits[2])
    project.run("apply-patches")
    project.run("create-patches")
    assert project.patch_bytes() == before


def test_create_refuses_when_head_has_left_the_patch_branch(patched_project: Project) -> None:
    before = patched_project.patch_bytes()
    patched_project.tracking.git("checkout", "-q", "--detach", patched_project.commits[1])

    refused = patched_project.run("create-patches", expect=5)

    assert "does not descend from" in refused.stderr and "checkout patched" in refused.stderr
    assert patched_project.patch_bytes() == before
    assert "HEAD is not on" in patched_project.run("sync", expect=5).stderr


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('{"base":12,"exported":"abc","bump":{"previous":1}}', "'base' is 12, not a commit"),
        ('{"exported":[],"bump":{"previous":"a","target":"b"}}', "'bump.series_sha256' is None, not a string"),
        ("{not json", "Expecting property name"),
    ],
)
def test_a_damaged_state_file_is_named_and_nothing_is_touched(
    patched_project: Project, content: str, reason: str
) -> None:
    project = patched_project
    state = project.root / "build/upstream/.git/buildsys-state.json"
    state.write_text(content)
    patches = project.patch_bytes()
    head = project.tracking.head()

    for command in ("status", "apply-patches", "create-patches"):
        result = project.run(command, expect=3)
        [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert error.startswith(f"error: {state} is damaged (") and reason in error, result.stderr
        assert f"mv {state} {state}.damaged" in result.stderr and "Traceback" not in result.stderr
    assert project.patch_bytes() == patches and project.tracking.head() == head and state.read_text() == content


@pytest.mark.parametrize("kind", ["empty", "crlf", "garbage", "no-diff"])
def test_a_file_git_cannot_read_as_a_patch_is_named_before_any_am(patched_project: Project, kind: str) -> None:
    project = patched_project
    damage, words = PATCH_DAMAGE[kind]
    second = project.patches / SECOND_PATCH
    second.write_bytes(damage(second.read_bytes()))
    before = project.patch_bytes()
    head = project.tracking.head()

    for command, code in (("apply-patches", 4), ("check", 6), ("bump", 4)):
        refused = project.run(command, *(["HEAD"] if command == "bump" else []), expect=code)
        assert f"patches/{SECOND_PATCH} is not a patch git can apply: {words}" in refused.stderr, refused.stderr
        assert FIRST_PATCH not in refused.stderr and "am --continue" not in refused.stderr
        assert "Traceback" not in refused.stderr
    assert project.patch_bytes() == before and project.tracking.head() == head
    assert project.tracking.git("status", "--porcelain").stdout == ""


def test_a_patch_git_rejects_shows_gits_own_words(patched_project: Project) -> None:
    project = patched_project
    second = project.patches / SECOND_PATCH
    second.write_bytes(PATCH_DAMAGE["corrupt-hunk"][0](second.read_bytes()))

    stopped = project.run("apply-patches", expect=4)

    assert f"patch {SECOND_PATCH} (2 of 2) does not apply" in stopped.stderr
    assert "git said:" in stopped.stderr and "corrupt patch" in stopped.stderr, stopped.stderr


@pytest.mark.parametrize("damage", ["head-deleted", "branch-garbage"])
def test_a_damaged_tracking_repository_is_named_with_a_way_out_that_keeps_edits(
    patched_project: Project, damage: str
) -> None:
    project = patched_project
    tracking = project.tracking
    tracking.write("ggml/src/ggml.c", tracking.read("ggml/src/ggml.c") + "/* an edit not yet committed */\n")
    git_dir = tracking.path / ".git"
    if damage == "head-deleted":
        (git_dir / "HEAD").unlink()
    else:
        (git_dir / "refs/heads/patched").write_text("not a commit\n")

    status = project.run("status").stdout
    assert "DAMAGED" in status and "not set up" not in status, status
    for command in ("apply-patches", "create-patches", "sync"):
        refused = project.run(command, expect=3)
        assert "build/upstream is a damaged git repository" in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr and "✓" not in refused.stderr
    assert "an edit not yet committed" in (tracking.path / "ggml/src/ggml.c").read_text()

    if damage == "head-deleted":  # the hint, as printed, brings it back; the edit is then protected as usual
        (git_dir / "HEAD").write_text("ref: refs/heads/patched\n")
        kept = project.run("apply-patches", expect=3)
        assert "uncommitted file(s)" in kept.stderr and "ggml/src/ggml.c" in kept.stderr


def test_after_a_hand_pin_move_sync_points_at_the_command_that_ends_it(patched_project: Project) -> None:
    """The pin moved by hand to a commit that shifts our patch's lines: apply-patches takes it with offsets,
    and sync must not send the maintainer back to apply-patches (which would give the same again)."""
    project = patched_project
    tracking = project.upstream
    tracking.git("checkout", "-q", "-b", "moved", project.commits[2])  # the pin, plus one upstream commit
    header = tracking.read("include/llama.h")
    tracking.write("include/llama.h", "/* upstream grew a licence header */\n/* of two lines */\n" + header)
    moved = tracking.commit("llama.h: a header comment")
    project.configure(moved)
    project.run("apply-patches")

    first = project.run("sync", expect=5)
    assert "the same changes sit at other lines now" in first.stderr
    assert "`nox -s create-patches sync`" in first.stderr and "apply-patches" not in first.stderr.split("hint:")[1]
    project.run("create-patches")
    project.run("sync")
    assert "no drift" in project.run("check").stderr
