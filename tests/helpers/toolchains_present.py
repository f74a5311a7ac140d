"""Markers for tests that need a toolchain the machine may lack. CI installs them and sets
BUILDSYS_REQUIRE_TOOLCHAINS, which turns a missing toolchain from a skip into a failure."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def require_toolchain(name: str, *tools: str) -> pytest.MarkDecorator:
    """Skip without the toolchain, unless CI said it must be there (then the test fails instead)."""
    required = name in os.environ.get("BUILDSYS_REQUIRE_TOOLCHAINS", "").split(",")
    missing = [tool for tool in tools if not shutil.which(tool) and not Path(tool).exists()]
    return pytest.mark.skipif(bool(missing) and not required, reason=f"{name} toolchain missing: {missing}")


with_ccache = require_toolchain("ccache", "ccache")
vulkan = require_toolchain("vulkan", "glslc", "/usr/include/vulkan/vulkan.h", "/usr/share/vulkan/icd.d")
# ggml's BLAS backend: a real device that implements only some operations (Debian's libopenblas-dev)
openblas = require_toolchain(
    "openblas", "/usr/lib/x86_64-linux-gnu/libopenblas.so", "/usr/include/x86_64-linux-gnu/cblas.h"
)
# linux-aarch64 on this x86-64 machine: Debian's cross compiler, qemu-user, and apt for the arm64 CPython
aarch64 = require_toolchain("aarch64", "aarch64-linux-gnu-gcc", "aarch64-linux-gnu-g++", "qemu-aarch64", "apt-get")
