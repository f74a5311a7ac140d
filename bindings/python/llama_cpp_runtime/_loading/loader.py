"""The load sequence: core libraries, the log bridge, the best CPU variant, then every plugin module.

Every module found ends up in the report as loaded, skipped (with the loader's own words), not chosen
(a CPU variant that lost to a better one) or absent. Nothing is dropped silently, unlike ggml's own
`ggml_backend_load_all`, which searches the executable's directory and says nothing in release builds.
"""

from __future__ import annotations

import _ctypes
import contextlib
import ctypes
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._errors import AbiMismatch, LibraryNotFound, LoadError
from .._ggml import api as _api
from .._ggml.log import LogBridge
from .._llama.abi import RECORD_NAME, lay_out
from .._platform import IS_MACOS, IS_WINDOWS, allow_dll_directory, core_library_candidates, open_library
from .._report import Device, ModuleReport, Report, Status
from .._settings import BACKENDS, CPU_EXCLUDE, CPU_VARIANT, Settings
from . import variant_cache as _variant_cache
from .device_preference import mark_preferred, rank
from .discovery import CORE_SOURCE, Layout, ModuleFile, find_layout, modules_in, plugin_modules
from .elf import structural_problem
from .runtime_libs import nvidia_library_dirs, preload_runtime_libraries
from .stage_record import identity_conflict, read_json_object, read_stage_record

# In dependency order; llama and mtmd only when upstream builds them (a ggml-only upstream has neither).
CORE_LIBRARIES = ("ggml-base", "ggml", "llama", "mtmd")
OPTIONAL_CORE = frozenset({"llama", "mtmd"})
KNOWN_BACKENDS = ("cpu", "metal") if IS_MACOS else ("cpu", "cuda", "vulkan", "hip")
_LOADED_LINE = re.compile(r"^\w+: loaded \w+ backend from ")  # the loader's own success line

logger = logging.getLogger("llama_cpp_runtime")


@dataclass
class Loaded:
    """Everything load() keeps alive for the life of the process."""

    layout: Layout
    ggml: ctypes.CDLL
    llama: ctypes.CDLL | None  # its functions are declared by the model runtime, on first use
    libraries: dict[str, Path]
    handles: list[ctypes.CDLL]
    bridge: LogBridge
    report: Report
    llama_abi_problem: str | None  # checked once, at load; None when libllama's structs were laid out (or it is absent)
    llama_structs: dict[str, type[ctypes.Structure]] | None  # laid out from llama-abi.json, for the model runtime
    llama_abi_record: dict[str, Any] | None  # llama-abi.json, for checking another binding's structs too
    settings: Settings  # the environment's variables, read once


