"""The record `sync` leaves in the destination, and the scan of what is really there."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import ui
from ..fileops import TEMP_SUFFIX

MANIFEST_NAME = ".buildsys-manifest.json"
INCOMPLETE_MARKER = ".buildsys-sync-incomplete.json"
RESERVED_NAMES = frozenset({MANIFEST_NAME, INCOMPLETE_MARKER})
FORMAT_VERSION = 1
SHOWN_PATTERNS = 6  # a status line names this many changed patterns, then counts the rest


@dataclass(frozen=True, order=True)
class FileEntry:
    sha256: str
    mode: str  # git's: 100644, 100755, 120000


@dataclass(frozen=True, kw_only=True)
class Manifest:
    commit: str
    ref: str | None
    patch_series_sha256: str
    patches: tuple[str, ...]
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    files: dict[str, FileEntry]

    def to_bytes(self) -> bytes:
        document = {
            "format": FORMAT_VERSION,
            "upstream": {"commit": self.commit, "ref": self.ref},
            "patches": {"series_sha256": self.patch_series_sha256, "files": list(self.patches)},
            "filter": {"include": list(self.include), "exclude": list(self.exclude)},
            "files": {path: {"sha256": e.sha256, "mode": e.mode} for path, e in sorted(self.files.items())},
        }
        return (json.dumps(document, indent=1, sort_keys=True) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        document: dict[str, Any] = json.loads(data)
        return cls(
            commit=document["upstream"]["commit"],
            ref=document["upstream"].get("ref"),
            patch_series_sha256=document["patches"]["series_sha256"],
            patches=tuple(document["patches"]["files"]),
            include=tuple(document["filter"]["include"]),
            exclude=tuple(document["filter"]["exclude"]),
            files={p: FileEntry(e["sha256"], e["mode"]) for p, e in document["files"].items()},
        )


def read_manifest(destination: Path) -> Manifest | None:
    try:
        return Manifest.from_bytes((destination / MANIFEST_NAME).read_bytes())
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (ValueError, KeyError, TypeError):
        return None  # a damaged manifest protects nothing; every file is then treated as unknown


def read_incomplete_marker(destination: Path) -> dict[str, str] | None:
    try:
        data: dict[str, str] = json.loads((destination / INCOMPLETE_MARKER).read_bytes())
        return data
    except (FileNotFoundError, NotADirectoryError):
        return None
    except ValueError:
        return {}


def entry_for_bytes(content: bytes, mode: str) -> FileEntry:
    return FileEntry(hashlib.sha256(content).hexdigest(), mode)


def scan(destination: Path) -> dict[str, FileEntry]:
    """Every file under destination except buildsys' own records, hashed as sync would write it."""
    found: dict[str, FileEntry] = {}
    if not destination.is_dir():
        return found
    for directory, subdirs, files in os.walk(destination):
        subdirs.sort()
        base = Path(directory)
        for name in subdirs:
            if (base / name).is_symlink():
                files.append(name)
        for name in files:
            path = base / name
            relative = path.relative_to(destination).as_posix()
            if relative in RESERVED_NAMES or name.endswith(TEMP_SUFFIX):
                continue
            if path.is_symlink():
                found[relative] = entry_for_bytes(os.fsencode(os.readlink(path)), "120000")
            else:
                mode = "100755" if os.access(path, os.X_OK) else "100644"
                found[relative] = entry_for_bytes(path.read_bytes(), mode)
    return found


def staleness(
    manifest: Manifest, commit: str, series_sha256: str, include: tuple[str, ...], exclude: tuple[str, ...]
) -> list[str]:
    """What differs between the synced tree's record and what the configuration asks for, in words."""
    changes = []
    if manifest.commit != commit:
        changes.append(f"the upstream commit ({manifest.commit[:12]} synced, {commit[:12]} pinned)")
    if manifest.patch_series_sha256 != series_sha256:
        changes.append("the patch series")
    for name, synced, wanted in (("include", manifest.include, include), ("exclude", manifest.exclude, exclude)):
        added = [p for p in wanted if p not in synced]
        dropped = [p for p in synced if p not in wanted]
        if added or dropped:
            parts = [f"+{p}" for p in added] + [f"-{p}" for p in dropped]
            changes.append(f"[sync] {name} ({' '.join(ui.bounded(parts, SHOWN_PATTERNS, lead=''))})")
    return changes
