"""Which loaded device serves each GPU, and in words why none does: what load() warns about and what
require refuses with. In-process and cheap: the report load() made, and sysfs.

A device serves a GPU when ggml reports the GPU's PCI address as its device_id. A backend that reports
no address (older ggml, the test fixture) serves it when it offers any GPU device at all: nothing proves
the device is another GPU.
"""

from __future__ import annotations

import ctypes
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .._platform import IS_MACOS
from .._report import Device, ModuleReport, Report, backend_of
from .advice import Advice, NvidiaFacts, advise, vulkan_driver_hint
from .amd import kfd_gpus
from .catalogue import install
from .nvidia import driver_version
from .pci import PciGpu, display_devices
from .sysfs import AMD, NVIDIA

# The backends that can drive a GPU of each vendor, best first; any other vendor's: Vulkan.
CANDIDATES = {NVIDIA: ("cuda", "vulkan"), AMD: ("hip", "vulkan")}
NAMES = {"cuda": "CUDA", "hip": "ROCm/HIP", "vulkan": "Vulkan", "metal": "Metal"}
GPU_BACKENDS = ("metal",) if IS_MACOS else ("cuda", "hip", "vulkan")  # what "gpu" may be served by here


@dataclass(frozen=True)
class Service:
    device: str  # the ggml device serving the GPU ("CUDA0"), "" when none does
    module: str  # that device's module and the distribution it came from, or what each candidate said
    exact: bool = True  # False: the backend gives no PCI address, so the device is taken to be this GPU


def candidates(vendor_id: int) -> tuple[str, ...]:
    return CANDIDATES.get(vendor_id, ("vulkan",))


def service(bus_id: str, vendor_id: int, report: Report) -> Service:
    """What serves the GPU at `bus_id` now, or why nothing does."""
    backends = candidates(vendor_id)
    gpus = [d for d in report.devices if d.gpu]
    exact = sorted((d for d in gpus if bus_id and d.device_id == bus_id), key=lambda d: not d.preferred)
    if exact:
        return Service(exact[0].name, _module_of(exact[0], report))
    anonymous = [d for d in gpus if not d.device_id and backend_of(d.backend) in backends]
    if anonymous:
        return Service(anonymous[0].name, _module_of(anonymous[0], report), exact=False)
    return Service("", why_not(backends, report))


def _module_of(device: Device, report: Report) -> str:
    backend = backend_of(device.backend)
    module = next((m for m in report.modules if m.backend == backend and m.status == "loaded"), None)
    return f"{module.name} from {module.source}" if module else device.backend


def why_not(backends: tuple[str, ...], report: Report) -> str:
    """What each module of these backends said, the installed ones first: "ggml-cuda (llama-cpp-runtime-cuda12-sm86)
    skipped: NVIDIA driver 520.61.05 is older than 525.60.13 ..."; "no CUDA or Vulkan plugin is installed"."""
    rows = [m for m in report.modules if m.backend in backends and m.status != "absent"]
    said = [_said(m, report) for m in rows]
    missing = [NAMES[b] for b in backends if not any(m.backend == b for m in rows)]
    if missing:
        names = ", ".join(missing[:-1]) + " or " + missing[-1] if len(missing) > 1 else missing[0]
        said.append(f"no {names} plugin is installed")
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


def unserved(report: Report, sysfs_root: Path) -> list[Unserved]:
    """Every GPU here that no loaded device serves, with the advice the doctor would give from what load() knows."""
    found = []
    for gpu in display_devices(sysfs_root):
        if not gpu.usable:
            continue
        now = service(gpu.bus_id, gpu.vendor_id, report)
        if not now.device:
            found.append(Unserved(gpu, now.module, with_plugins(_advice(gpu, sysfs_root), gpu.vendor_id, report)))
    return found


def with_plugins(advice: Advice, vendor_id: int, report: Report) -> Advice:
    """The advice, knowing what is installed: a Vulkan plugin that loaded but offers no device for the GPU
    needs the GPU's Vulkan driver, not a second install."""
    loaded = any(m.backend == "vulkan" and m.status == "loaded" for m in report.modules)
    if advice.extra != "vulkan" or not loaded:
        return advice
    return Advice("", first=advice.first or vulkan_driver_hint(vendor_id), why="the Vulkan plugin is installed")


def _advice(gpu: PciGpu, sysfs_root: Path) -> Advice:
    if gpu.vendor_id == NVIDIA:
        return advise(NVIDIA, NvidiaFacts(driver=driver_version(sysfs_root), kernel_driver=gpu.driver))
    if gpu.vendor_id == AMD:
        gfx = next((k.gfx for k in kfd_gpus(sysfs_root) if k.bus_id == gpu.bus_id), "")
        return advise(AMD, gfx=gfx)
    return advise(gpu.vendor_id)


def unused_mac_gpu(report: Report) -> str:
    """macOS: every Mac has a GPU Metal drives, and ggml-metal is in the core wheel; why it serves no device
    ("" when it does). Not run here: this project's machines are Linux."""
    if any(backend_of(d.backend) == "metal" for d in report.devices):
        return ""
    why = why_not(("metal",), report).replace("no Metal plugin is installed", "ggml-metal is not in the package")
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


def missing_requirement(wanted: str, report: Report, sysfs_root: Path) -> str:
    """Why `wanted` (cuda, hip, vulkan, metal, gpu) serves no device, and the fix; "" when it serves one."""
    backends = GPU_BACKENDS if wanted == "gpu" else (wanted,)
    devices = [d for d in report.devices if d.gpu and backend_of(d.backend) in backends]
    if devices:
        return ""
    what = "GPU" if wanted == "gpu" else NAMES[wanted]
    here = [u for u in unserved(report, sysfs_root) if wanted == "gpu" or wanted in candidates(u.gpu.vendor_id)]
    fixes = [f"for the {u.gpu.vendor} GPU at {u.gpu.bus_id}: {u.advice.line()}" for u in here]
    if not fixes:
        gpus = [g for g in display_devices(sysfs_root) if g.usable]
        fixes = [_no_gpu_fix(wanted, gpus)]
    return f"no {what} device: {why_not(backends, report)}; {'; '.join(fixes)}"


def _no_gpu_fix(wanted: str, gpus: list[PciGpu]) -> str:
    if not gpus:
        return "and no GPU was found on this machine (`python -m llama_cpp_runtime doctor` lists what is there)"
    extra = {"cuda": "cuda13", "hip": "rocm", "vulkan": "vulkan", "metal": ""}.get(wanted, "")
    hint = f"{install(extra)}, " if extra else ""
    return f"{hint}`python -m llama_cpp_runtime doctor` names the wheel for each GPU here"
