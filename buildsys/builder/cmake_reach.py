"""What the synced CMake needs from outside the sync subset, found before CMake is run.

Upstream's build files are walked the way CMake would enter them — from the top-level CMakeLists.txt
through every `add_subdirectory()` whose condition the presets do not make false — and each path a
command needs is looked up in the subset: subdirectories, `include()`d files and modules,
`configure_file()` inputs, `file(READ/STRINGS/GLOB)` paths, sources of `add_library()` and friends,
and include directories. A path missing from the subset is reported with the file, line and call
that needs it, so `build` and `bump` can name it instead of CMake failing at configure.

Conditions are evaluated with three values: the presets' cache variables and upstream's `option()`
defaults are known, everything else (platform, targets, comparisons) is unknown and counts as
reachable. Functions and macros are followed where they are called, with their arguments bound; what their
bodies need is reported at the outermost call (`ggml/src/CMakeLists.txt:591 ggml_add_backend(CUDA)`).
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from ..cmake_tool import is_on
from ..git import Git
from ..pathfilter import PathFilter, pattern_regex
from ..vendoring.upstream_tree import read_blobs, tree_entries
from .presets import Preset


def is_cmake_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return name == "CMakeLists.txt" or name.endswith(".cmake")


_TRUE = frozenset({"1", "ON", "YES", "TRUE", "Y"})
_FALSE = frozenset({"0", "OFF", "NO", "FALSE", "N", "IGNORE", "NOTFOUND", ""})
_UNARY = frozenset({"EXISTS", "COMMAND", "DEFINED", "TARGET", "POLICY", "TEST", "IS_DIRECTORY", "IS_ABSOLUTE",
                    "IS_SYMLINK", "IS_READABLE", "IS_WRITABLE", "IS_EXECUTABLE"})  # fmt: skip
_BINARY = frozenset({"STREQUAL", "STRLESS", "STRGREATER", "STRLESS_EQUAL", "STRGREATER_EQUAL", "EQUAL", "LESS",
                     "GREATER", "LESS_EQUAL", "GREATER_EQUAL", "MATCHES", "VERSION_EQUAL", "VERSION_LESS",
                     "VERSION_GREATER", "VERSION_LESS_EQUAL", "VERSION_GREATER_EQUAL", "IN_LIST", "IS_NEWER_THAN",
                     "PATH_EQUAL"})  # fmt: skip
_SOURCE_COMMANDS = frozenset({"add_library", "add_executable", "target_sources"})
_SOURCE_KEYWORDS = frozenset({"STATIC", "SHARED", "MODULE", "OBJECT", "INTERFACE", "IMPORTED", "ALIAS", "GLOBAL",
                              "EXCLUDE_FROM_ALL", "WIN32", "MACOSX_BUNDLE", "PUBLIC", "PRIVATE", "FILE_SET",
                              "TYPE", "BASE_DIRS", "FILES", "HEADERS", "CXX_MODULES"})  # fmt: skip
_GLOB_KEYWORDS = frozenset({"LIST_DIRECTORIES", "RELATIVE", "CONFIGURE_DEPENDS", "FOLLOW_SYMLINKS", "true", "false"})
_INCLUDE_DIR_KEYWORDS = frozenset({"SYSTEM", "AFTER", "BEFORE", "PUBLIC", "PRIVATE", "INTERFACE"})
_VARIABLE = re.compile(r"\$\{([A-Za-z0-9_.+-]+)\}")
Tri = bool | None  # True, False, or unknown
_MAX_CALL_DEPTH = 16
_ROOTED = "@upstream:"  # marks a path already relative to the upstream root (CMAKE_CURRENT_SOURCE_DIR and kin)


@dataclass(frozen=True, order=True)
class MissingPath:
    file: str  # the CMake file that needs it, relative to the upstream root
    line: int
    call: str  # e.g. "add_subdirectory(vendor)"
    path: str  # what is missing, a folder ending in "/" or a file

    def __str__(self) -> str:
        return f"{self.file}:{self.line} {self.call}: {self.path} is not synced; add it to [sync] include"


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

    def commands(self, path: str) -> list[Command]:
        if path not in self._parsed:
            self._parsed[path] = parse(self.read(path))
        return self._parsed[path]

    @cached_property
    def option_defaults(self) -> dict[str, str]:
        """`option(NAME "doc" ON|OFF)` defaults across the synced CMake files (the first declaration wins)."""
        found: dict[str, str] = {}
        for path in sorted(p for p in self.synced if is_cmake_file(p)):
            for command in self.commands(path):
                if command.name == "option" and len(command.args) >= 2:
                    value = command.args[2] if len(command.args) > 2 else "OFF"
                    if value.upper() in _TRUE | _FALSE:
                        found.setdefault(command.args[0], value)
        return found

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
    files: UpstreamFiles, presets: Iterable[Mapping[str, str]], roots: Iterable[str]
) -> list[MissingPath]:
    """Every path the CMake reached from `roots` (folders holding a CMakeLists.txt) needs but the subset lacks,
    for any of the presets' cache variables."""
    defaults = files.option_defaults
    found: set[MissingPath] = set()
    for cache in presets:
        for root in roots:
            walk = _Walk(files, found)
            walk.directory(root, {**defaults, **cache}, module_path=[])
    return _one_per_path(files, found)


