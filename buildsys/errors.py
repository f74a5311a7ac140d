"""Typed errors. Library code raises these; only the CLI turns them into messages and exit codes."""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager


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


class NoSpace(FileSystemError):
    """A write was refused for lack of room (a full disk, a quota, a file-size limit)."""


class Interrupted(BuildsysError):
    """Ctrl-C or SIGTERM arrived; what buildsys had started was undone or recorded, and the message says which."""

    exit_code = 130


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be, so that the same clean-up runs for both."""


def exit_status(cause: KeyboardInterrupt) -> int:
    """The shell's status for a process ended by the signal: 128 + SIGINT (130) or 128 + SIGTERM (143)."""
    return 128 + (signal.SIGTERM if isinstance(cause, Terminated) else signal.SIGINT)


def interrupted(message: str, cause: KeyboardInterrupt, *, hint: str = "") -> Interrupted:
    """What an interruption undid or left recorded, with the exit status of the signal."""
    error = Interrupted(message, hint=hint)
    error.exit_code = exit_status(cause)
    return error


# The one wording of a symbolic-link loop (ELOOP), in from_os_error's advice and wherever a loop is named.
LINK_LOOP = "points back at itself"

_ADVICE = {
    errno.EACCES: "check its permissions (chmod u+w; lsattr/chattr -i if it is immutable)",
    errno.EPERM: "check its permissions (chmod u+w; lsattr/chattr -i if it is immutable)",
    errno.EROFS: "the file system is read-only: work in a writable checkout",
    errno.ENOSPC: "the disk is full: free some space",
    errno.EDQUOT: "the disk quota is used up: free some space",
    errno.EFBIG: "a file grew past the size limit (`ulimit -f`): raise it or free some space",
    errno.ELOOP: f"a symbolic link in that path {LINK_LOOP}: make it point at a real file or folder",
    errno.ENOENT: "it does not exist: check the path (a dangling symbolic link?)",
    errno.EEXIST: "a file is where a directory belongs: move it away",
    errno.ENOTDIR: "a file is where a directory belongs: move it away",
    errno.EISDIR: "a directory is where a file belongs: move it away",
}


# errnos that mean "no room to write": a full disk, a quota, or a file-size limit.
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})  # of those, a folder's file system out of room (EFBIG: one file)


def from_os_error(error: OSError) -> FileSystemError:
    path = error.filename if error.filename is not None else "a file (the system did not say which)"
    what = error.strerror or str(error)
    if error.errno in _FULL:  # the folder that is full, as every other lack of room is named
        folder = (os.path.dirname(os.fsdecode(error.filename)) or ".") if error.filename is not None else path
        return no_space(folder, f"{path}: {what}")
    advice = _ADVICE.get(error.errno or 0, "check the path")
    return FileSystemError(f"{path}: {what}", hint=f"{advice}, then run the command again")


def no_space(folder: object, what: str, *, need: str = "", hint: str = "") -> NoSpace:
    """The one message for a write refused for lack of room: the folder, what could not be written, the need."""
    needs = f" ({need})" if need else ""
    return NoSpace(
        f"no space left in {folder}: {what}{needs}",
        hint=hint or "free some space there (or raise `ulimit -f`), then run the command again",
    )


@contextmanager
def lack_of_room(
    folder: object, *, what: str = "", need: str | Callable[[], str] = "", hint: str = ""
) -> Iterator[None]:
    """A write refused for lack of room inside the block (by Python or by git) becomes one NoSpace naming
    `folder`, what did not fit (`what`, else the file) and the need; the refusal's own words go to details.
    `need` may be a function, computed only when the room ran out."""
    try:
        yield
    except OSError as error:
        if error.errno not in NO_SPACE:
            raise
        said = f"{error.filename or 'a file'}: {error.strerror}"
        raise _out_of_room(folder, what, said, need, hint) from None
    except NoSpace as error:
        raise _out_of_room(folder, what, error.message, need, hint, error.details) from None


def _out_of_room(
    folder: object, what: str, said: str, need: str | Callable[[], str], hint: str, more: str = ""
) -> NoSpace:
    refused = no_space(folder, what or said, need=need() if callable(need) else need, hint=hint)
    refused.details = "\n".join(part for part in (said if what else "", more) if part)
    return refused
