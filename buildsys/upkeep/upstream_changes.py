"""What an upstream range changes that matters to the build: options, backends, CPU variants, minimum
toolchains, and files entering or leaving the sync subset. Read from git's object store, never a checkout."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from ..builder.cmake_reach import is_cmake_file
from ..builder.header_structs import StructChange
from ..builder.presets import Preset
from ..git import Git
from ..pathfilter import PathFilter
from ..vendoring.upstream_tree import read_blobs, tree_entries

_COMMENT = re.compile(r"(?<![\w$\"])#(?!\[)[^\n]*")
_QUOTED = r"\"((?:\\.|[^\"\\])*)\""  # a CMake quoted argument, escaped quotes included
_OPTION = re.compile(rf"\boption\s*\(\s*([A-Za-z_][\w]*)\s+{_QUOTED}\s*([^)]*)\)", re.IGNORECASE)
_CACHE_SET = re.compile(rf"\bset\s*\(\s*([A-Za-z_][\w]*)\s+([^()]*?)\s+CACHE\s+\w+\s+{_QUOTED}", re.IGNORECASE)
# ggml and llama.cpp keep a renamed option working for a while with `<x>_option_depr(LEVEL OLD NEW)`.
_DEPRECATED = re.compile(r"\b\w*option_depr\s*\(\s*\w+\s+([A-Za-z_]\w*)\s+([A-Za-z_]\w*)\s*\)", re.IGNORECASE)
_BACKEND = re.compile(r"\bggml_add_backend\s*\(\s*([\w-]+)\s*\)")
_CPU_VARIANT = re.compile(r"\bggml_add_cpu_backend_variant\s*\(\s*([\w.]+)")
_REQUIREMENTS = (
    ("CMake", re.compile(r"\bcmake_minimum_required\s*\(\s*VERSION\s+([\d.]+)", re.IGNORECASE)),
    ("{0}", re.compile(r"\bfind_package\s*\(\s*(\w+)\s+([\d][\d.]*)", re.IGNORECASE)),
    ("{0}", re.compile(r"\$?\{?(\w+?)\}?\s+VERSION_LESS\s+\"?([\d][\d.]*)")),
    ("C++ standard", re.compile(r"\b(?:CMAKE_CXX_STANDARD\s+|cxx_std_)(\d+)")),
    ("C standard", re.compile(r"\b(?:CMAKE_C_STANDARD\s+|c_std_)(\d+)")),
    ("CUDA standard", re.compile(r"\b(?:CMAKE_CUDA_STANDARD\s+|cuda_std_)(\d+)")),
)
_RENAME_SIMILARITY = 0.75


@dataclass(frozen=True)
class Option:
    name: str
    doc: str
    default: str
    path: str


@dataclass(frozen=True)
class Rename:
    old: str
    new: str
    evidence: str  # "deprecation shim", "same description", "similar name"


@dataclass(frozen=True)
class OptionChanges:
    added: tuple[Option, ...] = ()
    removed: tuple[Option, ...] = ()
    renamed: tuple[Rename, ...] = ()
    default_changed: tuple[tuple[Option, Option], ...] = ()


@dataclass(frozen=True)
class Requirement:
    subject: str  # "CMake", "CUDAToolkit", "hip_VERSION", "C++ standard"
    path: str
    old: str | None
    new: str | None


@dataclass(frozen=True)
class SubsetChanges:
    entering: tuple[str, ...] = ()
    leaving: tuple[str, ...] = ()
    renamed: tuple[tuple[str, str], ...] = ()
    modified: int = 0


@dataclass(frozen=True)
class UpstreamChanges:
    commits: int  # in new, not in old
    options: OptionChanges
    backends_added: tuple[str, ...]
    backends_removed: tuple[str, ...]
    cpu_variants_added: tuple[str, ...]
    cpu_variants_removed: tuple[str, ...]
    requirements: tuple[Requirement, ...]
    subset: SubsetChanges
    preset_warnings: tuple[str, ...] = field(default=())
    unsynced: tuple[str, ...] = field(default=())  # CMake of the new tree reaching outside the subset
    struct_changes: tuple[StructChange, ...] = field(default=())  # libllama structs the binding passes, changed
    commits_left_behind: int = 0  # in old, not in new: a move back, or another branch


@dataclass(frozen=True)
class _Side:
    """The CMake files of one commit that the range touched, as text."""

    raw: Mapping[str, str]

    @cached_property
    def texts(self) -> dict[str, str]:
        return {path: _COMMENT.sub("", text) for path, text in self.raw.items()}

    def options(self) -> dict[str, Option]:
        found: dict[str, Option] = {}
        for path, text in sorted(self.texts.items()):
            for name, doc, default in _OPTION.findall(text):
                found.setdefault(name, Option(name, _unescape(doc), default.strip(), path))
            for name, default, doc in _CACHE_SET.findall(text):
                found.setdefault(name, Option(name, _unescape(doc), default.strip(), path))
        return found

    def calls(self, pattern: re.Pattern[str]) -> set[str]:
        return {match for text in self.texts.values() for match in pattern.findall(text)}

    def renames(self) -> set[tuple[str, str]]:
        return {(old, new) for text in self.texts.values() for old, new in _DEPRECATED.findall(text)}

    def requirements(self) -> dict[tuple[str, str], str]:
        found: dict[tuple[str, str], str] = {}
        for path, text in self.texts.items():
            for label, pattern in _REQUIREMENTS:
                for match in pattern.finditer(text):
                    groups = match.groups()
                    subject = label.format(*groups[:-1]) if "{0}" in label else label
                    found[(subject, path)] = groups[-1]
        return found


def _unescape(quoted: str) -> str:
    return re.sub(r"\\(.)", r"\1", quoted)


def describe_range(git: Git, old: str, new: str, subset: PathFilter, presets: Iterable[Preset]) -> UpstreamChanges:
    entries = _name_status(git, old, new)
    cmake_paths = sorted({p for _, paths in entries for p in paths if is_cmake_file(p) and subset.selects(p)})
    before, after = _Side(read_texts(git, old, cmake_paths)), _Side(read_texts(git, new, cmake_paths))
    options = compare_options(before.options(), after.options(), after.renames() - before.renames())
    backends = _added_removed(before.calls(_BACKEND), after.calls(_BACKEND))
    variants = _added_removed(before.calls(_CPU_VARIANT), after.calls(_CPU_VARIANT))
    left_behind, coming = git.text("rev-list", "--left-right", "--count", f"{old}...{new}").split()
    return UpstreamChanges(
        commits=int(coming),
        commits_left_behind=int(left_behind),
        options=options,
        backends_added=backends[0],
        backends_removed=backends[1],
        cpu_variants_added=variants[0],
        cpu_variants_removed=variants[1],
        requirements=compare_requirements(before.requirements(), after.requirements()),
        subset=compare_subset(entries, subset),
        preset_warnings=preset_warnings(options, backends[0], tuple(presets)),
    )


def compare_options(
    before: Mapping[str, Option], after: Mapping[str, Option], declared_renames: set[tuple[str, str]]
) -> OptionChanges:
    removed = {name: option for name, option in before.items() if name not in after}
    added = {name: option for name, option in after.items() if name not in before}
    renames = [Rename(old, new, "deprecation shim") for old, new in sorted(declared_renames) if new in after]
    for rename in renames:
        removed.pop(rename.old, None)
        added.pop(rename.new, None)
    for old, new, evidence in _inferred_renames(removed, added):
        renames.append(Rename(old, new, evidence))
        del removed[old], added[new]
    changed = tuple(
        (before[name], after[name])
        for name in sorted(before.keys() & after.keys())
        if before[name].default != after[name].default
    )
    return OptionChanges(
        added=tuple(added[n] for n in sorted(added)),
        removed=tuple(removed[n] for n in sorted(removed)),
        renamed=tuple(renames),
        default_changed=changed,
    )


def _inferred_renames(removed: Mapping[str, Option], added: Mapping[str, Option]) -> list[tuple[str, str, str]]:
    """Pair a removed option with an added one by identical description, else by a close name in one file."""
    pairs: list[tuple[str, str, str]] = []
    taken: set[str] = set()
    for old in sorted(removed):
        same_doc = [n for n in sorted(added) if n not in taken and added[n].doc == removed[old].doc]
        if len(same_doc) == 1:
            pairs.append((old, same_doc[0], "same description"))
            taken.add(same_doc[0])
            continue
        same_file = [n for n in sorted(added) if n not in taken and added[n].path == removed[old].path]
        close = [n for n in same_file if _similar_names(old, n)]
        if len(close) == 1:
            pairs.append((old, close[0], "similar name"))
            taken.add(close[0])
    return pairs


def _similar_names(old: str, new: str) -> bool:
    """GGML_CCACHE ~ GGML_USE_CCACHE, GGML_VK_DEBUG ~ GGML_VK_DEBUGGING; GGML_GONE !~ GGML_NEW (the shared
    namespace prefix does not count)."""
    common = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b), min(len(old), len(new)))
    namespace = old[:common].rfind("_") + 1
    old_rest, new_rest = old[namespace:], new[namespace:]
    if old_rest in new_rest or new_rest in old_rest:
        return bool(old_rest and new_rest)
    return difflib.SequenceMatcher(None, old_rest, new_rest).ratio() >= _RENAME_SIMILARITY


def compare_requirements(
    before: Mapping[tuple[str, str], str], after: Mapping[tuple[str, str], str]
) -> tuple[Requirement, ...]:
    keys = sorted(before.keys() | after.keys())
    return tuple(
        Requirement(subject, path, before.get((subject, path)), after.get((subject, path)))
        for subject, path in keys
        if before.get((subject, path)) != after.get((subject, path))
    )


def compare_subset(entries: list[tuple[str, tuple[str, ...]]], subset: PathFilter) -> SubsetChanges:
    entering: list[str] = []
    leaving: list[str] = []
    renamed: list[tuple[str, str]] = []
    modified = 0
    for status, paths in entries:
        inside = [subset.selects(p) for p in paths]
        if status == "A" and inside[0]:
            entering.append(paths[0])
        elif status == "D" and inside[0]:
            leaving.append(paths[0])
        elif status in {"R", "C"}:
            old_inside, new_inside = inside
            if old_inside and new_inside:
                renamed.append((paths[0], paths[1]))
            elif new_inside:
                entering.append(paths[1])
            elif old_inside and status == "R":
                leaving.append(paths[0])
        elif inside[0]:
            modified += 1
    return SubsetChanges(tuple(entering), tuple(leaving), tuple(renamed), modified)


def preset_warnings(
    options: OptionChanges, new_backends: tuple[str, ...], presets: tuple[Preset, ...]
) -> tuple[str, ...]:
    """What CMakePresets.json must follow: variables it sets that went away, backends no preset builds."""
    warnings: list[str] = []
    renamed = {rename.old: rename.new for rename in options.renamed}
    removed = {option.name for option in options.removed}
    setters: dict[str, list[str]] = {}
    for preset in presets:
        for variable in preset.cache_variables:
            setters.setdefault(variable, []).append(preset.name)
    for variable, names in sorted(setters.items()):
        who = f"preset(s) {', '.join(names)} set {variable}"
        if variable in renamed:
            warnings.append(f"{who}, renamed upstream to {renamed[variable]}: update CMakePresets.json")
        elif variable in removed:
            warnings.append(f"{who}, which upstream no longer declares: update CMakePresets.json")
    built = {preset.backend.lower() for preset in presets}
    warnings.extend(
        f"new backend {backend}: no preset builds it" for backend in new_backends if backend.lower() not in built
    )
    return tuple(warnings)


def _added_removed(before: set[str], after: set[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(sorted(after - before)), tuple(sorted(before - after))


def _name_status(git: Git, old: str, new: str) -> list[tuple[str, tuple[str, ...]]]:
    """`git diff --name-status` between the two trees: (status letter, paths), renames as two paths."""
    fields = git.run("diff", "--name-status", "-z", "--find-renames", "--no-ext-diff", old, new).out.split("\0")
    entries: list[tuple[str, tuple[str, ...]]] = []
    position = 0
    while position < len(fields) - 1:
        status = fields[position][:1]
        count = 2 if status in {"R", "C"} else 1
        entries.append((status, tuple(fields[position + 1 : position + 1 + count])))
        position += 1 + count
    return entries


def read_texts(git: Git, commit: str, paths: list[str]) -> dict[str, str]:
    """The text of each of `paths` that exists at `commit`."""
    if not paths:
        return {}
    blobs = {entry.path: entry.sha for entry in tree_entries(git, commit, paths) if entry.kind == "blob"}
    contents = read_blobs(git, list(blobs.values()))
    return {path: contents[sha].decode("utf-8", errors="replace") for path, sha in blobs.items()}