def _one_per_path(files: UpstreamFiles, found: Iterable[MissingPath]) -> list[MissingPath]:
    """Each missing path once, at the first line that needs it, and files of a folder that is not synced at
    all as that folder (one line for `ggml/src/ggml-cpu/arch/`, not one per source file in it)."""
    first: dict[str, MissingPath] = {}
    for missing in sorted(found):
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
class _Walk:
    files: UpstreamFiles
    found: set[MissingPath]
    visited: set[str] = field(default_factory=set)
    functions: dict[str, _Function] = field(default_factory=dict)  # global, like CMake's
    call_site: tuple[str, Command] | None = None
    depth: int = 0

    def report(self, file: str, command: Command, path: str) -> None:
        if self.call_site is not None:  # inside a function: the call is what a reader of the report can find
            file, command = self.call_site
        self.found.add(MissingPath(file, command.line, command.call(), path))

    def directory(self, directory: str, variables: Mapping[str, str], module_path: list[str]) -> None:
        listfile = _join(directory, "CMakeLists.txt")
        if listfile in self.visited or not self.files.has_file(listfile):
            return
        self.visited.add(listfile)
        here = _ROOTED + directory
        scope = {**variables, "CMAKE_CURRENT_SOURCE_DIR": here, "CMAKE_CURRENT_LIST_DIR": here}
        self.commands(listfile, directory, scope, list(module_path))

    def commands(self, listfile: str, directory: str, scope: dict[str, str], module_path: list[str]) -> None:
        self.run(self.files.commands(listfile), _Place(listfile, directory), scope, module_path)

    def run(self, commands: list[Command], place: _Place, scope: dict[str, str], module_path: list[str]) -> None:
        blocks: list[tuple[bool, bool]] = []  # (a branch so far was surely taken, this branch may run)
        definition: _Function | None = None
        nesting = 0
        for command in commands:
            name = command.name
            if definition is not None:
                nesting += name in {"function", "macro"}
                if name in {"endfunction", "endmacro"} and nesting == 0:
                    definition = None
                    continue
                nesting -= name in {"endfunction", "endmacro"}
                definition.body.append(command)
            elif name in {"if", "elseif", "else", "endif"}:
                _branch(blocks, name, command, scope)
            elif blocks and not all(may_run for _, may_run in blocks):
                continue
            elif name in {"function", "macro"} and command.args:
                definition = _Function(tuple(command.args[1:]), [], place.listfile, macro=name == "macro")
                self.functions[command.args[0].lower()] = definition
            elif name in self.functions:
                self.call(self.functions[name], command, place, scope, module_path)
            else:
                self.command(place.listfile, place.directory, command, scope, module_path)

    def call(self, function: _Function, command: Command, place: _Place, scope: dict[str, str],
             module_path: list[str]) -> None:  # fmt: skip
        """Run a function's body with its arguments bound; what it needs is reported at the outermost call."""
        if self.depth >= _MAX_CALL_DEPTH:
            return
        local = scope if function.macro else dict(scope)
        values = [_expand(raw, scope) for raw in command.args]
        for position, parameter in enumerate(function.parameters):
            value = values[position] if position < len(values) else ""
            if value is None:
                local.pop(parameter, None)
            else:
                local[parameter] = value
        rest = values[len(function.parameters) :]
        if None in rest:
            local.pop("ARGN", None)
        else:
            local["ARGN"] = ";".join(v for v in rest if v)
        outermost = self.call_site is None
        if outermost:
            self.call_site = (place.listfile, command)
        self.depth += 1
        self.run(function.body, _Place(function.listfile, place.directory), local, module_path)
        self.depth -= 1
        if outermost:
            self.call_site = None

    def command(self, listfile: str, directory: str, command: Command, scope: dict[str, str],
                module_path: list[str]) -> None:  # fmt: skip
        args = command.args
        if command.name in {"project", "set", "list", "string"}:
            _track_variables(directory, command, scope, module_path)
        elif command.name == "add_subdirectory" and args:
            self._subdirectory(listfile, directory, command, scope, module_path)
        elif command.name == "include" and args:
            self._include(listfile, directory, command, scope, module_path)
        elif command.name == "configure_file" and args:
            self._required_file(listfile, directory, command, args[0], scope)
        elif command.name == "file" and len(args) >= 2:
            self._file(listfile, directory, command, scope)
        else:
            self._named_paths(listfile, directory, command, scope)

    def _named_paths(self, listfile: str, directory: str, command: Command, scope: dict[str, str]) -> None:
        """Sources of targets and include directories: checked when upstream has them."""
        args = command.args
        if command.name in _SOURCE_COMMANDS and len(args) >= 2 and not {"ALIAS", "IMPORTED"} & set(args):
            for source in _list_arguments(command, 1, scope):
                if source not in _SOURCE_KEYWORDS:
                    self._optional_path(listfile, directory, command, source, scope, folder=False)
        elif command.name in {"target_include_directories", "include_directories"}:
            start = 1 if command.name == "target_include_directories" else 0
            for folder in _list_arguments(command, start, scope):
                if folder not in _INCLUDE_DIR_KEYWORDS:
                    self._optional_path(listfile, directory, command, folder, scope, folder=True)

    def _subdirectory(self, listfile: str, directory: str, command: Command, scope: dict[str, str],
                      module_path: list[str]) -> None:  # fmt: skip
        target = _resolve(directory, command.args[0], scope)
        if target is None:
            return
        if not self.files.has_file(_join(target, "CMakeLists.txt")):
            missing = f"{target}/" if not self.files.has_dir(target) else _join(target, "CMakeLists.txt")
            self.report(listfile, command, missing)
            return
        self.directory(target, scope, module_path)

    def _include(self, listfile: str, directory: str, command: Command, scope: dict[str, str],
                 module_path: list[str]) -> None:  # fmt: skip
        name = _expand(command.args[0], scope)
        if name is None:
            return
        if "/" in name or name.endswith(".cmake"):
            candidates = [_resolve(directory, name, scope)]
        else:  # a module: upstream's module path first, then CMake's own modules (not ours to check)
            candidates = [_resolve(directory, posixpath.join(m, f"{name}.cmake"), scope) for m in module_path]
        for path in filter(None, candidates):
            if self.files.has_file(path):
                if path not in self.visited:
                    self.visited.add(path)
                    list_dir = _ROOTED + posixpath.dirname(path)
                    self.commands(path, directory, {**scope, "CMAKE_CURRENT_LIST_DIR": list_dir}, module_path)
                return
            if self.files.upstream_has(path) or ("/" in name and "OPTIONAL" not in command.args):
                self.report(listfile, command, path)
                return

    def _required_file(self, listfile: str, directory: str, command: Command, raw: str, scope: dict[str, str]) -> None:
        path = _resolve(directory, raw, scope)
        if path is not None and not self.files.has_file(path) and self.files.upstream_has(path):
            self.report(listfile, command, path)

    def _file(self, listfile: str, directory: str, command: Command, scope: dict[str, str]) -> None:
        mode, args = command.args[0], command.args[1:]
        if mode in {"READ", "STRINGS"}:
            self._required_file(listfile, directory, command, args[0], scope)
        elif mode in {"GLOB", "GLOB_RECURSE"}:
            for pattern in args[1:]:
                if pattern in _GLOB_KEYWORDS:
                    continue
                matches = self._glob(directory, pattern, scope, recurse=mode == "GLOB_RECURSE")
                missing = sorted(matches - self.files.synced)
                if missing:
                    self.report(listfile, command, missing[0])

    def _glob(self, directory: str, pattern: str, scope: dict[str, str], *, recurse: bool) -> set[str]:
        """Upstream's files a file(GLOB) pattern matches (`*` within a folder, like CMake's)."""
        resolved = _resolve(directory, pattern, scope)
        if resolved is None:
            return set()
        if recurse:
            head, _, tail = resolved.rpartition("/")
            resolved = f"{head}/**/{tail}" if head else f"**/{tail}"
        try:
            regex = pattern_regex(resolved)
        except ValueError:  # an unbalanced [ ]: CMake's problem to report
            return set()
        return {path for path in self.files.upstream if regex.match(path)}

    def _optional_path(self, listfile: str, directory: str, command: Command, raw: str, scope: dict[str, str],
                       *, folder: bool) -> None:  # fmt: skip
        if "$<" in raw:
            return
        path = _resolve(directory, raw, scope)
        if path is None:
            return
        if folder:
            if path and not self.files.has_dir(path) and self.files.upstream_has(path):
                self.report(listfile, command, f"{path}/")
        elif not self.files.has_file(path) and path in self.files.upstream:
            self.report(listfile, command, path)


