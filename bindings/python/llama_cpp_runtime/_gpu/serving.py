"""In words, why no loaded device serves a GPU: what load() warns about and what require refuses with.
In-process and cheap: the report load() made, and the machine's Snapshot (sysfs, read once per load).

A device serves a GPU when ggml reports the GPU's PCI address as its device_id. A backend that reports
no address (older ggml, the test fixture) serves it when it offers any GPU device at all: nothing proves
the device is another GPU (sysfs.serving_device, which load() asks first, importing this module only
when a GPU is not served).
"""

from __future__ import annotations

import ctypes
import os
import sys
from dataclasses import dataclass

from .._report import Device, ModuleReport, Report, backend_of
from .advice import Advice, NvidiaFacts, advise, vulkan_advice
from .catalogue import NAMES, extra_for, install
from .pci import PciGpu, display_devices
from .sysfs import AMD, GPU_BACKENDS, NVIDIA, Snapshot, candidates, requirement_met, serving_device


@dataclass(frozen=True)
class Service:
    device: str  # the ggml device serving the GPU ("CUDA0"), "" when none does
    module: str  # that device's module and the distribution it came from, or what each candidate said
    exact: bool = True  # False: the backend gives no PCI address, so the device is taken to be this GPU
    backend: str = ""  # the serving device's backend (cuda, hip, vulkan, metal); "" when none serves it


def service(bus_id: str, vendor_id: int, report: Report) -> Service:
    """What serves the GPU at `bus_id` now, or why nothing does."""
    device, exact = serving_device(bus_id, vendor_id, report.devices)
    if device is None:
        return Service("", why_not(candidates(vendor_id), report))
    return Service(device.name, _module_of(device, report), exact, backend_of(device.backend))


def _module_of(device: Device, report: Report) -> str:
    backend = backend_of(device.backend)
    module = next((m for m in report.modules if m.backend == backend and m.status == "loaded"), None)
    return f"{module.name} from {module.source}" if module else device.backend


def why_not(backends: tuple[str, ...], report: Report, absent: str = "no {names} plugin is installed") -> str:
    """What each module of these backends said, the installed ones first: "ggml-cuda (llama-cpp-runtime-cuda12-sm86)
    skipped: NVIDIA driver 520.61.05 is older than 525.60.13 ..."; "no CUDA or Vulkan plugin is installed"
    (`absent`, with {names}, words the backends no module was found of)."""
    rows = [m for m in report.modules if m.backend in backends and m.status != "absent"]
    said = [_said(m, report) for m in rows]
    missing = [NAMES[b] for b in backends if not any(m.backend == b for m in rows)]
    if missing:
        names = ", ".join(missing[:-1]) + " or " + missing[-1] if len(missing) > 1 else missing[0]
        said.append(absent.format(names=names))
    return "; ".join(said)


def _said(module: ModuleReport, report: Report) -> str:
    where = f"{module.name} ({module.source})" if module.source else module.name
    if module.status == "loaded":
        offered = [d.name for d in report.devices if backend_of(d.backend) == module.backend and d.gpu]
        if not offered:
            others = [f"{d.name} ({d.description})" for d in report.devices if backend_of(d.backend) == module.backend]
            if others:  # lavapipe made visible: a device, on the CPU
                return f"{where} loaded and offers no GPU device, only {', '.join(others)}, which runs on the CPU"
            return f"{where} loaded and offers no GPU device: {module.reason}"
        return f"{where} loaded; its devices ({', '.join(offered)}) are other GPUs: {module.reason}"
    return f"{where} {module.status}: {module.reason}"


@dataclass(frozen=True)
class Unserved:
    gpu: PciGpu
    why: str
    advice: Advice

    def line(self) -> str:
        gpu = self.gpu
        return f"{gpu.vendor} GPU {gpu.bus_id} ({gpu.ids}, {gpu.kind}) is not used: {self.why}: {self.advice.line()}"


def unserved(report: Report, machine: Snapshot) -> list[Unserved]:
    """Every GPU here that no loaded device serves, with the advice the doctor would give from what load()
    knows: the snapshot's NVIDIA driver version, KFD nodes and ROCm release, each read once."""
    raw = machine.unserved(report.devices)
    if not raw:
        return []
    gfx = {node.bus_id: node.gfx for node in machine.kfd} if any(r[1] == AMD for r in raw) else {}
    return [
        Unserved(
            gpu,
            why_not(candidates(gpu.vendor_id), report),
            with_plugins(_advice(gpu, machine, gfx), gpu.vendor_id, report),
        )
        for gpu in display_devices(machine.root, raw)
    ]


