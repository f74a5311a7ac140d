"""Ctrl-C during a long C call (a model load, a context's creation, a decode): held until the call returns,
then raised.

Python runs a signal's handler only between bytecodes. While C computes, the only Python code that runs is
a callback from C (the log bridge, a load's progress), so that is where KeyboardInterrupt would be raised,
and it cannot unwind into C: ctypes prints it as a traceback and drops it, and the interrupt is lost. So,
while such a call runs on the main thread, SIGINT is only recorded; a model load asks the record through its
progress callback and stops early; the interrupt is raised once the call has returned.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType


class HeldInterrupt:
    """Whether Ctrl-C came while it was held."""

    def __init__(self) -> None:
        self.pending = False

    def record(self, signum: int, frame: FrameType | None) -> None:
        self.pending = True


@contextmanager
def interrupts_held() -> Iterator[HeldInterrupt]:
    """SIGINT recorded instead of raised for the duration, then KeyboardInterrupt. Only on the main thread
    (the one Python delivers signals to) and only over Python's own handler: an application's stays."""
    held = HeldInterrupt()
    if threading.current_thread() is not threading.main_thread():
        yield held
        return
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        yield held
        return
    signal.signal(signal.SIGINT, held.record)
    try:
        yield held
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if held.pending:
        raise KeyboardInterrupt


def kept(handle: int | None, interrupt: HeldInterrupt, free: Callable[[int], object]) -> int | None:
    """A handle a C call made while Ctrl-C was held: freed (None) when Ctrl-C came during the call, as the
    KeyboardInterrupt raised when the hold ends leaves nobody to own it."""
    if handle and interrupt.pending:
        free(handle)
        return None
    return handle
