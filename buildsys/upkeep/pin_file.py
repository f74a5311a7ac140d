"""Rewrite the pin in vendoring.toml ([upstream] commit and ref) and keep every other byte: comments,
order and layout are the maintainer's."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..fileops import write_atomically

_TABLE = re.compile(r"^\s*\[([^\[\]]+)\]\s*(?:#.*)?$")


def rewrite_pin(text: str, commit: str, ref: str | None) -> str:
    lines = text.splitlines(keepends=True)
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"  # a Windows checkout keeps its endings
    start, end = _upstream_table(lines)
    if start is None and "upstream" in _parsed(text):
        raise _cannot_rewrite()
    if start is None:
        pin = [f"commit = {_toml_string(commit)}", *([f"ref = {_toml_string(ref)}"] if ref else [])]
        rewritten = "".join(f"{line}{newline}" for line in ["[upstream]", *pin, ""]) + text
    else:
        body = _set_key(lines[start + 1 : end], "commit", commit, after=None, newline=newline)
        body = _set_key(body, "ref", ref, after="commit", newline=newline)
        rewritten = "".join(lines[: start + 1] + body + lines[end:])
    _verify(rewritten, commit, ref)
    return rewritten


def write_pin(path: Path, commit: str, ref: str | None) -> None:
    text = path.read_bytes().decode("utf-8")  # not read_text: universal newlines would drop a file's CRLFs
    write_atomically(path, rewrite_pin(text, commit, ref).encode("utf-8"))


def _upstream_table(lines: list[str]) -> tuple[int | None, int]:
    start = None
    for index, line in enumerate(lines):
        match = _TABLE.match(line)
        if not match:
            continue
        if start is not None:
            return start, index
        if match.group(1).strip() == "upstream":
            start = index
    return start, len(lines)


def _set_key(body: list[str], key: str, value: str | None, *, after: str | None, newline: str) -> list[str]:
    pattern = re.compile(rf"^(\s*{key}\s*=\s*)(\"[^\"]*\"|'[^']*')(.*)$", re.DOTALL)
    for index, line in enumerate(body):
        match = pattern.match(line)
        if match:
            if value is None:
                return body[:index] + body[index + 1 :]
            return [*body[:index], f"{match.group(1)}{_toml_string(value)}{match.group(3)}", *body[index + 1 :]]
    if value is None:
        return body
    position = _line_after(body, after)
    return [*body[:position], f"{key} = {_toml_string(value)}{newline}", *body[position:]]


def _toml_string(value: str) -> str:
    """A TOML basic string (JSON's escapes are a subset of TOML's)."""
    return json.dumps(value, ensure_ascii=False)


def _line_after(body: list[str], key: str | None) -> int:
    if key is not None:
        for index, line in enumerate(body):
            if re.match(rf"^\s*{key}\s*=", line):
                return index + 1
    last = max((i for i, line in enumerate(body) if line.strip()), default=-1)
    return last + 1


def _parsed(text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return {}


def _verify(text: str, commit: str, ref: str | None) -> None:
    upstream = _parsed(text).get("upstream", {})
    if upstream.get("commit") != commit or upstream.get("ref") != ref:
        raise _cannot_rewrite()


def _cannot_rewrite() -> ConfigError:
    return ConfigError(
        ["cannot rewrite [upstream] commit/ref in place (inline table, multi-line or unusual layout); edit it by hand"],
        source="vendoring.toml",
    )
