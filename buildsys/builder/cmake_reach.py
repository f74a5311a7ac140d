"""What the synced CMake needs from outside the sync subset, found before CMake is run.

Upstream's build files are walked the way CMake would enter them — from the top-level CMakeLists.txt
through every `add_subdirectory()` whose condition does not come out false — and each path a command
needs is looked up in the subset: subdirectories, `include()`d files and modules, `configure_file()`
inputs, `file(READ/STRINGS/GLOB)` paths, sources of `add_library()` and friends, and include directories.
A path missing from the subset is reported with the file, line and call that needs it, so `build` and
`bump` can name it instead of CMake failing at configure.

Variables follow CMake's rules. Cache entries are global: the preset's cache variables with the `-D`
definitions (and what an earlier configure left, which `build` adds), then each `option()` and
`set(... CACHE)` as the walk reaches it. Normal variables live in directory and function scopes: `set()`,
`unset()`, `list(APPEND)`, `string(TOUPPER)`, `project()`, `foreach()` items and function arguments give
them values, PARENT_SCOPE included, and an `include()`d file runs in its includer's scope. A variable
nothing sets is unset: false in `if()`, empty in `${}`. Computed names (`if (${backend_id})`,
`${${name}_FOUND}`, `set(GGML_${feat} OFF)`) are followed.

What only CMake can know is unknown: its own variables (platform, compiler, CMAKE_*; CMAKE_MODULE_PATH is
followed like any variable once the tree sets it), what commands the walk does not model write
(find_package(), check_*(), execute_process(), get_property(), ...; list() and string() write only their
result), `$ENV{}`, `EXISTS`, `TARGET` of something a package may import, and any value written under a
condition the walk could not decide, unless it is the value the variable surely has already. A branch whose
condition is unknown counts as reachable, and a path needed there is reported with that condition, so the
report says what could not be decided instead of claiming the path is needed. Inside such a branch, and the
functions it calls, `NAME STREQUAL "constant"` holds until something writes NAME: the same test is not
undecided again (`GGML_SYSTEM_ARCH STREQUAL "x86"` around ggml's x86 variants and inside them). Functions
and macros are followed where they are called; what their bodies need is reported at the outermost call
(`ggml/src/CMakeLists.txt:591 ggml_add_backend(CUDA)`).
"""

from __future__ import annotations

import dataclasses
import functools
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from ..git import Git
from ..pathfilter import PathFilter, pattern_regex
from ..vendoring.upstream_tree import read_blobs, tree_entries
from .presets import CMAKE_DIR, Preset

SUPERBUILD = CMAKE_DIR / "CMakeLists.txt"


def is_cmake_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name == "CMakeLists.txt" or name.endswith(".cmake")


_TRUE = frozenset({"1", "ON", "YES", "TRUE", "Y"})
_FALSE = frozenset({"0", "OFF", "NO", "FALSE", "N", "IGNORE", "NOTFOUND", ""})
_UNARY = frozenset(
    {"EXISTS", "COMMAND", "DEFINED", "TARGET", "POLICY", "TEST", "IS_DIRECTORY", "IS_ABSOLUTE"}
) | frozenset({"IS_SYMLINK", "IS_READABLE", "IS_WRITABLE", "IS_EXECUTABLE"})
_BINARY = (
    frozenset({"STREQUAL", "STRLESS", "STRGREATER", "STRLESS_EQUAL", "STRGREATER_EQUAL", "EQUAL", "LESS", "GREATER"})
    | frozenset({"LESS_EQUAL", "GREATER_EQUAL", "MATCHES", "VERSION_EQUAL", "VERSION_LESS", "VERSION_GREATER"})
    | frozenset({"VERSION_LESS_EQUAL", "VERSION_GREATER_EQUAL", "IN_LIST", "IS_NEWER_THAN", "PATH_EQUAL"})
)
_SOURCE_COMMANDS = frozenset({"add_library", "add_executable", "target_sources"})
_TARGET_COMMANDS = frozenset({"add_library", "add_executable", "add_custom_target"})
_SOURCE_KEYWORDS = (
    frozenset({"STATIC", "SHARED", "MODULE", "OBJECT", "INTERFACE", "IMPORTED", "ALIAS", "GLOBAL"})
    | frozenset({"EXCLUDE_FROM_ALL", "WIN32", "MACOSX_BUNDLE", "PUBLIC", "PRIVATE", "FILE_SET", "TYPE", "BASE_DIRS"})
    | frozenset({"FILES", "HEADERS", "CXX_MODULES"})
)
_GLOB_KEYWORDS = frozenset({"LIST_DIRECTORIES", "RELATIVE", "CONFIGURE_DEPENDS", "FOLLOW_SYMLINKS", "true", "false"})
_INCLUDE_DIR_KEYWORDS = frozenset({"SYSTEM", "AFTER", "BEFORE", "PUBLIC", "PRIVATE", "INTERFACE"})
_BRANCHES = frozenset({"if", "elseif", "else", "endif"})
_FUNCTIONS = (frozenset({"function", "macro"}), frozenset({"endfunction", "endmacro"}))
_LOOPS = (frozenset({"foreach", "while"}), frozenset({"endforeach", "endwhile"}))
# Commands that own the commands up to their closer: (the family's openers, its closers).
_BLOCKS = {"function": _FUNCTIONS, "macro": _FUNCTIONS, "foreach": _LOOPS, "while": _LOOPS}
# CMake commands that write no variable: any other command the walk does not model may write a variable
# named in its arguments (check_c_source_compiles(... HAVE_X), execute_process(OUTPUT_VARIABLE out), ...).
_WRITES_NOTHING = (
    frozenset({"add_compile_definitions", "add_compile_options", "add_custom_command", "add_custom_target"})
    | frozenset({"add_definitions", "add_dependencies", "add_executable", "add_library", "add_link_options"})
    | frozenset({"add_subdirectory", "add_test", "break", "cmake_minimum_required", "configure_file", "continue"})
    | frozenset({"define_property", "enable_language", "enable_testing", "endforeach", "endfunction", "endmacro"})
    | frozenset({"endwhile", "export", "include_directories", "include_guard", "install", "link_directories"})
    | frozenset({"link_libraries", "mark_as_advanced", "message", "return", "set_directory_properties", "set_property"})
    | frozenset({"set_source_files_properties", "set_target_properties", "set_tests_properties", "source_group"})
    | frozenset({"target_compile_definitions", "target_compile_features", "target_compile_options"})
    | frozenset({"target_include_directories", "target_link_directories", "target_link_libraries"})
    | frozenset({"target_link_options", "target_precompile_headers", "target_sources", "variable_watch"})
)
# Commands whose results are named after an argument: find_package(Vulkan) writes Vulkan_FOUND and kin,
# cmake_parse_arguments(ARG ...) ARG_*, FetchContent the lower-case name's _SOURCE_DIR and _POPULATED.
_PREFIXING = (
    frozenset({"find_package", "cmake_parse_arguments", "pkg_check_modules", "pkg_search_module"})
    | frozenset({"fetchcontent_declare", "fetchcontent_getproperties", "fetchcontent_makeavailable"})
    | frozenset({"fetchcontent_populate", "externalproject_add", "find_package_handle_standard_args"})
)
# Commands that may make targets the walk cannot see: `if (TARGET x)` is then unknown for a name it has not seen
# (packages: for a namespaced name, Vulkan::Vulkan; projects added from elsewhere: for any name).
_IMPORTING = frozenset({"find_package", "pkg_check_modules", "pkg_search_module"})
_ADDING_PROJECTS = frozenset({"fetchcontent_makeavailable", "externalproject_add"})
# Variables CMake, the platform or the toolchain define: never known to be unset before CMake runs.
_PROVIDED = re.compile(
    r"(CMAKE_|_CMAKE|CTEST_|CPACK_|PROJECT_|ARGV|PKG_CONFIG_).*|MSVC\d*|ARGC|ARGN|AIX|ANDROID|APPLE|BORLAND|BSD"
    r"|BUILD_TESTING|CYGWIN|EMSCRIPTEN|GHSMULTI|IOS|LINUX|MINGW|MSVC_IDE|MSVC_TOOLSET_VERSION|MSVC_VERSION|MSYS"
    r"|UNIX|WASI|WATCOM|WIN32|WINCE|WINDOWS_PHONE|WINDOWS_STORE|XCODE|XCODE_VERSION"
)
_REFERENCE = re.compile(r"\$(ENV|CACHE)?\{([^${}]*)\}")  # an innermost ${...}: nested ones expand inside out
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NAME_TEMPLATE = re.compile(r"(?:[A-Za-z0-9_]|\$\{[^${}]*\})+")  # a name built from references: GGML_${feat}
_NUMBER = re.compile(r"[-+]?\d+(\.\d*)?")
_VERSION = re.compile(r"\d+(\.\d+)*")
Tri = bool | None  # True, False, or unknown
Conditions = tuple[str, ...]  # conditions the walk could not decide, as a report shows them
_MAX_CALL_DEPTH = 16
_MAX_EXPANSIONS = 64  # a value that refers to itself is not expanded forever
_MAX_ITERATIONS = 256
_SHOWN_CONDITIONS = 3
_ROOTED = "@upstream:"  # marks a path already relative to the upstream root (CMAKE_CURRENT_SOURCE_DIR and kin)


