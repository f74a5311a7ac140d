"""What a cross build adds to a native one: the CMake toolchain file the driver writes from the compilers it
found, and the CPU variants the compiler could not build (recorded by the superbuild at configure time)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from .platforms import CrossTarget

# Written by the superbuild (buildsys/cmake/CMakeLists.txt) into the build tree: one "<target>\t<reason>" a line.
UNBUILDABLE_RECORD = "unbuildable-variants.txt"


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "/").replace('"', '\\"') + '"'


def toolchain_file(target: CrossTarget, compilers: Mapping[str, str], emulator: Path | None) -> str:
    """A CMake toolchain file for the target: its system and processor, the compilers found, the target's
    libraries and headers from Debian's cross sysroot only, and qemu-user to run what the build runs."""
    lines = [
        f"# Written by `python -m buildsys build --platform {target.name}` from what it found on this host.",
        f"set(CMAKE_SYSTEM_NAME {target.system})",
        f"set(CMAKE_SYSTEM_PROCESSOR {target.processor})",
        *(f"set({name} {_quoted(path)})" for name, path in sorted(compilers.items())),
        f"set(CMAKE_FIND_ROOT_PATH {_quoted(target.sysroot)})",
        "set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)",
        "set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)",
        "set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)",
        "set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)",
    ]
    if emulator is not None:
        lines.append(f"set(CMAKE_CROSSCOMPILING_EMULATOR {_quoted(str(emulator))} -L {_quoted(target.sysroot)})")
    return "\n".join(lines) + "\n"


def read_unbuildable(path: Path) -> dict[str, str]:
    """The modules the superbuild left unbuilt, each with the compiler's reason ({} when it left none)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return {}
    found = {}
    for line in text.splitlines():
        name, tab, reason = line.partition("\t")
        if tab:
            found[name] = reason
    return found
