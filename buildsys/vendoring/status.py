"""`status`: where the tracking repository and the destination stand, in a few lines."""

from __future__ import annotations

from .. import ui
from ..config import Config
from .manifest import read_incomplete_marker, read_manifest, scan, staleness
from .patchqueue import Patch, read_series, series_hash
from .sync import unsaved_edits
from .tracking import BumpProgress, TrackingRepo
from .workstate import BUMP_CONTINUE, describe_am, describe_commits


def status_lines(config: Config) -> list[str]:
    pinned = config.upstream.commit
    series = read_series(config.patches)
    ref = f" ({config.upstream.ref})" if config.upstream.ref else ""
    current_series = series_hash(series)
    lines = [
        f"upstream  {config.upstream.url}  [from {config.upstream.url_source}]",
        f"pinned    {pinned}{ref}",
        f"patches   {len(series)} in {config.relative(config.patches)}/, series {current_series[:12]}",
    ]
    lines.extend(_tracking_lines(config, series))
    lines.append(_destination_line(config, current_series))
    return lines


def _tracking_lines(config: Config, series: list[Patch]) -> list[str]:
    repo = TrackingRepo(config.tracking)
    where = config.relative(config.tracking)
    damage = repo.damage()
    if damage is not None:
        return [f"tracking  {where}: DAMAGED: {damage} (run apply-patches for how to recover)"]
    head = repo.head() if repo.exists() else None
    if head is None:
        return [f"tracking  {where}: not set up (run apply-patches)"]
    branch = repo.branch() or "detached HEAD"
    state = repo.load_state()
    bump = state.bump
    bump_line = [f"          bump {bump.previous[:12]} -> {bump.target[:12]} {_bump_words(bump)}"] if bump else []
    am = describe_am(repo)
    if am and am.by:
        then = f"{am.then} or `-- --abort`" if am.bumping else am.then
        return [
            f"tracking  {where}: {branch} at {head[:12]}",
            *bump_line,
            f"          the `git am` that {am.by} started was interrupted at patch {am.progress.current} of "
            f"{am.progress.total} (not a conflict): {then} goes on from there",
        ]
    if am:
        return [
            f"tracking  {where}: {branch} at {head[:12]}",
            f"          git am stopped at patch {am.progress.current} of {am.progress.total}: resolve, then "
            f"`git -C {where} am --continue`, then {am.then}",
        ]
    survey = repo.survey(config.upstream.commit, series)
    pin_note = "" if survey.base == config.upstream.commit else " (differs from the pin: run apply-patches)"
    if bump:
        pin_note = ""
    lines = [f"tracking  {where}: {branch} at {head[:12]}, base {survey.base[:12]}{pin_note}", *bump_line]
    if survey.on_base:
        lines.append(
            f"          {len(survey.exported)} commit(s) on the base, {len(survey.unexported)} not exported"
            + (" (run create-patches)" if survey.unexported else "")
        )
        lines.extend(f"            {line}" for line in describe_commits(survey.unexported))
    if survey.dirty:
        lines.append(f"          {len(survey.dirty)} uncommitted file(s): {', '.join(ui.bounded(survey.dirty, 5))}")
    return lines


def _bump_words(bump: BumpProgress) -> str:
    where = bump.where() if bump.phase == "carry" else f"(interrupted {bump.where()})"
    return f"under way {where}: {BUMP_CONTINUE} or `-- --abort`"


def _destination_line(config: Config, current_series: str) -> str:
    destination = config.sync.destination
    label = config.relative(destination)
    if read_incomplete_marker(destination) is not None:
        return f"vendor    {label}: a sync was interrupted (run sync)"
    manifest = read_manifest(destination)
    if manifest is None:
        return f"vendor    {label}: not synced"
    changes = staleness(manifest, config.upstream.commit, current_series, config.sync.include, config.sync.exclude)
    state = f"stale: {'; '.join(changes)} changed (run sync)" if changes else "up to date with the pin and patches/"
    line = f"vendor    {label}: {len(manifest.files)} files from {manifest.commit[:12]}, {state}"
    edited = sorted(unsaved_edits(destination, scan(destination), manifest.files))
    if edited:
        shown = ", ".join(ui.bounded(edited, 3))
        line += f"\n          {len(edited)} file(s) edited or added by hand: {shown} (sync refuses to overwrite them)"
    return line