@dataclass(frozen=True, order=True)
class MissingPath:
    file: str  # the CMake file that needs it, relative to the upstream root
    line: int
    call: str  # e.g. "add_subdirectory(vendor)"
    path: str  # what is missing, a folder ending in "/" or a file
    conditions: Conditions = ()  # conditions around the call that cannot be decided before CMake runs

    def __str__(self) -> str:
        needs = f"{self.file}:{self.line} {self.call}: {self.path} is not synced"
        if not self.conditions:
            return f"{needs}; add it to [sync] include"
        shown = " and ".join(self.conditions[:_SHOWN_CONDITIONS])
        if len(self.conditions) > _SHOWN_CONDITIONS:
            shown += f" and {len(self.conditions) - _SHOWN_CONDITIONS} more"
        return (
            f"{needs}; whether CMake needs it depends on {shown}, which cannot be decided before CMake runs: "
            "add it to [sync] include unless that rules it out for every build of this subset"
        )


@dataclass(frozen=True)
class UpstreamFiles:
    """One upstream tree as the walk sees it; each CMake file is parsed once, however often it is walked."""

    synced: frozenset[str]  # files in the sync subset
    upstream: frozenset[str]  # every file upstream has (the synced ones alone when it is not known)
    read: Callable[[str], str]  # the text of a synced file

    @cached_property
    def _synced_dirs(self) -> frozenset[str]:
        return _directories(self.synced)

    @cached_property
    def _upstream_dirs(self) -> frozenset[str]:
        return _directories(self.upstream | self.synced)

    @cached_property
    def _parsed(self) -> dict[str, list[Command]]:
        return {}

    @cached_property
    def _globbed(self) -> dict[tuple[str, bool], frozenset[str]]:
        return {}

    def glob(self, pattern: str, *, recurse: bool) -> frozenset[str]:
        """Upstream's files a file(GLOB) pattern, relative to the upstream root, matches (`*` within a folder)."""
        key = (pattern, recurse)
        if key not in self._globbed:
            if recurse:
                head, _, tail = pattern.rpartition("/")
                pattern = f"{head}/**/{tail}" if head else f"**/{tail}"
            try:
                regex = pattern_regex(pattern)
            except ValueError:  # an unbalanced [ ]: CMake's problem to report
                self._globbed[key] = frozenset()
            else:
                self._globbed[key] = frozenset(path for path in self.upstream if regex.match(path))
        return self._globbed[key]

    def commands(self, path: str) -> list[Command]:
        if path not in self._parsed:
            self._parsed[path] = parse(self.read(path))
        return self._parsed[path]

    def has_file(self, path: str) -> bool:
        return path in self.synced

    def has_dir(self, path: str) -> bool:
        return path in self._synced_dirs

    def upstream_has(self, path: str) -> bool:
        return path in self.upstream or path in self._upstream_dirs


def _directories(paths: Iterable[str]) -> frozenset[str]:
    found = {""}
    for path in paths:
        parts = path.split("/")[:-1]
        found.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return frozenset(found)


@dataclass(frozen=True)
class Command:
    name: str  # lower case
    args: tuple[str, ...]
    quoted: tuple[bool, ...]
    line: int

    def call(self) -> str:
        shown = " ".join(self.args)
        return f"{self.name}({shown if len(shown) <= 60 else shown[:57] + '...'})"


_TOKEN = re.compile(
    r"""(?P<bracket_comment>\#\[(?P<eq1>=*)\[.*?\](?P=eq1)\])
      | (?P<comment>\#[^\n]*)
      | (?P<command>[A-Za-z_][A-Za-z0-9_]*)[ \t]*\(
      | (?P<newline>\n)
      | (?P<other>[A-Za-z_][A-Za-z0-9_]*|[^#\nA-Za-z_]+|.)""",
    re.VERBOSE | re.DOTALL,
)
_ARG = re.compile(
    r"""(?P<bracket>\[(?P<eq>=*)\[.*?\](?P=eq)\])
      | "(?P<quoted>(?:\\.|[^"\\])*)"
      | (?P<comment>\#\[(?P<eq2>=*)\[.*?\](?P=eq2)\]|\#[^\n]*)
      | (?P<paren>[()])
      | (?P<unquoted>(?:\\.|[^\s()#"\\])+(?:"(?:\\.|[^"\\])*"(?:\\.|[^\s()#"\\])*)*)
      | (?P<space>\s+)""",
    re.VERBOSE | re.DOTALL,
)


def parse(text: str) -> list[Command]:
    """CMake's command invocations, with arguments split the way CMake splits them."""
    commands: list[Command] = []
    position, line = 0, 1
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:  # pragma: no cover - `other` matches anything else
            break
        if match.group("command"):
            name, start_line = match.group("command").lower(), line
            args, quoted, position = _arguments(text, match.end())
            line += text.count("\n", match.start(), position)
            commands.append(Command(name, tuple(args), tuple(quoted), start_line))
            continue
        line += match.group(0).count("\n")
        position = match.end()
    return commands


def _arguments(text: str, position: int) -> tuple[list[str], list[bool], int]:
    args: list[str] = []
    quoted: list[bool] = []
    depth = 0
    while position < len(text):
        match = _ARG.match(text, position)
        if match is None:
            position += 1
            continue
        position = match.end()
        if match.group("paren") == ")":
            if depth == 0:
                break
            depth -= 1
            args.append(")")
            quoted.append(False)
        elif match.group("paren") == "(":
            depth += 1
            args.append("(")
            quoted.append(False)
        elif match.group("bracket") is not None:
            body = match.group("bracket")
            args.append(body[len(match.group("eq")) + 2 : -len(match.group("eq")) - 2])
            quoted.append(True)
        elif match.group("quoted") is not None:
            args.append(match.group("quoted"))
            quoted.append(True)
        elif match.group("unquoted") is not None:
            args.append(match.group("unquoted"))
            quoted.append(False)
    return args, quoted, position


def unsynced_paths(
    files: UpstreamFiles,
    presets: Iterable[Mapping[str, str]],
    roots: Iterable[str],
    *,
    outer: Iterable[str] = (),
) -> list[MissingPath]:
    """Every path the CMake reached from `roots` (folders holding a CMakeLists.txt) needs but the subset lacks,
    for any of the presets' cache variables (`-D` definitions included). `outer`: variables a project that adds
    the tree sets before it does, with values the walk does not know."""
    found: set[MissingPath] = set()
    for cache in presets:
        for root in roots:
            versions: dict[str, int] = {}
            wildcards: list[re.Pattern[str]] = []
            entries = _Scope(dict(cache), versions=versions, wildcards=wildcards)
            scope = _Scope({}, doubtful=set(outer) - set(cache), cache=entries, versions=versions, wildcards=wildcards)
            _Walk(files, found).directory(root, scope)
    return _one_per_path(files, found)


