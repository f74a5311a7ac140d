"""One owner per C handle: the lock, close(), closed, the context manager and a finaliser, written once.

A subclass says only how its handle is freed (`_free`), what it is called in errors (`_describe`) and,
when something else still uses the handle after close() (a model's contexts), when it may be freed.

A handle belongs to the process that made it. After fork() the child has a copy of the memory but only
the thread that forked: a context's (or a backend's) worker threads are not there, and a call that waits
for them never returns. In a child, such a handle raises ForkError, and is never freed there (freeing
waits for the same threads); the child's copy goes when it exits. A model may be used in the child (its
weights are memory): a new context on it works, and its lock is a new one there (the parent's copy may
have been held, at fork(), by a thread that does not exist in the child).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import weakref
from collections.abc import Iterator
from typing import Self

from ._errors import ClosedError, ForkError

_RLOCK = type(threading.RLock())
_HANDLES: weakref.WeakSet[Handle] = weakref.WeakSet()  # every live handle, for _fresh_locks_in_child()


class Handle:
    """A C handle with one owner: close() it, or use it as a context manager; afterwards it raises ClosedError."""

    _handle: int | None = None  # a class default: a failed __init__ leaves nothing for the finaliser to free
    _closed = False
    _usable_after_fork = False  # whether a child made by fork() may use it (a model: yes)

    def __init__(self, lock: threading.Lock | threading.RLock) -> None:
        self._lock = lock
        self._pid = os.getpid()
        _HANDLES.add(self)

    def _free(self, handle: int) -> None:
        raise NotImplementedError

    def _describe(self) -> str:
        return type(self).__name__.lower()

    def _may_free(self) -> bool:
        return True

    def close(self) -> None:
        """Idempotent: the handle is freed now, or when the last user of it lets go."""
        if self._forked():  # not even the lock: a thread of the parent may have held it when it forked
            self._closed, self._handle = True, None
            return
        with self._lock:
            self._closed = True
            self._free_if_unused()

    def _free_if_unused(self) -> None:
        if self._forked():  # a model's last context closed in a child: the model is the parent's to free
            return
        if self._closed and self._handle is not None and self._may_free():
            handle, self._handle = self._handle, None
            self._free(handle)

    def _forked(self) -> bool:
        return self._pid != os.getpid()

    def _held(self) -> threading.Lock | threading.RLock:
        """The lock, to take for a call: ForkError first in a child of fork() that may not use the handle
        (a thread of the parent may have held the lock when it forked, and then it is never released). A
        handle the child may use has a new lock there (_fresh_locks_in_child)."""
        if self._forked() and not self._usable_after_fork:
            raise ForkError(
                f"the {self._describe()} was made in process {self._pid}, and this is process {os.getpid()}, "
                f"a child made by fork() in which its threads do not exist: make a new one in this process"
            )
        return self._lock

    @contextlib.contextmanager
    def _using(self) -> Iterator[int]:
        """The lock held and the handle live, for a call: `with self._using() as handle: ...`."""
        with self._held():
            yield self._live()

    def _live(self) -> int:
        """The handle, for a call made under the lock; ClosedError after close(), ForkError in a child."""
        self._held()
        if self._closed or self._handle is None:
            raise ClosedError(f"the {self._describe()} is closed")
        return self._handle

    @property
    def closed(self) -> bool:
        """Whether close() was called (or the handle is gone): every call then raises ClosedError."""
        return self._closed or self._handle is None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        # At interpreter shutdown the libraries' ctypes functions may already be gone: the process is
        # ending and the OS takes the memory back, so nothing is freed then.
        if self._handle is None or sys.is_finalizing():
            return
        with contextlib.suppress(Exception):
            self.close()


def _fresh_locks_in_child() -> None:
    """Run in the child right after fork(), while it has one thread: each handle the child may use gets a
    new lock of the same kind (the copied one may be held by a thread of the parent, and would never be
    released), so that a thread of the child cannot meet the parent's copy."""
    for handle in list(_HANDLES):
        if handle._usable_after_fork:
            handle._lock = threading.RLock() if isinstance(handle._lock, _RLOCK) else threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_fresh_locks_in_child)
