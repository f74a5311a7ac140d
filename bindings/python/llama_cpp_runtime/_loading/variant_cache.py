"""The CPU variants' scores, remembered per user so that later processes need not open every variant.

Scoring opens each variant module (14 on x86-64) and asks it whether this CPU runs its instructions;
that is most of `load()`'s cost. The answer depends only on the CPU and on the module files, so it is
stored under a key made of both: the CPU's identity (its model and feature flags as the kernel reports
them in /proc/cpuinfo, and on Linux the HWCAP words of the auxiliary vector, which ggml's ARM variants score
from and which differ between CPU models where /proc/cpuinfo does not, as under qemu-user) and each module's
path, size, modification time and inode. Any change to either makes a new key.
A hit is still verified: the chosen module's own score is asked again when it is opened to be loaded,
and the record repeats its inputs and carries a checksum, so that a record made for other inputs, or
damaged or edited into other valid JSON, is not believed (it would put a false reason in the report).
The cache is an optimisation only: an unreadable, damaged or unwritable cache is the same as none.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .discovery import ModuleFile

FORMAT = 2  # 2: the record repeats its inputs and carries a checksum
# The lines of /proc/cpuinfo that say which CPU this is and what it can run (not its clock or core id).
_IDENTITY_KEYS = frozenset(
    {
        "vendor_id",
        "cpu family",
        "model",
        "model name",
        "stepping",
        "microcode",
        "flags",  # x86
        "CPU implementer",
        "CPU architecture",
        "CPU variant",
        "CPU part",
        "CPU revision",
        "Features",  # Arm
        "isa",
        "uarch",
        "cpu",
        "machine",  # RISC-V, POWER, s390x
    }
)


def cpu_identity_from_cpuinfo(text: str) -> str:
    """The first processor's identifying lines of a /proc/cpuinfo text (every CPU of a machine is alike
    for scoring: ggml asks the CPU it runs on)."""
    first = text.split("\n\n", 1)[0]
    kept = []
    for line in first.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in _IDENTITY_KEYS:
            kept.append(f"{key.strip()}:{' '.join(value.split())}")
    return "\n".join(sorted(kept))


_AT_HWCAP, _AT_HWCAP2 = 16, 26  # getauxval(3): the features the kernel says this CPU has


def hardware_capabilities() -> str:
    """The auxiliary vector's HWCAP and HWCAP2 words (Linux), or "" where there are none. They are what ggml's
    ARM variants score themselves from, and they follow the CPU the process really runs on: qemu-user gives
    each emulated CPU model its own, while /proc/cpuinfo is then the host's file."""
    if not sys.platform.startswith("linux"):
        return ""
    import ctypes  # already imported by the loader that asks

    try:
        getauxval = ctypes.CDLL(None).getauxval
    except (OSError, AttributeError):  # a C library without getauxval (musl before 1.1.0)
        return ""
    getauxval.restype, getauxval.argtypes = ctypes.c_ulong, [ctypes.c_ulong]
    return f"hwcap:{getauxval(_AT_HWCAP):x} hwcap2:{getauxval(_AT_HWCAP2):x}"


def cpu_identity() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            identity = cpu_identity_from_cpuinfo(cpuinfo.read(1 << 16))
    except OSError:
        identity = ""
    capabilities = hardware_capabilities()
    if capabilities:
        identity = f"{identity}\n{capabilities}" if identity else capabilities
    # Without /proc (macOS, Windows): the machine's names only; a hit is verified when it is loaded.
    return identity or f"{sys.platform}|{os.uname().machine if hasattr(os, 'uname') else ''}|" + os.environ.get(
        "PROCESSOR_IDENTIFIER", ""
    )


@dataclass(frozen=True)
class Entry:
    """A cache file and what its scores depend on, which the file repeats: a record made for other inputs
    (copied from another machine or user, or left by a format before this one) is not believed."""

    path: Path
    inputs: str  # the CPU's identity, then each module's path, size, modification time and inode


def _inputs(modules: Sequence[ModuleFile]) -> str | None:
    lines = [f"{FORMAT}", cpu_identity()]
    for module in modules:
        try:
            status = module.path.stat()
        except OSError:
            return None
        lines.append(f"{module.path}\0{status.st_size}\0{status.st_mtime_ns}\0{status.st_ino}")
    return "\n".join(lines)


def entry_for(directory: Path | None, modules: Sequence[ModuleFile]) -> Entry | None:
    """The cache entry of exactly these modules on this CPU (None: no cache). Computed once per load: it
    reads /proc/cpuinfo and stats every module."""
    inputs = _inputs(modules) if directory is not None and modules else None
    if directory is None or inputs is None:
        return None
    key = hashlib.sha256(inputs.encode()).hexdigest()[:32]
    return Entry(directory / f"cpu-variants-{key}.json", inputs)


def _digest(inputs: str, scores: Mapping[str, object]) -> str:
    """A checksum of the record: a file edited or damaged into other valid JSON is not believed either."""
    return hashlib.sha256(json.dumps([inputs, scores], sort_keys=True).encode()).hexdigest()


def recall(entry: Entry | None, modules: Sequence[ModuleFile]) -> dict[str, int] | None:
    """The scores stored for exactly these modules and inputs, or None."""
    if entry is None:
        return None
    try:
        record = json.loads(entry.path.read_text(encoding="utf-8"))
        scores, inputs, digest = record.get("scores"), record.get("inputs"), record.get("digest")
    except (OSError, ValueError, AttributeError):
        return None
    if inputs != entry.inputs or not isinstance(scores, dict) or digest != _digest(inputs, scores):
        return None
    if set(scores) != {m.name for m in modules}:
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in scores.values()):
        return None
    return scores


def remember(entry: Entry | None, scores: Mapping[str, int]) -> None:
    if entry is None:
        return
    record = json.dumps(
        {"format": FORMAT, "inputs": entry.inputs, "scores": dict(scores), "digest": _digest(entry.inputs, scores)},
        sort_keys=True,
    )
    import tempfile  # only when writing: most processes only read

    with contextlib.suppress(OSError):
        entry.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=entry.path.parent, prefix=".cpu-variants-", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(record)
            os.replace(temporary, entry.path)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
