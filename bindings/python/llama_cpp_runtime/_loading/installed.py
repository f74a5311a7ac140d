"""What is installed, checked against what the build shipped.

The package's stage.json lists every file the build staged. A module it lists that is not in modules/
(deleted, or lost by a broken install) is reported as absent and unusable, so that `check` fails instead
of passing on what is left; a module in modules/ that it does not list is loaded as usual and marked as
not shipped. A plugin package carries a stage.json of its own beside its modules/, which says what it
was built from: one without it cannot be checked against the core and is not loaded.
"""

from __future__ import annotations

from dataclasses import replace

from .._report import ModuleReport
from .._settings import PLUGIN_DIRS
from .discovery import CORE_SOURCE, Layout, ModuleFile
from .stage_record import IDENTITY_KEYS, STAGE_RECORD, StageRecord


def compare_with_record(
    reports: list[ModuleReport], core_modules: list[ModuleFile], record: StageRecord, layout: Layout
) -> list[ModuleReport]:
    """The reports with the package's modules compared with its stage.json: a row for each module it
    lists that is missing, and a note on each present module it does not list (nothing when the record
    has no file list: a hand-made library folder)."""
    if record.files is None:
        return reports
    listed = record.module_files()
    present = {m.name for m in core_modules}
    gone = sorted(name for name in listed if name not in present)
    missing = [ModuleFile(name, layout.modules / listed[name], CORE_SOURCE) for name in gone]
    unlisted = {str(m.path) for m in core_modules if m.name not in listed}
    note = f"; not shipped: {layout.root / STAGE_RECORD} does not list it (added after the build?)"
    marked = [replace(r, reason=r.reason + note) if r.path in unlisted else r for r in reports]
    return marked + [
        ModuleReport(
            m.name,
            m.backend,
            "absent",
            f"missing: the package shipped it ({STAGE_RECORD} lists modules/{m.path.name}) but it is not in "
            f"{layout.modules}: reinstall llama-cpp-runtime",
            str(m.path),
            CORE_SOURCE,
            unusable=True,
        )
        for m in missing
    ]


def unrecorded(module: ModuleFile, record: StageRecord, core_upstream: dict[str, str]) -> str:
    """Why a plugin package's module is refused for want of its stage.json ("" when it has one, when it
    was named by LLAMA_CPP_RUNTIME_PLUGIN_DIRS, or when the core recorded nothing to compare with)."""
    return _no_stage_record(module, record, core_upstream)[0]


def unverified_note(module: ModuleFile, record: StageRecord, core_upstream: dict[str, str]) -> str:
    """What the report of a module loaded without its stage.json says ("" when it has one)."""
    return _no_stage_record(module, record, core_upstream)[1]


def _no_stage_record(module: ModuleFile, record: StageRecord, core_upstream: dict[str, str]) -> tuple[str, str]:
    """The one "no stage.json" rule, as (why the module is refused, the note it is loaded with): a plugin
    package's module is refused when the core recorded its own upstream (nothing to compare with otherwise);
    one named by LLAMA_CPP_RUNTIME_PLUGIN_DIRS (a folder of one's own build) is loaded, noted as unverified."""
    if record.found or module.source == CORE_SOURCE:
        return "", ""
    unverified = f"unverified: no {STAGE_RECORD} beside {module.path.parent}"
    if module.source == PLUGIN_DIRS:
        return "", f"{unverified} says what it was built from"
    if not all(core_upstream.get(key) for key in IDENTITY_KEYS):
        return "", ""
    refusal = f"{unverified} (a plugin package carries one saying which upstream it was built from)"
    return f"{refusal}: reinstall {module.source}", ""