def _list_arguments(command: Command, start: int, scope: Mapping[str, str]) -> list[str]:
    """Arguments from `start` on, with unquoted `${LIST}` references expanded into their items (unknown
    variables and generator expressions are dropped)."""
    items: list[str] = []
    for raw, quoted in zip(command.args[start:], command.quoted[start:], strict=True):
        if "$<" in raw:
            continue
        expanded = _expand(raw, scope)
        if expanded is not None:
            items.extend([expanded] if quoted else [item for item in expanded.split(";") if item])
    return items


def _track_variables(directory: str, command: Command, scope: dict[str, str], module_path: list[str]) -> None:
    args = command.args
    if command.name == "project":
        scope["PROJECT_SOURCE_DIR"] = _ROOTED + directory
    elif command.name == "set" and args and "PARENT_SCOPE" not in args:
        values = args[1 : args.index("CACHE")] if "CACHE" in args else args[1:]
        expanded = [_expand(value, scope) for value in values]
        if "CACHE" in args and args[0] in scope:
            return  # a cache entry does not replace a value the preset gave
        if all(value is not None for value in expanded):
            scope[args[0]] = ";".join(v for v in expanded if v is not None)
        else:
            scope.pop(args[0], None)
    elif command.name == "string" and len(args) == 3 and args[0] in {"TOUPPER", "TOLOWER"}:
        value = _expand(args[1], scope)
        if value is None:
            scope.pop(args[2], None)
        else:
            scope[args[2]] = value.upper() if args[0] == "TOUPPER" else value.lower()
    elif command.name == "list" and len(args) >= 3 and args[:2] == ("APPEND", "CMAKE_MODULE_PATH"):
        module_path.extend(p for p in (_expand(a, scope) for a in args[2:]) if p is not None)


