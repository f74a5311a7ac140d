"""Named, timed steps on stderr: one line per step when it passes, its captured log when it fails.

Library code calls `step()` and `info()`; the CLI decides where they go (`configure`).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO


@dataclass
class _Settings:
    stream: TextIO = sys.stderr
    quiet: bool = False


_settings = _Settings()


def configure(*, stream: TextIO | None = None, quiet: bool = False) -> None:
    _settings.stream = stream or sys.stderr
    _settings.quiet = quiet


def bounded(items: list[str], limit: int = 15, *, unit: str = "", lead: str = "… ") -> list[str]:
    """The first `limit` items, and an item saying how many more there are ("… and 3 more", `unit` after the
    count, `lead` before "and": the one way every list the toolkit shows is cut short)."""
    return items if len(items) <= limit else [*items[:limit], f"{lead}and {len(items) - limit} more{unit}"]


def info(message: str) -> None:
    if not _settings.quiet:
        print(message, file=_settings.stream, flush=True)


def replay(line: str) -> None:
    """A line of a failed tool's output, shown even when quiet."""
    print(f"  | {line}", file=_settings.stream, flush=True)


def warn(message: str) -> None:
    print(f"warning: {message}", file=_settings.stream, flush=True)


def duration(seconds: float) -> str:
    return f"{seconds:.1f}s" if seconds < 60 else f"{int(seconds // 60)}m{seconds % 60:04.1f}s"


def _elapsed(start: float) -> str:
    return duration(time.monotonic() - start)


class _Ticker:
    """Keeps the reader told that a long step is still running: a live line on a terminal, and a line
    every `LOG_INTERVAL` seconds in a CI log (where a silent ten-minute build looks hung)."""

    LOG_INTERVAL = 30.0

    def __init__(self, name: str, start: float) -> None:
        self._name, self._start = name, start
        self._detail = ""
        self.failed = False
        self._done = threading.Event()
        self._interactive = _settings.stream.isatty()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Ticker:
        if not _settings.quiet:
            self._thread.start()
        return self

    def progress(self, detail: str) -> None:
        """What the step is doing now, e.g. "57/222": shown with the next tick."""
        self._detail = detail

    def fail(self) -> None:
        """Mark the step failed without raising (the caller reports the failure itself)."""
        self.failed = True

    def _line(self) -> str:
        detail = f" {self._detail}" if self._detail else ""
        return f"  … {self._name}{detail} ({_elapsed(self._start)})"

    def _run(self) -> None:
        interval = 1.0 if self._interactive else self.LOG_INTERVAL
        while not self._done.wait(interval):
            if self._interactive:
                print(f"\r\033[K{self._line()}", end="", file=_settings.stream, flush=True)
            else:
                print(self._line(), file=_settings.stream, flush=True)

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()
            if self._interactive:
                print("\r\033[K", end="", file=_settings.stream, flush=True)


@contextmanager
def step(name: str) -> Iterator[_Ticker]:
    start = time.monotonic()
    try:
        with _Ticker(name, start) as ticker:
            yield ticker
    except BaseException:
        print(f"✗ {name} ({_elapsed(start)})", file=_settings.stream, flush=True)
        raise
    if ticker.failed:
        print(f"✗ {name} ({_elapsed(start)})", file=_settings.stream, flush=True)
    elif not _settings.quiet:
        print(f"✓ {name} ({_elapsed(start)})", file=_settings.stream, flush=True)
