"""The checks every command makes before it relies on, or replaces, the tracking repository."""

from __future__ import annotations

from dataclasses import dataclass

from .. import ui
from ..config import Config
from ..errors import BuildsysError, OutOfDate, PatchConflict, UsageError, WorkWouldBeLost
from .patchqueue import Patch, diff_paths, malformed, same_change
from .tracking import AmProgress, Commit, Survey, TrackingRepo


def refuse_damaged(repo: TrackingRepo, config: Config) -> None:
    damage = repo.damage()
    if damage is not None:
        where = config.relative(config.tracking)
        raise WorkWouldBeLost(
            f"{where} is a damaged git repository: {damage}",
            hint=(
                f"if .git/HEAD is missing, restore it: `echo 'ref: refs/heads/patched' > {where}/.git/HEAD`; "
                f"otherwise move {where} away (your edits stay in it) and run `nox -s apply-patches`"
            ),
        )


def require_tracking_repo(repo: TrackingRepo, config: Config, *, finishing_bump: bool = False) -> None:
    refuse_damaged(repo, config)
    if not repo.exists() or repo.head() is None:
        raise OutOfDate(  # a stage not run yet, as a build over a vendor/ never synced (exit 5 alike)
            f"no tracking repository at {config.relative(config.tracking)}",
            hint="run `nox -s apply-patches` (python -m buildsys apply-patches) first",
        )
    refuse_if_mid_am(repo, config)
    if not finishing_bump:
        refuse_during_bump(repo, config)


def refuse_during_bump(repo: TrackingRepo, config: Config) -> None:
    """While a bump is recorded patches/ and vendor/ belong to it, whatever vendoring.toml pins (a pin
    moved by hand to the target must not let an export drop a patch not yet carried across); only the
    bump itself exports and syncs."""
    bump = repo.load_state().bump
    if bump is not None:
        folders = f"patches/ and {config.relative(config.sync.destination)}/"
        state = (
            f"was interrupted {bump.where()}; only it may finish {folders}"
            if bump.rewrote_files
            else f"is in progress; {folders} change when it finishes"
        )
        raise UsageError(
            f"a bump from {bump.previous[:12]} to {bump.target[:12]} {state}",
            hint=f"{BUMP_CONTINUE} finishes it (it exports and syncs), {BUMP_ABORT} abandons it",
        )


@dataclass(frozen=True)
class AmUnderWay:
    """A `git am` session in the tracking repository, as every command and status tell it."""

    progress: AmProgress
    by: str | None  # the command whose am was interrupted; None: it stopped at a conflict for the maintainer
    bumping: bool

    @property
    def then(self) -> str:
        """What goes on from there: after an interruption the command itself, after a conflict what follows
        `git am --continue`."""
        if self.by is not None:
            return BUMP_CONTINUE if self.bumping else APPLY
        return BUMP_CONTINUE if self.bumping else EXPORT_AND_SYNC


def describe_am(repo: TrackingRepo) -> AmUnderWay | None:
    progress = repo.am_progress()
    if progress is None:
        return None
    state = repo.load_state()
    return AmUnderWay(progress, state.am_by, state.bump is not None)


def refuse_if_mid_am(repo: TrackingRepo, config: Config) -> None:
    am = describe_am(repo)
    if am is None:
        return
    where = config.relative(config.tracking)
    progress = am.progress
    if am.by is not None:
        raise WorkWouldBeLost(
            f"{where} holds a `git am` that {am.by} started and that was interrupted at patch "
            f"{progress.current} of {progress.total}: buildsys was stopped before it returned, "
            "so this is not a conflict to resolve",
            hint=f"{am.then} goes on from there (it aborts that session first)"
            + (f", {BUMP_ABORT} goes back" if am.bumping else ""),
        )
    raise WorkWouldBeLost(
        f"{where} is in the middle of `git am` (patch {progress.current} of {progress.total})",
        hint=(
            f"finish it: resolve the conflicts, `git -C {where} am --continue`, then {am.then};"
            f" or abandon it: `git -C {where} am --abort`" + (f", then {BUMP_ABORT}" if am.bumping else "")
        ),
    )


def recover_interrupted_am(repo: TrackingRepo, config: Config) -> None:
    """Abort the session of a `git am` of buildsys' own that a kill cut short, saying so: it holds nothing
    of the maintainer's (they were never asked to resolve anything in it)."""
    state = repo.load_state()
    by = state.am_by
    if by is None:
        return
    progress = repo.am_progress()
    if progress is None:  # it returned, or never began, before buildsys was stopped: no session to abort
        state.am_by = None
        repo.save_state(state)
        return
    repo.abort_am()
    ui.info(
        f"  the `git am` that {by} started in {config.relative(config.tracking)} was interrupted at patch "
        f"{progress.current} of {progress.total}; its session is aborted"
    )


EXPORT_AND_SYNC = "`nox -s create-patches sync`"
APPLY = "`nox -s apply-patches`"
BUMP_CONTINUE = "`nox -s bump -- --continue`"
BUMP_ABORT = "`nox -s bump -- --abort`"


