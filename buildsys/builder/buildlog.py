"""What to show of a failed CMake step: the failing command and the lines that explain it, not the log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..cmake_tool import NINJA_PROGRESS

TAIL_LINES = 25
COMMAND_LIMIT = 600


@dataclass(frozen=True)
class FailureSummary:
    target: str | None  # what Ninja was building, when Ninja says
    command: str | None
    lines: tuple[str, ...]


def summarise_failure(stdout: Sequence[str], stderr: Sequence[str]) -> FailureSummary:
    """Ninja's first FAILED block if there is one, else CMake's errors, else the last lines."""
    ninja = _first_ninja_failure(stdout)
    if ninja:
        return ninja
    cmake_errors = _cmake_errors([*stdout, *stderr])
    if cmake_errors:
        return FailureSummary(None, None, tuple(cmake_errors[-TAIL_LINES:]))
    combined = [line for line in [*stdout, *stderr] if line.strip()]
    return FailureSummary(None, None, tuple(combined[-TAIL_LINES:]))


def _first_ninja_failure(lines: Sequence[str]) -> FailureSummary | None:
    for index, line in enumerate(lines):
        if not line.startswith("FAILED: "):
            continue
        target = line.removeprefix("FAILED: ").strip()
        if target.startswith("[code="):  # newer Ninja: "FAILED: [code=1] <target>"
            target = target.split("] ", 1)[-1]
        command = lines[index + 1] if index + 1 < len(lines) else None
        if command and len(command) > COMMAND_LIMIT:
            command = command[:COMMAND_LIMIT] + " …"
        output: list[str] = []
        for following in lines[index + 2 :]:
            if following.startswith(("FAILED: ", "ninja: build stopped")) or _is_ninja_status(following):
                break
            output.append(following)
        return FailureSummary(target, command, tuple(output[-TAIL_LINES:]))
    return None


def _is_ninja_status(line: str) -> bool:
    return NINJA_PROGRESS.match(line) is not None


def _cmake_errors(lines: Sequence[str]) -> list[str]:
    """Each `CMake Error` paragraph, up to the blank line that ends it."""
    kept: list[str] = []
    inside = False
    for line in lines:
        if line.startswith("CMake Error"):
            inside = True
        elif inside and not line.strip():
            inside = False
            kept.append("")
        if inside:
            kept.append(line)
    return kept
