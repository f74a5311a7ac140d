"""`apply-patches`: pinned upstream commit + patches/ as commits in the tracking repository."""

from __future__ import annotations

from .. import ui
from ..config import Config
from ..errors import PatchConflict, interrupted
from .patchqueue import read_series
from .tracking import TrackingRepo, TrackingState
from .workstate import (
    APPLY,
    EXPORT_AND_SYNC,
    conflict_details,
    conflict_guidance,
    ensure_no_unsaved_work,
    recover_interrupted_am,
    refuse_damaged,
    refuse_during_bump,
    refuse_malformed_patches,
    warn_outside_subset,
)


def run_apply_patches(config: Config, *, finishing_bump: bool = False) -> None:
    """`finishing_bump`: called by `bump --abort`, the one caller that may replace a recorded bump's tree
    (and drop its record); any other refuses while a bump is recorded, as create-patches and sync do."""
    repo = TrackingRepo(config.tracking)
    series = read_series(config.patches)
    pinned = config.upstream.commit
    where = config.relative(config.tracking)
    refuse_malformed_patches(series, config)
    if not finishing_bump:  # the bump warned where it started
        warn_outside_subset(series, config)
    with ui.step(f"check {where} for unsaved work"):
        refuse_damaged(repo, config)
        repo.ensure_initialised()
        if not finishing_bump:
            refuse_during_bump(repo, config)  # saving its state below would erase the bump's record
            recover_interrupted_am(repo, config)
        ensure_no_unsaved_work(repo, config, series)
    with ui.step(f"fetch {pinned[:12]} from {config.upstream.url}"):
        repo.fetch_commit(config.upstream.url, pinned)
    with ui.step(f"check out {pinned[:12]} on branch `patched`"):
        repo.checkout_base(pinned)
    with ui.step(f"apply {len(series)} patch(es)"):
        try:
            outcome = repo.am([config.patches / p.name for p in series], by="apply-patches")
        except KeyboardInterrupt as stop:
            raise interrupted(
                f"interrupted while applying patches/: the `git am` apply-patches started was aborted, and {where} "
                f"is back at {pinned[:12]} with none of them",
                stop,
                hint=f"run {APPLY} again",
            ) from None
        created = repo.commits_since(pinned)
        repo.save_state(TrackingState(base=pinned, exported={c.sha for c in created}, apply_stopped=outcome.stopped))
        for patch, how in zip(series, outcome.applied, strict=False):
            ui.info(f"  {how:<11} {patch.name}")
        if outcome.stopped:
            failing = series[len(created)]
            raise PatchConflict(
                f"patch {failing.name} ({len(created) + 1} of {len(series)}) does not apply on {pinned[:12]}",
                details=conflict_details(repo, where, failing, outcome.said),
                hint=conflict_guidance(where, then=EXPORT_AND_SYNC, abort=" (patches/ is unchanged)"),
            )
    ui.info(f"  {where} is {pinned[:12]} + {len(series)} patch(es) on branch `patched`")
