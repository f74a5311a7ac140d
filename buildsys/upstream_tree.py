"""The filtered subset of a commit's tree, read straight from git's object store."""

from __future__ import annotations

from dataclasses import dataclass

from . import ui
from .git import Git
from .manifest import RESERVED_NAMES, FileEntry, entry_for_bytes
from .pathfilter import PathFilter

_GITLINK = "160000"


@dataclass(frozen=True)
class SourceFile:
    mode: str
    content: bytes

    @property
    def entry(self) -> FileEntry:
        return entry_for_bytes(self.content, self.mode)


def selected_files(git: Git, revision: str, path_filter: PathFilter) -> dict[str, SourceFile]:
    listing = git.run("ls-tree", "-r", "-z", "--full-tree", revision).out
    blobs: list[tuple[str, str, str]] = []
    for record in filter(None, listing.split("\0")):
        meta, path = record.split("\t", 1)
        mode, kind, sha = meta.split()
        if not path_filter.selects(path):
            continue
        if mode == _GITLINK or kind != "blob":
            ui.warn(f"{path}: submodule, not synced")
            continue
        if path.rsplit("/", 1)[-1] in RESERVED_NAMES:
            ui.warn(f"{path}: name is reserved for buildsys' own records, not synced")
            continue
        blobs.append((path, mode, sha))
    contents = read_blobs(git, [sha for _, _, sha in blobs])
    return {path: SourceFile(mode, contents[sha]) for path, mode, sha in blobs}


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