def with_plugins(advice: Advice, vendor_id: int, report: Report, seen_by_vulkan: bool | None = None) -> Advice:
    """The advice, knowing what is installed (and, for the doctor, whether the Vulkan loader lists the GPU)."""
    return vulkan_advice(advice, vendor_id, plugin_loaded=vulkan_loaded(report), seen_by_vulkan=seen_by_vulkan)


def vulkan_loaded(report: Report) -> bool:
    return any(m.backend == "vulkan" and m.status == "loaded" for m in report.modules)


def _advice(gpu: PciGpu, machine: Snapshot, gfx: dict[str, str]) -> Advice:
    if gpu.vendor_id == NVIDIA:
        return advise(NVIDIA, NvidiaFacts(driver=machine.nvidia, kernel_driver=gpu.driver))
    if gpu.vendor_id == AMD:
        return advise(AMD, gfx=gfx.get(gpu.bus_id, ""), rocm=machine.rocm)
    return advise(gpu.vendor_id)


def unused_mac_gpu(report: Report) -> str:
    """macOS: every Mac has a GPU Metal drives, and ggml-metal is in the core wheel; why it serves no device
    ("" when it does). Not run here: this project's machines are Linux."""
    if any(backend_of(d.backend) == "metal" for d in report.devices):
        return ""
    why = why_not(("metal",), report, absent="ggml-metal is not in the package")
    return f"this Mac's GPU is not used: {why}: reinstall llama-cpp-runtime"


def unused_windows_gpu(report: Report) -> str:
    """Windows has no sysfs: an installed NVIDIA driver (System32\\nvcuda.dll, only looked at) stands for its
    GPU; why no loaded device serves one ("" when one does, or there is no such driver). Written from the
    Win32 reference; not run here (no Windows)."""
    if not _nvidia_driver_installed() or any(
        d.gpu and backend_of(d.backend) in {"cuda", "vulkan"} for d in report.devices
    ):
        return ""
    why, advice = why_not(("cuda", "vulkan"), report), advise(NVIDIA, NvidiaFacts()).line()
    return f"an NVIDIA driver is installed (nvcuda.dll) and no plugin serves its GPU: {why}: {advice}"


def _nvidia_driver_installed() -> bool:
    if sys.platform != "win32":
        return False
    folder = ctypes.create_unicode_buffer(260)
    if not ctypes.windll.kernel32.GetSystemDirectoryW(folder, len(folder)):
        return False
    return os.path.exists(os.path.join(folder.value, "nvcuda.dll"))


def warning_text(found: list[Unserved]) -> str:
    """The one line load() warns with."""
    said = "; ".join(u.line() for u in found)
    return f"{said}. `python -m llama_cpp_runtime doctor` says more; LLAMA_CPP_RUNTIME_QUIET_GPU=1 silences this"


def missing_requirement(wanted: str, report: Report, machine: Snapshot, found: list[Unserved] | None = None) -> str:
    """Why `wanted` (cuda, hip, vulkan, metal, gpu) serves no device, and the fix; "" when it serves one.
    `found` is unserved(report, machine), when the caller has it already (several requirements)."""
    if requirement_met(wanted, report.devices):
        return ""
    backends = GPU_BACKENDS if wanted == "gpu" else (wanted,)
    what = "GPU" if wanted == "gpu" else NAMES[wanted]
    found = unserved(report, machine) if found is None else found
    here = [u for u in found if wanted == "gpu" or wanted in candidates(u.gpu.vendor_id)]
    fixes = [f"for the {u.gpu.vendor} GPU at {u.gpu.bus_id}: {u.advice.line()}" for u in here]
    if not fixes:
        fixes = [_no_gpu_fix(wanted, bool(machine.usable))]
    return f"no {what} device: {why_not(backends, report)}; {'; '.join(fixes)}"


def _no_gpu_fix(wanted: str, gpus: bool) -> str:
    if not gpus:
        return "and no GPU was found on this machine (`python -m llama_cpp_runtime doctor` lists what is there)"
    extra = extra_for(wanted)
    hint = f"{install(extra)}, " if extra else ""
    return f"{hint}`python -m llama_cpp_runtime doctor` names the wheel for each GPU here"