def load_everything(library_dir: Path | None, settings: Settings) -> Loaded:
    layout = find_layout(library_dir, settings)
    order = settings.backend_order
    allow_dll_directory(layout.lib)
    allow_dll_directory(layout.modules)
    handles: list[ctypes.CDLL] = []
    libraries: dict[str, Path] = {}
    for name in CORE_LIBRARIES:
        candidates = core_library_candidates(layout.lib, name)
        if not candidates:
            if name in OPTIONAL_CORE:
                continue
            raise LibraryNotFound(f"{name} is not in {layout.lib}")
        try:
            handles.append(open_library(candidates[0], global_symbols=True))
        except OSError as error:
            raise LoadError(f"cannot load {candidates[0]}: {error}") from None
        libraries[name] = candidates[0]
    ggml = _api.declare(handles[CORE_LIBRARIES.index("ggml")])
    bridge = LogBridge()
    llama = handles[list(libraries).index("llama")] if "llama" in libraries else None
    # llama_log_set sets ggml's callback too: one bridge for both, whichever library is asked.
    log_set = getattr(llama, "llama_log_set", None) or ggml.ggml_log_set
    log_set.argtypes, log_set.restype = [_api.LOG_CALLBACK, ctypes.c_void_p], None
    log_set(bridge.callback, None)

    selection = _Selection(settings)
    reports: list[ModuleReport] = []
    core_modules = modules_in(layout.modules, CORE_SOURCE)
    plugins, broken = plugin_modules(settings)
    reports += [ModuleReport(b.source, "?", "skipped", b.reason, source=b.source) for b in broken]
    cpu_modules = [m for m in core_modules + plugins if m.backend == "cpu"]
    chosen, cpu_reports = _load_cpu_variant(ggml, bridge, cpu_modules, selection, settings.cache_dir)
    reports += cpu_reports
    # In the preferred order: ggml enumerates devices as registered, and llama.cpp's first GPU is its main one.
    gpu_modules = [m for m in core_modules + plugins if m.backend != "cpu"]
    gpu_modules.sort(key=lambda m: rank(m.backend, order))
    upstream = read_stage_record(layout.root).upstream
    reports += _load_plugins(ggml, bridge, gpu_modules, selection, upstream)
    present = {r.backend for r in reports}
    reports += [
        ModuleReport(f"ggml-{backend}", backend, "absent", _install_hint(backend))
        for backend in KNOWN_BACKENDS
        if backend not in present
    ]
    abi_record = read_json_object(layout.root / RECORD_NAME) if "llama" in libraries else None
    abi_problem, llama_structs = _llama_structs(abi_record, layout.root) if "llama" in libraries else (None, None)
    report = Report(
        library_dir=str(layout.root),
        core_libraries=tuple((name, str(path)) for name, path in libraries.items()),
        upstream=upstream,
        llama_abi="" if "llama" not in libraries else abi_problem or "matches",
        ggml_commit=_api.ggml_commit(ggml),
        modules=tuple(reports),
        cpu_variant=chosen.name.removeprefix("ggml-cpu-") if chosen else None,
        cpu_variant_score=next((r.score for r in cpu_reports if chosen and r.name == chosen.name), None),
        devices=tuple(enumerate_devices(ggml, order)),
    )
    return Loaded(
        layout, ggml, llama, libraries, handles, bridge, report, abi_problem, llama_structs, abi_record, settings
    )


def _llama_structs(
    record: dict[str, Any] | None, root: Path
) -> tuple[str | None, dict[str, type[ctypes.Structure]] | None]:
    """libllama's structs laid out from the record, or why they cannot be (reported; refused at first use)."""
    try:
        return None, lay_out(record, str(root))
    except AbiMismatch as mismatch:
        return str(mismatch), None


def _install_hint(backend: str) -> str:
    if backend == "cpu":
        return "no CPU backend module in the package: reinstall llama-cpp-runtime"
    if backend == "cuda":
        return "not installed: pip install 'llama-cpp-runtime[cuda13]' (or [cuda12])"
    return f"not installed: pip install 'llama-cpp-runtime[{'rocm' if backend == 'hip' else backend}]'"


class _Selection:
    """The environment's say in what is loaded: backends allowed, a CPU variant forced or excluded."""

    def __init__(self, settings: Settings) -> None:
        self.backends = settings.backends
        self.forced = settings.cpu_variant
        self.excluded = settings.cpu_exclude

    def refusal(self, module: ModuleFile) -> str:
        if self.backends is not None and module.backend not in self.backends:
            return f"not in {BACKENDS}={','.join(sorted(self.backends))}"
        return ""


def _refuse_damaged(module: ModuleFile) -> str:
    problem = structural_problem(module.path) if not (IS_WINDOWS or IS_MACOS) else None
    return f"cannot be loaded: {module.path}: {problem}" if problem else ""


def _score(module: ModuleFile) -> tuple[int | None, str]:
    """ggml_backend_score() of a module, or why it could not be asked (the loader's message)."""
    damaged = _refuse_damaged(module)
    if damaged:
        return None, damaged
    try:
        library = open_library(module.path, global_symbols=False)
    except OSError as error:
        return None, f"cannot be loaded: {error}"
    function = getattr(library, "ggml_backend_score", None)
    score = int(function()) if function is not None else 1  # a module without a score runs anywhere
    _close(library)
    return score, ""


