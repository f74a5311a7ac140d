"""Which fixture CPU variants this machine can run, from /proc/cpuinfo and the fixture's CMake."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from helpers.support import MINIGGML

# What each feature of a variant (as the fixture's CMake names it) needs in /proc/cpuinfo.
CPUINFO_FLAGS = {
    "SSE42": ["sse4_2"],
    "AVX": ["avx"],
    "F16C": ["f16c"],
    "FMA": ["fma"],
    "AVX2": ["avx2"],
    "BMI2": ["bmi2"],
    "AVX_VNNI": ["avx_vnni"],
    "AVX512": ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"],
    "AVX512_VBMI": ["avx512vbmi"],
    "AVX512_VNNI": ["avx512_vnni"],
}


x86_linux = pytest.mark.skipif(
    not (sys.platform.startswith("linux") and os.uname().machine in {"x86_64", "AMD64"}),
    reason="the CPU-variant assertions read /proc/cpuinfo of an x86-64 Linux machine",
)


def declared_x86_variants() -> dict[str, list[str]]:
    """The variants and their features as the fixture's ggml/src/CMakeLists.txt declares them."""
    text = (MINIGGML / "ggml/src/CMakeLists.txt").read_text()
    x86_block = text.split('GGML_SYSTEM_ARCH STREQUAL "x86")\n        ggml_add_cpu_backend_variant', 1)[1]
    x86_block = "ggml_add_cpu_backend_variant" + x86_block.split("elseif", 1)[0]
    return {m[1]: m[2].split() for m in re.finditer(r"ggml_add_cpu_backend_variant\(([\w.]+)\s*([^)]*)\)", x86_block)}


def cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def supported(features: list[str], flags: set[str]) -> bool:
    return all(flag in flags for feature in features for flag in CPUINFO_FLAGS[feature])


def best_supported_variant() -> str:
    """The variant with the most features among those this CPU runs (what the loader should pick)."""
    flags = cpu_flags()
    variants = declared_x86_variants()
    runnable = [v for v, features in variants.items() if supported(features, flags)]
    return max(runnable, key=lambda v: len(variants[v]))


# The test suite's platform assumptions, as markers with their reasons (skips are reported, not silent).
elf_linux = pytest.mark.skipif(
    not sys.platform.startswith("linux"),
    reason="reads ELF (SONAMEs, RUNPATH, DT_NEEDED) and glibc's loader messages: Linux only",
)
not_msvc = pytest.mark.skipif(
    sys.platform == "win32",
    reason="MSVC has neither -ffile-prefix-map nor a working /Brepro for our objects: no byte-identical rebuilds",
)
