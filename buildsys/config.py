"""vendoring.toml: parsed once, validated completely, frozen.

Precedence lives in one place, `resolve_upstream_url`: defaults < file < environment < command line.
"""

from __future__ import annotations

import codecs
import difflib
import errno
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import LINK_LOOP, ConfigError
from .git import FULL_SHA
from .pathfilter import PathFilter, validate_pattern

CONFIG_NAME = "vendoring.toml"
BUILD_FOLDER = "build"  # the output folder, at the project root: CMake trees, stages, reports, the lock
WHEEL_FOLDER = "dist"
# What the build writes inside BUILD_FOLDER besides one CMake tree per preset (build/<preset>, named by
# buildsys/cmake/CMakePresets.json, whose binaryDir and installDir say so). Named here once: the builder's
# layout and ccache take them from here, and the configured folders are checked against them.
STAGE_FOLDER = "stage"
LOGS_FOLDER = "logs"
CCACHE_FOLDER = "ccache"
BUILD_OUTPUTS = {
    STAGE_FOLDER: "where `build` stages every preset",
    LOGS_FOLDER: "where `build` keeps its logs",
    CCACHE_FOLDER: "the compiler cache",
}
PRESETS_FILE = Path(__file__).resolve().parent / "cmake" / "CMakePresets.json"  # the matrix (builder reads it)
UPSTREAM_URL_VARIABLE = "BUILDSYS_UPSTREAM_URL"

DEFAULT_URL = "https://github.com/ggml-org/llama.cpp.git"
DEFAULT_COMMIT = "4df29be4f4c3673f428170fda944a5b19f743bb8"
DEFAULT_TRACKING = "build/upstream"
DEFAULT_PATCHES = "patches"
DEFAULT_DESTINATION = "vendor/llama.cpp"
DEFAULT_INCLUDE = (
    "CMakeLists.txt",
    "LICENSE",
    "licenses/",
    "cmake/",
    "include/",
    "src/",
    "ggml/",
    "vendor/",
    "tools/",
    "common/",
    "scripts/ui-assets.cmake",
)
# vendoring.toml says why each entry is there (the same lists).
DEFAULT_EXCLUDE = (
    "**/*.md",
    "**/.github/",
    "**/.gitignore",
    "tools/ui/*/",
    "tools/ui/*.json",
    "tools/ui/*.ts",
    "tools/ui/*.js",
    "tools/ui/.*",
    "tools/server/tests/",
    "tools/server/bench/",
    "tools/server/public*/",
    "tools/*/tests/",
    "tools/**/*.py",
    "tools/**/requirements*.txt",
    "tools/**/*.sh",
    "tools/mtmd/test-*",
    "tools/mtmd/legacy-models/",
)

_SCHEMA: dict[str, dict[str, type]] = {
    "upstream": {"url": str, "commit": str, "ref": str, "release-tags": str},
    "downstream": {"llama-cpp-python": str},
    "tracking": {"path": str},
    "patches": {"path": str},
    "sync": {"destination": str, "include": list, "exclude": list},
}
# PEP 440's normal form (what a wheel's file name and metadata must carry), with an optional local label.
PUBLIC_VERSION = re.compile(
    r"([1-9][0-9]*!)?(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*((a|b|rc)(0|[1-9][0-9]*))?(\.post(0|[1-9][0-9]*))?"
    r"(\.dev(0|[1-9][0-9]*))?(\+[a-z0-9]+(\.[a-z0-9]+)*)?"
)


_URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SCP_LIKE = re.compile(r"^[^/\\]+@[^/\\]+:")


@dataclass(frozen=True, kw_only=True)
class Upstream:
    url: str
    url_source: str
    commit: str
    ref: str | None
    release_tags: str | None = None  # a glob over upstream's tags: what `tags --newest` and the scheduled bump follow


@dataclass(frozen=True, kw_only=True)
class SyncSettings:
    destination: Path
    include: tuple[str, ...]
    exclude: tuple[str, ...]

    @property
    def filter(self) -> PathFilter:
        return PathFilter(self.include, self.exclude)


