"""Running `python -m llama_cpp_runtime <command>` in a child process with a timeout: whatever a device
or a model file does there (an abort, a fault, a hang) becomes one line of text here. Every child that
answers prints its answer as one line of JSON, last on stdout (a driver may have printed before it)."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._settings import QUIET_GPU

MAX_TIMEOUT = 7 * 24 * 3600.0  # seconds: beyond what the operating system's timers take, and any real wait


@dataclass(frozen=True)
class ChildResult:
    stdout: str
    failure: str  # "" when the child exited 0; else "timed out after 60s", "crashed (SIGABRT); <last line>", ...
    seconds: float
    returncode: int | None = 0  # None: it timed out (and was killed); negative: the signal that ended it

    def json(self) -> Any:
        """The child's answer: the last line of stdout, as JSON (a driver may print on stdout before it);
        None when that line is not JSON."""
        lines = self.stdout.strip().splitlines()
        try:
            return json.loads(lines[-1]) if lines else None
        except ValueError:
            return None


# The line that says why a child ended, ahead of whatever followed it: ggml's "file.c:12: GGML_ASSERT(x) failed"
# (or another GGML_ABORT) is followed by a backtrace (gdb's lines, when gdb is installed), and C++'s
# "terminate called ..." by its what() line.
_WHY = (re.compile(r"GGML_ASSERT\(.*\) failed|^\S+\.(?:c|cc|cpp|cu|m|mm):\d+: \S"), re.compile(r"^what\(\): "))


def last_words(text: str) -> str:
    """Why a child ended, from its stderr: an assertion or abort line, a C++ exception's what(), else the last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for pattern in _WHY:
        found = next((line for line in lines if pattern.search(line)), None)
        if found is not None:
            return found
    return lines[-1] if lines else ""


def check_timeout(timeout: object) -> float:
    """The timeout, when it is a finite number of seconds above zero and at most MAX_TIMEOUT (a larger one
    overflows the operating system's timers); else ValueError naming it."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise ValueError(f"timeout={timeout!r}: expected a number of seconds")
    if not (math.isfinite(timeout) and 0 < timeout <= MAX_TIMEOUT):
        raise ValueError(
            f"timeout={timeout!r}: expected a finite number of seconds above zero, at most {MAX_TIMEOUT:.0f}"
        )
    return float(timeout)


def run_child(args: Sequence[str], env: Mapping[str, str] | None, timeout: float) -> ChildResult:
    """The child's output, or why it failed. `env` None is this process's environment. A child never warns
    about unused GPUs: its stderr is read for why it failed, and the warning is the parent's to give.
    A timeout that is not a finite number of seconds in (0, MAX_TIMEOUT] is a ValueError."""
    timeout = check_timeout(timeout)
    start = time.monotonic()
    env = {**(os.environ if env is None else env), QUIET_GPU: "1"}
    with _start([sys.executable, "-m", "llama_cpp_runtime", *args], env) as process:
        try:
            _Starting.active = False  # from here an interruption kills the child on its way out
            _Starting.raise_pending()
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            return ChildResult("", f"timed out after {timeout:.0f}s", time.monotonic() - start, None)
        except BaseException:  # Ctrl-C, SIGTERM: the child goes with us, never an orphan
            process.kill()
            process.wait()
            raise
    seconds = time.monotonic() - start
    said = last_words(stderr)
    if process.returncode < 0:
        name = signal.Signals(-process.returncode).name
        return ChildResult(stdout, f"crashed ({name}){'; ' + said if said else ''}", seconds, process.returncode)
    if process.returncode != 0:
        return ChildResult(stdout, said or f"exit {process.returncode}", seconds, process.returncode)
    return ChildResult(stdout, "", seconds, 0)


class _Starting:
    """Whether a child is being started, and the interruption that came meanwhile: raised inside Popen, after
    the child exists but before we hold it, it would leave the child running with nobody to kill it."""

    active = False
    pending: BaseException | None = None

    @classmethod
    def raise_pending(cls) -> None:
        pending, cls.pending = cls.pending, None
        if pending is not None:
            raise pending


def interrupt(error: BaseException) -> None:
    """Raise `error` (from a signal handler), or, while a child is being started, as soon as it has started."""
    if _Starting.active:
        _Starting.pending = error
        return
    raise error


def _start(command: list[str], env: Mapping[str, str]) -> subprocess.Popen[str]:
    """The child, started with interruptions held until the caller holds it (run_child ends the hold)."""
    _Starting.active = True
    try:
        return subprocess.Popen(  # noqa: S603 - this very interpreter, a fixed module, our arguments
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    except BaseException:  # it did not start (or Ctrl-C came): nothing to hold, nothing held back
        _Starting.active = False
        _Starting.raise_pending()  # the interruption, not the failure to start, is what the user asked for
        raise
