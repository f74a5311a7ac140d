"""Running one of upstream's programs (llama-server, from the llama-cpp-runtime-server wheel) on what load()
chose in this process: the core libraries, the best CPU variant and every plugin module that passed its checks.

The program finds the core libraries through its RUNPATH (beside it in site-packages) and, to be sure it gets
the very files load() checked, through the library path too; the modules it is given in MODULES_VARIABLE are
registered before its main() by code the server preset compiles into it (buildsys/cmake/server-backends.c).
On POSIX the program replaces this process (signals and the exit status are the program's own); Windows has no
exec, so it runs as a child whose exit status is returned.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ._errors import LlamaRuntimeError, LoadError
from ._loading.discovery import CORE_SOURCE, installed_version
from ._loading.runtime_libs import nvidia_library_dirs
from ._loading.stage_record import InstalledVersions, identity_conflict, read_stage_record
from ._platform import IS_MACOS, IS_WINDOWS
from ._runtime import Runtime, load

MODULES_VARIABLE = "LLAMA_CPP_RUNTIME_MODULES"  # read by server-backends.c: module paths, os.pathsep-separated
LIBRARY_PATH_VARIABLE = "PATH" if IS_WINDOWS else "DYLD_LIBRARY_PATH" if IS_MACOS else "LD_LIBRARY_PATH"


def program_environment(rt: Runtime, program: Path, distribution: str, base: Mapping[str, str]) -> dict[str, str]:
    """The environment `program` runs in: `base`, with the modules load() loaded and the library folders.
    LoadError when the program's package was built from another upstream or patch series than the core."""
    _refuse_other_build(rt, program, distribution)
    loaded = [m for m in rt.report().modules if m.status == "loaded" and m.path]
    folders = [str(rt.library_path("ggml").parent)]
    if any(m.backend == "cuda" for m in loaded):  # its runtime (cudart, cuBLAS) from NVIDIA's wheels
        folders += [str(folder) for folder in nvidia_library_dirs()]
    inherited = base.get(LIBRARY_PATH_VARIABLE, "")
    return {
        **base,
        MODULES_VARIABLE: os.pathsep.join(str(m.path) for m in loaded),
        LIBRARY_PATH_VARIABLE: os.pathsep.join([*folders, *([inherited] if inherited else [])]),
    }


def _refuse_other_build(rt: Runtime, program: Path, distribution: str) -> None:
    record = read_stage_record(program.parent.parent)  # the package's stage.json, beside bin/
    versions = InstalledVersions(
        distribution, installed_version(distribution, sys.path), installed_version(CORE_SOURCE, sys.path)
    )
    conflict = identity_conflict(record, dict(rt.upstream), versions)
    if conflict:
        raise LoadError(conflict)


def run_program(program: Path, distribution: str, arguments: Sequence[str]) -> int:
    """Start `program` with `arguments` on load()'s choice; returns its exit status where it cannot replace
    this process, and 2 (with one line on stderr) when the libraries or the program cannot be used."""
    try:
        if not program.is_file():
            raise LoadError(f"{program} is missing: reinstall {distribution}")
        environment = program_environment(load(), program, distribution, os.environ)
    except LlamaRuntimeError as error:
        print(f"{program.name}: error: {error}", file=sys.stderr)
        return 2
    argv = [str(program), *arguments]
    sys.stdout.flush()
    sys.stderr.flush()
    if IS_WINDOWS:
        try:
            return subprocess.call(argv, env=environment)  # noqa: S603 - the wheel's program, an argument list
        except KeyboardInterrupt:
            return 130
    os.execve(program, argv, environment)
    raise AssertionError("unreachable: execve returns only by raising")