@dataclass(frozen=True, kw_only=True)
class Config:
    root: Path
    source: Path
    upstream: Upstream
    tracking: Path
    patches: Path
    sync: SyncSettings
    # The llama-cpp-python release whose vendored llama.cpp is the pin: the one these wheels serve.
    llama_cpp_python: str | None = None

    @property
    def build_dir(self) -> Path:
        """The output folder: the tracking clone's default home, build trees, stages, reports, caches."""
        return self.root / BUILD_FOLDER

    def relative(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)


def load_config(
    path: Path,
    *,
    env: Mapping[str, str],
    upstream_override: str | None = None,
    cwd: Path | None = None,
) -> Config:
    """Read, validate and resolve `path`; raise ConfigError listing every problem."""
    label = path.name
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        dangling = f" (a symbolic link to {os.readlink(path)}, which does not exist)" if path.is_symlink() else ""
        raise ConfigError(
            [f"{path}: no such file{dangling} (run from the project root, or pass --config PATH)"], source=label
        ) from None
    except OSError as error:
        cause = f" (a symbolic link that {LINK_LOOP})" if error.errno == errno.ELOOP else ""
        raise ConfigError([f"{path}: cannot be read: {error.strerror}{cause}"], source=label) from None
    if raw.startswith(codecs.BOM_UTF8):  # tomllib's word for it is "Invalid statement (at line 1, column 1)"
        raise ConfigError(
            [
                "starts with a UTF-8 byte-order mark, which TOML does not allow (an editor added it): "
                "save it as UTF-8 without BOM"
            ],
            source=label,
        )
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(["not UTF-8 text"], source=label) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([f"invalid TOML: {error}"], source=label) from None
    root = path.resolve().parent
    return _build(
        document, root=root, source=path.resolve(), env=env, override=upstream_override, cwd=cwd or Path.cwd()
    )


def _build(
    document: dict[str, Any], *, root: Path, source: Path, env: Mapping[str, str], override: str | None, cwd: Path
) -> Config:
    problems: list[str] = []
    tables = _check_schema(document, problems)

    upstream = tables.get("upstream", {})
    commit = upstream.get("commit")
    raw_upstream = document.get("upstream", {})
    if isinstance(raw_upstream, dict) and "commit" not in raw_upstream:  # a pin nobody wrote down is no pin
        problems.append(f'[upstream] commit: missing; the pin is a full 40-hex SHA, e.g. commit = "{DEFAULT_COMMIT}"')
    elif isinstance(commit, str) and not FULL_SHA.fullmatch(commit):
        problems.append(
            f"[upstream] commit: {commit!r} is not a full 40-hex commit SHA"
            " (a branch or tag name belongs in [upstream] ref)"
        )
    url, url_source = resolve_upstream_url(
        upstream.get("url"), env=env, override=override, root=root, cwd=cwd, problems=problems
    )
    ref = upstream.get("ref")
    if isinstance(ref, str) and not ref.strip():
        problems.append("[upstream] ref: must not be empty (omit it instead)")
    release_tags = upstream.get("release-tags")
    if isinstance(release_tags, str) and not release_tags.strip():
        problems.append('[upstream] release-tags: must not be empty (a glob such as "b[0-9]*", or omit it)')

    tracking = _project_path(tables, "tracking", "path", DEFAULT_TRACKING, root, problems)
    patches = _project_path(tables, "patches", "path", DEFAULT_PATCHES, root, problems)
    destination = _project_path(tables, "sync", "destination", DEFAULT_DESTINATION, root, problems)
    folders = {"[tracking] path": tracking, "[patches] path": patches, "[sync] destination": destination}
    _check_disjoint(folders, problems)
    _check_clear_of_outputs(folders, root, problems)
    include = _patterns(tables, "include", DEFAULT_INCLUDE, problems, allow_empty=False)
    exclude = _patterns(tables, "exclude", DEFAULT_EXCLUDE, problems, allow_empty=True)

    served = tables.get("downstream", {}).get("llama-cpp-python")
    if isinstance(served, str) and not PUBLIC_VERSION.fullmatch(served):
        problems.append(f'[downstream] llama-cpp-python: {served!r} is not a release version, e.g. "0.3.35"')

    if problems:
        raise ConfigError(problems, source=source.name)
    assert tracking and patches and destination and isinstance(commit, str)
    return Config(
        root=root,
        source=source,
        upstream=Upstream(url=url, url_source=url_source, commit=commit.lower(), ref=ref, release_tags=release_tags),
        tracking=tracking,
        patches=patches,
        sync=SyncSettings(destination=destination, include=include, exclude=exclude),
        llama_cpp_python=served,
    )