def refuse_malformed_patches(series: list[Patch], config: Config, error: type[BuildsysError] = PatchConflict) -> None:
    """Before any `git am`: a file git cannot read as a patch is named with the reason, instead of a
    stop that blames the patch before it and suggests `am --continue` when no am is under way. `check`
    reports it as drift (its own error type)."""
    problems = [(patch.name, reason) for patch in series if (reason := malformed(patch))]
    if problems:
        label = config.relative(config.patches)
        name, reason = problems[0]
        raise error(
            f"{label}/{name} is not a patch git can apply: {reason}",
            details="\n".join(f"  {label}/{n}: {r}" for n, r in problems[1:]),
            hint="fix it (re-export with `nox -s create-patches`) or delete it; nothing was applied",
        )


def warn_outside_subset(series: list[Patch], config: Config) -> None:
    """A patch that changes only files `sync` never copies is carried, exported and hashed, and changes
    nothing that is built: say so, since that is rarely what its author meant (a path typo, a file the
    subset lost)."""
    selects = config.sync.filter.selects
    for patch in series:
        paths = diff_paths(patch.content)
        if paths and not any(selects(path) for path in paths):
            shown = ", ".join(ui.bounded(paths, 3))
            ui.warn(
                f"{config.relative(config.patches)}/{patch.name} changes only files outside the [sync] subset "
                f"({shown}): it changes nothing in {config.relative(config.sync.destination)}/"
            )


def conflict_details(repo: TrackingRepo, where: str, failing: Patch, git_said: str) -> str:
    """The files in conflict, and git's own words (the only explanation when no file conflicts)."""
    conflicted = repo.conflicted_files() or diff_paths(failing.content)
    lines = [f"  {where}/{path}" for path in conflicted]
    text = "files in conflict:\n" + "\n".join(lines) if lines else ""
    return "\n".join(part for part in (text, f"git said:\n{git_said}" if git_said else "") if part)


def conflict_guidance(where: str, *, then: str, abort: str) -> str:
    """What to do when `git am` stopped: the same three ways out for apply-patches and bump."""
    return (
        f"to continue: fix those files, `git -C {where} add <files>`, `git -C {where} am --continue`, then {then}\n"
        f"to drop this patch: `git -C {where} am --skip`, then {then}\n"
        f"to abort: `git -C {where} am --abort`{abort}"
    )


def describe_commits(commits: list[Commit]) -> list[str]:
    return ui.bounded([f"{c.short} {c.subject}" for c in commits])


def ensure_no_unsaved_work(repo: TrackingRepo, config: Config, series: list[Patch]) -> None:
    """Refuse, listing it all, when resetting the tracking repository would lose edits or commits (its
    callers have refused a damaged repository already, before ensure_initialised)."""
    if not repo.exists() or repo.head() is None:
        return
    refuse_if_mid_am(repo, config)
    survey = repo.survey(config.upstream.commit, series)
    where = config.relative(config.tracking)
    findings: list[str] = []
    hints: list[str] = []
    if survey.dirty:
        findings.append(f"{len(survey.dirty)} uncommitted file(s):")
        findings.extend(f"  {path}" for path in ui.bounded(survey.dirty))
        hints.append(f"commit them (`git -C {where} commit -a`) and run create-patches, or `git -C {where} stash -u`")
    if survey.unexported:
        findings.append(f"{len(survey.unexported)} commit(s) not exported to {config.relative(config.patches)}/:")
        findings.extend(f"  {line}" for line in describe_commits(survey.unexported))
        hints.append(
            f"save them with `nox -s create-patches`, or drop them with "
            f"`git -C {where} reset --hard {survey.base[:12]}`"
        )
    if findings:
        raise WorkWouldBeLost(
            f"{where} has work that exists nowhere else; nothing was changed",
            details="\n".join(findings),
            hint="; ".join(hints),
        )


def require_unchanged_queue(survey: Survey, config: Config, series: list[Patch]) -> None:
    """The tracking repository must be exactly pinned commit + patches/ (as commits)."""
    pinned = config.upstream.commit
    if survey.base != pinned:
        raise OutOfDate(
            f"the tracking repository is based on {survey.base[:12]}, vendoring.toml pins {pinned[:12]}",
            hint="run `nox -s apply-patches` to rebase the patches onto the pinned commit",
        )
    if not survey.on_base:
        raise OutOfDate(
            f"the tracking repository's HEAD is not on {pinned[:12]}",
            hint="run `nox -s apply-patches` (it refuses if that would lose work)",
        )
    exported = {e.patch.name: e.patch.content for e in survey.exported}
    if exported == {p.name: p.content for p in series}:
        return
    if survey.unexported:
        raise OutOfDate(
            f"{len(survey.unexported)} commit(s) in the tracking repository are not in "
            f"{config.relative(config.patches)}/",
            details="\n".join(describe_commits(survey.unexported)),
            hint="export them first: `nox -s create-patches sync`",
        )
    differing = sorted(p.name for p in series if exported.get(p.name) != p.content)
    differing += sorted(name for name in exported if name not in {p.name for p in series})
    if all(same_change(exported.get(p.name, b""), p.content) for p in series) and len(exported) == len(series):
        # apply-patches took them with offsets onto a moved pin: applying again gives the same commits
        raise OutOfDate(
            f"{config.relative(config.patches)}/ was written against another base: the same changes sit at other "
            "lines now",
            details="\n".join(differing),
            hint="re-export them against the pin: `nox -s create-patches sync`",
        )
    raise OutOfDate(
        f"{config.relative(config.patches)}/ differs from the commits in the tracking repository",
        details="\n".join(differing),
        hint="apply them first: `nox -s apply-patches sync` (or create-patches if the tracking repository is right)",
    )
