"""The CPU variants' scores, remembered per user so that later processes need not open every variant.

Scoring opens each variant module (14 on x86-64) and asks it whether this CPU runs its instructions;
that is most of `load()`'s cost. The answer depends only on the CPU and on the module files, so it is
stored under a key made of both: the CPU's identity (its model and feature flags as the kernel reports
them) and each module's path, size, modification time and inode. Any change to either makes a new key.
A hit is still verified: the chosen module's own score is asked again when it is opened to be loaded.
The cache is an optimisation only: an unreadable, damaged or unwritable cache is the same as none.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from .discovery import ModuleFile

FORMAT = 1
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


def cpu_identity() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as cpuinfo:
            identity = cpu_identity_from_cpuinfo(cpuinfo.read(1 << 16))
    except OSError:
        identity = ""
    # Without /proc (macOS, Windows): the machine's names only; a hit is verified when it is loaded.
    return identity or f"{sys.platform}|{os.uname().machine if hasattr(os, 'uname') else ''}|" + os.environ.get(
        "PROCESSOR_IDENTIFIER", ""
    )


def _key(modules: Sequence[ModuleFile]) -> str | None:
    digest = hashlib.sha256(f"{FORMAT}\n{cpu_identity()}\n".encode())
    for module in modules:
        try:
            status = module.path.stat()
        except OSError:
            return None
        digest.update(f"{module.path}\0{status.st_size}\0{status.st_mtime_ns}\0{status.st_ino}\n".encode())
    return digest.hexdigest()[:32]


def entry_for(directory: Path | None, modules: Sequence[ModuleFile]) -> Path | None:
    """The cache file of exactly these modules on this CPU (None: no cache). Computed once per load: it
    reads /proc/cpuinfo and stats every module."""
    key = _key(modules) if directory is not None and modules else None
    return directory / f"cpu-variants-{key}.json" if directory is not None and key else None


def recall(entry: Path | None, modules: Sequence[ModuleFile]) -> dict[str, int] | None:
    """The scores stored in `entry` for exactly these modules, or None."""
    if entry is None:
        return None
    try:
        scores = json.loads(entry.read_text(encoding="utf-8")).get("scores")
    except (OSError, ValueError, AttributeError):
        return None
    names = {m.name for m in modules}
    if not isinstance(scores, dict) or set(scores) != names:
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in scores.values()):
        return None
    return scores


def remember(entry: Path | None, scores: Mapping[str, int]) -> None:
    if entry is None:
        return
    record = json.dumps({"format": FORMAT, "scores": dict(scores)}, sort_keys=True)
    import tempfile  # only when writing: most processes only read

    with contextlib.suppress(OSError):
        entry.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=entry.parent, prefix=".cpu-variants-", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(record)
            os.replace(temporary, entry)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
