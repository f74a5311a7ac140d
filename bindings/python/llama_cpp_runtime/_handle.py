"""One owner per C handle: the lock, close(), closed, the context manager and a finaliser, written once.

A subclass says only how its handle is freed (`_free`), what it is called in errors (`_describe`) and,
when something else still uses the handle after close() (a model's contexts), when it may be freed.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import Self

from ._errors import ClosedError


class Handle:
    """A C handle with one owner: close() it, or use it as a context manager; afterwards it raises ClosedError."""

    _handle: int | None = None  # a class default: a failed __init__ leaves nothing for the finaliser to free
    _closed = False

    def __init__(self, lock: threading.Lock | threading.RLock) -> None:
        self._lock = lock

    def _free(self, handle: int) -> None:
        raise NotImplementedError

    def _describe(self) -> str:
        return type(self).__name__.lower()

    def _may_free(self) -> bool:
        return True

    def close(self) -> None:
        """Idempotent: the handle is freed now, or when the last user of it lets go."""
        with self._lock:
            self._closed = True
            self._free_if_unused()

    def _free_if_unused(self) -> None:
        if self._closed and self._handle is not None and self._may_free():
            handle, self._handle = self._handle, None
            self._free(handle)

    def _live(self) -> int:
        """The handle, for a call made under the lock; ClosedError after close()."""
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
