"""The filtered subset of a commit's tree, read straight from git's object store."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from .. import ui
from ..git import Git
from ..pathfilter import PathFilter
from .manifest import RESERVED_NAMES, FileEntry, entry_for_bytes

_GITLINK = "160000"


@dataclass(frozen=True)
class SourceFile:
    mode: str
    content: bytes

    @property
    def entry(self) -> FileEntry:
        return entry_for_bytes(self.content, self.mode)


@dataclass(frozen=True)
class TreeEntry:
    path: str
    mode: str
    kind: str  # blob, tree, commit (a submodule)
    sha: str


def tree_entries(git: Git, revision: str, paths: list[str] | None = None) -> list[TreeEntry]:
    """`git ls-tree -r` of the whole tree, or of just `paths`."""
    listing = git.run("ls-tree", "-r", "-z", "--full-tree", revision, *(["--", *paths] if paths else [])).out
    entries = []
    for record in filter(None, listing.split("\0")):
        meta, path = record.split("\t", 1)
        mode, kind, sha = meta.split()
        entries.append(TreeEntry(path, mode, kind, sha))
    return entries


def selected_files(
    git: Git, revision: str, path_filter: PathFilter, entries: list[TreeEntry] | None = None
) -> dict[str, SourceFile]:
    """The files of `revision` the filter selects, read in one batch (`entries`: its listing, if the caller
    has it already)."""
    blobs: list[TreeEntry] = []
    for entry in tree_entries(git, revision) if entries is None else entries:
        if not path_filter.selects(entry.path):
            continue
        if entry.mode == _GITLINK or entry.kind != "blob":
            ui.warn(f"{entry.path}: submodule, not synced")
            continue
        if entry.path.rsplit("/", 1)[-1] in RESERVED_NAMES:
            ui.warn(f"{entry.path}: name is reserved for buildsys' own records, not synced")
            continue
        blobs.append(entry)
    contents = read_blobs(git, [entry.sha for entry in blobs])
    return {entry.path: SourceFile(entry.mode, contents[entry.sha]) for entry in blobs}


class Unmatched(NamedTuple):
    pattern: str
    closest: str | None  # the nearest name upstream has at its depth: a near miss is a typo
    text: str  # in words, for a warning or a refusal


def unmatched_includes(path_filter: PathFilter, paths: Iterable[str]) -> list[Unmatched]:
    """Each include pattern that selects nothing: a typo far more often than an intent, and the files it
    meant to sync are then missing from (or deleted in) the destination without a word."""
    return [
        Unmatched(
            pattern,
            closest,
            f"[sync] include {pattern!r} matches no upstream path"
            + (f" (did you mean {closest!r}?)" if closest else ""),
        )
        for pattern, closest in path_filter.unmatched_includes(paths)
    ]


def warn_unmatched_includes(path_filter: PathFilter, entries: list[TreeEntry]) -> None:
    for unmatched in unmatched_includes(path_filter, (entry.path for entry in entries)):
        ui.warn(f"{unmatched.text}: nothing is synced from it")


def read_blobs(git: Git, shas: list[str]) -> dict[str, bytes]:
    """All blobs in one `cat-file --batch` process."""
    if not shas:
        return {}
    unique = sorted(set(shas))
    out = git.run("cat-file", "--batch", input=("\n".join(unique) + "\n").encode()).stdout
    contents: dict[str, bytes] = {}
    position = 0
    for _ in unique:
        header_end = out.index(b"\n", position)
        sha, _kind, size = out[position:header_end].decode().split()
        start = header_end + 1
        contents[sha] = out[start : start + int(size)]
        position = start + int(size) + 1
    return contents