def _branch(blocks: list[tuple[bool, bool]], name: str, command: Command, scope: Mapping[str, str]) -> None:
    """Track if/elseif/else/endif; a condition inside a branch that cannot run is not evaluated."""
    if name == "if":
        if not all(may_run for _, may_run in blocks):
            blocks.append((True, False))
            return
        value = evaluate(command.args, command.quoted, scope)
        blocks.append((value is True, value is not False))
    elif not blocks:
        return
    elif name == "endif":
        blocks.pop()
    else:
        taken, _ = blocks[-1]
        if taken:
            blocks[-1] = (True, False)
            return
        value = True if name == "else" else evaluate(command.args, command.quoted, scope)
        blocks[-1] = (value is True, value is not False)


def evaluate(args: tuple[str, ...], quoted: tuple[bool, ...], scope: Mapping[str, str]) -> Tri:
    """An if() condition, True/False when the known variables decide it, None when they do not."""
    parser = _Condition(list(zip(args, quoted, strict=True)), scope)
    try:
        value = parser.or_expression()
    except IndexError:
        return None
    return value if parser.position == len(parser.tokens) else None


@dataclass
class _Condition:
    tokens: list[tuple[str, bool]]
    scope: Mapping[str, str]
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
        if token in _UNARY:
            self.take()
            return None
        if self.peek() in _BINARY:
            self.take()
            self.take()
            return None
        return self.truth(token, quoted)

    def truth(self, token: str, quoted: bool) -> Tri:
        expanded = _expand(token, self.scope)
        if expanded is None:
            return None
        constant = _constant(expanded)
        if constant is not None or quoted:
            return constant
        if expanded in self.scope and not _VARIABLE.search(self.scope[expanded]):
            value = self.scope[expanded]
            return value.upper() not in _FALSE and not value.endswith("-NOTFOUND")
        return None


def _constant(text: str) -> Tri:
    """CMake's true/false constants and numbers; None for anything else."""
    if text.upper() in _TRUE or text.upper() in _FALSE or text.endswith("-NOTFOUND"):
        return is_on(text)
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return float(text) != 0
    return None


def _expand(text: str, scope: Mapping[str, str]) -> str | None:
    """`${VAR}` replaced from the known variables; None when one is unknown."""
    unknown = False

    def substitute(match: re.Match[str]) -> str:
        nonlocal unknown
        if match.group(1) not in scope:
            unknown = True
            return ""
        return scope[match.group(1)]

    expanded = _VARIABLE.sub(substitute, text)
    return None if unknown or "$" in expanded else expanded


def _resolve(directory: str, raw: str, scope: Mapping[str, str]) -> str | None:
    """A path relative to the upstream root, or None (unknown variables, absolute or outside the tree)."""
    expanded = _expand(raw, scope)
    if expanded is None or ";" in expanded:
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
        root = "" if preset.installs_core or not llama_cpp else "ggml"
        entered.setdefault(root, []).append(preset.cache_variables)
    return entered


def missing_for_presets(files: UpstreamFiles, presets: Iterable[Preset]) -> list[MissingPath]:
    found: set[MissingPath] = set()
    for root, caches in roots_for(files, presets).items():
        found.update(unsynced_paths(files, caches, [root]))
    return sorted(found)


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
