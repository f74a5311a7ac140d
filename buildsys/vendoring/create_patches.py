"""`create-patches`: export pinned..HEAD of the tracking repository into patches/, normalised."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import ui
from ..config import Config
from ..errors import OutOfDate, UsageError, WorkWouldBeLost
from ..fileops import write_atomically
from .patchqueue import malformed, read_series
from .tracking import ExportedCommit, TrackingRepo
from .workstate import require_tracking_repo, warn_outside_subset


@dataclass(frozen=True)
class ExportResult:
    written: list[str]
    removed: list[str]
    unchanged: int


def run_create_patches(
    config: Config, *, finishing_bump: bool = False, repo: TrackingRepo | None = None
) -> ExportResult:
    """`repo`: the bump's own, whose answers (it exists, its git folder, the commits it has) are known."""
    repo = repo or TrackingRepo(config.tracking)
    require_tracking_repo(repo, config, finishing_bump=finishing_bump)
    series = read_series(config.patches)
    with ui.step("export the commits of the tracking repository"):
        survey = repo.survey(config.upstream.commit, series)
    base = survey.base
    if not survey.on_base:
        raise OutOfDate(
            f"the tracking repository's HEAD does not descend from {base[:12]}, where its patches start",
            hint=f"check out the patch branch (`git -C {config.relative(config.tracking)} checkout patched`)",
        )
    if survey.state.apply_stopped and not survey.exported and series:
        # `git am --abort` goes back to the bare base: an export now would empty patches/.
        raise WorkWouldBeLost(
            f"the last apply-patches stopped and was aborted; exporting {base[:12]} with no commits on it "
            f"would delete all {len(series)} patch(es) in {config.relative(config.patches)}/",
            hint="run `nox -s apply-patches` again (after fixing the pin or the patch); "
            "to drop patches on purpose, delete their files",
        )
    if base != config.upstream.commit:
        ui.warn(
            f"exporting against {base[:12]}, where the tracking repository was set up; vendoring.toml now pins "
            f"{config.upstream.commit[:12]} (run apply-patches next to move the patches onto it)"
        )
    if survey.dirty:
        ui.warn(
            f"{len(survey.dirty)} uncommitted file(s) in the tracking repository are not exported: commit them first"
        )
    exported = survey.exported
    refuse_unappliable(exported, config)
    existing = {p.name: p.content for p in series}
    written = [item.patch.name for item in exported if existing.get(item.patch.name) != item.patch.content]
    refuse_replacing_links([config.patches / name for name in written], config)
    if not finishing_bump:  # the bump warned where it started
        warn_outside_subset([item.patch for item in exported], config)
    for item in exported:
        if item.patch.name in written:
            write_atomically(config.patches / item.patch.name, item.patch.content)
    wanted = {item.patch.name for item in exported}
    removed = sorted(name for name in existing if name not in wanted)
    for name in removed:
        (config.patches / name).unlink()
    state = survey.state
    state.base = base
    state.exported |= {item.commit.sha for item in exported}
    state.apply_stopped = False
    repo.save_state(state)
    label = config.relative(config.patches)
    for name in written:
        ui.info(f"  wrote   {label}/{name}")
    for name in removed:
        ui.info(f"  removed {label}/{name}")
    ui.info(
        f"  {len(exported)} patch(es): {len(written)} written, {len(removed)} removed, "
        f"{len(exported) - len(written)} unchanged"
    )
    return ExportResult(written, removed, len(exported) - len(written))


def refuse_unappliable(exported: list[ExportedCommit], config: Config) -> None:
    """A commit whose export apply-patches would refuse (an empty commit exports as an empty file) breaks
    the round trip: refuse it here, where it can still be mended, instead of writing it."""
    found = [(item.commit, reason) for item in exported if (reason := malformed(item.patch))]
    if not found:
        return
    where = config.relative(config.tracking)
    raise UsageError(
        f"{len(found)} commit(s) in {where} change no file (empty commits), so no patch can carry them; "
        "nothing was written",
        details="\n".join(
            ui.bounded([f"{c.short} {c.subject!r}: its patch would be rejected: {reason}" for c, reason in found])
        ),
        hint=f"drop it (`git -C {where} rebase -i {found[0][0].short}~1`, delete its line) or amend a change "
        "into it, then run create-patches again",
    )


def refuse_replacing_links(paths: list[Path], config: Config) -> None:
    """Writing a patch replaces the file; over a symbolic link that would silently cut the link (and writing
    through it would change a file outside the configured folders)."""
    links = [path for path in paths if path.is_symlink()]
    if links:
        shown = [f"{config.relative(path)} -> {path.readlink()}" for path in links]
        raise WorkWouldBeLost(
            f"{len(links)} patch file(s) to rewrite are symbolic links; create-patches would replace them with files",
            details="\n".join(ui.bounded(shown)),
            hint="replace each link with a copy of its file (or update the file it points to yourself), "
            "then run create-patches again; nothing was written",
        )
