"""The words buildsys finds for faults of the file system, git and the environment (issue #30), without
subprocesses: a full disk is injected at the OSError-mapping layer (a real one is in the census, where a
private mount namespace allows a small tmpfs)."""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

import pytest

from buildsys import cli, fileops, git
from buildsys.config import DEFAULT_COMMIT, load_config
from buildsys.errors import Busy, ConfigError, GitError, NoSpace, Terminated, UsageError, from_os_error
from buildsys.git import GitResult, bounded_text
from buildsys.project_lock import lock_path, lock_timeout, project_lock
from buildsys.vendoring import sync
from buildsys.vendoring.manifest import Manifest, staleness

PIN = f'[upstream]\ncommit = "{DEFAULT_COMMIT}"\n'


def result(returncode: int, stderr: str) -> GitResult:
    return GitResult(("git", "am"), returncode, b"", stderr.encode())


@pytest.mark.parametrize(
    "said",
    [
        "fatal: could not write to '.git/rebase-apply/threeway': No space left on device",
        "error: unable to write sha1 file: Disk quota exceeded",
        "fatal: write error: File too large",
        "fatal: unable to write new index file '.git/index.lock' write error. Out of diskspace",  # git status
    ],
)
def test_git_out_of_room_is_recognised_by_its_words(said: str, tmp_path: Path) -> None:
    assert result(128, said).no_space(tmp_path)
    assert result(0, said).no_space(tmp_path) is None


def test_git_killed_for_a_file_too_large_is_out_of_room(tmp_path: Path) -> None:
    assert result(-signal.SIGXFSZ, "").no_space(tmp_path) == "File too large"


def test_a_write_that_names_no_cause_counts_as_no_room_only_on_a_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failed = result(255, "error: unable to write file ggml/src/ggml.c\n")
    monkeypatch.setattr(git.shutil, "disk_usage", lambda path: type("Usage", (), {"free": 1 << 30})())
    assert failed.no_space(tmp_path) is None
    monkeypatch.setattr(git.shutil, "disk_usage", lambda path: type("Usage", (), {"free": 0})())
    assert "unable to write file ggml/src/ggml.c; the file system has no room left" in str(failed.no_space(tmp_path))


def test_a_long_failure_is_shown_in_part() -> None:
    text = "\n".join(f"error: unable to write file f{i}" for i in range(3000))
    shown = bounded_text(text).splitlines()
    assert len(shown) == git.SHOWN_LINES + 1 and shown[-1] == "… and 2980 more line(s)"


def test_a_full_disk_in_a_write_names_the_file_being_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(self: Path, data: bytes) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")  # as write() says it: no file name

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(OSError) as refused:
        fileops.write_atomically(tmp_path / "vendor" / "ggml.c", b"x")
    assert refused.value.filename == str(tmp_path / "vendor" / "ggml.c")
    assert not list((tmp_path / "vendor").iterdir())  # no half-written temporary left to take more room


def test_sync_on_a_full_disk_names_the_destination_and_the_need() -> None:
    with pytest.raises(NoSpace) as refused, sync._named_lack_of_room("vendor/llama.cpp", 2_500_000):
        raise OSError(errno.ENOSPC, "No space left on device", "/p/vendor/llama.cpp/ggml/src/ggml.c")
    assert refused.value.message == (
        "no space left in vendor/llama.cpp: /p/vendor/llama.cpp/ggml/src/ggml.c: No space left on device "
        "(this sync writes 2.5 MB in all)"
    )


@pytest.mark.parametrize(
    ("number", "advice"),
    [(errno.EFBIG, "ulimit -f"), (errno.ELOOP, "points back at itself"), (errno.ENOENT, "dangling")],
)
def test_file_system_refusals_say_what_to_do(number: int, advice: str) -> None:
    error = from_os_error(OSError(number, os.strerror(number), "/p/x"))
    assert error.message.startswith("/p/x: ") and advice in error.hint


def test_an_unnamed_file_is_not_called_a_file() -> None:
    assert "the system did not say which" in from_os_error(OSError(errno.EIO, "I/O error")).message


@pytest.mark.parametrize("text", ["nan", "NaN", " nan "])
def test_a_lock_timeout_of_nan_is_refused(text: str) -> None:
    with pytest.raises(UsageError) as refused:
        lock_timeout({"BUILDSYS_LOCK_TIMEOUT": text})
    assert "is not a number of seconds" in refused.value.message and "`inf` waits" in refused.value.hint


def test_a_lock_timeout_of_inf_waits_and_minus_inf_is_below_zero() -> None:
    assert lock_timeout({"BUILDSYS_LOCK_TIMEOUT": "inf"}) == float("inf")
    with pytest.raises(UsageError, match="below zero"):
        lock_timeout({"BUILDSYS_LOCK_TIMEOUT": "-inf"})


def test_the_lock_is_in_the_project_whatever_the_callers_temporary_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path / "one"))
    first = lock_path(tmp_path / "project")
    monkeypatch.setenv("TMPDIR", str(tmp_path / "two"))
    assert lock_path(tmp_path / "project") == first == tmp_path / "project" / "build" / ".buildsys-lock"