def _one_per_path(files: UpstreamFiles, found: Iterable[MissingPath]) -> list[MissingPath]:
    """Each missing path once, where it is needed with the fewest undecided conditions, then at the first line;
    files of a folder that is not synced at all as that folder (one line for `ggml/src/ggml-cpu/arch/`, not one
    per source file in it)."""
    first: dict[str, MissingPath] = {}
    for missing in sorted(found, key=lambda m: (len(m.conditions), m)):
        path = _outermost_unsynced_folder(files, missing.path) or missing.path
        first.setdefault(path, dataclasses.replace(missing, path=path))
    return sorted(first.values())


def _outermost_unsynced_folder(files: UpstreamFiles, path: str) -> str | None:
    parts = path.rstrip("/").split("/")
    for length in range(1, len(parts)):
        folder = "/".join(parts[:length])
        if not files.has_dir(folder):
            return folder + "/"
    return None


@dataclass(eq=False)
class _Scope:
    """One CMake variable scope (a directory's or a function's), or the cache behind them all. A name is known
    (in `values`, not doubtful), doubtful (a write the walk could not follow exactly may have changed it;
    `values` keeps the last value seen, which paths still use), or unset here: absent from both, not written
    through a name the walk could not expand (`patterns`), and not one of CMake's own; then the cache says."""

    values: dict[str, str]
    doubtful: set[str] = field(default_factory=set)
    patterns: list[re.Pattern[str]] = field(default_factory=list)
    parent: _Scope | None = None  # where set(... PARENT_SCOPE) writes
    depth: int = 0  # undecided conditions around the scope's start: a write under more of them may not happen
    # Items of a list that it holds only if conditions the walk could not decide hold: item -> those conditions
    # (list(APPEND GGML_CPU_SOURCES arch/arm/quants.c) under `GGML_SYSTEM_ARCH STREQUAL "ARM"`).
    origins: dict[str, Mapping[str, Conditions]] = field(default_factory=dict)
    cache: _Scope | None = None  # the cache entries, global, behind every scope's variables (None: this is it)
    # Writes so far per name, and the shapes of names written that the walk could not expand, in order; shared by
    # every scope of a walk: an assumption about a variable holds while neither has written it.
    versions: dict[str, int] = field(default_factory=dict)
    wildcards: list[re.Pattern[str]] = field(default_factory=list)
    templates: set[str] = field(default_factory=set)  # templates of `patterns`, each once

    @property
    def entries(self) -> _Scope:
        return self.cache or self

    def child(self, depth: int) -> _Scope:
        """A function's or a subdirectory's scope: it starts as a copy of this one, its PARENT_SCOPE."""
        return _Scope(
            dict(self.values),
            set(self.doubtful),
            list(self.patterns),
            parent=self,
            depth=depth,
            origins=dict(self.origins),
            cache=self.cache,
            versions=self.versions,
            wildcards=self.wildcards,
            templates=set(self.templates),
        )

    def lookup(self, name: str) -> tuple[str | None, bool]:
        """(value, sure): a value that is not sure is a guess; (None, True) is unset, (None, False) unknown."""
        if name in self.values:
            return self.values[name], name not in self.doubtful
        if name in self.doubtful or _PROVIDED.fullmatch(name) or any(p.fullmatch(name) for p in self.patterns):
            return None, False
        return self.cache.lookup(name) if self.cache is not None else (None, True)

    def has(self, name: str) -> bool:
        """Set, or perhaps set: what option() and set(... CACHE) leave alone."""
        return self.lookup(name) != (None, True)

    def write(
        self,
        name: str,
        value: str | None,
        *,
        sure: bool,
        certain: bool,
        origins: Mapping[str, Conditions] | None = None,
    ) -> None:
        """`value` None unsets; `certain`: the write surely happens (else the old value may remain)."""
        self.versions[name] = self.versions.get(name, 0) + 1
        if not certain and sure and value is not None and self.lookup(name) == (value, True):
            # The value it surely has already, whether the write happens or not (`set(GGML_${feat} OFF)` under an
            # undecided condition when GGML_NATIVE is OFF): it stays known.
            self.values[name] = value
            if origins:
                self.origins[name] = {**self.origins.get(name, {}), **origins}
            return
        if value is not None:
            self.values[name] = value
        elif certain:
            self.values.pop(name, None)
        if sure and certain:
            self.doubtful.discard(name)
        else:
            self.doubtful.add(name)
        if certain:
            self.origins.pop(name, None)
        if origins:
            self.origins[name] = {**self.origins.get(name, {}), **origins}

    def write_any(self, template: str) -> None:
        """A write through a name the walk cannot expand: every name the template can make is doubtful."""
        pattern = _template_pattern(template)
        self.wildcards.append(pattern)
        if template not in self.templates:
            self.templates.add(template)
            self.patterns.append(pattern)
        self.doubtful.update(name for name in self.values if pattern.fullmatch(name))

    def saved(self, name: str) -> tuple[str | None, bool]:
        return self.values.get(name), name in self.doubtful

    def restore(self, name: str, saved: tuple[str | None, bool]) -> None:
        self.versions[name] = self.versions.get(name, 0) + 1
        value, doubtful = saved
        if value is None:
            self.values.pop(name, None)
        else:
            self.values[name] = value
        if doubtful:
            self.doubtful.add(name)
        else:
            self.doubtful.discard(name)


@functools.cache
def _template_pattern(template: str) -> re.Pattern[str]:
    """The names a template (`HAVE_${feature}`) can make."""
    parts = re.split(r"\$\{[^}]*\}", template)
    return re.compile(".*".join(re.escape(part) for part in parts))


@dataclass(frozen=True)
class _Place:
    listfile: str  # the file whose commands run
    directory: str  # CMAKE_CURRENT_SOURCE_DIR


@dataclass
class _Function:
    parameters: tuple[str, ...]
    body: list[Command]
    listfile: str
    macro: bool


@dataclass
class _Block:
    """An if() ... endif() the walk is inside."""

    running: bool  # the code around it may run (else no clause of it does)
    settled: bool = False  # an earlier clause surely ran: no later one can
    doubt: str | None = None  # the first earlier clause the walk could not decide
    may_run: bool = False  # the current clause may run
    pushed: bool = False  # the current clause put a condition on the walk's undecided stack
    assumed: int = 0  # assumptions the current clause put on the walk's stack


