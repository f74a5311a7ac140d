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
WRITING_COMMANDS = frozenset({"apply-patches", "create-patches", "sync", "build", "wheels", "bump"})


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
        return f"`{record['command']}` (pid {record['pid']}, running for {age:.0f} s)"
    except (OSError, ValueError, KeyError, TypeError):
        return "another buildsys command"


def lock_path(root: Path) -> Path:
    """In the project, whatever the caller's environment: every command on it finds the same file."""
    return root / BUILD_FOLDER / LOCK_NAME


@contextmanager
def project_lock(root: Path, command: str, env: Mapping[str, str]) -> Iterator[None]:
    timeout = lock_timeout(env)
    path = lock_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+", encoding="utf-8") as handle:
        deadline = time.monotonic() + timeout
        handle.seek(0)  # Windows locks a byte range from the current position
        while not _try_lock(handle):
            if time.monotonic() >= deadline:
                raise Busy(
                    f"{_holder(path)} is working on this project ({root})",
                    hint=f"wait for it to finish, or set {TIMEOUT_VARIABLE}=<seconds> to wait for it",
                )
            time.sleep(0.2)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"command": command, "pid": os.getpid(), "since": time.time()}))
        handle.flush()
        yield


@contextmanager
def exclusive(path: Path, what: str) -> Iterator[None]:
    """An exclusive lock on `path`, refused at once when held (e.g. one `check` per project's scratch);
    released when its holder dies, like the project's lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+", encoding="utf-8") as handle:
        handle.seek(0)
        if not _try_lock(handle):
            raise Busy(f"another command is using {what}", hint="wait for it to finish, then run this one again")
        yield
