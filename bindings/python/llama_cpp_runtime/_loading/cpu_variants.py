"""The CPU variant: every ggml-cpu-* module scored on this CPU, the best one the environment allows loaded,
and every other one explained (not chosen, skipped and why, or a duplicate of the one loaded).

Modules are told apart by their file, not their name: a plugin folder may repeat the package's own
modules, and two files of one name are two rows of the report.
"""

from __future__ import annotations

import ctypes
import logging
from dataclasses import dataclass
from pathlib import Path

from .._ggml.log import LogBridge
from .._platform import close_library, open_library
from .._report import ModuleReport, Status
from .._settings import BACKENDS, CPU_EXCLUDE, CPU_VARIANT, Settings
from . import variant_cache as _variant_cache
from .discovery import ModuleFile
from .elf import refuse_damaged

logger = logging.getLogger("llama_cpp_runtime")
_NO_INSTRUCTIONS = "this CPU lacks instructions the variant was compiled for (score 0)"


class Selection:
    """The environment's say in what is loaded: backends allowed, a CPU variant forced or excluded."""

    def __init__(self, settings: Settings) -> None:
        self.backends = settings.backends
        self.forced = settings.cpu_variant
        self.excluded = settings.cpu_exclude

    def refusal(self, module: ModuleFile) -> str:
        if self.backends is not None and module.backend not in self.backends:
            return f"not in {BACKENDS}={','.join(sorted(self.backends))}"
        return ""


def _score(module: ModuleFile) -> tuple[int | None, str]:
    """ggml_backend_score() of a module, or why it could not be asked (the loader's message)."""
    damaged = refuse_damaged(module.path)
    if damaged:
        return None, damaged
    try:
        library = open_library(module.path, global_symbols=False)
    except OSError as error:
        return None, f"cannot be loaded: {error}"
    function = getattr(library, "ggml_backend_score", None)
    score = int(function()) if function is not None else 1  # a module without a score runs anywhere
    close_library(library)
    return score, ""


def _scores(modules: list[ModuleFile], cache: Path | None) -> dict[ModuleFile, tuple[int | None, str]]:
    """Each module's score (or why it has none): remembered from an earlier process when the CPU and the
    module files are the same and the best module still says so, else asked of every module. The cache
    keeps scores by name, so modules of one name in two folders are always asked."""
    unique = len({m.name for m in modules}) == len(modules)
    entry = _variant_cache.entry_for(cache, modules) if unique else None
    remembered = _variant_cache.recall(entry, modules)
    if remembered is not None:
        best = max(modules, key=lambda m: (remembered[m.name], m.name))
        if _score(best) == (remembered[best.name], ""):
            return {m: (remembered[m.name], "") for m in modules}
    measured = {m: _score(m) for m in modules}
    if all(score is not None for score, _ in measured.values()):
        _variant_cache.remember(entry, {m.name: score or 0 for m, (score, _) in measured.items()})
    return measured


@dataclass
class CpuChoice:
    """What load_cpu_variant decided: the module loaded (None: no CPU backend) and a report row for each."""

    chosen: ModuleFile | None
    reports: list[ModuleReport]


