"""`check`: prove from scratch that the destination is pinned upstream + patches, filtered."""

from __future__ import annotations

from .. import ui
from ..config import Config
from ..errors import DriftDetected, OutOfDate, WorkWouldBeLost
from ..git import Git
from .manifest import read_incomplete_marker, read_manifest, scan, staleness
from .patchqueue import Patch, read_series
from .scratch import subset_checkout
from .sync import build_manifest
from .tracking import TrackingRepo, apply_with_am
from .upstream_tree import SourceFile, selected_files
from .workstate import refuse_malformed_patches, require_unchanged_queue


def run_check(config: Config) -> None:
    series = read_series(config.patches)
    refuse_malformed_patches(series, config, DriftDetected)
    drift: list[str] = []
    repo = TrackingRepo(config.tracking)
    if repo.exists() and repo.head() is not None:
        with ui.step("compare tracking repository with patches/"):
            drift.extend(_tracking_drift(repo, config, series))
    scratch_step = ui.step(f"apply {len(series)} patch(es) on {config.upstream.commit[:12]} from scratch")
    with scratch_step, subset_checkout(config, repo, series) as scratch:
        failed = _apply(scratch, config, series)
        if failed:
            raise DriftDetected(
                f"{failed} does not apply on the pinned commit {config.upstream.commit[:12]}",
                hint="run `nox -s apply-patches` to resolve it in the tracking repository",
            )
        expected = selected_files(scratch, "HEAD", config.sync.filter)
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


def _tracking_drift(repo: TrackingRepo, config: Config, series: list[Patch]) -> list[str]:
    try:
        require_unchanged_queue(repo.survey(config.upstream.commit, series), config, series)
    except (OutOfDate, WorkWouldBeLost) as error:
        lines = [f"tracking: {error.message}"]
        lines.extend(f"tracking:   {line}" for line in error.details.splitlines())
        return lines
    return []


def _apply(git: Git, config: Config, series: list[Patch]) -> str | None:
    """Name of the first patch that does not apply, or None."""
    outcome = apply_with_am(git, [config.patches / p.name for p in series])
    if not outcome.stopped:
        return None
    git.run("am", "--abort", check=False)
    return series[len(outcome.applied)].name


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
