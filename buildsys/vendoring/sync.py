"""`sync`: materialise the filtered tracking HEAD into the destination, touching nothing else."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from .. import ui
from ..config import Config
from ..errors import WorkWouldBeLost, lack_of_room
from ..fileops import TEMP_SUFFIX, write_atomically
from .manifest import (
    INCOMPLETE_MARKER,
    MANIFEST_NAME,
    FileEntry,
    Manifest,
    read_incomplete_marker,
    read_manifest,
    scan,
)
from .patchqueue import Patch, read_series, series_hash
from .tracking import TrackingRepo
from .upstream_tree import SourceFile, selected_files, tree_entries, warn_unmatched_includes
from .workstate import require_tracking_repo, require_unchanged_queue


@dataclass(frozen=True)
class SyncResult:
    written: int
    deleted: int
    unchanged: int


def run_sync(
    config: Config, *, force: bool = False, finishing_bump: bool = False, repo: TrackingRepo | None = None
) -> SyncResult:
    """`repo`: the bump's own, whose answers (it exists, its git folder, the commits it has) are known."""
    repo = repo or TrackingRepo(config.tracking)
    require_tracking_repo(repo, config, finishing_bump=finishing_bump)
    series = read_series(config.patches)
    with ui.step("check tracking repository matches patches/"):
        survey = repo.survey(config.upstream.commit, series)
        require_unchanged_queue(survey, config, series)
    if survey.dirty:
        where = config.relative(config.tracking)
        ui.warn(
            f"{len(survey.dirty)} uncommitted file(s) in {where} are not synced: commit them and run create-patches"
        )
    with ui.step(f"read {config.relative(config.tracking)} HEAD"):
        entries = tree_entries(repo.git, "HEAD")
        files = selected_files(repo.git, "HEAD", config.sync.filter, entries)
    warn_unmatched_includes(config.sync.filter, entries)
    manifest = build_manifest(config, series, files)
    destination = config.sync.destination
    with ui.step(f"sync {len(files)} files into {config.relative(destination)}"):
        result = materialise(destination, files, manifest, force=force, label=config.relative(destination))
    ui.info(f"  {result.written} written, {result.deleted} deleted, {result.unchanged} unchanged")
    return result


def build_manifest(config: Config, series: list[Patch], files: dict[str, SourceFile]) -> Manifest:
    return Manifest(
        commit=config.upstream.commit,
        ref=config.upstream.ref,
        patch_series_sha256=series_hash(series),
        patches=tuple(p.name for p in series),
        include=config.sync.include,
        exclude=config.sync.exclude,
        files={path: source.entry for path, source in files.items()},
    )


def unsaved_edits(destination: Path, on_disk: dict[str, FileEntry], target: dict[str, FileEntry]) -> list[str]:
    """Files in destination whose content neither sync (now, before, or half-way) wrote."""
    old = read_manifest(destination)
    previous = old.files if old else {}
    half_written = read_incomplete_marker(destination) or {}
    unsaved = []
    for path, entry in on_disk.items():
        known = {e.sha256 for e in (previous.get(path), target.get(path)) if e}
        if path in half_written:
            known.add(half_written[path])
        if entry.sha256 not in known:
            unsaved.append(path)
    return unsaved


def refuse_hand_edits(
    destination: Path, on_disk: dict[str, FileEntry], target: dict[str, FileEntry], label: str, *, then: str = ""
) -> None:
    """Refuse when files in the destination were edited or added by hand; `then` is what to run afterwards."""
    unsaved = unsaved_edits(destination, on_disk, target)
    afterwards = f", then {then}" if then else ""
    if unsaved:
        raise WorkWouldBeLost(
            f"{len(unsaved)} file(s) in {label} were edited or added by hand and would be overwritten or deleted",
            details="\n".join(ui.bounded(unsaved)),
            hint=(
                "make the change in the tracking repository as a commit, then `nox -s create-patches sync`;"
                f" or copy them elsewhere and discard them with `nox -s sync -- --force`{afterwards}"
            ),
        )


def materialise(
    destination: Path, files: dict[str, SourceFile], manifest: Manifest, *, force: bool, label: str
) -> SyncResult:
    target = manifest.files
    on_disk = scan(destination)
    if not force:
        refuse_hand_edits(destination, on_disk, target, label)
    to_write = sorted(path for path, entry in target.items() if on_disk.get(path) != entry)
    to_delete = sorted(path for path in on_disk if path not in target)
    manifest_bytes = manifest.to_bytes()
    manifest_path = destination / MANIFEST_NAME
    marker = destination / INCOMPLETE_MARKER
    current_manifest = manifest_path.read_bytes() if manifest_path.is_file() else None
    if marker.exists():  # only an interrupted sync leaves temporaries behind
        _remove_stray_temporaries(destination)
    if not to_write and not to_delete and current_manifest == manifest_bytes and not marker.exists():
        return SyncResult(0, 0, len(target))

    with _named_lack_of_room(label, sum(len(files[path].content) for path in to_write)):
        destination.mkdir(parents=True, exist_ok=True)
        # Written first, removed last: a sync killed in between leaves this behind for the next command.
        marked = json.dumps({p: target[p].sha256 for p in to_write}, sort_keys=True).encode()
        write_atomically(marker, marked, "100644")
        for path in to_delete:
            _delete(destination, path)
        for path in to_write:
            write_atomically(destination / path, files[path].content, files[path].mode)
        if current_manifest != manifest_bytes:
            write_atomically(manifest_path, manifest_bytes, "100644")
    marker.unlink()
    return SyncResult(len(to_write), len(to_delete), len(target) - len(to_write))


def _named_lack_of_room(label: str, size: int) -> AbstractContextManager[None]:
    """A full disk is one line naming the destination and what this sync needs, not "a file: No space"."""
    return lack_of_room(
        label,
        need=f"this sync writes {size / 1e6:.1f} MB in all",
        hint="free some space there, then run sync again (it completes the interrupted one)",
    )


def _delete(destination: Path, relative: str) -> None:
    path = destination / relative
    path.unlink()
    parent = path.parent
    while parent != destination and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent


def _remove_stray_temporaries(destination: Path) -> None:
    if destination.is_dir():
        for leftover in destination.rglob(f"*{TEMP_SUFFIX}"):
            leftover.unlink()