# Names people reach for that mean one of ours.
_ALIASES = {"branch": "ref", "tag": "ref", "sha": "commit", "rev": "commit", "revision": "commit", "dir": "path"}


def _closest(name: str, candidates: list[str]) -> str:
    if _ALIASES.get(name) in candidates:
        return f"; did you mean {_ALIASES[name]!r}?"
    match = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else f"; valid: {', '.join(candidates)}"


def _type_name(value: object) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}.get(
        type(value), type(value).__name__
    )


def _check_schema(document: dict[str, Any], problems: list[str]) -> dict[str, dict[str, Any]]:
    """Return the tables that exist, with keys of the wrong type or unknown name reported and dropped."""
    tables: dict[str, dict[str, Any]] = {}
    for table_name, table in document.items():
        if table_name not in _SCHEMA:
            problems.append(f"[{table_name}]: unknown table{_closest(table_name, list(_SCHEMA))}")
            continue
        if not isinstance(table, dict):
            problems.append(f"{table_name}: expected a table [{table_name}], got {_type_name(table)}")
            continue
        known = _SCHEMA[table_name]
        kept: dict[str, Any] = {}
        for key, value in table.items():
            if key not in known:
                problems.append(f"[{table_name}] {key}: unknown key{_closest(key, list(known))}")
            elif not isinstance(value, known[key]) or isinstance(value, bool):
                problems.append(f"[{table_name}] {key}: expected {_type_name(known[key]())}, got {_type_name(value)}")
            else:
                kept[key] = value
        tables[table_name] = kept
    return tables


def resolve_upstream_url(
    from_file: str | None,
    *,
    env: Mapping[str, str],
    override: str | None,
    root: Path,
    cwd: Path,
    problems: list[str],
) -> tuple[str, str]:
    """The single place where url precedence is decided: default < file < environment < command line."""
    candidates: list[tuple[str | None, str, Path]] = [
        (override, "--upstream", cwd),
        (env.get(UPSTREAM_URL_VARIABLE), UPSTREAM_URL_VARIABLE, cwd),
        (from_file, "[upstream] url", root),
    ]
    for value, source, base in candidates:
        if value is None:
            continue
        if not value.strip():
            problems.append(f"{source}: must not be empty")
            return DEFAULT_URL, source
        return _absolute_if_local(value.strip(), base), source
    return DEFAULT_URL, "default"


def _absolute_if_local(url: str, base: Path) -> str:
    if _URL_SCHEME.match(url) or _SCP_LIKE.match(url):
        return url
    return os.path.realpath(base / url)  # not Path.resolve(): it raises RuntimeError on a symbolic-link loop


def _project_path(
    tables: dict[str, dict[str, Any]], table: str, key: str, default: str, root: Path, problems: list[str]
) -> Path | None:
    value = tables.get(table, {}).get(key, default)
    resolved, problem = _inside_root(value, root)
    if problem:
        problems.append(f"[{table}] {key}: {problem}")
    return resolved


def _inside_root(value: str, root: Path) -> tuple[Path | None, str]:
    """The folder `value` names in the project, or why it cannot be used."""
    if not value.strip():
        return None, "must not be empty"
    posix = PurePosixPath(value.replace("\\", "/"))
    if posix.is_absolute() or re.match(r"^[A-Za-z]:", value):
        return None, f"{value!r} must be relative to the project root"
    if _loops(root / posix):
        return None, (
            f"{value!r} is, or passes through, a symbolic link that {LINK_LOOP}; "
            "make it point at a real folder, or remove it"
        )
    resolved = Path(os.path.realpath(root / posix))  # Path.resolve() raises RuntimeError on a loop (3.11)
    problem = _placement_problem(value, resolved, root)
    return (None, problem) if problem else (resolved, "")


