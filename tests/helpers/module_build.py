"""One library target of a llama.cpp tree, configured with given CMake cache options and built outside the
project's driver (a backend module a test makes on purpose: a BLAS device, a deliberately broken CPU variant)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from buildsys.builder.driver import default_jobs
from buildsys.cmake_tool import find_tools, run


def build_library(source: Path, tree: Path, options: Mapping[str, str], target: str) -> Path:
    """lib<target>.so built from `source` in `tree` (CMake and Ninja as the toolkit finds them, through its CMake
    wrapper); the failure's output in the assertion."""
    tools = find_tools(os.environ)
    configure = [str(tools.cmake), "-S", str(source), "-B", str(tree), "-G", "Ninja"]
    configure += [f"-DCMAKE_MAKE_PROGRAM={tools.ninja}", *(f"-D{name}={value}" for name, value in options.items())]
    build = [str(tools.cmake), "--build", str(tree), "--target", target, "--parallel", str(default_jobs())]
    for command in (configure, build):
        outcome = run(command, env=os.environ, timeout=1800)
        assert outcome.ok, "\n".join(outcome.stdout[-30:] + outcome.stderr[-30:])
    [library] = tree.rglob(f"lib{target}.so")
    return library
