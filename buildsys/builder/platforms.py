"""The platform a build is for: the host's own, or one this host cross-compiles for (`--platform`).

Platform names are the wheel matrix's (buildsys/ci/matrix.py lists the same four; a unit test holds them
equal). A cross build has its own build tree, stage and log (`build/<preset>-<platform>/`,
`build/stage/<preset>-<platform>/`, `build/logs/<preset>-<platform>.log`), so it never collides with the
native build of the same preset, and only the presets named in CROSS_PRESETS are cross-built: the others
are listed as skipped with the reason.
"""

from __future__ import annotations

import platform as _platform
from dataclasses import dataclass

from ..errors import UsageError

# The wheel matrix's platform names, each with CMake's system name and processor on it.
KNOWN = {
    "linux-x86_64": ("Linux", "x86_64"),
    "linux-aarch64": ("Linux", "aarch64"),
    "macos-arm64": ("Darwin", "arm64"),
    "windows-x86_64": ("Windows", "AMD64"),
}
_MACHINES = {"amd64": "x86_64", "x86_64": "x86_64", "arm64": "aarch64", "aarch64": "aarch64"}


@dataclass(frozen=True, kw_only=True)
class CrossTarget:
    """A platform this host builds for with a cross compiler (Debian's gcc-<triplet> packages)."""

    name: str  # linux-aarch64
    system: str  # CMake's CMAKE_SYSTEM_NAME: Linux
    processor: str  # CMAKE_SYSTEM_PROCESSOR: aarch64
    triplet: str  # the compilers' prefix: aarch64-linux-gnu
    package: str  # the Debian package that brings them
    emulator: str  # qemu-user's program for the target: runs the build's probes (llama-abi.json)
    wheel_platform: str  # the wheel tag's platform before repair: linux_aarch64

    @property
    def sysroot(self) -> str:
        """Where Debian's cross packages put the target's libc (qemu's -L)."""
        return f"/usr/{self.triplet}"

    def suffix(self, name: str) -> str:
        """A build tree's, stage's or log's name for this platform: cpu -> cpu-linux-aarch64."""
        return f"{name}-{self.name}"


# From an x86-64 Linux host (what CI's Linux runners and this project's machines are).
CROSS_TARGETS = {
    ("linux-x86_64", "linux-aarch64"): CrossTarget(
        name="linux-aarch64",
        system="Linux",
        processor="aarch64",
        triplet="aarch64-linux-gnu",
        package="g++-aarch64-linux-gnu",
        emulator="qemu-aarch64",
        wheel_platform="linux_aarch64",
    ),
}
# What a cross build builds: the core and every CPU variant. GPU modules are built natively on their platform.
CROSS_PRESETS = frozenset({"cpu"})
NOT_CROSS_BUILT = (
    "not cross-built: a GPU module links the target's GPU libraries and qemu-user has no GPU to run it on; "
    "built natively by CI (ubuntu-24.04-arm)"
)


def host_platform(system: str | None = None, machine: str | None = None) -> str:
    """The matrix name of the platform this runs on (linux-x86_64, ...); the machine's own words otherwise."""
    system = system or _platform.system()
    machine = _MACHINES.get((machine or _platform.machine()).lower(), (machine or _platform.machine()).lower())
    prefix = {"Linux": "linux", "Darwin": "macos", "Windows": "windows"}.get(system, system.lower())
    if prefix == "macos" and machine == "aarch64":
        machine = "arm64"
    return f"{prefix}-{machine}"


def resolve(name: str, host: str | None = None) -> CrossTarget | None:
    """The cross target `--platform NAME` asks for (None: the host's own platform); refuses (exit 2) a name
    the matrix does not know, or a platform this host cannot build for."""
    host = host or host_platform()
    if name not in KNOWN:
        raise UsageError(f"no platform named {name!r}", hint=f"platforms: {', '.join(KNOWN)}")
    if name == host:
        return None
    target = CROSS_TARGETS.get((host, name))
    if target is None:
        reachable = [host, *(t.name for (h, _), t in CROSS_TARGETS.items() if h == host)]
        raise UsageError(
            f"{host} cannot build for {name}",
            hint=f"here: {', '.join(reachable)}; build {name} on its own runner (buildsys/ci/matrix.py)",
        )
    return target
