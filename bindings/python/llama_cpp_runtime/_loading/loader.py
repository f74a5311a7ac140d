"""The load sequence: core libraries, the log bridge, the best CPU variant, then every plugin module.

Every module found ends up in the report as loaded, skipped (with the loader's own words), not chosen
(a CPU variant that lost to a better one) or absent. Nothing is dropped silently, unlike ggml's own
`ggml_backend_load_all`, which searches the executable's directory and says nothing in release builds.
"""

from __future__ import annotations

import ctypes
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._errors import AbiMismatch, LibraryNotFound, LoadError
from .._ggml import api as _api
from .._ggml.log import LogBridge
from .._gpu.sysfs import NAMES, Snapshot, extra_for, install
from .._llama.abi import RECORD_NAME, lay_out
from .._platform import (
    IS_MACOS,
    allow_dll_directory,
    close_library,
    core_library_candidates,
    global_provider,
    open_library,
)
from .._report import Device, ModuleReport, Report, Status
from .._settings import PLUGIN_DIRS, Settings
from .cpu_variants import Selection, load_cpu_variant, no_cpu_backend
from .device_preference import mark_preferred, rank
from .discovery import (
    CORE_SOURCE,
    Layout,
    ModuleFile,
    find_layout,
    installed_version,
    modules_in,
    plugin_modules,
)
from .elf import refuse_damaged
from .installed import compare_with_record, unrecorded, unverified_note
from .runtime_libs import nvidia_library_dirs, preload_runtime_libraries
from .stage_record import (
    InstalledVersions,
    StageRecord,
    identity_conflict,
    read_json_object,
    read_stage_record,
)

# In dependency order; llama and mtmd only when upstream builds them (a ggml-only upstream has neither).
CORE_LIBRARIES = ("ggml-base", "ggml", "llama", "mtmd")
OPTIONAL_CORE = frozenset({"llama", "mtmd"})
# A function each core library defines (in real ggml and in the test fixture), to ask who provides it already.
FOREIGN_PROBES = (
    ("ggml-base", "ggml_backend_free"),
    ("ggml", "ggml_backend_load"),
    ("llama", "llama_print_system_info"),
)
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
    machine: Snapshot  # the machine as this load sees it (sysfs, driver versions), each part read on first use


def load_everything(library_dir: Path | None, settings: Settings) -> Loaded:
    layout = find_layout(library_dir, settings)
    order = settings.backend_order
    allow_dll_directory(layout.lib)
    allow_dll_directory(layout.modules)
    _refuse_foreign_copies(layout)
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

    selection = Selection(settings)
    reports: list[ModuleReport] = []
    core_modules = modules_in(layout.modules, CORE_SOURCE)
    plugins, broken = plugin_modules(settings)
    reports += [ModuleReport(b.source, "?", "skipped", b.reason, source=b.source) for b in broken]
    cpu_modules = [m for m in core_modules + plugins if m.backend == "cpu"]
    cpu = load_cpu_variant(ggml, bridge, cpu_modules, selection, settings.cache_dir)
    reports += cpu.reports
    # In the preferred order: ggml enumerates devices as registered, and llama.cpp's first GPU is its main one.
    gpu_modules = [m for m in core_modules + plugins if m.backend != "cpu"]
    gpu_modules.sort(key=lambda m: rank(m.backend, order))
    record = read_stage_record(layout.root)
    upstream = record.upstream
    machine = Snapshot(settings.sysfs_root)
    known = {layout.root: record}  # stage.json by folder: each read once (a GPU module in the core's modules/)
    reports += _load_plugins(ggml, bridge, gpu_modules, selection, upstream, known, machine)
    reports = compare_with_record(reports, core_modules, record, layout)
    present = {r.backend for r in reports}
    reports += [
        ModuleReport(f"ggml-{backend}", backend, "absent", _install_hint(backend))
        for backend in KNOWN_BACKENDS
        if backend not in present
    ]
    chosen = cpu.chosen
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
        cpu_variant_score=next((r.score for r in cpu.reports if chosen and r.path == str(chosen.path)), None),
        devices=tuple(enumerate_devices(ggml, order)),
        no_cpu_backend=no_cpu_backend(cpu.reports, settings),
    )
    return Loaded(
        layout,
        ggml,
        llama,
        libraries,
        handles,
        bridge,
        report,
        abi_problem,
        llama_structs,
        abi_record,
        settings,
        machine,
    )


