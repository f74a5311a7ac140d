"""The bump's summary: Markdown a maintainer pastes into the pull request that moves the pin."""

from __future__ import annotations

from collections.abc import Iterable

from .. import ui
from ..builder.header_structs import BINDING_STRUCTS_PATH, StructChange
from ..config import Config
from ..vendoring.patchqueue import Patch
from ..vendoring.tracking import BumpProgress, PatchOutcome
from .upstream_changes import OptionChanges, SubsetChanges, UpstreamChanges

_LISTED = 20
_VERB = {
    "clean": "applied cleanly",
    "3-way merge": "applied with a 3-way merge",
    "resolved by hand": "conflicted, resolved by hand",
    "already upstream": "already upstream, dropped",
    "dropped by hand": "conflicted, dropped by hand",
}


def render_summary(config: Config, progress: BumpProgress, changes: UpstreamChanges, series: list[Patch]) -> str:
    target = progress.target[:12] + (f" ({progress.ref})" if progress.ref else "")
    lines = [
        f"## Bump upstream {progress.previous[:12]} → {target}",
        "",
        _range_line(changes, progress),
        "",
        *_patch_table(progress.outcomes, series),
        "",
        "### What changed for the build",
        "",
        *(build_lines(changes) or ["Nothing in options, backends, CPU variants, toolchains or the synced files."]),
    ]
    attention = [
        *changes.preset_warnings,
        *(f"`{line}` (`build` refuses until it is)" for line in changes.unsynced),
        *(_struct_verdict(change) for change in changes.struct_changes),
        *_served_release(config, progress),
    ]
    if attention:
        lines += ["", "### Needs attention", "", *(f"- [ ] {warning}" for warning in attention)]
    lines += [
        "",
        f"`{config.relative(config.source)}`, `{config.relative(config.patches)}/` and "
        f"`{config.relative(config.sync.destination)}/` updated by `nox -s bump`.",
    ]
    return "\n".join(lines) + "\n"


def _struct_verdict(change: StructChange) -> str:
    """Whether the binding is affected: only a field it uses that vanished or changed type is a mismatch."""
    if change.used:
        return (
            f"{change.line}: **the binding is affected**, it uses {', '.join(change.used)}: "
            f"update `{BINDING_STRUCTS_PATH}` and the code that sets them; until then the binding refuses this "
            "libllama by name"
        )
    return (
        f"{change.line}: the binding is not affected (none of the fields it uses changed; it lays the struct out "
        "from the build's record)"
    )


def _served_release(config: Config, progress: BumpProgress) -> list[str]:
    """The llama-cpp-python release named in [downstream] vendors the old pin, not the new one."""
    if not config.llama_cpp_python or progress.target == progress.previous:
        return []
    return [
        f'`[downstream] llama-cpp-python = "{config.llama_cpp_python}"` names the release that vendors '
        f"{progress.previous[:12]}: set the one that vendors {progress.target[:12]}, or remove the key "
        "(`use_for` checks the structs either way)"
    ]


def _range_line(changes: UpstreamChanges, progress: BumpProgress) -> str:
    span = f"`{progress.previous}..{progress.target}`"
    if not changes.commits_left_behind:
        return f"{changes.commits} upstream commit(s), {span}."
    behind = changes.commits_left_behind
    if not changes.commits:
        return f"**Moves back** {behind} upstream commit(s): the target is an ancestor of the old pin."
    return (
        f"**Not a descendant of the old pin**: {changes.commits} commit(s) come in, "
        f"{behind} of the old pin's commit(s) are left behind ({span})."
    )


def _patch_table(outcomes: list[PatchOutcome], series: list[Patch]) -> list[str]:
    if not outcomes:
        return ["No patches to carry."]
    carried = iter(p.name for p in series)
    rows = ["| patch | outcome | now |", "|---|---|---|"]
    for outcome in outcomes:
        now = next(carried, "?") if outcome.carried else "—"
        verb = _VERB.get(outcome.outcome, outcome.outcome)
        detail = f": {outcome.detail}" if outcome.detail else ""
        rows.append(f"| `{outcome.patch}` | {verb}{detail} | {_code(now)} |")
    counts = {verb: sum(1 for o in outcomes if o.outcome == verb) for verb in _VERB}
    tally = ", ".join(f"{n} {_VERB[verb]}" for verb, n in counts.items() if n)
    return [f"Patches: {len(outcomes)} → {sum(1 for o in outcomes if o.carried)} ({tally}).", "", *rows]


def build_lines(changes: UpstreamChanges) -> list[str]:
    lines = _option_lines(changes.options)
    lines += _named("new backend(s)", changes.backends_added)
    lines += _named("removed backend(s)", changes.backends_removed)
    lines += _named("new CPU variant(s)", changes.cpu_variants_added)
    lines += _named("removed CPU variant(s)", changes.cpu_variants_removed)
    for requirement in changes.requirements:
        if requirement.old is None:
            change = f"{requirement.new} (new in `{requirement.path}`)"
        elif requirement.new is None:
            change = f"{requirement.old} no longer required (`{requirement.path}`)"
        else:
            change = f"{requirement.old} → {requirement.new} (`{requirement.path}`)"
        lines.append(f"- minimum {requirement.subject}: {change}")
    return lines + _subset_lines(changes.subset)


def _option_lines(options: OptionChanges) -> list[str]:
    lines = [f"- option added: `{o.name}` ({o.doc!r}, default `{o.default}`) in `{o.path}`" for o in options.added]
    lines += [f"- option removed: `{o.name}` (was in `{o.path}`)" for o in options.removed]
    lines += [f"- option renamed: `{r.old}` → `{r.new}` ({r.evidence})" for r in options.renamed]
    lines += [
        f"- option default changed: `{old.name}` `{old.default}` → `{new.default}`"
        for old, new in options.default_changed
    ]
    return lines


def _subset_lines(subset: SubsetChanges) -> list[str]:
    lines = []
    if subset.entering:
        lines.append(f"- {len(subset.entering)} file(s) enter the synced subset: {_listing(subset.entering)}")
    if subset.leaving:
        lines.append(f"- {len(subset.leaving)} file(s) leave the synced subset: {_listing(subset.leaving)}")
    if subset.renamed:
        renamed = [f"{old} → {new}" for old, new in subset.renamed]
        lines.append(f"- {len(subset.renamed)} synced file(s) renamed: {_listing(renamed)}")
    if subset.modified:
        lines.append(f"- {subset.modified} synced file(s) modified")
    return lines


def _named(label: str, names: Iterable[str]) -> list[str]:
    names = list(names)
    return [f"- {label}: {', '.join(f'`{n}`' for n in names)}"] if names else []


def _listing(paths: Iterable[str]) -> str:
    return ", ".join(ui.bounded([f"`{p}`" for p in paths], _LISTED))


def _code(text: str) -> str:
    return "—" if text == "—" else f"`{text}`"