def _placement_problem(value: str, resolved: Path, root: Path) -> str:
    if resolved == root:
        return f"{value!r} is the project root itself; name a folder inside it"
    if not resolved.is_relative_to(root):
        return f"{value!r} escapes the project root"
    if ".git" in resolved.relative_to(root).parts:
        return f"{value!r} is inside the project's .git directory"
    return ""


def _loops(path: Path) -> bool:
    try:
        os.stat(path)
    except OSError as error:
        return error.errno == errno.ELOOP
    return False


def _overlap(path: Path, other: Path) -> str | None:
    """`same` when the two are one folder, `inside` when `path` is in `other`, `around` when `other` is in
    `path`, else None: the one test both checks below make."""
    if path == other:
        return "same"
    if path.is_relative_to(other):
        return "inside"
    if other.is_relative_to(path):
        return "around"
    return None


def _check_disjoint(paths: dict[str, Path | None], problems: list[str]) -> None:
    named = [(name, path) for name, path in paths.items() if path is not None]
    for index, (name, path) in enumerate(named):
        for other_name, other in named[index + 1 :]:
            overlap = _overlap(path, other)
            if overlap == "same":
                problems.append(f"{other_name}: same folder as {name}")
            elif overlap:
                inner, outer = (name, other_name) if overlap == "inside" else (other_name, name)
                problems.append(f"{inner}: overlaps {outer} (one folder is inside the other)")


def _output_folders(root: Path) -> dict[Path, str]:
    """The folders the build and `wheels` write, each with what it is, as a user would want it named."""
    build = root / BUILD_FOLDER
    outputs = {root / WHEEL_FOLDER: "where `wheels` writes the wheels"}
    outputs.update({build / name: what for name, what in BUILD_OUTPUTS.items()})
    outputs.update({build / name: f"the CMake build tree of preset `{name}`" for name in _preset_names()})
    return outputs


def _preset_names() -> list[str]:
    try:
        document = json.loads(PRESETS_FILE.read_text(encoding="utf-8"))
        return [str(preset["name"]) for preset in document.get("configurePresets", [])]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []  # the build refuses a broken matrix itself, naming the file


def _check_clear_of_outputs(paths: dict[str, Path | None], root: Path, problems: list[str]) -> None:
    """A configured folder that holds, or sits in, what the build writes would count the build's files as
    hand edits or unsaved work (and `sync --force` would delete them). Only build/ itself may hold them:
    the tracking clone's default home is build/upstream."""
    build = root / BUILD_FOLDER
    outputs = _output_folders(root)
    for name, path in paths.items():
        if path is None:
            continue
        shown = path.relative_to(root).as_posix()
        if path == build:
            problems.append(
                f"{name}: {shown!r} is the build's output folder (CMake trees, stages, reports); "
                f"name a folder of its own, e.g. {BUILD_FOLDER}/upstream for the tracking clone"
            )
            continue
        for output, what in outputs.items():
            overlap = _overlap(path, output)
            if overlap == "same":
                problems.append(f"{name}: {shown!r} is {what}; name a folder the build does not write")
                break
            if overlap:
                problems.append(
                    f"{name}: {shown!r} overlaps {output.relative_to(root).as_posix()}/, {what}; "
                    "name a folder the build does not write"
                )
                break


def _patterns(
    tables: dict[str, dict[str, Any]], key: str, default: tuple[str, ...], problems: list[str], *, allow_empty: bool
) -> tuple[str, ...]:
    value = tables.get("sync", {}).get(key)
    if value is None:
        return default
    where = f"[sync] {key}"
    if not value and not allow_empty:
        problems.append(f"{where}: must list at least one pattern (nothing would be synced)")
    patterns: list[str] = []
    for index, item in enumerate(value):
        if not isinstance(item, str):
            problems.append(f"{where}[{index}]: expected string, got {_type_name(item)}")
            continue
        reason = validate_pattern(item)
        if reason:
            problems.append(f"{where}[{index}]: {item!r} {reason}")
            continue
        patterns.append(item)
    return tuple(patterns)
