"""The patch queue's and the bump's records on the edge cases of issue #30, without subprocesses."""

from __future__ import annotations

from pathlib import Path

import pytest

from buildsys.errors import FileSystemError
from buildsys.pathfilter import PathFilter
from buildsys.vendoring.patchqueue import diff_paths, read_series
from buildsys.vendoring.tracking import BumpProgress, parse_state

PATHS = ["CMakeLists.txt", "ggml/src/ggml.c", "ggml/include/ggml.h", "include/llama.h", "src/llama.c"]


def test_an_include_that_matches_nothing_is_named_with_the_closest_name() -> None:
    path_filter = PathFilter(("CMakeLists.txt", "ggm/", "includ", "src/*.c", "tools/"), ("**/*.md",))
    assert path_filter.unmatched_includes(PATHS) == [("ggm/", "ggml/"), ("includ", "include"), ("tools/", None)]


def test_an_include_matched_only_by_excluded_paths_still_matches() -> None:
    assert PathFilter(("docs/",), ("**/*.md",)).unmatched_includes(["docs/build.md"]) == []


def test_a_rename_reads_one_path_and_writes_another() -> None:
    patch = b"diff --git a/src/llama.c b/src/llama-core.c\nsimilarity index 90%\n"
    assert set(diff_paths(patch, old_names=True)) == {"src/llama.c", "src/llama-core.c"}


@pytest.mark.parametrize(("target", "words"), [("/nonexistent", "does not exist"), ("0002-x.patch", "back at itself")])
def test_a_patch_link_to_no_file_is_refused_not_skipped(tmp_path: Path, target: str, words: str) -> None:
    (tmp_path / "0001-a.patch").write_bytes(b"From x\n")
    (tmp_path / "0002-x.patch").symlink_to(target)
    with pytest.raises(FileSystemError) as refused:
        read_series(tmp_path)
    assert "0002-x.patch is a symbolic link to" in refused.value.message and words in refused.value.message


def test_a_patch_link_to_a_file_is_read_through(tmp_path: Path) -> None:
    (tmp_path / "shared.txt").write_bytes(b"From y\n")
    (tmp_path / "0001-a.patch").symlink_to(tmp_path / "shared.txt")
    assert [(p.name, p.content) for p in read_series(tmp_path)] == [("0001-a.patch", b"From y\n")]


def bump(**extra: object) -> dict[str, object]:
    return {"previous": "a" * 40, "target": "b" * 40, "series_sha256": "c" * 64, "position": 1, **extra}


def test_a_bump_record_of_before_the_phases_reads_as_carrying_or_checking_out() -> None:
    assert parse_state({"bump": bump(checked_out=True)}).bump.phase == "carry"  # type: ignore[union-attr]
    assert parse_state({"bump": bump(checked_out=False)}).bump.phase == "checkout"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("data", "words"),
    [({"bump": bump(phase="nowhere")}, "'bump.phase' is 'nowhere'"), ({"am_by": 3}, "'am_by' is 3")],
)
def test_a_damaged_phase_or_am_record_is_named(data: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_state(data)


@pytest.mark.parametrize(
    ("phase", "words", "rewrote"),
    [
        ("checkout", f"while checking out {'b' * 12}", False),
        ("carry", "at patch 2", False),
        ("export", "while rewriting patches/ and vendoring.toml", True),
        ("sync", "while syncing the destination", True),
    ],
)
def test_a_bump_says_where_it_stands(phase: str, words: str, rewrote: bool) -> None:
    progress = BumpProgress("a" * 40, "b" * 40, None, "c" * 64, position=1, phase=phase)
    assert progress.where() == words and progress.rewrote_files is rewrote
    assert BumpProgress.from_json(progress.to_json()) == progress