def load_cpu_variant(
    ggml: ctypes.CDLL, bridge: LogBridge, modules: list[ModuleFile], selection: Selection, cache: Path | None
) -> CpuChoice:
    outcome: dict[ModuleFile, tuple[Status, str]] = {}
    unusable: set[ModuleFile] = set()
    measured = _scores([m for m in modules if not selection.refusal(m)], cache)
    scores = {m: score for m, (score, _) in measured.items()}
    candidates = []
    for module in modules:
        verdict = _verdict(module, selection, measured.get(module, (None, "")))
        if verdict is None:
            candidates.append(module)
            continue
        outcome[module] = verdict
        if module in measured and measured[module][1]:
            unusable.add(module)
    candidates.sort(key=lambda m: -(scores[m] or 0))  # stable: the package's own first among equals
    phantom = _forced_first(candidates, outcome, selection)
    chosen = None
    first: dict[str, ModuleFile] = {}  # of each name, the copy ahead of the others
    for module in candidates:
        original = first.setdefault(module.name, module)
        if original is not module:
            outcome[module] = ("not chosen", _duplicate(module, original, chosen))
            continue
        if chosen is not None:
            outcome[module] = ("not chosen", f"score {scores[module]} < {scores[chosen]} of {chosen.name}")
            continue
        with bridge.capture() as lines:
            registration = ggml.ggml_backend_load(str(module.path).encode())
        if not registration:
            outcome[module] = ("skipped", "; ".join(lines) or "ggml_backend_load returned NULL")
            unusable.add(module)
            continue
        chosen = module
        was_forced = selection.forced == module.name.removeprefix("ggml-cpu-")
        outcome[module] = ("loaded", f"forced by {CPU_VARIANT}" if was_forced else "best score")
    reports = [
        ModuleReport(m.name, "cpu", *outcome[m], str(m.path), m.source, score=scores.get(m), unusable=m in unusable)
        for m in modules
    ]
    return CpuChoice(chosen, reports + phantom)


def _verdict(module: ModuleFile, selection: Selection, measured: tuple[int | None, str]) -> tuple[Status, str] | None:
    """Why a module cannot be a candidate (None: it can)."""
    refusal = selection.refusal(module)
    score, error = measured
    if refusal:
        return "skipped", refusal
    if error:
        return "skipped", error
    if score == 0:
        return "skipped", _NO_INSTRUCTIONS
    if module.name.removeprefix("ggml-cpu-") in selection.excluded:
        return "skipped", f"excluded by {CPU_EXCLUDE}"
    return None


def _forced_first(
    candidates: list[ModuleFile], outcome: dict[ModuleFile, tuple[Status, str]], selection: Selection
) -> list[ModuleReport]:
    """Put the variant LLAMA_CPP_RUNTIME_CPU_VARIANT names first; when it cannot be, say why (a row of its
    own when no module has that name)."""
    if not selection.forced:
        return []
    name = f"ggml-cpu-{selection.forced}"
    forced = [m for m in candidates if m.name == name]
    if forced:
        candidates[:] = forced[:1] + [m for m in candidates if m is not forced[0]]
        return []
    refused = [m for m in outcome if m.name == name]
    why = outcome[refused[0]][1] if refused else "no such variant in the package"
    logger.warning("%s=%s refused: %s", CPU_VARIANT, selection.forced, why)
    for module in refused:
        outcome[module] = ("skipped", f"forced by {CPU_VARIANT} but refused: {why}")
    return [] if refused else [ModuleReport(name, "cpu", "skipped", f"forced by {CPU_VARIANT} but refused: {why}")]


def _duplicate(module: ModuleFile, original: ModuleFile, chosen: ModuleFile | None) -> str:
    """Why a second module of a name is not chosen: not its score (the same as the first's), but that it is the
    same module again (a plugin folder repeating the package's modules, say)."""
    loaded = ", which is loaded" if original is chosen else ""
    if _same_file(module.path, original.path):
        return f"a duplicate: the same file as {original.name} from {original.source}{loaded}"
    return f"a duplicate: another copy of {original.name} from {original.source} ({original.path}){loaded}"


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def no_cpu_backend(reports: list[ModuleReport], settings: Settings) -> str:
    """Why no CPU variant was loaded, naming the variable that removed it when one did ("" when one was)."""
    cpu = [r for r in reports if r.backend == "cpu" and r.path]
    if any(r.status == "loaded" for r in cpu):
        return ""
    if settings.backends is not None and "cpu" not in settings.backends:
        return f"{BACKENDS}={','.join(sorted(settings.backends))} leaves out cpu"
    if any(r.reason == f"excluded by {CPU_EXCLUDE}" for r in cpu):
        return f"{CPU_EXCLUDE}={','.join(sorted(settings.cpu_exclude))} excludes every variant this CPU runs"
    if not cpu:
        return "no CPU backend module in the package: reinstall llama-cpp-runtime"
    return "no CPU variant could be loaded: " + "; ".join(f"{r.name}: {r.reason}" for r in cpu)