@dataclass
class _Walk:
    files: UpstreamFiles
    found: set[MissingPath]
    visited: set[str] = field(default_factory=set)  # directories entered
    including: list[str] = field(default_factory=list)  # included files running (one including itself stops)
    functions: dict[str, _Function] = field(default_factory=dict)  # global, like CMake's
    calls: list[tuple[str, Command]] = field(default_factory=list)  # the function calls running, outermost first
    undecided: list[str] = field(default_factory=list)  # the conditions around the current command it cannot decide
    # What the undecided clauses being walked assume, `NAME STREQUAL "constant"`: (name, value, the name's write
    # count then, the count of shapes of names written then). Inside such a clause the name has that value until
    # something writes it.
    assumptions: list[tuple[str, str, int, int]] = field(default_factory=list)
    targets: dict[str, bool] = field(default_factory=dict)  # targets made so far: surely (True) or perhaps
    foreign_targets: bool = False  # something the walk cannot see may have made targets of any name
    imported_targets: bool = False  # a package may have made namespaced targets (Threads::Threads)

    def report(self, file: str, command: Command, path: str, origins: Conditions = ()) -> None:
        """`origins`: the conditions under which a list item naming the path was added to its list."""
        if self.calls:  # inside a function: the outermost call is what a reader of the report can find
            file, command = self.calls[0]
        conditions = tuple(dict.fromkeys([*self.undecided, *origins]))
        self.found.add(MissingPath(file, command.line, command.call(), path, conditions))

    def directory(self, directory: str, scope: _Scope) -> None:
        listfile = _join(directory, "CMakeLists.txt")
        if listfile in self.visited or not self.files.has_file(listfile):
            return
        self.visited.add(listfile)
        here = _ROOTED + directory
        inner = scope.child(len(self.undecided))
        inner.values.update(CMAKE_CURRENT_SOURCE_DIR=here, CMAKE_CURRENT_LIST_DIR=here)
        inner.doubtful -= {"CMAKE_CURRENT_SOURCE_DIR", "CMAKE_CURRENT_LIST_DIR"}
        self.commands(listfile, directory, inner)

    def commands(self, listfile: str, directory: str, scope: _Scope) -> None:
        self.run(self.files.commands(listfile), _Place(listfile, directory), scope)

    def run(self, commands: list[Command], place: _Place, scope: _Scope) -> None:
        """Commands in order, as CMake runs them: those in a branch that cannot run are skipped."""
        blocks: list[_Block] = []
        mark, assumed = len(self.undecided), len(self.assumptions)
        index = 0
        live = True  # every enclosing clause may run
        while index < len(commands):
            command = commands[index]
            index += 1
            if command.name in _BRANCHES:
                self._branch(blocks, command, place, scope)
                live = not blocks or blocks[-1].may_run  # a clause may run only inside one that may
            elif not live:
                continue
            elif command.name in _BLOCKS:
                body, index = _body(commands, index, command.name)
                self._block(command, body, place, scope)
            elif command.name == "return" and len(self.undecided) == mark:
                break  # surely returns: nothing after it runs
            elif command.name in self.functions:
                self.call(self.functions[command.name], command, place, scope)
            else:
                self.command(place, command, scope)
        del self.undecided[mark:]  # an if() left open, or a return() inside one
        del self.assumptions[assumed:]

    def _branch(self, blocks: list[_Block], command: Command, place: _Place, scope: _Scope) -> None:
        """Track if/elseif/else/endif; a condition inside a branch that cannot run is not evaluated."""
        if command.name == "if":
            blocks.append(_Block(running=not blocks or blocks[-1].may_run))
        elif not blocks:
            return
        block = blocks[-1]
        if block.pushed:
            self.undecided.pop()
            block.pushed = False
        if block.assumed:
            del self.assumptions[-block.assumed :]
            block.assumed = 0
        if command.name == "endif":
            blocks.pop()
        elif block.running:
            self._clause(block, command, place, scope)

    def _clause(self, block: _Block, command: Command, place: _Place, scope: _Scope) -> None:
        """Enter an if/elseif/else clause: whether it may run, and which undecided condition it runs under."""
        if block.settled:
            block.may_run = False
            return
        value = True if command.name == "else" else self.condition(command.args, command.quoted, scope)
        here = None if value is not None else _described(place, command, scope)
        because = here or (block.doubt if value else None)  # an else branch runs when the earlier doubt is false
        block.may_run = value is not False
        block.settled = value is True
        block.doubt = block.doubt or here
        if block.may_run and because:
            self.undecided.append(because)
            block.pushed = True
        if value is None and command.name != "else":
            found = _assumed(command.args, command.quoted)
            marks = (len(scope.wildcards),)
            self.assumptions.extend((name, text, scope.versions.get(name, 0), *marks) for name, text in found)
            block.assumed = len(found)

    def condition(self, args: tuple[str, ...], quoted: tuple[bool, ...], scope: _Scope) -> Tri:
        return _evaluate(args, quoted, scope, self._target, self._assumption(scope))

    def _assumption(self, scope: _Scope) -> Callable[[str], str | None]:
        """What the clauses being walked assume a variable holds, while nothing has written it since."""
        if not self.assumptions:
            return _no_assumption

        def assumed(name: str) -> str | None:
            for known, value, version, shapes in reversed(self.assumptions):
                if known != name:
                    continue
                if scope.versions.get(name, 0) != version or any(p.fullmatch(name) for p in scope.wildcards[shapes:]):
                    return None  # written since
                return value
            return None

        return assumed

    def _target(self, name: str) -> Tri:
        if name in self.targets:
            return True if self.targets[name] else None
        return None if self.foreign_targets or (self.imported_targets and "::" in name) else False

    def _block(self, command: Command, body: list[Command], place: _Place, scope: _Scope) -> None:
        if command.name in {"function", "macro"}:
            if command.args:
                function = _Function(tuple(command.args[1:]), body, place.listfile, macro=command.name == "macro")
                self.functions[command.args[0].lower()] = function
        elif command.name == "foreach":
            self._foreach(command, body, place, scope)
        else:  # while(): not modelled; its body once, as if undecided
            self.undecided.append(_described(place, command, scope))
            self.run(body, place, scope)
            self.undecided.pop()

    def _foreach(self, command: Command, body: list[Command], place: _Place, scope: _Scope) -> None:
        """Each iteration with its item when the items are known; else the body once, as if undecided."""
        if not command.args:
            return
        variable = command.args[0]
        items, sure = _loop_items(command, scope)
        saved = scope.saved(variable)
        if not sure:
            self.undecided.append(_described(place, command, scope))
        iterations: list[str | None] = [None] if items is None else list(items[:_MAX_ITERATIONS])
        for item in iterations:
            scope.write(variable, item, sure=sure, certain=True)
            self.run(body, place, scope)
        if not sure:
            self.undecided.pop()
        scope.restore(variable, saved)  # CMP0124: the loop variable is the loop's own

    def call(self, function: _Function, command: Command, place: _Place, scope: _Scope) -> None:
        """Run a function's body with its arguments bound; what it needs is reported at the outermost call."""
        if len(self.calls) >= _MAX_CALL_DEPTH:
            return
        local = scope if function.macro else scope.child(len(self.undecided))
        bindings = _bindings(function.parameters, _call_values(command, scope))
        saved = {name: local.saved(name) for name in bindings} if function.macro else {}
        for name, (value, sure) in bindings.items():
            local.write(name, value, sure=sure, certain=True)
        self.calls.append((place.listfile, command))
        self.run(function.body, _Place(function.listfile, place.directory), local)
        self.calls.pop()
        for name, state in saved.items():  # a macro's arguments are not variables of its caller
            local.restore(name, state)

    def command(self, place: _Place, command: Command, scope: _Scope) -> None:
        listfile, directory, args = place.listfile, place.directory, command.args
        if command.name in {"set", "unset", "option", "string", "list", "project"}:
            self._assign(directory, command, scope)
        elif command.name == "add_subdirectory" and args:
            self._subdirectory(listfile, directory, command, scope)
        elif command.name == "include" and args:
            self._include(listfile, directory, command, scope)
        elif command.name == "configure_file" and args:
            self._needed(listfile, directory, command, args[0], scope)
        elif command.name == "file" and len(args) >= 2:
            self._file(listfile, directory, command, scope)
            self._untracked_writes(command, scope)
        else:
            self._named_paths(listfile, directory, command, scope)
            if command.name in _TARGET_COMMANDS and args:
                self._made_target(args[0], scope)
            if command.name not in _WRITES_NOTHING:
                self._untracked_writes(command, scope)

    def _assign(self, directory: str, command: Command, scope: _Scope) -> None:
        args = command.args
        if command.name == "project" and args:
            _project(directory, args[0], scope)
        elif command.name in {"set", "unset"} and args:
            self._set(command, scope)
        elif command.name == "option" and args:
            if not scope.has(args[0]):  # a variable, or a cache entry (the preset's, a -D, an earlier one) stays
                value, sure = _expand(args[2], scope) if len(args) > 2 else ("OFF", True)
                scope.entries.write(args[0], value, sure=sure, certain=self._certain(scope.entries))
        elif command.name == "string" and len(args) == 3 and args[0] in {"TOUPPER", "TOLOWER"}:
            value, sure = _expand(args[1], scope)
            changed = None if value is None else value.upper() if args[0] == "TOUPPER" else value.lower()
            scope.write(args[2], changed, sure=sure, certain=self._certain(scope))
        elif command.name == "list" and len(args) >= 2 and args[0] == "APPEND":
            self._append(command, scope)
        elif (output := _output_position(command)) is not None:
            _perhaps_written_raw(scope, args[output])  # only the result is written: the inputs are only read
        else:
            self._untracked_writes(command, scope)

    def _certain(self, scope: _Scope) -> bool:
        """A write into `scope` surely happens: no condition the walk could not decide lies between."""
        return len(self.undecided) <= scope.depth

    def _set(self, command: Command, scope: _Scope) -> None:
        """set() and unset() of a variable of this scope, of the caller's (PARENT_SCOPE), or of a cache entry."""
        args, quoted = command.args, command.quoted
        target: _Scope | None = scope
        end = len(args)
        if "CACHE" in args[1:]:
            target, end = scope.entries, args.index("CACHE")
        elif "PARENT_SCOPE" in args[1:]:
            target, end = scope.parent, len(args) - 1
        if target is None:
            return
        name, sure_name = _expand(args[0], scope)
        if name is None or not sure_name:
            target.write_any(args[0])
            return
        certain = self._certain(target)
        forced = "FORCE" in args[end:] or args[end + 1 : end + 2] == ("INTERNAL",)  # INTERNAL implies FORCE
        if target is scope.entries and command.name == "set" and not forced and target.lookup(name) != (None, True):
            return  # an entry stays: the preset's, a -D, an earlier configure's, an earlier declaration's
        if command.name == "unset" or end <= 1:
            target.write(name, None, sure=True, certain=certain)
            return
        value, sure = _joined(args[1:end], quoted[1:end], scope)
        origins = self._origins(value, args[1:end], quoted[1:end], scope, certain=certain)
        target.write(name, value, sure=sure, certain=certain, origins=origins)

    def _append(self, command: Command, scope: _Scope) -> None:
        mode, name = command.args[0], command.args[1]
        items, sure_items = _joined(command.args[2:], command.quoted[2:], scope)
        old, sure_old = scope.lookup(name)
        if items is None:
            scope.write(name, old, sure=False, certain=False)
            return
        parts = [part for part in (old or "", items)[:: 1 if mode == "APPEND" else -1] if part]
        certain = self._certain(scope)
        added = self._origins(items, command.args[2:], command.quoted[2:], scope, certain=certain)
        origins = {**scope.origins.get(name, {}), **added}
        # Not certain: the list holds the old items and perhaps the new ones; paths are checked for all of them.
        scope.write(name, ";".join(parts), sure=sure_items and sure_old, certain=certain, origins=origins)

    def _origins(
        self, value: str | None, args: tuple[str, ...], quoted: tuple[bool, ...], scope: _Scope, *, certain: bool
    ) -> dict[str, Conditions]:
        """Why each item of `value`, written from `args`, may be in the list: the undecided conditions around an
        uncertain write, and those under which it was added to the list it comes from."""
        if (certain or not self.undecided) and not scope.origins:
            return {}
        here = () if certain else tuple(self.undecided)
        found = dict.fromkeys(_split(value), here) if here else {}
        for raw, is_quoted in zip(args, quoted, strict=True):
            for item, conditions in _origins_of(raw, is_quoted, scope).items():
                found[item] = tuple(dict.fromkeys([*here, *conditions]))
        return found

    def _untracked_writes(self, command: Command, scope: _Scope) -> None:
        """A command the walk does not model may write any variable named in its unquoted arguments. An argument
        that is a bare unknown reference (`${GIT_EXECUTABLE}`) is taken for an input, not a name written."""
        self.imported_targets |= command.name in _IMPORTING
        self.foreign_targets |= command.name in _ADDING_PROJECTS
        for raw, quoted in zip(command.args, command.quoted, strict=True):
            if not quoted:
                _perhaps_written_raw(scope, raw)
        if command.name in _PREFIXING:
            self._prefixed_writes(command, scope)

    def _prefixed_writes(self, command: Command, scope: _Scope) -> None:
        """find_package(Vulkan) writes Vulkan_* (and VULKAN_FOUND), cmake_parse_arguments(ARG ...) ARG_*,
        FetchContent the lower-case name's _SOURCE_DIR and _POPULATED."""
        args = command.args
        start = 2 if command.name == "cmake_parse_arguments" and args[:1] == ("PARSE_ARGV",) else 0
        names = args[start:] if command.name == "fetchcontent_makeavailable" else args[start : start + 1]
        for raw in names:
            prefix, _ = _expand(raw, scope)
            if prefix is None or not _NAME.fullmatch(prefix):
                continue
            for name in (prefix + "_${}", prefix.lower() + "_${}", f"{prefix.upper()}_FOUND"):
                _perhaps_written(scope, name)
            if command.name == "find_package" and "REQUIRED" in args:  # else CMake stops: found, where it matters
                for found in {f"{prefix}_FOUND", f"{prefix.upper()}_FOUND"}:
                    scope.write(found, "TRUE", sure=True, certain=self._certain(scope))

    def _made_target(self, raw: str, scope: _Scope) -> None:
        name, sure = _expand(raw, scope)
        if name is None:
            self.foreign_targets = True
            return
        self.targets[name] = self.targets.get(name, False) or (sure and not self.undecided)

    def _named_paths(self, listfile: str, directory: str, command: Command, scope: _Scope) -> None:
        """Sources of targets and include directories: checked when upstream has them."""
        args = command.args
        if command.name in _SOURCE_COMMANDS and len(args) >= 2 and not {"ALIAS", "IMPORTED"} & set(args):
            for raw, source, origins in _items_with_origins(args[1:], command.quoted[1:], scope):
                if source not in _SOURCE_KEYWORDS and "$<" not in raw:
                    self._needed(listfile, directory, command, source, scope, folder=False, origins=origins)
        elif command.name in {"target_include_directories", "include_directories"}:
            start = 1 if command.name == "target_include_directories" else 0
            for raw, folder, origins in _items_with_origins(args[start:], command.quoted[start:], scope):
                if folder not in _INCLUDE_DIR_KEYWORDS and "$<" not in raw:
                    self._needed(listfile, directory, command, folder, scope, folder=True, origins=origins)

    def _subdirectory(self, listfile: str, directory: str, command: Command, scope: _Scope) -> None:
        target = _resolve(directory, command.args[0], scope)
        if target is None or not self.files.has_file(_join(target, "CMakeLists.txt")):
            self.foreign_targets = True  # CMake would add targets the walk does not see
        if target is None:
            return
        if not self.files.has_file(_join(target, "CMakeLists.txt")):
            missing = f"{target}/" if not self.files.has_dir(target) else _join(target, "CMakeLists.txt")
            self.report(listfile, command, missing)
            return
        self.directory(target, scope)

    def _include(self, listfile: str, directory: str, command: Command, scope: _Scope) -> None:
        name, _ = _expand(command.args[0], scope)
        if name is None:
            return
        if "/" in name or name.endswith(".cmake"):
            candidates = [_resolve(directory, name, scope)]
        else:  # a module: upstream's module path first, then CMake's own modules (not ours to check)
            module_path, _ = scope.lookup("CMAKE_MODULE_PATH")  # its last value seen, when not sure
            folders = _split(module_path)
            candidates = [_resolve(directory, posixpath.join(m, f"{name}.cmake"), scope) for m in folders]
        for path in filter(None, candidates):
            if self.files.has_file(path):
                self._included(path, directory, scope)
                return
            if self.files.upstream_has(path) or ("/" in name and "OPTIONAL" not in command.args):
                self.report(listfile, command, path)
                return

    def _included(self, path: str, directory: str, scope: _Scope) -> None:
        """An included file runs in the includer's scope, each time it is included."""
        if path in self.including:
            return
        self.including.append(path)
        saved = scope.saved("CMAKE_CURRENT_LIST_DIR")
        scope.write("CMAKE_CURRENT_LIST_DIR", _ROOTED + posixpath.dirname(path), sure=True, certain=True)
        self.commands(path, directory, scope)
        scope.restore("CMAKE_CURRENT_LIST_DIR", saved)
        self.including.pop()

    def _file(self, listfile: str, directory: str, command: Command, scope: _Scope) -> None:
        mode, args = command.args[0], command.args[1:]
        if mode in {"READ", "STRINGS"}:
            self._needed(listfile, directory, command, args[0], scope)
        elif mode in {"GLOB", "GLOB_RECURSE"}:
            for pattern in args[1:]:
                if pattern in _GLOB_KEYWORDS:
                    continue
                matches = self._glob(directory, pattern, scope, recurse=mode == "GLOB_RECURSE")
                missing = sorted(matches - self.files.synced)
                if missing:
                    self.report(listfile, command, missing[0])

    def _glob(self, directory: str, pattern: str, scope: _Scope, *, recurse: bool) -> frozenset[str]:
        resolved = _resolve(directory, pattern, scope)
        return frozenset() if resolved is None else self.files.glob(resolved, recurse=recurse)

    def _needed(
        self,
        listfile: str,
        directory: str,
        command: Command,
        item: str,
        scope: _Scope,
        *,
        folder: bool = False,
        origins: Conditions = (),
    ) -> None:
        """A file (or folder) the command needs, reported when upstream has it and the subset does not."""
        path = _resolve(directory, item, scope)
        if path is None:
            return
        if folder:
            if path and not self.files.has_dir(path) and self.files.upstream_has(path):
                self.report(listfile, command, f"{path}/", origins)
        elif not self.files.has_file(path) and path in self.files.upstream:
            self.report(listfile, command, path, origins)


