"""`check`: prove from scratch that the destination is pinned upstream + patches, filtered."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from .. import ui
from ..config import Config
from ..errors import DriftDetected, OutOfDate, WorkWouldBeLost, lack_of_room
from ..git import NETWORK_TIMEOUT
from .manifest import read_incomplete_marker, read_manifest, scan, staleness
from .patchqueue import Patch, diff_paths, read_series
from .sync import build_manifest
from .tracking import REMOTE, TrackingRepo
from .upstream_tree import SourceFile, selected_files, tree_entries, warn_unmatched_includes
from .workstate import refuse_malformed_patches, require_unchanged_queue


def run_check(config: Config) -> None:
    series = read_series(config.patches)
    refuse_malformed_patches(series, config, DriftDetected)
    drift: list[str] = []
    repo = TrackingRepo(config.tracking)
    if repo.exists() and repo.head() is not None:
        with ui.step("compare tracking repository with patches/"):
            drift.extend(_tracking_drift(repo, config, series))
    with (
        ui.step(f"apply {len(series)} patch(es) on {config.upstream.commit[:12]} from scratch"),
        contextlib.ExitStack() as stack,
    ):
        source = _repository_with_pin(config, repo, series, stack)
        room = lack_of_room(source.git_dir, what="check's throwaway index of the queue did not fit")
        with room if source is repo else contextlib.nullcontext():
            built = source.queue_tree(config.upstream.commit, [config.patches / p.name for p in series], three_way=True)
        if built.tree is None:
            raise DriftDetected(
                f"{series[built.applied].name} does not apply on the pinned commit {config.upstream.commit[:12]}",
                hint="run `nox -s apply-patches` to resolve it in the tracking repository",
            )
        entries = tree_entries(source.git, built.tree)
        expected = selected_files(source.git, built.tree, config.sync.filter, entries)
    warn_unmatched_includes(config.sync.filter, entries)  # drift follows; this says why
    with ui.step(f"compare {config.relative(config.sync.destination)} with the expected {len(expected)} files"):
        drift.extend(destination_drift(config, series, expected))
    if drift:
        raise DriftDetected(
            f"{len(drift)} difference(s) from pinned upstream + patches",
            details="\n".join(drift),
            hint="`nox -s sync` rewrites the destination (`nox -s sync -- --force` where files were edited by hand);"
            " `nox -s create-patches` saves tracking commits",
        )
    ui.info(
        f"  {config.relative(config.sync.destination)} is {config.upstream.commit[:12]} + {len(series)} "
        f"patch(es): {len(expected)} files, no drift"
    )


def _repository_with_pin(
    config: Config, repo: TrackingRepo, series: list[Patch], stack: contextlib.ExitStack
) -> TrackingRepo:
    """The tracking repository when it holds the pinned commit (nothing is checked out: the queue is
    applied in a throwaway index), else a partial clone of the pin in $TMPDIR, removed when check ends."""
    pinned = config.upstream.commit
    if repo.exists() and repo.has_commit(pinned):
        return repo
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="buildsys-check-")))
    stack.enter_context(
        lack_of_room(
            folder.parent,
            what=f"check's scratch clone of the pin ({folder.name}) did not fit",
            need=lambda: _need(config),
            hint="free some space there, or point TMPDIR at a folder with room (the clone is removed when check ends)",
        )
    )
    clone = TrackingRepo(folder / "upstream")
    clone.ensure_initialised()
    clone.fetch_commit(config.upstream.url, pinned)
    _fetch_blobs(clone, config, series)
    return clone


def _fetch_blobs(clone: TrackingRepo, config: Config, series: list[Patch]) -> None:
    """In a partial clone git would fetch each blob on its own as it is read: the subset's and the
    patched files' blobs in one batch instead."""
    git = clone.git
    if not git.run("config", "--get", f"remote.{REMOTE}.promisor", check=False).out.strip():
        return
    touched = {path for patch in series for path in diff_paths(patch.content, old_names=True)}
    oids = "".join(
        f"{entry.sha}\n"
        for entry in tree_entries(git, config.upstream.commit)
        if entry.kind == "blob" and (config.sync.filter.selects(entry.path) or entry.path in touched)
    ).encode()
    if oids:
        fetch = ("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--filter=blob:none", REMOTE, "--stdin")
        git.run(*fetch, input=oids, timeout=NETWORK_TIMEOUT, user_config=True)


def _need(config: Config) -> str:
    destination = config.sync.destination
    total = sum(path.stat().st_size for path in destination.rglob("*") if path.is_file() and not path.is_symlink())
    if not total:
        return ""
    size = f"{total / 1e6:.1f} MB" if total >= 1e5 else f"{total / 1e3:.0f} KB"
    return f"it needs about {size}, the size of {config.relative(destination)}"


def _tracking_drift(repo: TrackingRepo, config: Config, series: list[Patch]) -> list[str]:
    try:
        require_unchanged_queue(repo.survey(config.upstream.commit, series), config, series)
    except (OutOfDate, WorkWouldBeLost) as error:
        lines = [f"tracking: {error.message}"]
        lines.extend(f"tracking:   {line}" for line in error.details.splitlines())
        return lines
    return []


def destination_drift(config: Config, series: list[Patch], expected: dict[str, SourceFile]) -> list[str]:
    destination = config.sync.destination
    label = config.relative(destination)
    drift: list[str] = []
    if read_incomplete_marker(destination) is not None:
        drift.append(f"{label}: a sync was interrupted; re-run `nox -s sync` to finish it")
    wanted = build_manifest(config, series, expected)
    on_disk = scan(destination)
    for path in sorted(set(wanted.files) | set(on_disk)):
        want, have = wanted.files.get(path), on_disk.get(path)
        if have is None:
            drift.append(f"missing   {label}/{path}")
        elif want is None:
            drift.append(f"extra     {label}/{path}")
        elif want.sha256 != have.sha256:
            drift.append(f"modified  {label}/{path}")
        elif want.mode != have.mode:
            drift.append(f"mode      {label}/{path} ({have.mode}, expected {want.mode})")
    recorded = read_manifest(destination)
    if recorded is None:
        drift.append(f"{label}: no manifest (never synced, or the manifest was removed)")
    elif recorded.to_bytes() != wanted.to_bytes():
        changes = staleness(recorded, wanted.commit, wanted.patch_series_sha256, wanted.include, wanted.exclude)
        said = "; ".join(changes) or "the recorded files differ"
        drift.append(f"{label}: manifest is stale: {said} changed since it was synced")
    return drift
