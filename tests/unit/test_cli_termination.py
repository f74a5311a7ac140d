"""SIGTERM to `python -m llama_cpp_runtime` (a CI job cancelled, `kill`) unwinds like Ctrl-C: the child it
was waiting for is killed, not left running as an orphan; "interrupted" and exit 143, as buildsys does.
Every wait is bounded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers.support import REPO_ROOT

PARENT = """
    import sys
    from llama_cpp_runtime._child import run_child
    from llama_cpp_runtime._cli import main as cli

    sys.executable = sys.argv[1]  # the "child interpreter": a script that records its pid and sleeps
    cli._COMMANDS["info"] = lambda arguments: 0 if run_child(["info"], None, 600) else 1
    sys.exit(cli.main(["info"]))
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM and shell scripts are POSIX")
def test_sigterm_kills_the_child_being_waited_for_and_exits_143(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    sleeper = tmp_path / "sleeper.sh"
    sleeper.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 600\n")
    sleeper.chmod(0o755)
    parent = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(PARENT), str(sleeper)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "bindings" / "python")},
    )
    child = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (pid_file.exists() and pid_file.read_text().strip()):
            assert parent.poll() is None, parent.communicate(timeout=30)
            time.sleep(0.02)
        child = int(pid_file.read_text())
        parent.send_signal(signal.SIGTERM)
        _, stderr = parent.communicate(timeout=60)
        assert parent.returncode == 143, stderr
        assert stderr.strip().splitlines() == ["interrupted"], stderr
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _alive(child):
            time.sleep(0.02)
        assert not _alive(child), "the child was left running"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(timeout=30)
        if child is not None and _alive(child):
            os.kill(child, signal.SIGKILL)