# Where list() and string() write their result, by subcommand (None: the last argument); they write nothing else.
_LIST_OUTPUTS: dict[str, int | None] = {"LENGTH": 2, "FIND": 3, "JOIN": 3, "GET": None, "SUBLIST": 4}
_STRING_OUTPUTS: dict[str, int | None] = (
    dict.fromkeys(["APPEND", "PREPEND", "CONCAT", "TIMESTAMP", "UUID"], 1)  # JSON: ERROR_VARIABLE too
    | dict.fromkeys(["MD5", "SHA1", "SHA224", "SHA256", "SHA384", "SHA512", "SHA3_224", "SHA3_256"], 1)
    | dict.fromkeys(["SHA3_384", "SHA3_512"], 1)
    | dict.fromkeys(["JOIN", "LENGTH", "STRIP", "TOLOWER", "TOUPPER", "HEX", "MAKE_C_IDENTIFIER"], 2)
    | dict.fromkeys(["GENEX_STRIP", "CONFIGURE"], 2)
    | dict.fromkeys(["FIND", "REPLACE", "REPEAT"], 3)
    | dict.fromkeys(["SUBSTRING", "COMPARE"], 4)
    | dict.fromkeys(["ASCII", "RANDOM"], None)
)
_REGEX_OUTPUTS = {"MATCH": 3, "MATCHALL": 3, "REPLACE": 4}


