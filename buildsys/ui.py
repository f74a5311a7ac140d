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


def bounded(items: list[str], limit: int = 15) -> list[str]:
    """The first `limit` items, and a line saying how many more there are."""
    return items if len(items) <= limit else [*items[:limit], f"… and {len(items) - limit} more"]


def info(message: str) -> None:
    if not _settings.quiet:
        print(message, file=_settings.stream, flush=True)


def warn(message: str) -> None:
    print(f"warning: {message}", file=_settings.stream, flush=True)


def _elapsed(start: float) -> str:
    seconds = time.monotonic() - start
    return f"{seconds:.1f}s" if seconds < 60 else f"{int(seconds // 60)}m{seconds % 60:04.1f}s"


class _Ticker:
    """Keeps an interactive terminal told that a long step is still running."""

    def __init__(self, name: str, start: float) -> None:
        self._name, self._start = name, start
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Ticker:
        if _settings.stream.isatty() and not _settings.quiet:
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._done.wait(1.0):
            print(f"\r  … {self._name} ({_elapsed(self._start)})", end="", file=_settings.stream, flush=True)

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()
            print("\r\033[K", end="", file=_settings.stream, flush=True)


@contextmanager
def step(name: str) -> Iterator[None]:
    start = time.monotonic()
    try:
        with _Ticker(name, start):
            yield
    except BaseException:
        print(f"✗ {name} ({_elapsed(start)})", file=_settings.stream, flush=True)
        raise
    if not _settings.quiet:
        print(f"✓ {name} ({_elapsed(start)})", file=_settings.stream, flush=True)
