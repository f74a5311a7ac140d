"""Work in a forked child of the test process, bounded: for what fork() does to the binding's handles."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable


def in_child(work: Callable[[], bool], timeout: float = 30) -> int:
    """Fork, run work() in the child (its exit code: 0 when it returned True), wait at most `timeout` s."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os._exit(0 if work() else 1)
        finally:
            os._exit(2)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return -1