def _output_position(command: Command) -> int | None:
    """The argument a list() or string() call writes its result to, when that is all it writes."""
    args = command.args
    if command.name == "list" and args and args[0] in _LIST_OUTPUTS:
        position = _LIST_OUTPUTS[args[0]]
    elif command.name == "string" and args[:1] == ("REGEX",) and args[1:2] and args[1] in _REGEX_OUTPUTS:
        position = _REGEX_OUTPUTS[args[1]]
    elif command.name == "string" and args and args[0] in _STRING_OUTPUTS:
        position = _STRING_OUTPUTS[args[0]]
    else:
        return None
    position = len(args) - 1 if position is None else position
    return position if 0 < position < len(args) else None


def _perhaps_written_raw(scope: _Scope, raw: str) -> None:
    """An unquoted argument that may name a variable written. A bare unknown reference (`${GIT_EXECUTABLE}`) is
    taken for an input, not a name written."""
    if not _NAME_TEMPLATE.fullmatch(raw):
        return
    name, _ = _expand(raw, scope)
    if name is None:
        if not _REFERENCE.fullmatch(raw):
            _perhaps_written(scope, raw)  # HAVE_${feature}: some name of that shape
    elif _NAME.fullmatch(name):
        _perhaps_written(scope, name)


def _perhaps_written(scope: _Scope, template: str) -> None:
    """A variable, or a cache entry (find_library(), check_c_source_compiles()), of this name or of this shape
    (`HAVE_${feature}`) may have been written with a value the walk cannot know."""
    for target in {scope, scope.entries}:
        if "${" in template:
            target.write_any(template)
        else:
            target.write(template, None, sure=False, certain=False)


def _body(commands: list[Command], index: int, opener: str) -> tuple[list[Command], int]:
    """The commands of a function, macro, foreach or while block from `index`, and the index after its closer."""
    openers, closers = _BLOCKS[opener]
    nesting = 0
    for position in range(index, len(commands)):
        name = commands[position].name
        if name in closers:
            if nesting == 0:
                return commands[index:position], position + 1
            nesting -= 1
        nesting += name in openers
    return commands[index:], len(commands)


def _described(place: _Place, command: Command, scope: _Scope) -> str:
    """A condition as a report shows it: its arguments with the variable references it could expand."""
    shown = []
    for raw, quoted in zip(command.args, command.quoted, strict=True):
        expanded, sure = _expand(raw, scope)
        text = expanded if expanded is not None and sure else raw
        shown.append(f'"{text}"' if quoted else text)
    words = " ".join(shown)
    text = words if command.name in {"if", "elseif"} else f"{command.name}({words})"
    return f"`{text}` ({place.listfile}:{command.line})"


def _project(directory: str, raw_name: str, scope: _Scope) -> None:
    """project() writes <name>_SOURCE_DIR, <name>_VERSION and kin: the source dir is known, the rest is not."""
    here = _ROOTED + directory
    scope.write("PROJECT_SOURCE_DIR", here, sure=True, certain=True)
    name, sure = _expand(raw_name, scope)
    if name is None or not sure:
        return
    scope.write_any(name + "_${}")
    scope.write(f"{name}_SOURCE_DIR", here, sure=True, certain=True)


def _loop_items(command: Command, scope: _Scope) -> tuple[list[str] | None, bool]:
    """What foreach() iterates over (None when unknown), and whether that is sure."""
    args = list(zip(command.args[1:], command.quoted[1:], strict=True))
    if args and args[0] == ("RANGE", False):
        return _range_items([raw for raw, _ in args[1:]], scope)
    if not args or args[0] != ("IN", False):
        return _joined_items(args, scope)
    items: list[str] = []
    sure = True
    mode = ""
    for raw, quoted in args[1:]:
        if not quoted and raw in {"LISTS", "ITEMS"}:
            mode = raw
            continue
        if mode == "ITEMS":
            more, more_sure = _joined_items([(raw, quoted)], scope)
        elif mode == "LISTS":
            value, more_sure = scope.lookup(raw)
            more = None if value is None and not more_sure else _split(value)
        else:  # anything else (ZIP_LISTS) is not modelled
            return None, False
        if more is None:
            return None, False
        items.extend(more)
        sure = sure and more_sure
    return items, sure


def _range_items(raws: list[str], scope: _Scope) -> tuple[list[str] | None, bool]:
    numbers = [_expand(raw, scope) for raw in raws]
    if not numbers or any(n is None or not s or not re.fullmatch(r"-?\d+", n) for n, s in numbers):
        return None, False
    bounds = [int(n) for n, _ in numbers if n is not None]
    start, stop, step = (0, bounds[0], 1) if len(bounds) == 1 else (bounds[0], bounds[1], (bounds[2:] or [1])[0])
    if step <= 0:
        return None, False
    return [str(n) for n in range(start, stop + 1, step)], True


def _split(value: str | None, quoted: bool = False) -> list[str]:
    """A value as CMake passes it: a quoted argument is one item; else its list items, empty ones dropped."""
    if value is None:
        return []
    return [value] if quoted else [item for item in value.split(";") if item]


