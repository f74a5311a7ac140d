"""What PyPI and the packaging linters say of wheels: `twine check --strict` and `check-wheel-contents`,
run from this interpreter's environment (the `test` dependency group installs both)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


def _run(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=300, check=False
    )


def twine_check(wheels: Sequence[Path]) -> subprocess.CompletedProcess[str]:
    return _run("twine", "check", "--strict", *map(str, wheels))


def check_wheel_contents(wheels: Sequence[Path], *, ignore: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    options = ["--ignore", ",".join(ignore)] if ignore else []
    return _run("check_wheel_contents", *options, *map(str, wheels))


def tool_versions() -> str:
    """`twine 7.0.0, check-wheel-contents 0.6.3`: said in a failure, so that a new release is easy to blame."""
    from importlib.metadata import version

    return f"twine {version('twine')}, check-wheel-contents {version('check-wheel-contents')}"
