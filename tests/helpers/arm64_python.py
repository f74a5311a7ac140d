"""An arm64 CPython 3.11 that runs on this x86-64 machine under qemu-user, without root or a chroot.

Debian's arm64 packages (the interpreter, its standard library and the C libraries it needs) are fetched with
`apt-get download` and unpacked with `dpkg -x` into one folder, which qemu-aarch64 then uses as the target's
root (`-L`). The folder is kept in the user's cache beside the real llama.cpp trees
(`~/.cache/llama-cpp-runtime/arm64-python3.11/`) and reused by the next run:

    python tests/helpers/arm64_python.py        # prints the folder; its interpreter is <folder>/usr/bin/python3.11

apt must know the arm64 architecture (`dpkg --add-architecture arm64 && apt-get update`, as root: .ci/run does
it). Nothing here is part of buildsys.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

# What `python3.11 -m llama_cpp_runtime info/check` needs: the interpreter and its libraries (ctypes: libffi;
# hashlib: libssl3), and the C and C++ runtimes our libraries link.
PACKAGES = (
    "python3.11-minimal",
    "libpython3.11-minimal",
    "libpython3.11-stdlib",
    "libc6",
    "libstdc++6",
    "libgcc-s1",
    "libffi8",
    "zlib1g",
    "libexpat1",
    "libssl3",
    "libbz2-1.0",
    "liblzma5",
)
QEMU = "qemu-aarch64"
_TIMEOUT = 600


class Arm64PythonError(Exception):
    """The packages could not be fetched or unpacked."""


def cache_root(env: Mapping[str, str] = os.environ) -> Path:
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "llama-cpp-runtime"


def root_path(root: Path | None = None) -> Path:
    return (root or cache_root()) / "arm64-python3.11"


def interpreter(folder: Path) -> Path:
    return folder / "usr" / "bin" / "python3.11"


def launcher(folder: Path) -> Path:
    """A script that runs the arm64 interpreter under qemu-aarch64 as the CPU model in $QEMU_CPU (qemu reads it),
    and that the interpreter knows as its own sys.executable (qemu's -0): the children `check` and `bench` start
    run under qemu as the same CPU model, without binfmt_misc."""
    return folder / "usr" / "bin" / "python3.11-qemu"


def _write_launcher(folder: Path) -> None:
    text = (
        "#!/bin/sh\n"
        "# the arm64 CPython under qemu-user; the CPU model comes from $QEMU_CPU (default: qemu's max)\n"
        f'exec {QEMU} -L "{folder}" -0 "$0" "{interpreter(folder)}" "$@"\n'
    )
    path = launcher(folder)
    if not path.is_file() or path.read_text() != text:  # atomically: another test worker may be running it
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        temporary.write_text(text)
        temporary.chmod(0o755)
        os.replace(temporary, path)


def command(folder: Path, cpu: str, *args: str) -> tuple[list[str], dict[str, str]]:
    """The arguments and environment additions that run the arm64 interpreter as a qemu CPU model (cortex-a53,
    neoverse-n1, a64fx, max, ...)."""
    return [str(launcher(folder)), *args], {"QEMU_CPU": cpu}


def _run(args: Sequence[str], cwd: Path | None = None) -> str:
    try:
        result = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise Arm64PythonError(f"{args[0]} failed: {error}") from None
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-10:])
        raise Arm64PythonError(f"`{' '.join(args)}` exited {result.returncode}:\n{tail}")
    return result.stdout


def ensure(root: Path | None = None) -> Path:
    """The unpacked folder, made once (an interrupted attempt leaves nothing that looks finished)."""
    folder = root_path(root)
    if interpreter(folder).is_file():
        _write_launcher(folder)
        return folder
    if not shutil.which("apt-get") or not shutil.which("dpkg"):
        raise Arm64PythonError("apt-get and dpkg are needed to fetch Debian's arm64 CPython")
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=".arm64-python-") as temporary:
        downloads, unpacked = Path(temporary) / "debs", Path(temporary) / "root"
        downloads.mkdir()
        try:
            _run(["apt-get", "download", *(f"{name}:arm64" for name in PACKAGES)], cwd=downloads)
        except Arm64PythonError as error:
            raise Arm64PythonError(
                f"{error}\n(as root: dpkg --add-architecture arm64 && apt-get update, then run this again)"
            ) from None
        for deb in sorted(downloads.glob("*.deb")):
            _run(["dpkg", "-x", str(deb), str(unpacked)])
        if not interpreter(unpacked).is_file():
            raise Arm64PythonError(f"the packages held no {interpreter(Path('/')).as_posix()}")
        try:
            unpacked.rename(folder)
        except OSError:  # another test worker finished first: its folder is as good
            if not interpreter(folder).is_file():
                raise
    _write_launcher(folder)
    return folder


def for_tests() -> Path:
    """The folder, for a test: without it the test skips with a banner, unless BUILDSYS_REQUIRE_TOOLCHAINS names
    `aarch64` (as .ci/run does), and then it fails."""
    import pytest  # only the tests have it

    try:
        return ensure()
    except Arm64PythonError as error:
        message = f"ARM64 CPYTHON NOT TESTED: Debian's arm64 packages could not be had: {error}"
        if "aarch64" in os.environ.get("BUILDSYS_REQUIRE_TOOLCHAINS", "").split(","):
            pytest.fail(message)
        print(f"\n{'!' * 100}\n{message}\n{'!' * 100}", file=sys.stderr)
        pytest.skip(message)


def main() -> int:
    try:
        print(ensure())
    except Arm64PythonError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