def _joined_items(args: list[tuple[str, bool]], scope: _Scope) -> tuple[list[str] | None, bool]:
    """Arguments as CMake passes them: an unquoted one splits into its list items, an empty one vanishes."""
    items: list[str] = []
    sure = True
    for raw, quoted in args:
        value, value_sure = _expand(raw, scope)
        if value is None:
            return None, False
        items.extend(_split(value, quoted))
        sure = sure and value_sure
    return items, sure


def _joined(args: tuple[str, ...], quoted: tuple[bool, ...], scope: _Scope) -> tuple[str | None, bool]:
    items, sure = _joined_items(list(zip(args, quoted, strict=True)), scope)
    return (None, False) if items is None else (";".join(items), sure)


def _call_values(command: Command, scope: _Scope) -> list[tuple[str | None, bool]]:
    """A call's arguments, split as CMake splits them; from an unknown unquoted one on, every position is unknown."""
    values: list[tuple[str | None, bool]] = []
    for raw, quoted in zip(command.args, command.quoted, strict=True):
        items, sure = _joined_items([(raw, quoted)], scope)
        if items is None:
            return [*values, (None, False)]
        values.extend((item, sure) for item in items)
    return values


def _bindings(parameters: tuple[str, ...], values: list[tuple[str | None, bool]]) -> dict[str, tuple[str | None, bool]]:
    """Parameters, ARGN, ARGC and ARGV0... bound to a call's arguments (unknown past an unknown one)."""
    complete = not values or values[-1] != (None, False)
    unknown: tuple[str | None, bool] = (None, False)
    bound: dict[str, tuple[str | None, bool]] = {}
    for position, parameter in enumerate(parameters):
        bound[parameter] = values[position] if position < len(values) else unknown if not complete else ("", True)
    for position, value in enumerate(values if complete else values[:-1]):
        bound[f"ARGV{position}"] = value
    rest = values[len(parameters) :]
    known_rest = complete and all(value is not None for value, _ in rest)
    rest_sure = all(sure for _, sure in rest)
    bound["ARGN"] = (";".join(v for v, _ in rest if v is not None), rest_sure) if known_rest else unknown
    bound["ARGC"] = (str(len(values)), True) if complete else unknown
    return bound


def _items_with_origins(
    args: tuple[str, ...], quoted: tuple[bool, ...], scope: _Scope
) -> list[tuple[str, str, Conditions]]:
    """(argument, item, conditions) for the items of arguments as CMake passes them, an unquoted `${LIST}` one
    item per list item, with the conditions under which an item was added to its list (unknown arguments are
    dropped)."""
    found: list[tuple[str, str, Conditions]] = []
    for raw, is_quoted in zip(args, quoted, strict=True):
        expanded, _ = _expand(raw, scope)
        if expanded is None:
            continue
        origins = _origins_of(raw, is_quoted, scope)
        items = _split(expanded, is_quoted)
        found.extend((raw, item, origins.get(item, ())) for item in items)
    return found


def _origins_of(raw: str, quoted: bool, scope: _Scope) -> Mapping[str, Conditions]:
    """For an argument that is a list (`${GGML_CPU_SOURCES}`), the conditions under which its items were added."""
    if quoted or not scope.origins or not raw.startswith("${"):
        return {}
    reference = _REFERENCE.fullmatch(raw)
    return scope.origins.get(reference.group(2), {}) if reference and not reference.group(1) else {}


def evaluate(
    args: tuple[str, ...], quoted: tuple[bool, ...], variables: Mapping[str, str], *, unknown: Iterable[str] = ()
) -> Tri:
    """An if() condition with the variables given set and `unknown` ones undecided; any other is unset."""
    return _evaluate(args, quoted, _Scope(dict(variables), set(unknown)), lambda _: None)


def _no_assumption(name: str) -> str | None:
    return None


def _evaluate(
    args: tuple[str, ...],
    quoted: tuple[bool, ...],
    scope: _Scope,
    target: Callable[[str], Tri],
    assumed: Callable[[str], str | None] = _no_assumption,
) -> Tri:
    """True/False when the walk's variables decide the condition, None when they do not. `assumed`: the value a
    variable the walk does not know has inside the clauses being walked."""
    if len(args) == 1 and args[0] not in _UNARY:  # `if (GGML_CUDA)`, half of all: no parser needed
        return _truth(args[0], quoted[0], scope, assumed)
    parser = _Condition(list(zip(args, quoted, strict=True)), scope, target, assumed)
    try:
        value = parser.or_expression()
    except IndexError:
        return None
    return value if parser.position == len(parser.tokens) else None


@dataclass
class _Condition:
    tokens: list[tuple[str, bool]]
    scope: _Scope
    target: Callable[[str], Tri]  # `TARGET name`
    assumed: Callable[[str], str | None] = _no_assumption
    position: int = 0

    def peek(self) -> str | None:
        return self.tokens[self.position][0] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, bool]:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def or_expression(self) -> Tri:
        value = self.and_expression()
        while self.peek() == "OR":
            self.take()
            right = self.and_expression()
            value = True if value is True or right is True else (False if value is False and right is False else None)
        return value

    def and_expression(self) -> Tri:
        value = self.not_expression()
        while self.peek() == "AND":
            self.take()
            right = self.not_expression()
            value = False if value is False or right is False else (True if value and right else None)
        return value

    def not_expression(self) -> Tri:
        if self.peek() == "NOT":
            self.take()
            value = self.not_expression()
            return None if value is None else not value
        return self.primary()

    def primary(self) -> Tri:
        if self.peek() == "(":
            self.take()
            value = self.or_expression()
            if self.peek() == ")":
                self.take()
            return value
        token, quoted = self.take()
        if token in _UNARY and not quoted:
            return self.unary(token, self.take())
        if self.peek() in _BINARY:
            operator, _ = self.take()
            return self.binary((token, quoted), operator, self.take())
        return self.truth(token, quoted)

    def text(self, token: str) -> str | None:
        """A token with its references expanded, when that is sure."""
        text, sure = _expand(token, self.scope)
        return text if sure else None

    def operand(self, token: str, quoted: bool) -> str | None:
        """An operand of a comparison: an unquoted name of a set variable stands for its value (CMP0054)."""
        text = self.text(token)
        if text is None or quoted:
            return text
        value, sure = self.scope.lookup(text)
        if not sure:
            return self.assumed(text)
        return text if value is None else value

    def unary(self, keyword: str, operand: tuple[str, bool]) -> Tri:
        name = self.text(operand[0])
        if name is None:
            return None
        if keyword == "TARGET":
            return self.target(name)
        if keyword != "DEFINED" or name.startswith(("ENV{", "CACHE{")):
            return None  # files, policies, commands and the environment are CMake's to look at
        value, sure = self.scope.lookup(name)
        return None if not sure else value is not None

    def binary(self, left: tuple[str, bool], operator: str, right: tuple[str, bool]) -> Tri:
        a = self.operand(*left)
        if operator == "IN_LIST":
            name = self.text(right[0])
            items, sure = self.scope.lookup(name) if name is not None else (None, False)
            return None if a is None or not sure else a in _split(items)
        b = self.operand(*right)
        return None if a is None or b is None else _compare(a, operator, b)

    def truth(self, token: str, quoted: bool) -> Tri:
        return _truth(token, quoted, self.scope, self.assumed)


@functools.cache
def _assumed(args: tuple[str, ...], quoted: tuple[bool, ...]) -> tuple[tuple[str, str], ...]:
    """What a clause running assumes: (name, value) for each `NAME STREQUAL "constant"` it is a conjunction of."""
    if any(not q and a in {"OR", "NOT", "(", ")"} for a, q in zip(args, quoted, strict=True)):
        return ()
    found: list[tuple[str, str]] = []
    start = 0
    for end in [*(i for i, (a, q) in enumerate(zip(args, quoted, strict=True)) if a == "AND" and not q), len(args)]:
        part = args[start:end]
        if len(part) == 3 and part[1] == "STREQUAL" and not quoted[start] and quoted[start + 2]:
            name, value = part[0], part[2]
            if _NAME.fullmatch(name) and "$" not in value and value != name:
                found.append((name, value))  # true: the name is set (else it compares as itself) and holds this
        start = end + 1
    return tuple(found)


