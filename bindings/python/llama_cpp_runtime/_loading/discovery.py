"""Where the libraries are: the package's own lib/ and modules/, and every installed plugin package.

Plugins are found through an entry-point group, never by guessing directories: a plugin distribution
(e.g. llama-cpp-runtime-vulkan) declares
    [project.entry-points."llama_cpp_runtime.backends"]
    vulkan = "llama_cpp_runtime_vulkan:module_dir"
where module_dir() returns the directory holding its module(s).
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .._errors import LibraryNotFound
from .._platform import is_module_file, module_stem
from .._settings import LIBRARY_DIR, PLUGIN_DIRS, Settings

ENTRY_POINT_GROUP = "llama_cpp_runtime.backends"
CORE_SOURCE = "llama-cpp-runtime"
PACKAGE_DIR = Path(__file__).resolve().parents[1]


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


def find_layout(library_dir: Path | None, settings: Settings) -> Layout:
    root = library_dir or settings.library_dir or PACKAGE_DIR
    root = root.resolve()
    if not (root / "lib").is_dir():
        where = f"{LIBRARY_DIR}={root}" if root != PACKAGE_DIR else f"the package at {root}"
        raise LibraryNotFound(
            f"no core libraries in {root / 'lib'} ({where}); "
            "reinstall llama-cpp-runtime, or point LLAMA_CPP_RUNTIME_LIBRARY_DIR at a build stage"
        )
    return Layout(root=root, lib=root / "lib", modules=root / "modules")


def modules_in(directory: Path, source: str) -> list[ModuleFile]:
    if not directory.is_dir():
        return []
    return [ModuleFile(module_stem(p), p, source) for p in sorted(directory.iterdir()) if is_module_file(p)]


def plugin_modules(settings: Settings) -> tuple[list[ModuleFile], list[BrokenPlugin]]:
    found: list[ModuleFile] = []
    broken: list[BrokenPlugin] = []
    for entry_point in backend_entry_points(sys.path):
        try:
            provider = entry_point.load()
            location = provider() if callable(provider) else provider
            if not isinstance(location, str | os.PathLike):
                raise TypeError(f"it gave {location!r}, not a directory")
            directory = Path(location)
        except Exception as error:  # a broken plugin is reported, never fatal
            broken.append(BrokenPlugin(entry_point.distribution, f"entry point {entry_point.value} failed: {error}"))
            continue
        modules = modules_in(directory, entry_point.distribution)
        if not modules:
            broken.append(BrokenPlugin(entry_point.distribution, f"no backend module in {directory}"))
        found += modules
    for extra in settings.plugin_dirs:
        found += modules_in(extra, PLUGIN_DIRS)
    return found, broken


@dataclass(frozen=True, order=True)
class EntryPoint:
    name: str
    value: str  # module:attribute
    distribution: str

    def load(self) -> object:
        module_name, _, attributes = self.value.split("[", 1)[0].partition(":")
        loaded: object = importlib.import_module(module_name.strip())
        for attribute in filter(None, attributes.strip().split(".")):
            loaded = getattr(loaded, attribute)
        return loaded


def backend_entry_points(search_path: Sequence[str]) -> list[EntryPoint]:
    """The group's entry points of every distribution installed on the search path, the first of each
    name winning as importlib.metadata decides. Read here, from each dist-info's entry_points.txt:
    importing importlib.metadata and scanning with it took half of load()."""
    seen: set[str] = set()
    found: list[EntryPoint] = []
    for entry in search_path:
        try:
            names = sorted(os.listdir(entry or "."))
        except OSError:  # a zip file or a missing directory holds no native plugin
            continue
        for name in names:
            stem, dot, suffix = name.rpartition(".")
            if not dot or suffix not in {"dist-info", "egg-info"}:
                continue
            distribution = re.sub(r"[-_.]+", "-", stem.split("-", 1)[0]).lower()
            if distribution in seen:
                continue
            seen.add(distribution)
            try:
                with open(os.path.join(entry or ".", name, "entry_points.txt"), encoding="utf-8") as file:
                    text = file.read()
            except OSError:
                continue
            found += [EntryPoint(key, value, distribution) for key, value in _group(text, ENTRY_POINT_GROUP)]
    return sorted(found)


def installed_version(distribution: str, search_path: Sequence[str]) -> str:
    """The version of an installed distribution, from its dist-info folder's name ("" when there is none),
    the first on the search path winning as for the entry points."""
    wanted = re.sub(r"[-_.]+", "_", distribution).lower()
    for entry in search_path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            stem, _, version = name.removesuffix(".dist-info").partition("-")
            if name.endswith(".dist-info") and re.sub(r"[-_.]+", "_", stem).lower() == wanted:
                return version
    return ""


def _group(text: str, group: str) -> list[tuple[str, str]]:
    """`name = value` lines of one [group] section of an entry_points.txt (an INI file)."""
    section = None
    entries = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
        elif section == group and "=" in line:
            key, _, value = line.partition("=")
            entries.append((key.strip(), value.strip()))
    return entries
