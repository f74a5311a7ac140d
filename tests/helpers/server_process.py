"""A server a test starts: a free loopback port, the process awaited until it answers (bounded: its log in the
failure), killed afterwards whatever happened."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


@contextmanager
def answering(
    command: list[str],
    log_path: Path,
    answers: Callable[[], bool],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
) -> Iterator[subprocess.Popen[str]]:
    """`command` running, once `answers()` is true (within `timeout` seconds); killed on the way out."""
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=None if env is None else dict(env), text=True
        )
        try:
            deadline = time.monotonic() + timeout
            while not answers():
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, f"{command[0]} did not answer in {timeout}s"
                time.sleep(0.2)
            yield process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)
