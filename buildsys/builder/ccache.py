"""ccache for the build: one cache per project and a hit count for the report.

ccache is content-addressed (the compiler, its arguments, the source and every header it includes), so
an object compiled before a bump or a patch edit is reused exactly when its inputs did not change: a
patch that touches one file recompiles the units that see that file, not the whole tree.

ccache is used through ggml's own GGML_CCACHE switch (on in every preset); the driver only sets the
environment the compiler launcher sees. A CCACHE_DIR chosen by the user is respected.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..cmake_tool import probe
from ..config import CCACHE_FOLDER

_HIT_COUNTERS = ("direct_cache_hit", "preprocessed_cache_hit")
_MISS_COUNTERS = ("cache_miss",)


NAMESPACE = "llama-cpp-runtime"  # our entries in a shared CCACHE_DIR (`ccache --evict-namespace`)


def environment(ccache: Path | None, root: Path, build_dir: Path, env: Mapping[str, str]) -> dict[str, str]:
    if ccache is None:
        return {}
    return {
        "CCACHE_DIR": env.get("CCACHE_DIR") or str(build_dir / CCACHE_FOLDER),
        "CCACHE_NAMESPACE": NAMESPACE,
        # Paths under the project are hashed relative to it, so two checkouts share hits.
        "CCACHE_BASEDIR": str(root),
        "CCACHE_NOHASHDIR": "1",
        "CCACHE_COMPILERCHECK": "content",
    }


def statistics(ccache: Path | None, env: Mapping[str, str]) -> dict[str, int]:
    if ccache is None or "CCACHE_DIR" not in env:
        return {}
    counters = {}
    for line in probe([str(ccache), "--print-stats"], env).splitlines():
        key, _, value = line.partition("\t")
        if value.strip().isdigit():
            counters[key] = int(value)
    return counters


def describe(before: Mapping[str, int], after: Mapping[str, int]) -> str:
    """'ccache 118/120 hits' for this build alone, or '' without ccache."""
    if not after:
        return ""
    hits = sum(after.get(k, 0) - before.get(k, 0) for k in _HIT_COUNTERS)
    misses = sum(after.get(k, 0) - before.get(k, 0) for k in _MISS_COUNTERS)
    return f"ccache {hits}/{hits + misses} hits" if hits + misses else "ccache: nothing compiled"