def _truth(token: str, quoted: bool, scope: _Scope, assumed: Callable[[str], str | None] = _no_assumption) -> Tri:
    """A lone argument of if(): a constant, or the name of a variable whose value is not a false constant."""
    text, sure = _expand(token, scope)
    if text is None or not sure:
        return None
    constant = _constant(text)
    if quoted or constant is not None:
        return constant is True  # a quoted string that is no constant is false
    value, sure = scope.lookup(text)
    if not sure:
        value = assumed(text)
        if value is None:
            return None
    return value is not None and value.upper() not in _FALSE and not value.endswith("-NOTFOUND")


_ORDER = {"EQUAL": (0,), "LESS": (-1,), "GREATER": (1,), "LESS_EQUAL": (-1, 0), "GREATER_EQUAL": (0, 1)}


def _compare(a: str, operator: str, b: str) -> Tri:
    """A comparison of two known strings, as CMake makes it; None where CMake's rules are not modelled."""
    if operator.startswith("STR"):
        return _sign(a, b) in _ORDER["EQUAL" if operator == "STREQUAL" else operator.removeprefix("STR")]
    if operator in _ORDER:  # numbers: a string that is none compares false
        return bool(_NUMBER.fullmatch(a) and _NUMBER.fullmatch(b)) and _sign(float(a), float(b)) in _ORDER[operator]
    if operator.startswith("VERSION_"):
        return _version_compare(a, operator.removeprefix("VERSION_"), b)
    if operator == "MATCHES":
        try:
            return re.search(b, a) is not None
        except re.error:
            return None
    return None  # IS_NEWER_THAN, PATH_EQUAL


def _version_compare(a: str, order: str, b: str) -> Tri:
    if not (_VERSION.fullmatch(a) and _VERSION.fullmatch(b)):
        return None
    left, right = ([int(part) for part in version.split(".")] for version in (a, b))
    width = max(len(left), len(right))
    return _sign(left + [0] * (width - len(left)), right + [0] * (width - len(right))) in _ORDER[order]


def _sign(a: Any, b: Any) -> int:
    return int(a > b) - int(a < b)


def _constant(text: str) -> Tri:
    """CMake's true/false constants and numbers; None for anything else."""
    upper = text.upper()
    if upper in _TRUE:
        return True
    if upper in _FALSE or text.endswith("-NOTFOUND"):
        return False
    if _NUMBER.fullmatch(text):
        return float(text) != 0
    return None


def _expand(text: str, scope: _Scope) -> tuple[str | None, bool]:
    """`${VAR}` references replaced as CMake replaces them, innermost first (`${${name}_FOUND}`), an unset
    variable by nothing. (None, False) when a reference has no value at all ($ENV{} and $CACHE{} included);
    sure is False when a value used is a guess."""
    if "$" not in text:
        return text, True
    sure = True
    for _ in range(_MAX_EXPANSIONS):
        match = _REFERENCE.search(text)
        if match is None:
            return text, sure
        value, known = scope.lookup(match.group(2)) if not match.group(1) else (None, False)
        if value is None and not known:
            return None, False
        sure = sure and known
        text = text[: match.start()] + (value or "") + text[match.end() :]
    return None, False


def _resolve(directory: str, raw: str, scope: _Scope) -> str | None:
    """A path relative to the upstream root, or None (unknown variables, absolute or outside the tree)."""
    expanded, _ = _expand(raw, scope)
    if expanded is None or ";" in expanded or "$" in expanded:
        return None
    base = directory
    if expanded.startswith(_ROOTED):
        expanded, base = expanded[len(_ROOTED) :].lstrip("/"), ""
    if _ROOTED in expanded or posixpath.isabs(expanded) or re.match(r"[A-Za-z]:", expanded):
        return None
    joined = posixpath.normpath(posixpath.join(base, expanded)) if (base or expanded) else ""
    if joined == ".":
        return ""
    return None if joined.startswith("..") else joined


def _join(directory: str, name: str) -> str:
    return f"{directory}/{name}" if directory else name


def roots_for(files: UpstreamFiles, presets: Iterable[Preset]) -> dict[str, list[Mapping[str, str]]]:
    """Where the superbuild enters the tree for each preset: llama.cpp's top level for the core, ggml's
    for a GPU module (or the top level of a ggml-only upstream), with the presets entering there."""
    llama_cpp = files.has_file("ggml/CMakeLists.txt")
    entered: dict[str, list[Mapping[str, str]]] = {}
    for preset in presets:
        root = "" if preset.builds_llama_cpp or not llama_cpp else "ggml"
        entered.setdefault(root, []).append(preset.cache_variables)
    return entered


def missing_for_presets(files: UpstreamFiles, presets: Iterable[Preset]) -> list[MissingPath]:
    found: set[MissingPath] = set()
    outer = superbuild_names()
    for root, caches in roots_for(files, presets).items():
        found.update(unsynced_paths(files, caches, [root], outer=outer))
    return _one_per_path(files, found)


def needs(missing: Sequence[MissingPath]) -> str:
    """How a refusal counts them: paths surely needed, and paths needed under conditions only CMake can decide."""
    undecided = sum(1 for m in missing if m.conditions)
    decided = len(missing) - undecided
    if not undecided:
        return f"needs {decided} path(s)"
    return f"needs {decided} and may need {undecided} more path(s)" if decided else f"may need {undecided} path(s)"


@functools.cache
def superbuild_names(path: Path = SUPERBUILD) -> frozenset[str]:
    """Variables our superbuild may set before it adds the tree (its first add_subdirectory()): their values are
    not the walk's to know. What commands write is found as the walk finds it."""
    try:
        commands = parse(path.read_text(encoding="utf-8"))
    except OSError:
        return frozenset()
    written = _Scope({})
    names: set[str] = set()
    for command in commands:
        args = command.args
        if command.name == "add_subdirectory":
            break
        if command.name in {"set", "option", "unset"} and args and _NAME.fullmatch(args[0]):
            names.add(args[0])
        elif command.name == "list" and args[:1] == ("APPEND",) and len(args) > 1:
            names.add(args[1])
        elif (output := _output_position(command)) is not None:
            _perhaps_written_raw(written, args[output])
        elif command.name not in _WRITES_NOTHING | _BRANCHES | {"while", "function", "macro"}:
            for raw, quoted in zip(args, command.quoted, strict=True):
                if not quoted:
                    _perhaps_written_raw(written, raw)
    return frozenset(names | written.doubtful)


def tracked_files(git: Git, revision: str, subset: PathFilter) -> UpstreamFiles:
    """A commit of the tracking repository: its whole tree, the subset's CMake files read from git."""
    blobs = [entry for entry in tree_entries(git, revision) if entry.kind == "blob"]
    everything = frozenset(entry.path for entry in blobs)
    synced = frozenset(subset.select(sorted(everything)))
    cmake = [entry for entry in blobs if entry.path in synced and is_cmake_file(entry.path)]
    contents = read_blobs(git, [entry.sha for entry in cmake])
    texts = {entry.path: contents[entry.sha].decode("utf-8", errors="replace") for entry in cmake}
    return UpstreamFiles(synced, everything, lambda path: texts.get(path, ""))


def synced_files(destination: Path, synced: Iterable[str], upstream: frozenset[str] | None) -> UpstreamFiles:
    """The synced tree on disk (`upstream`: every file of the tree it came from, when known)."""
    names = frozenset(synced)

    def read(path: str) -> str:
        return (destination / path).read_text(encoding="utf-8", errors="replace")

    return UpstreamFiles(names, upstream if upstream is not None else names, read)