def test_a_held_lock_refuses_at_once(tmp_path: Path) -> None:
    # check's scratch and its own lock are gone (it applies the queue in a throwaway index): the one lock left
    with project_lock(tmp_path, "sync", {}), pytest.raises(Busy, match="`sync`"), project_lock(tmp_path, "sync", {}):
        pass


def test_sigterm_unwinds_like_ctrl_c_with_its_own_status(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "vendoring.toml").write_text(PIN)

    def terminated(arguments: object, config: object) -> None:
        raise Terminated

    monkeypatch.setattr(cli, "run", terminated)
    assert cli.main(["--config", str(tmp_path / "vendoring.toml"), "status"]) == 143


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[tracking]\npath = "build"\n', "[tracking] path: 'build' is the build's output folder"),
        ('[sync]\ndestination = "build/stage"\n', "'build/stage' is where `build` stages every preset"),
        ('[sync]\ndestination = "build/logs/x"\n', "overlaps build/logs/, where `build` keeps its logs"),
        ('[patches]\npath = "dist"\n', "[patches] path: 'dist' is where `wheels` writes the wheels"),
        ('[tracking]\npath = "build/vulkan"\n', "the CMake build tree of preset `vulkan`"),
    ],
)
def test_folders_the_build_writes_are_refused(tmp_path: Path, text: str, words: str) -> None:
    (tmp_path / "vendoring.toml").write_text(PIN + text)
    with pytest.raises(ConfigError) as refused:
        load_config(tmp_path / "vendoring.toml", env={})
    assert any(words in problem for problem in refused.value.problems), refused.value.problems


def test_the_tracking_clone_may_live_in_build(tmp_path: Path) -> None:
    (tmp_path / "vendoring.toml").write_text(PIN + '[tracking]\npath = "build/mirror"\n')
    assert load_config(tmp_path / "vendoring.toml", env={}).tracking == tmp_path.resolve() / "build/mirror"


def test_a_byte_order_mark_is_named_with_the_fix(tmp_path: Path) -> None:
    (tmp_path / "vendoring.toml").write_bytes(b"\xef\xbb\xbf" + PIN.encode())
    with pytest.raises(ConfigError) as refused:
        load_config(tmp_path / "vendoring.toml", env={})
    assert "byte-order mark" in refused.value.problems[0] and "without BOM" in refused.value.problems[0]


def test_a_symbolic_link_loop_is_named_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "vendoring.toml").write_text(PIN)
    (tmp_path / "patches").symlink_to("patches")
    (tmp_path / "up").symlink_to("up")
    with pytest.raises(ConfigError) as refused:
        load_config(tmp_path / "vendoring.toml", env={"BUILDSYS_UPSTREAM_URL": "up"}, cwd=tmp_path)
    assert refused.value.problems == (
        "[patches] path: 'patches' is, or passes through, a symbolic link that points back at itself; "
        "make it point at a real folder, or remove it",
    )


def test_status_names_a_few_changed_patterns_and_counts_the_rest() -> None:
    recorded = Manifest(
        commit="a" * 40, ref=None, patch_series_sha256="", patches=(), include=("ggml/",), exclude=(), files={}
    )
    wanted = tuple(f"src/f{i}.c" for i in range(20))
    [words] = staleness(recorded, "a" * 40, "", wanted, ())
    assert words.endswith("+src/f5.c and 15 more)") and "f6.c" not in words


@pytest.mark.parametrize(
    ("said", "refused"),
    [("git version 2.31.8", True), ("git version 2.32.0", False), ("git version 2.45.1.windows.1", False)],
)
def test_a_git_older_than_2_32_is_refused_before_it_exports_or_applies(
    said: str, refused: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(git, "_checked_version", [])
    monkeypatch.setattr(git.Git, "run", lambda self, *args, **kwargs: GitResult(args, 0, said.encode(), b""))
    if refused:
        with pytest.raises(GitError) as error:
            git.require_version(git.Git(tmp_path))
        assert f"{said} is older than 2.32" in error.value.message and "install git >= 2.32" in error.value.hint
    else:
        git.require_version(git.Git(tmp_path))


def test_a_command_that_wrote_nothing_leaves_no_build_folder_for_its_lock(tmp_path: Path) -> None:
    with project_lock(tmp_path, "sync", {}):
        assert lock_path(tmp_path).is_file()
    assert not (tmp_path / "build").exists()
    (tmp_path / "build").mkdir()  # a folder that was there stays, with the lock file
    with project_lock(tmp_path, "sync", {}):
        pass
    assert lock_path(tmp_path).is_file()


def test_a_lock_file_another_user_made_still_locks_and_is_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = lock_path(tmp_path)
    path.parent.mkdir()
    path.write_text('{"command": "bump", "pid": 999999999, "since": 0}')  # sudo's, long gone
    real_open = os.open

    def not_writable(name: str, flags: int, mode: int = 0o777) -> int:
        if flags & (os.O_RDWR | os.O_WRONLY):
            raise PermissionError(errno.EACCES, "Permission denied", name)
        return real_open(name, flags, mode)

    monkeypatch.setattr(os, "open", not_writable)
    with project_lock(tmp_path, "sync", {}):
        with pytest.raises(Busy) as busy, project_lock(tmp_path, "create-patches", {}):
            pass
        assert "another buildsys command is working" in busy.value.message  # not the dead `bump`
    assert "bump" in path.read_text()  # untouched
