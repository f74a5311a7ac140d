"""`bump`: move the pin to another upstream commit, carrying the patch queue across.

Patches already contained upstream are dropped with the proof; the rest go through `git am --3way` one
at a time. A conflict stops where apply-patches would; vendoring.toml and patches/ change only when the
whole queue is across (`bump --continue` after the conflict is resolved, `bump --abort` to go back).
The bump records its phase as it goes (and keeps patches/ and vendoring.toml as they were), so that one
interrupted anywhere, killed or stopped with Ctrl-C, is continued from that phase or aborted back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from .. import ui
from ..builder import cmake_reach
from ..builder.header_structs import HEADER, describe_changes, used_fields
from ..builder.presets import load_matrix
from ..config import Config
from ..errors import PatchConflict, UsageError, interrupted
from ..fileops import write_atomically
from ..vendoring.apply_patches import run_apply_patches
from ..vendoring.containment import already_upstream, upstream_patch_ids
from ..vendoring.create_patches import run_create_patches
from ..vendoring.manifest import scan
from ..vendoring.patchqueue import Patch, diff_paths, read_series, series_hash
from ..vendoring.sync import refuse_hand_edits, run_sync
from ..vendoring.tracking import BumpProgress, Commit, PatchOutcome, TrackingRepo, TrackingState
from ..vendoring.workstate import (
    BUMP_ABORT,
    BUMP_CONTINUE,
    conflict_details,
    conflict_guidance,
    ensure_no_unsaved_work,
    recover_interrupted_am,
    refuse_damaged,
    refuse_during_bump,
    refuse_if_mid_am,
    refuse_malformed_patches,
    warn_outside_subset,
)
from . import bump_record
from .bumpreport import render_summary
from .pin_file import write_pin
from .upstream_changes import UpstreamChanges, describe_range, read_texts

SUMMARY_NAME = "bump-summary.md"


@dataclass(frozen=True)
class BumpResult:
    progress: BumpProgress
    changes: UpstreamChanges
    summary: str
    summary_path: Path | None


def run_bump(config: Config, target: str) -> BumpResult | None:
    """Start a bump to `target` (commit, tag or branch); None when it is already the pin."""
    repo = TrackingRepo(config.tracking)
    series = read_series(config.patches)
    where = config.relative(config.tracking)
    pinned = config.upstream.commit
    refuse_malformed_patches(series, config)
    warn_outside_subset(series, config)
    with ui.step(f"check {where} and {config.relative(config.sync.destination)} for unsaved work"):
        _refuse_hand_edits_in_destination(config)
        refuse_damaged(repo, config)
        repo.ensure_initialised()
        refuse_during_bump(repo, config)
        ensure_no_unsaved_work(repo, config, series)
    with ui.step(f"fetch {pinned[:12]} and {target} from {config.upstream.url}"):
        repo.fetch_commit(config.upstream.url, pinned)
        commit, ref = repo.resolve_target(config.upstream.url, target)
    if commit == pinned:
        if ref and ref != config.upstream.ref:
            write_pin(config.source, commit, ref)
            ui.info(f"  {target} is {pinned[:12]}, the commit already pinned: only [upstream] ref set to {ref}")
        else:
            ui.info(f"  {target} is {pinned[:12]}, the commit already pinned: nothing to do")
        return None
    progress = BumpProgress(
        previous=pinned,
        target=commit,
        ref=ref,
        series_sha256=series_hash(series),
        phase="checkout",
    )
    changes = _describe(repo, config, progress)
    with ui.step(f"check out {commit[:12]} on branch `patched`"):
        bump_record.keep(repo, config, series)
        before = repo.load_state()
        before.bump = progress  # recorded first: a bump killed during the checkout can be continued or aborted
        repo.save_state(before)
        with _recorded(progress):
            repo.checkout_base(commit)
        progress.phase = "carry"
        repo.save_state(TrackingState(base=commit, bump=progress))
    with _recorded(progress):
        return _carry_patches(config, repo, series, progress, changes)


def continue_bump(config: Config) -> BumpResult:
    """After a conflict was resolved (`git am --continue`) or skipped (`git am --skip`), or an interruption."""
    repo = TrackingRepo(config.tracking)
    series = read_series(config.patches)
    progress = _bump_in_progress(repo, config)
    warn_outside_subset(series, config)  # once, here: the export and the sync it ends with do not repeat it
    if progress.phase == "checkout":
        with ui.step(f"check out {progress.target[:12]} again: the bump was interrupted while doing it"):
            repo.force_checkout(progress.target)
            progress.phase = "carry"
            repo.save_state(TrackingState(base=progress.target, bump=progress))
    if progress.rewrote_files:
        bump_record.refuse_foreign(
            config, bump_record.read(repo, config), bump_record.planned_patches(repo, progress), progress
        )
        ui.info(f"  the bump was interrupted {progress.where()}: finishing it")
        with _recorded(progress):
            return _finish(config, repo, progress, _describe(repo, config, progress))
    _recover_interrupted_carry(repo, config, progress)
    refuse_if_mid_am(repo, config)
    if series_hash(series) != progress.series_sha256:
        raise UsageError(
            f"{config.relative(config.patches)}/ changed since the bump started",
            hint=f"restore it (git checkout -- patches/), or {BUMP_ABORT} and start again",
        )
    if progress.position < len(series) and repo.load_state().apply_stopped:
        _record_hand_resolution(repo, progress, series[progress.position])
    changes = _describe(repo, config, progress)
    with _recorded(progress):
        return _carry_patches(config, repo, series, progress, changes)


def abort_bump(config: Config) -> None:
    """Back to the pinned commit + patches/ (and vendoring.toml and the destination, when the bump had
    started rewriting them), as apply-patches does: it refuses if work would be lost."""
    repo = TrackingRepo(config.tracking)
    progress = _bump_in_progress(repo, config)
    warn_outside_subset(read_series(config.patches), config)  # once, here, not again in its apply-patches
    if progress.phase == "checkout":
        with ui.step(f"undo the interrupted checkout of {progress.target[:12]}"):
            repo.force_checkout(progress.previous)
    recover_interrupted_am(repo, config)
    refuse_if_mid_am(repo, config)
    if not progress.rewrote_files:
        ui.info(f"  abandoning the bump to {progress.target[:12]}; vendoring.toml and patches/ were not changed")
        run_apply_patches(config, finishing_bump=True)
        bump_record.drop(repo)
        return
    originals = bump_record.read(repo, config)
    bump_record.refuse_foreign(config, originals, bump_record.planned_patches(repo, progress), progress)
    restored = bump_record.restore(config, originals)
    ui.info(
        f"  abandoning the bump to {progress.target[:12]}, interrupted {progress.where()}: put back as they were "
        f"before it: {', '.join(restored) or 'nothing (the bump had not written them yet)'}"
    )
    before = dataclasses.replace(  # the pin and its label as the kept vendoring.toml had them
        config, upstream=dataclasses.replace(config.upstream, commit=progress.previous, ref=originals.ref)
    )
    run_apply_patches(before, finishing_bump=True)
    if progress.phase == "sync":  # the destination may hold the target's files: back to the pin's
        run_sync(before)
    bump_record.drop(repo)


@contextmanager
def _recorded(progress: BumpProgress) -> Iterator[None]:
    """An interruption of a recorded bump says where it stopped and the two ways on."""
    try:
        yield
    except KeyboardInterrupt as stop:
        raise interrupted(
            f"the bump {progress.previous[:12]} -> {progress.target[:12]} was interrupted {progress.where()}; "
            "it is recorded",
            stop,
            hint=f"{BUMP_CONTINUE} goes on from there; {BUMP_ABORT} goes back to "
            f"{progress.previous[:12]} and patches/ as they were",
        ) from None


def _recover_interrupted_carry(repo: TrackingRepo, config: Config, progress: BumpProgress) -> None:
    """A `git am` of the bump's own that a kill cut short: abort its session, or drop the commit it made
    that the record does not hold, so that the patch is carried again (and its outcome told truly)."""
    if repo.load_state().am_by is None:
        return
    recover_interrupted_am(repo, config)
    carried = [o.commit for o in progress.outcomes if o.commit is not None]
    last = carried[-1] if carried else progress.target
    if repo.head() != last and repo.git.is_ancestor(last, "HEAD") and len(repo.commits_since(last)) == 1:
        repo.reset_keep(last)


def _carry_patches(
    config: Config, repo: TrackingRepo, series: list[Patch], progress: BumpProgress, changes: UpstreamChanges
) -> BumpResult:
    paths = {path for patch in series for path in diff_paths(patch.content)}
    with ui.step(f"look for our patches in the {changes.commits} upstream commit(s)"):
        upstream_ids = upstream_patch_ids(repo.git, progress.previous, progress.target, paths)
        on_previous = repo.store_queue_blobs(progress.previous, [config.patches / p.name for p in series])
    if on_previous < len(series):
        ui.warn(
            f"{series[on_previous].name} does not apply on {progress.previous[:12]}, the pin it was made for; "
            "3-way merges of it and later patches have no base to merge from"
        )
    with ui.step(f"carry {len(series) - progress.position} patch(es) onto {progress.target[:12]}"):
        for index in range(progress.position, len(series)):
            progress.position = index
            outcome = _carry_one(config, repo, series[index], upstream_ids)
            if outcome is None:
                _stop_at_conflict(config, repo, series, progress)
            progress.outcomes.append(outcome)
            _save(repo, progress)
            ui.info(f"  {outcome.outcome:<16} {outcome.patch}" + (f": {outcome.detail}" if outcome.detail else ""))
        progress.position = len(series)
        _save(repo, progress)
    return _finish(config, repo, progress, changes)


def _carry_one(
    config: Config, repo: TrackingRepo, patch: Patch, upstream_ids: dict[str, Commit]
) -> PatchOutcome | None:
    """How one patch crossed, or None when `git am` stopped at a conflict."""
    patch_file = str(config.patches / patch.name)
    contained = already_upstream(repo.git, patch, upstream_ids, patch_file)
    if contained:
        return PatchOutcome(patch.name, "already upstream", contained)
    before = repo.head()
    applied = repo.am([config.patches / patch.name], by="bump")
    if applied.stopped:
        return None
    head = repo.head()
    if head == before:
        return PatchOutcome(patch.name, "already upstream", "the 3-way merge left nothing to change")
    return PatchOutcome(patch.name, applied.applied[0], commit=head)


def _stop_at_conflict(config: Config, repo: TrackingRepo, series: list[Patch], progress: BumpProgress) -> NoReturn:
    _save(repo, progress, stopped=True)
    failing = series[progress.position]
    where = config.relative(config.tracking)
    raise PatchConflict(
        f"patch {failing.name} ({progress.position + 1} of {len(series)}) does not apply on "
        f"{progress.target[:12]}; vendoring.toml and patches/ are unchanged",
        details=conflict_details(repo, where, failing, ""),
        hint=conflict_guidance(where, then=BUMP_CONTINUE, abort=f", then {BUMP_ABORT}"),
    )


def _record_hand_resolution(repo: TrackingRepo, progress: BumpProgress, patch: Patch) -> None:
    """The stopped patch became a commit (`am --continue`) or nothing (`am --skip`)."""
    applied = [o for o in progress.outcomes if o.carried]
    if not repo.git.is_ancestor(progress.target, "HEAD"):
        raise UsageError(
            f"the tracking repository's HEAD no longer descends from {progress.target[:12]}",
            hint=f"check out branch `patched` again, or {BUMP_ABORT}",
        )
    commits = repo.commits_since(progress.target)
    if [c.sha for c in commits[: len(applied)]] != [o.commit for o in applied] or len(commits) > len(applied) + 1:
        raise UsageError(
            f"the tracking repository has commits on {progress.target[:12]} that the bump did not make",
            details="\n".join(f"{c.short} {c.subject}" for c in commits[len(applied) :]),
            hint=f"finish the bump first, then add new patches; or {BUMP_ABORT}",
        )
    if len(commits) == len(applied) + 1:
        outcome = PatchOutcome(patch.name, "resolved by hand", commit=commits[-1].sha)
    else:
        outcome = PatchOutcome(patch.name, "dropped by hand", "git am --skip")
    progress.outcomes.append(outcome)
    progress.position += 1
    _save(repo, progress, stopped=False)


def _finish(config: Config, repo: TrackingRepo, progress: BumpProgress, changes: UpstreamChanges) -> BumpResult:
    """Export, pin, sync; the bump stays recorded until all three are done, so --continue can redo them."""
    moved = dataclasses.replace(
        config, upstream=dataclasses.replace(config.upstream, commit=progress.target, ref=progress.ref)
    )
    _enter(repo, progress, "export")
    run_create_patches(moved, finishing_bump=True, repo=repo)
    with ui.step(f"pin {progress.target[:12]} in {config.source.name}"):
        write_pin(config.source, progress.target, progress.ref)
    _enter(repo, progress, "sync")
    run_sync(moved, finishing_bump=True, repo=repo)
    state = repo.load_state()
    state.bump = None
    state.apply_stopped = False
    repo.save_state(state)
    bump_record.drop(repo)
    summary = render_summary(moved, progress, changes, read_series(config.patches))
    summary_path = config.build_dir / SUMMARY_NAME
    write_atomically(summary_path, summary.encode("utf-8"))
    return BumpResult(progress, changes, summary, summary_path)


def _describe(repo: TrackingRepo, config: Config, progress: BumpProgress) -> UpstreamChanges:
    presets = load_matrix().presets
    with ui.step(f"read what {progress.previous[:12]}..{progress.target[:12]} changes for the build"):
        changes = describe_range(repo.git, progress.previous, progress.target, config.sync.filter, presets)
    with ui.step("find CMake of the new tree that needs paths outside the sync subset"):
        files = cmake_reach.tracked_files(repo.git, progress.target, config.sync.filter)
        missing = tuple(str(m) for m in cmake_reach.missing_for_presets(files, presets))
    old, new = (
        read_texts(repo.git, commit, [HEADER]).get(HEADER, "") for commit in (progress.previous, progress.target)
    )
    structs = tuple(describe_changes(old, new, used_fields())) if old and new else ()
    return dataclasses.replace(changes, unsynced=missing, struct_changes=structs)


def _enter(repo: TrackingRepo, progress: BumpProgress, phase: str) -> None:
    progress.phase = phase
    _save(repo, progress)


def _save(repo: TrackingRepo, progress: BumpProgress, *, stopped: bool | None = None) -> None:
    state = repo.load_state()
    state.bump = progress
    state.am_by = None  # the am that ran (if one did) returned: this records what came of it
    state.exported |= {o.commit for o in progress.outcomes if o.commit is not None}
    if stopped is not None:
        state.apply_stopped = stopped
    repo.save_state(state)


def _bump_in_progress(repo: TrackingRepo, config: Config) -> BumpProgress:
    progress = repo.load_state().bump if repo.exists() else None
    if progress is None:
        raise UsageError(
            f"no bump is in progress in {config.relative(config.tracking)}",
            hint="start one with `nox -s bump -- <commit, tag or branch>`",
        )
    return progress


def _refuse_hand_edits_in_destination(config: Config) -> None:
    destination = config.sync.destination
    if destination.is_dir():
        refuse_hand_edits(destination, scan(destination), {}, config.relative(destination), then="run the bump again")
