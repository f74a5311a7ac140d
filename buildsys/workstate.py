"""The checks every command makes before it relies on, or replaces, the tracking repository."""

from __future__ import annotations

from .config import Config
from .errors import OutOfDate, UsageError, WorkWouldBeLost
from .patchqueue import Patch
from .tracking import Commit, TrackingRepo

_LISTED = 15


def require_tracking_repo(repo: TrackingRepo, config: Config) -> None:
    if not repo.exists() or repo.head() is None:
        raise UsageError(
            f"no tracking repository at {config.relative(config.tracking)}",
            hint="run `nox -s apply-patches` (python -m buildsys apply-patches) first",
        )
    refuse_if_mid_am(repo, config)


def refuse_if_mid_am(repo: TrackingRepo, config: Config) -> None:
    progress = repo.am_progress()
    if progress is None:
        return
    where = config.relative(config.tracking)
    raise WorkWouldBeLost(
        f"{where} is in the middle of `git am` (patch {progress.current} of {progress.total})",
        hint=(
            f"finish it: resolve the conflicts, `git -C {where} am --continue`, then `nox -s create-patches sync`;"
            f" or abandon it: `git -C {where} am --abort`"
        ),
    )


def describe_commits(commits: list[Commit]) -> str:
    lines = [f"{c.short} {c.subject}" for c in commits[:_LISTED]]
    if len(commits) > _LISTED:
        lines.append(f"… and {len(commits) - _LISTED} more")
    return "\n".join(lines)


def ensure_no_unsaved_work(repo: TrackingRepo, config: Config, series: list[Patch]) -> None:
    """Refuse, listing it all, when resetting the tracking repository would lose edits or commits."""
    if not repo.exists() or repo.head() is None:
        return
    refuse_if_mid_am(repo, config)
    where = config.relative(config.tracking)
    findings: list[str] = []
    hints: list[str] = []
    dirty = repo.dirty_files()
    if dirty:
        findings.append(f"{len(dirty)} uncommitted file(s):")
        findings.extend(f"  {path}" for path in dirty[:_LISTED])
        hints.append(f"commit them (`git -C {where} commit -a`) and run create-patches, or `git -C {where} stash -u`")
    base = repo.base(config.upstream.commit)
    if repo.git.resolve_commit(base) and repo.git.is_ancestor(base, "HEAD"):
        unexported = repo.unexported(base, series)
        if unexported:
            findings.append(f"{len(unexported)} commit(s) not exported to {config.relative(config.patches)}/:")
            findings.extend(f"  {line}" for line in describe_commits(unexported).splitlines())
            hints.append("save them with `nox -s create-patches`, or drop them with "
                         f"`git -C {where} reset --hard {base[:12]}`")  # fmt: skip
    if findings:
        raise WorkWouldBeLost(
            f"{where} has work that exists nowhere else; nothing was changed",
            details="\n".join(findings),
            hint="; ".join(hints),
        )


def require_unchanged_queue(repo: TrackingRepo, config: Config, series: list[Patch]) -> None:
    """The tracking repository must be exactly pinned commit + patches/ (as commits)."""
    pinned = config.upstream.commit
    base = repo.base(pinned)
    if base != pinned:
        raise OutOfDate(
            f"the tracking repository is based on {base[:12]}, vendoring.toml pins {pinned[:12]}",
            hint="run `nox -s apply-patches` to rebase the patches onto the pinned commit",
        )
    exported = repo.export(base)
    if {e.patch.name: e.patch.content for e in exported} == {p.name: p.content for p in series}:
        return
    unexported = repo.unexported(base, series)
    if unexported:
        raise OutOfDate(
            f"{len(unexported)} commit(s) in the tracking repository are not in {config.relative(config.patches)}/",
            details=describe_commits(unexported),
            hint="export them first: `nox -s create-patches sync`",
        )
    on_disk = {p.name for p in series}
    differing = sorted(on_disk.symmetric_difference(e.patch.name for e in exported)) or sorted(
        p.name for p in series if p.content not in {e.patch.content for e in exported}
    )
    raise OutOfDate(
        f"{config.relative(config.patches)}/ differs from the commits in the tracking repository",
        details="\n".join(differing),
        hint="apply them first: `nox -s apply-patches sync` (or create-patches if the tracking repository is right)",
    )