def _close(library: ctypes.CDLL) -> None:
    """Unmap a module that was only scored or probed, as ggml's loader does."""
    close = getattr(_ctypes, "FreeLibrary" if IS_WINDOWS else "dlclose", None)
    if close is not None:
        with contextlib.suppress(OSError):
            close(library._handle)


def _scores(modules: list[ModuleFile], cache: Path | None) -> dict[str, tuple[int | None, str]]:
    """Each module's score (or why it has none): remembered from an earlier process when the CPU and the
    module files are the same and the best module still says so, else asked of every module."""
    entry = _variant_cache.entry_for(cache, modules)
    remembered = _variant_cache.recall(entry, modules)
    if remembered is not None:
        best = max(modules, key=lambda m: (remembered[m.name], m.name))
        if _score(best) == (remembered[best.name], ""):
            return {name: (score, "") for name, score in remembered.items()}
    measured = {m.name: _score(m) for m in modules}
    if all(score is not None for score, _ in measured.values()):
        _variant_cache.remember(entry, {name: score or 0 for name, (score, _) in measured.items()})
    return measured


def _load_cpu_variant(
    ggml: ctypes.CDLL, bridge: LogBridge, modules: list[ModuleFile], selection: _Selection, cache: Path | None
) -> tuple[ModuleFile | None, list[ModuleReport]]:
    outcome: dict[str, tuple[Status, str]] = {}  # name -> (status, reason)
    scores: dict[str, int | None] = {}
    unusable: set[str] = set()
    candidates: list[ModuleFile] = []
    measured = _scores([m for m in modules if not selection.refusal(m)], cache)
    for module in modules:
        refusal = selection.refusal(module)
        if refusal:
            outcome[module.name] = ("skipped", refusal)
            continue
        scores[module.name], error = measured[module.name]
        variant = module.name.removeprefix("ggml-cpu-")
        if error:
            outcome[module.name] = ("skipped", error)
            unusable.add(module.name)
        elif scores[module.name] == 0:
            outcome[module.name] = ("skipped", "this CPU lacks instructions the variant was compiled for (score 0)")
        elif variant in selection.excluded:
            outcome[module.name] = ("skipped", f"excluded by {CPU_EXCLUDE}")
        else:
            candidates.append(module)
    candidates.sort(key=lambda m: (-(scores[m.name] or 0), m.name))
    if selection.forced:
        forced = [m for m in candidates if m.name == f"ggml-cpu-{selection.forced}"]
        name = f"ggml-cpu-{selection.forced}"
        if forced:
            candidates = forced + [m for m in candidates if m is not forced[0]]
        else:
            why = outcome.get(name, ("", "no such variant in the package"))[1]
            logger.warning("%s=%s refused: %s", CPU_VARIANT, selection.forced, why)
            outcome[name] = ("skipped", f"forced by {CPU_VARIANT} but refused: {why}")
    chosen = None
    for module in candidates:
        if chosen is None:
            with bridge.capture() as lines:
                registration = ggml.ggml_backend_load(str(module.path).encode())
            if registration:
                chosen = module
                was_forced = selection.forced == module.name.removeprefix("ggml-cpu-")
                why = f"forced by {CPU_VARIANT}" if was_forced else "best score"
                outcome[module.name] = ("loaded", why)
                continue
            outcome[module.name] = ("skipped", "; ".join(lines) or "ggml_backend_load returned NULL")
            unusable.add(module.name)
            continue
        best = scores[chosen.name]
        outcome[module.name] = ("not chosen", f"score {scores[module.name]} < {best} of {chosen.name}")
    reports = [
        ModuleReport(
            m.name,
            "cpu",
            *outcome[m.name],
            path=str(m.path),
            source=m.source,
            score=scores.get(m.name),
            unusable=m.name in unusable,
        )
        for m in modules
    ]
    reports += [
        ModuleReport(name, "cpu", status, reason)
        for name, (status, reason) in outcome.items()
        if name not in {m.name for m in modules}
    ]
    return chosen, reports


