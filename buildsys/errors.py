"""Typed errors. Library code raises these; only the CLI turns them into messages and exit codes."""

from __future__ import annotations

import errno
from collections.abc import Sequence


class BuildsysError(Exception):
    """Base of every error the toolkit reports to a user."""

    exit_code = 1

    def __init__(self, message: str, *, details: str = "", hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.hint = hint


class ConfigError(BuildsysError):
    """vendoring.toml (or an override) is invalid; carries every problem found, not only the first."""

    exit_code = 2

    def __init__(self, problems: Sequence[str], *, source: str) -> None:
        self.problems = tuple(problems)
        self.source = source
        noun = "problem" if len(self.problems) == 1 else "problems"
        super().__init__(f"{source}: {len(self.problems)} {noun}", details="\n".join(self.problems))


class UsageError(BuildsysError):
    """The command line asks for something that cannot be done as asked."""

    exit_code = 2


class GitError(BuildsysError):
    """A git command failed or timed out."""

    exit_code = 1


class UpstreamError(BuildsysError):
    """The upstream URL cannot be fetched, or the pinned commit is not in it."""

    exit_code = 1


class WorkWouldBeLost(BuildsysError):
    """Refusal: going on would discard edits or commits that exist nowhere else."""

    exit_code = 3


class PatchConflict(BuildsysError):
    """A patch of the series does not apply; the tracking repository is left mid-`git am`."""

    exit_code = 4


class OutOfDate(BuildsysError):
    """A stage's input is newer than its output (e.g. patches/ not applied, tracking not exported)."""

    exit_code = 5


class DriftDetected(BuildsysError):
    """`check` found the vendored tree or the patch queue differing from what they should be."""

    exit_code = 6


class BuildFailed(BuildsysError):
    """A preset that was asked for (or could be built) did not configure, build or install."""

    exit_code = 7


class Busy(BuildsysError):
    """Another buildsys command holds the project's lock."""

    exit_code = 8


class FileSystemError(BuildsysError):
    """A file or directory could not be read or written (permissions, a full disk, a file where a
    directory belongs); the message names the path, the hint what to do."""

    exit_code = 1


_ADVICE = {
    errno.EACCES: "check its permissions (chmod u+w; lsattr/chattr -i if it is immutable)",
    errno.EPERM: "check its permissions (chmod u+w; lsattr/chattr -i if it is immutable)",
    errno.EROFS: "the file system is read-only: work in a writable checkout",
    errno.ENOSPC: "the disk is full: free some space",
    errno.EDQUOT: "the disk quota is used up: free some space",
    errno.EEXIST: "a file is where a directory belongs: move it away",
    errno.ENOTDIR: "a file is where a directory belongs: move it away",
    errno.EISDIR: "a directory is where a file belongs: move it away",
}


def from_os_error(error: OSError) -> FileSystemError:
    path = error.filename if error.filename is not None else "a file"
    what = error.strerror or str(error)
    advice = _ADVICE.get(error.errno or 0, "check the path")
    return FileSystemError(f"{path}: {what}", hint=f"{advice}, then run the command again")
