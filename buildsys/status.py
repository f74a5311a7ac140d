"""`status`: where the tracking repository and the destination stand, in a few lines."""

from __future__ import annotations

from .config import Config
from .manifest import read_incomplete_marker, read_manifest
from .patchqueue import Patch, read_series, series_hash
from .tracking import TrackingRepo


def status_lines(config: Config) -> list[str]:
    pinned = config.upstream.commit
    series = read_series(config.patches)
    ref = f" ({config.upstream.ref})" if config.upstream.ref else ""
    lines = [
        f"upstream  {config.upstream.url}  [from {config.upstream.url_source}]",
        f"pinned    {pinned}{ref}",
        f"patches   {len(series)} in {config.relative(config.patches)}/, series {series_hash(series)[:12]}",
    ]
    lines.extend(_tracking_lines(config, series))
    lines.append(_destination_line(config, series_hash(series)))
    return lines


def _tracking_lines(config: Config, series: list[Patch]) -> list[str]:
    repo = TrackingRepo(config.tracking)
    where = config.relative(config.tracking)
    if not repo.exists() or repo.head() is None:
        return [f"tracking  {where}: not set up (run apply-patches)"]
    base = repo.base(config.upstream.commit)
    head = repo.head() or ""
    branch = repo.branch() or "detached HEAD"
    lines = [f"tracking  {where}: {branch} at {head[:12]}, base {base[:12]}"
             + ("" if base == config.upstream.commit else " (differs from the pin: run apply-patches)")]  # fmt: skip
    progress = repo.am_progress()
    if progress:
        lines.append(f"          git am stopped at patch {progress.current} of {progress.total}: resolve, then "
                     f"`git -C {where} am --continue`")  # fmt: skip
        return lines
    if repo.git.resolve_commit(base) and repo.git.is_ancestor(base, "HEAD"):
        commits = repo.commits_since(base)
        unexported = repo.unexported(base, series)
        lines.append(f"          {len(commits)} commit(s) on the base, {len(unexported)} not exported"
                     + (" (run create-patches)" if unexported else ""))  # fmt: skip
        lines.extend(f"            {c.short} {c.subject}" for c in unexported)
    dirty = repo.dirty_files()
    if dirty:
        lines.append(
            f"          {len(dirty)} uncommitted file(s): {', '.join(dirty[:5])}{' …' if len(dirty) > 5 else ''}"
        )
    return lines


def _destination_line(config: Config, current_series: str) -> str:
    destination = config.sync.destination
    label = config.relative(destination)
    if read_incomplete_marker(destination) is not None:
        return f"vendor    {label}: a sync was interrupted (run sync)"
    manifest = read_manifest(destination)
    if manifest is None:
        return f"vendor    {label}: not synced"
    fresh = manifest.commit == config.upstream.commit and manifest.patch_series_sha256 == current_series
    state = "up to date with the pin and patches/" if fresh else "stale (run sync)"
    return f"vendor    {label}: {len(manifest.files)} files from {manifest.commit[:12]}, {state}"
