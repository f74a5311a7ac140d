"""Where the libraries are: the package's own lib/ and modules/, and every installed plugin package.

Plugins are found through an entry-point group, never by guessing directories: a plugin distribution
(e.g. llama-cpp-runtime-vulkan) declares
    [project.entry-points."llama_cpp_runtime.backends"]
    vulkan = "llama_cpp_runtime_vulkan:module_dir"
where module_dir() returns the directory holding its module(s).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ._errors import LibraryNotFound
from ._platform import is_module_file, module_stem

ENTRY_POINT_GROUP = "llama_cpp_runtime.backends"
LIBRARY_DIR_VARIABLE = "LLAMA_CPP_RUNTIME_LIBRARY_DIR"  # a directory with lib/ and modules/ (a build stage)
PLUGIN_DIRS_VARIABLE = "LLAMA_CPP_RUNTIME_PLUGIN_DIRS"  # extra module directories, os.pathsep-separated
CORE_SOURCE = "llama-cpp-runtime"
PACKAGE_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Layout:
    root: Path
    lib: Path
    modules: Path


@dataclass(frozen=True)
class ModuleFile:
    name: str  # ggml-cpu-haswell, ggml-vulkan
    path: Path
    source: str  # the distribution (or variable) that provided it

    @property
    def backend(self) -> str:
        return "cpu" if self.name.startswith("ggml-cpu") else self.name.removeprefix("ggml-")


@dataclass(frozen=True)
class BrokenPlugin:
    source: str
    reason: str


def find_layout(library_dir: Path | None, env: Mapping[str, str]) -> Layout:
    root = library_dir or (Path(env[LIBRARY_DIR_VARIABLE]) if env.get(LIBRARY_DIR_VARIABLE) else PACKAGE_DIR)
    root = root.resolve()
    if not (root / "lib").is_dir():
        where = f"{LIBRARY_DIR_VARIABLE}={root}" if root != PACKAGE_DIR else f"the package at {root}"
        raise LibraryNotFound(
            f"no core libraries in {root / 'lib'} ({where}); "
            "reinstall llama-cpp-runtime, or point LLAMA_CPP_RUNTIME_LIBRARY_DIR at a build stage"
        )
    return Layout(root=root, lib=root / "lib", modules=root / "modules")


def modules_in(directory: Path, source: str) -> list[ModuleFile]:
    if not directory.is_dir():
        return []
    return [ModuleFile(module_stem(p), p, source) for p in sorted(directory.iterdir()) if is_module_file(p)]


def plugin_modules(env: Mapping[str, str]) -> tuple[list[ModuleFile], list[BrokenPlugin]]:
    found: list[ModuleFile] = []
    broken: list[BrokenPlugin] = []
    from importlib import metadata  # only here: it costs a third of the package's import time

    for entry_point in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        source = entry_point.dist.name if entry_point.dist else entry_point.value
        try:
            provider = entry_point.load()
            directory = Path(provider() if callable(provider) else provider)
        except Exception as error:  # a broken plugin is reported, never fatal
            broken.append(BrokenPlugin(source, f"entry point {entry_point.value} failed: {error}"))
            continue
        modules = modules_in(directory, source)
        if not modules:
            broken.append(BrokenPlugin(source, f"no backend module in {directory}"))
        found += modules
    for extra in filter(None, env.get(PLUGIN_DIRS_VARIABLE, "").split(os.pathsep)):
        found += modules_in(Path(extra), PLUGIN_DIRS_VARIABLE)
    return found, broken
