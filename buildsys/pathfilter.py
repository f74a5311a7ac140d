"""Include/exclude globs over repository paths.

Patterns are anchored at the repository root and use `/`: `*` and `?` stay within one path segment,
`**` spans any number of segments, and a trailing `/` selects a folder with everything below it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property


def validate_pattern(pattern: str) -> str | None:
    """Why `pattern` cannot be used, or None when it can."""
    return _shape_problem(pattern) or _set_problem(pattern)


def _shape_problem(pattern: str) -> str | None:
    if not pattern.strip():
        return "is empty"
    if pattern.startswith("/") or re.match(r"^[A-Za-z]:", pattern):
        return "must be relative to the upstream root (no leading '/')"
    if "\\" in pattern:
        return "must use '/' as the separator"
    if any(part in {"..", "."} for part in pattern.rstrip("/").split("/")):
        return "must not contain '.' or '..' segments"
    return None


def _set_problem(pattern: str) -> str | None:
    if pattern.count("[") != pattern.count("]"):
        return "has an unbalanced '[' ']'"
    try:
        pattern_regex(pattern)
    except ValueError:  # str.index: a '[' with no ']' after it in its segment
        return "has a '[' without a closing ']' in the same folder name"
    except re.error as error:
        return f"has an invalid '[...]' set: {error.msg}"
    return None


def _segment_regex(segment: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(segment):
        char = segment[index]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = segment.index("]", index)
            body = segment[index + 1 : end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append(f"[{body}]")
            index = end
        else:
            out.append(re.escape(char))
        index += 1
    return "".join(out)


def pattern_regex(pattern: str) -> re.Pattern[str]:
    directory = pattern.endswith("/")
    segments = pattern.rstrip("/").split("/")
    parts: list[str] = []
    for position, segment in enumerate(segments):
        last = position == len(segments) - 1
        if segment == "**":
            parts.append(".*" if last else "(?:[^/]+/)*")
        else:
            parts.append(_segment_regex(segment) + ("" if last else "/"))
    body = "".join(parts)
    suffix = "/.+" if directory else "(?:/.+)?"
    return re.compile(f"^{body}{suffix}$")


@dataclass(frozen=True)
class PathFilter:
    include: tuple[str, ...]
    exclude: tuple[str, ...] = field(default=())

    @cached_property
    def _include(self) -> tuple[re.Pattern[str], ...]:
        return tuple(pattern_regex(p) for p in self.include)

    @cached_property
    def _exclude(self) -> tuple[re.Pattern[str], ...]:
        return tuple(pattern_regex(p) for p in self.exclude)

    def selects(self, path: str) -> bool:
        return any(r.match(path) for r in self._include) and not any(r.match(path) for r in self._exclude)

    def select(self, paths: Iterable[str]) -> list[str]:
        return sorted(p for p in paths if self.selects(p))

    def unmatched_includes(self, paths: Iterable[str]) -> list[tuple[str, str | None]]:
        """Include patterns that match none of `paths` (before excludes), each with the closest name that
        exists at its depth: a typo such as "ggm/" otherwise selects nothing, and sync deletes the folder."""
        listed = list(paths)
        unmatched = [
            pattern
            for pattern, regex in zip(self.include, self._include, strict=True)
            if not any(regex.match(path) for path in listed)
        ]
        return [(pattern, _closest_name(pattern, listed)) for pattern in unmatched]


def _closest_name(pattern: str, paths: list[str]) -> str | None:
    depth = len(pattern.rstrip("/").split("/"))
    folder = "/" if pattern.endswith("/") else ""
    names = {"/".join(path.split("/")[:depth]) + (folder if path.count("/") >= depth else "") for path in paths}
    match = difflib.get_close_matches(pattern, sorted(names), n=1, cutoff=0.6)
    return match[0] if match else None
