"""`create-patches`: export pinned..HEAD of the tracking repository into patches/, normalised."""

from __future__ import annotations

import os
from dataclasses import dataclass

from . import ui
from .config import Config
from .errors import WorkWouldBeLost
from .patchqueue import read_series
from .tracking import TrackingRepo
from .workstate import require_tracking_repo


@dataclass(frozen=True)
class ExportResult:
    written: list[str]
    removed: list[str]
    unchanged: int


def run_create_patches(config: Config) -> ExportResult:
    repo = TrackingRepo(config.tracking)
    require_tracking_repo(repo, config)
    base = repo.base(config.upstream.commit)
    if base != config.upstream.commit:
        ui.warn(
            f"exporting against {base[:12]}, where the tracking repository was set up; vendoring.toml now pins "
            f"{config.upstream.commit[:12]} (run apply-patches next to move the patches onto it)"
        )
    state = repo.load_state()
    series = read_series(config.patches)
    if state.apply_stopped and repo.head() == base and series:
        # `git am --abort` goes back to the bare base: an export now would empty patches/.
        raise WorkWouldBeLost(
            f"the last apply-patches stopped and was aborted; exporting {base[:12]} with no commits on it "
            f"would delete all {len(series)} patch(es) in {config.relative(config.patches)}/",
            hint="run `nox -s apply-patches` again (after fixing the pin or the patch); "
            "to drop patches on purpose, delete their files",
        )
    dirty = repo.dirty_files()
    if dirty:
        ui.warn(f"{len(dirty)} uncommitted file(s) in the tracking repository are not exported: commit them first")
    with ui.step(f"export commits on {base[:12]}"):
        exported = repo.export(base)
    existing = {p.name: p.content for p in series}
    written: list[str] = []
    config.patches.mkdir(parents=True, exist_ok=True)
    for item in exported:
        if existing.get(item.patch.name) != item.patch.content:
            temporary = config.patches / f".{item.patch.name}.tmp"
            temporary.write_bytes(item.patch.content)
            os.replace(temporary, config.patches / item.patch.name)
            written.append(item.patch.name)
    wanted = {item.patch.name for item in exported}
    removed = sorted(name for name in existing if name not in wanted)
    for name in removed:
        (config.patches / name).unlink()
    state.base = base
    state.exported |= {item.commit.sha for item in exported}
    state.apply_stopped = False
    repo.save_state(state)
    label = config.relative(config.patches)
    for name in written:
        ui.info(f"  wrote   {label}/{name}")
    for name in removed:
        ui.info(f"  removed {label}/{name}")
    ui.info(f"  {len(exported)} patch(es): {len(written)} written, {len(removed)} removed, "
            f"{len(exported) - len(written)} unchanged")  # fmt: skip
    return ExportResult(written, removed, len(exported) - len(written))
