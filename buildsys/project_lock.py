"""One writing command at a time per project.

Two `sync`s at once raced on the same temporary files; two `apply-patches` would reset one tracking
repository under each other. Commands that write take an exclusive lock on `build/.buildsys-lock`, the
project's output folder: a file named after the project in $TMPDIR was another file for a caller with
another TMPDIR, and two commands then wrote one project at once. A second command waits up to
BUILDSYS_LOCK_TIMEOUT seconds (default 0: refuse at once; `inf`: wait for as long as it takes), then
refuses, naming the command that holds it. The operating system releases the lock when its holder
dies, so a killed command never leaves the project locked.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from .config import BUILD_FOLDER
from .errors import Busy, UsageError

TIMEOUT_VARIABLE = "BUILDSYS_LOCK_TIMEOUT"
LOCK_NAME = ".buildsys-lock"
WRITING_COMMANDS = frozenset({"apply-patches", "create-patches", "sync", "build", "wheels", "sdist", "bump"})


def lock_timeout(env: Mapping[str, str]) -> float:
    text = env.get(TIMEOUT_VARIABLE, "").strip()
    if not text:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{TIMEOUT_VARIABLE}={text!r} is not a number of seconds") from None
    if math.isnan(value):  # every comparison with NaN is false: the wait would never end, without a word
        raise UsageError(
            f"{TIMEOUT_VARIABLE}={text!r} is not a number of seconds",
            hint="0 refuses at once (the default), `inf` waits for as long as the other command runs",
        )
    if value < 0:
        raise UsageError(f"{TIMEOUT_VARIABLE}={text!r} is below zero")
    return value


if sys.platform == "win32":
    import msvcrt

    def _try_lock(handle: IO[str]) -> bool:
        try:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

else:
    import fcntl

    def _try_lock(handle: IO[str]) -> bool:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


def _holder(path: Path) -> str:
    try:
        record = json.loads(path.read_text(encoding="utf-8") or "{}")
        age = time.time() - float(record["since"])
        if not _alive(int(record["pid"])):  # a holder that could not write its record left an old one
            return "another buildsys command"
        return f"`{record['command']}` (pid {record['pid']}, running for {age:.0f} s)"
    except (OSError, ValueError, KeyError, TypeError):
        return "another buildsys command"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process
        return True
    return True


def lock_path(root: Path) -> Path:
    """In the project, whatever the caller's environment: every command on it finds the same file."""
    return root / BUILD_FOLDER / LOCK_NAME


def _open(path: Path) -> tuple[IO[str], bool]:
    """The lock file, and whether we may write our record into it. One that another user made (sudo) is
    locked through a read-only handle: the lock is the same, only the record of who holds it is not ours."""
    try:
        return os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o644), "r+", encoding="utf-8"), True
    except PermissionError:
        return os.fdopen(os.open(path, os.O_RDONLY), "r", encoding="utf-8"), False


@contextmanager
def project_lock(root: Path, command: str, env: Mapping[str, str]) -> Iterator[None]:
    timeout = lock_timeout(env)
    path = lock_path(root)
    made_folder = not path.parent.is_dir()
    if made_folder:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    while True:
        handle, writable = _open(path)
        with handle:
            handle.seek(0)  # Windows locks a byte range from the current position
            while not _try_lock(handle):
                if time.monotonic() >= deadline:
                    raise Busy(
                        f"{_holder(path)} is working on this project ({root})",
                        hint=f"wait for it to finish, or set {TIMEOUT_VARIABLE}=<seconds> to wait for it",
                    )
                time.sleep(0.2)
            if not _same_file(handle, path):  # its holder removed it on the way out: lock the current one
                continue
            if writable:
                handle.seek(0)
                handle.truncate()
                handle.write(json.dumps({"command": command, "pid": os.getpid(), "since": time.time()}))
                handle.flush()
            try:
                yield
            finally:
                if made_folder:  # a command that wrote nothing leaves no build/ behind for its lock
                    _remove_if_alone(path)
            return


def _same_file(handle: IO[str], path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(handle.fileno()), path.stat())
    except OSError:
        return False


def _remove_if_alone(path: Path) -> None:
    """The lock file and the folder this command made for it, when nothing else was written there."""
    try:
        if [entry.name for entry in path.parent.iterdir()] == [path.name]:
            path.unlink()
            path.parent.rmdir()
    except OSError:
        pass