def _refuse_foreign_copies(layout: Layout) -> None:
    """LoadError when another copy of a core library (another binding's) already provides its symbols to
    the whole process: this package's libraries would be bound to it, and ggml aborts or mixes two
    registries of backends."""
    for name, symbol in FOREIGN_PROBES:
        provider = global_provider(symbol)
        if provider is None:
            continue
        ours = {path.resolve() for path in core_library_candidates(layout.lib, name)}
        if provider.resolve() not in ours:
            raise LoadError(
                f"another {name} is already loaded in this process, with global symbols, from {provider}: this "
                f"package's libraries would be bound to it. Call llama_cpp_runtime.load() before what loads it "
                f'(for llama-cpp-python: llama_cpp_runtime.use_for("llama_cpp") before importing llama_cpp)'
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
    extra = extra_for(backend)
    if not extra:  # Metal: part of the core wheel
        return f"no {NAMES.get(backend, backend)} module in the package: reinstall llama-cpp-runtime"
    return f"not installed: {install(extra)}" + (" (or [cuda12])" if backend == "cuda" else "")


def _load_plugins(
    ggml: ctypes.CDLL,
    bridge: LogBridge,
    modules: list[ModuleFile],
    selection: Selection,
    core_upstream: dict[str, str],
    known: dict[Path, StageRecord],
    machine: Snapshot,
) -> list[ModuleReport]:
    """Every plugin module loaded or skipped, with why. `known` holds the stage.json of each folder read so
    far (the core's); it gains the plugins', one read per folder however many modules it holds."""
    outcomes: dict[Path, ModuleReport] = {}

    def report(module: ModuleFile, status: Status, reason: str, unusable: bool = False) -> None:
        outcomes[module.path] = ModuleReport(
            module.name, module.backend, status, reason, str(module.path), module.source, unusable=unusable
        )

    candidates = []
    for root in {m.path.parent.parent for m in modules} - known.keys():  # a plugin's, beside its modules/
        known[root] = read_stage_record(root)
    records = {m.path: known[m.path.parent.parent] for m in modules}
    for module in modules:
        refusal, damaged = _refusal(module, records[module.path], selection, core_upstream, machine)
        if refusal:
            report(module, "skipped", refusal, unusable=damaged)
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
        close_library(probe)
        if not registration:
            report(module, "skipped", "; ".join(lines) or "ggml_backend_load returned NULL")
            continue
        loaded_from[module.name] = module
        devices = ggml.ggml_backend_reg_dev_count(registration)
        detail = f"{devices} device(s)" + (f"; {chosen_because}" if chosen_because else "")
        detail += f"; runtime from {', '.join(preloaded)}" if preloaded else ""
        if devices == 0:
            detail += ": " + _why_no_device(module, lines)
        note = unverified_note(module, records[module.path], core_upstream)
        detail += f"; {note}" if note else ""
        report(module, "loaded", detail)
    return [outcomes[m.path] for m in modules]


def _why_no_device(module: ModuleFile, lines: list[str]) -> str:
    """What a module that registered no device said; the RPC module's devices are other machines', added later."""
    if module.backend == "rpc":
        return "another machine's devices once its server is added (Runtime.add_rpc_server, rpc-server)"
    said = [line for line in lines if not _LOADED_LINE.match(line)]
    return "; ".join(said) or "the backend found no device"


def _floor_refusal(module: ModuleFile, record: StageRecord, machine: Snapshot) -> str:
    """Why the driver here is older than the module needs; the floors are imported (and the snapshot reads
    a driver's version) only when a plugin records a floor: most processes have no GPU plugin."""
    if not record.driver_floor:
        return ""
    from .._gpu.floors import floor_refusal

    return floor_refusal(module.backend, record.driver_floor, record.cuda_major, machine)


def _refusal(
    module: ModuleFile, record: StageRecord, selection: Selection, core: dict[str, str], machine: Snapshot
) -> tuple[str, bool]:
    """Why a plugin module is not opened at all ("" when it may be), and whether the file itself is damaged:
    the environment left it out (asked first, before the file is read, as for the CPU variants), the file is
    broken, nothing says what it was built from, another upstream built it, or the driver is too old."""
    left_out = selection.refusal(module)
    if left_out:
        return left_out, False
    damaged = refuse_damaged(module.path)
    if damaged:
        return damaged, True
    why = unrecorded(module, record, core) or identity_conflict(record, core, _versions(module))
    return why or _floor_refusal(module, record, machine), False


def _versions(module: ModuleFile) -> InstalledVersions | None:
    """What a refusal of a plugin package's module names: its distribution's version and the core's."""
    if module.source in {CORE_SOURCE, PLUGIN_DIRS}:
        return None
    return InstalledVersions(
        module.source, installed_version(module.source, sys.path), installed_version(CORE_SOURCE, sys.path)
    )


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