def _load_plugins(
    ggml: ctypes.CDLL,
    bridge: LogBridge,
    modules: list[ModuleFile],
    selection: _Selection,
    core_upstream: dict[str, str],
) -> list[ModuleReport]:
    outcomes: dict[Path, ModuleReport] = {}

    def report(module: ModuleFile, status: Status, reason: str, unusable: bool = False) -> None:
        outcomes[module.path] = ModuleReport(
            module.name, module.backend, status, reason, str(module.path), module.source, unusable=unusable
        )

    candidates = []
    records = {m.path: read_stage_record(m.path.parent.parent) for m in modules}  # a plugin's, beside modules/
    for module in modules:
        damaged = _refuse_damaged(module)
        refusal = selection.refusal(module) or damaged or identity_conflict(records[module.path], core_upstream)
        if refusal:
            report(module, "skipped", refusal, unusable=bool(damaged))
        else:
            candidates.append(module)
    cuda_modules = [m for m in candidates if m.backend == "cuda"]
    cuda = {}
    if cuda_modules:  # imported only then: most processes have no CUDA module to choose among
        from .cuda_choice import verdicts

        cuda = verdicts(cuda_modules, [records[m.path] for m in cuda_modules])
    loaded_from: dict[str, ModuleFile] = {}
    nvidia = nvidia_library_dirs() if candidates else []
    for module in candidates:
        verdict = cuda.get(module.path)
        chosen_because = verdict.reason if verdict else ""
        if verdict is not None and verdict.status is not None:
            report(module, verdict.status, verdict.reason)
            continue
        if module.name in loaded_from:
            report(module, "skipped", f"already loaded from {loaded_from[module.name].source}")
            continue
        preloaded = preload_runtime_libraries(module.path, nvidia)
        try:
            probe = open_library(module.path, global_symbols=False)  # the dynamic loader's own error text
        except OSError as error:
            report(module, "skipped", f"cannot be loaded: {error}")
            continue
        with bridge.capture() as lines:
            registration = ggml.ggml_backend_load(str(module.path).encode())
        _close(probe)
        if not registration:
            report(module, "skipped", "; ".join(lines) or "ggml_backend_load returned NULL")
            continue
        loaded_from[module.name] = module
        devices = ggml.ggml_backend_reg_dev_count(registration)
        detail = f"{devices} device(s)" + (f"; {chosen_because}" if chosen_because else "")
        detail += f"; runtime from {', '.join(preloaded)}" if preloaded else ""
        if devices == 0:
            said = [line for line in lines if not _LOADED_LINE.match(line)]
            detail += ": " + ("; ".join(said) or "the backend found no device")
        report(module, "loaded", detail)
    return [outcomes[m.path] for m in modules]


def enumerate_devices(ggml: ctypes.CDLL, order: tuple[str, ...]) -> list[Device]:
    devices = []
    for index in range(ggml.ggml_backend_dev_count()):
        handle = ggml.ggml_backend_dev_get(index)
        props = _api.DeviceProps()
        ggml.ggml_backend_dev_get_props(handle, ctypes.byref(props))
        registration = ggml.ggml_backend_dev_backend_reg(handle)
        devices.append(
            Device(
                name=(props.name or b"?").decode(errors="replace"),
                description=(props.description or b"").decode(errors="replace"),
                type=_api.DEVICE_TYPES.get(props.type, "?"),
                memory_free=props.memory_free,
                memory_total=props.memory_total,
                backend=ggml.ggml_backend_reg_name(registration).decode() if registration else "?",
                device_id=(props.device_id or b"").decode(errors="replace").lower(),
                _handle=handle,
            )
        )
    return mark_preferred(devices, order)
