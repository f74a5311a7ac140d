"""The patch series in `patches/`: reading it, hashing it, and normalising what format-patch exports."""

from __future__ import annotations

import errno
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import LINK_LOOP, FileSystemError

PATCH_SUFFIX = ".patch"
ZERO_FROM_LINE = b"From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
_FROM_LINE = re.compile(rb"^From [0-9a-f]{40} Mon Sep 17 00:00:00 2001\n")
_NUMBERED_SUBJECT = re.compile(rb"^Subject: \[PATCH(?: v\d+)? \d+/\d+\]", re.MULTILINE)
_SIGNATURE = re.compile(rb"\n-- \n[^\n]*\n(?:\n)*\Z")
_SLUG_MAX = 52


@dataclass(frozen=True)
class Patch:
    name: str
    content: bytes


def read_series(directory: Path) -> list[Patch]:
    """Every `*.patch` in `directory`, in the sorted order in which they are applied. A symbolic link that
    leads to no file is refused by name: skipped, it would silently drop its patch from the series."""
    if not directory.is_dir():
        return []
    entries = sorted(p for p in directory.iterdir() if p.suffix == PATCH_SUFFIX)
    broken = [p for p in entries if p.is_symlink() and not p.is_file()]
    if broken:
        raise FileSystemError(
            f"{broken[0]} is a symbolic link to {os.readlink(broken[0])}, which {_why_no_file(broken[0])}",
            details="\n".join(str(p) for p in broken[1:]),
            hint="point it at the patch file, or remove it to drop that patch",
        )
    return [Patch(p.name, p.read_bytes()) for p in entries if p.is_file()]


def _why_no_file(link: Path) -> str:
    try:
        os.stat(link)
    except OSError as error:
        return LINK_LOOP if error.errno == errno.ELOOP else "does not exist"
    return "is not a file"


def series_hash(series: list[Patch] | Mapping[str, bytes]) -> str:
    """One hash for the whole series: names, order and bytes."""
    items = series.items() if isinstance(series, Mapping) else ((p.name, p.content) for p in series)
    digest = hashlib.sha256()
    for name, content in sorted(items):
        digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    return digest.hexdigest()


def patch_file_name(index: int, subject: str) -> str:
    """`NNNN-<subject slug>.patch`, the way format-patch names files, independent of git's version."""
    slug = re.sub(r"[^A-Za-z0-9._]+", "-", subject)
    slug = re.sub(r"\.{2,}", ".", slug).strip("-.")[:_SLUG_MAX].rstrip("-.")
    return f"{index:04d}-{slug or 'patch'}{PATCH_SUFFIX}"


def normalise_patch(content: bytes) -> bytes:
    """Remove what varies between exports of the same commit: commit id, numbering, signature."""
    content = _zero_from(content)
    content = _NUMBERED_SUBJECT.sub(b"Subject: [PATCH]", content, count=1)
    return _SIGNATURE.sub(b"\n", content)


def _zero_from(content: bytes) -> bytes:
    match = _FROM_LINE.match(content)
    return ZERO_FROM_LINE + content[match.end() :] if match else content


def diff_paths(content: bytes, *, old_names: bool = False) -> list[str]:
    """Files a patch changes, from its `diff --git` headers: the new names, and with `old_names` the old
    ones too (every path it reads or writes: both names of a rename). Decoded as the file system would
    (surrogateescape), so a name that is not UTF-8 stays itself for git and for comparisons."""
    pairs = re.findall(rb"^diff --git a/(\S+) b/(\S+)$", content, re.MULTILINE)
    names = {path for old, new in pairs for path in ((old, new) if old_names else (new,))}
    return sorted(path.decode("utf-8", errors="surrogateescape") for path in names)


def malformed(patch: Patch) -> str | None:
    """Why `git am` cannot take this file at all (as opposed to a patch that conflicts), or None."""
    content = patch.content
    if not content.strip():
        return "it is empty"
    if content.split(b"\n", 1)[0].endswith(b"\r"):
        return "it has CRLF line endings (an editor or core.autocrlf converted it); git format-patch writes LF"
    if not content.startswith(b"From "):
        return "it does not start with a `From ` line: it is not git format-patch output"
    if not re.search(rb"^diff --git a/", content, re.MULTILINE):
        return "it has no `diff --git` section: it changes nothing"
    return None


_WHERE_LINES = re.compile(rb"^(index [0-9a-f]+\.\.[0-9a-f]+.*|@@ -\d+(,\d+)? \+\d+(,\d+)? @@)", re.MULTILINE)


def same_change(one: bytes, other: bytes) -> bool:
    """True when two exports differ only in where the change sits (blob ids, hunk line numbers): the
    same patch applied to a moved base, as `git am` does with offsets."""
    return _WHERE_LINES.sub(b"", one) == _WHERE_LINES.sub(b"", other)
