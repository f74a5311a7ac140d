"""The one log callback of ggml and llama.cpp, bridged to Python's logging, with per-thread capture."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from . import api as _api

_LEVELS = {1: logging.DEBUG, 2: logging.INFO, 3: logging.WARNING, 4: logging.ERROR}


class CapturedLog(list[str]):
    """The lines one thread caused, and among them those logged at error level."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[str] = []


class LogBridge:
    """The one log callback of ggml and llama.cpp, forwarded to the `llama_cpp_runtime.ggml` logger.
    A thread can also capture the lines it causes (a module or a model that fails to load says why in
    them); lines logged by other threads meanwhile are not mixed in."""

    def __init__(self) -> None:
        self.logger = logging.getLogger("llama_cpp_runtime.ggml")
        self._local = threading.local()
        self._level = logging.INFO
        self.callback = _api.LOG_CALLBACK(self._on_log)  # kept alive as long as the bridge

    def _on_log(self, level: int, text: bytes | None, user_data: object) -> None:
        try:
            message = (text or b"").decode("utf-8", errors="replace").rstrip("\n")
            if level != 5:  # GGML_LOG_LEVEL_CONT continues the previous line at its level
                self._level = _LEVELS.get(level, logging.INFO)
            if message:
                self.logger.log(self._level, "%s", message)
                captured: CapturedLog | None = getattr(self._local, "captured", None)
                if captured is not None:
                    captured.append(message)
                    if self._level >= logging.ERROR:
                        captured.errors.append(message.strip())
        # An exception must never unwind into C. Ctrl-C cannot reach here during a model load, a context's
        # creation or a decode (interrupts.py holds it); during any other C call ctypes prints it and drops it.
        except Exception:
            pass

    @contextmanager
    def capture(self) -> Iterator[CapturedLog]:
        outer = getattr(self._local, "captured", None)
        lines = CapturedLog()
        self._local.captured = lines
        try:
            yield lines
        finally:
            self._local.captured = outer
            if outer is not None:
                outer.extend(lines)
                outer.errors.extend(lines.errors)
