"""Which CUDA module serves this machine when several are installed: one plugin per CUDA major
(cuda12, cuda13) and one wheel per architecture family within each. Every one of them registers the
backend "CUDA", so at most one is loaded: the one whose runtime the driver supports and whose code runs
on the most GPUs here, natively (a cubin) before by JIT (PTX), the newer CUDA major first.

The driver is asked directly (libcuda: cuDriverGetVersion, each device's compute capability); what a
module was compiled for is read from the stage.json its wheel carries beside modules/.
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .._platform import IS_MACOS, IS_WINDOWS
from .._report import Status
from .discovery import ModuleFile
from .stage_record import StageRecord

DRIVER_LIBRARY = "nvcuda.dll" if IS_WINDOWS else "libcuda.so.1"
_COMPUTE_CAPABILITY_MAJOR, _COMPUTE_CAPABILITY_MINOR = 75, 76  # CUdevice_attribute
_ARCHITECTURE = re.compile(r"^(sm_|compute_)?(\d+?)(\d)(a|f)?(?:-(real|virtual))?$")
_PREFIX_KIND = {"sm_": "real", "compute_": "virtual"}


@dataclass(frozen=True)
class CudaDevice:
    index: int
    capability: tuple[int, int]
    pci_bus_id: str  # lower case, "0000:01:00.0", as ggml's device_id; "" when the driver did not say

    @property
    def sm(self) -> str:
        return f"sm_{self.capability[0]}{self.capability[1]}"


@dataclass(frozen=True)
class CudaDriver:
    version: int  # cuDriverGetVersion: 1000 * major + 10 * minor
    devices: tuple[CudaDevice, ...]

    @property
    def cuda(self) -> str:
        return f"{self.version // 1000}.{self.version % 1000 // 10}"


def probe_driver() -> CudaDriver | str:
    """The driver's CUDA version and GPUs, or why there is no driver (the loader's words). The library
    stays loaded: the chosen module would load it next."""
    try:
        library = ctypes.CDLL(DRIVER_LIBRARY)
    except OSError as error:
        return f"no NVIDIA driver ({error})"
    version = ctypes.c_int(0)
    if library.cuDriverGetVersion(ctypes.byref(version)) != 0:
        return f"the NVIDIA driver ({DRIVER_LIBRARY}) did not give its CUDA version"
    if library.cuInit(0) != 0:  # CUDA_ERROR_NO_DEVICE among others: a driver without a usable GPU
        return CudaDriver(version.value, ())
    return CudaDriver(version.value, tuple(_devices(library)))


def _devices(library: ctypes.CDLL) -> list[CudaDevice]:
    count = ctypes.c_int(0)
    if library.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return []
    devices = []
    for index in range(count.value):
        handle, major, minor = ctypes.c_int(0), ctypes.c_int(0), ctypes.c_int(0)
        if library.cuDeviceGet(ctypes.byref(handle), index) != 0:
            continue
        library.cuDeviceGetAttribute(ctypes.byref(major), _COMPUTE_CAPABILITY_MAJOR, handle)
        library.cuDeviceGetAttribute(ctypes.byref(minor), _COMPUTE_CAPABILITY_MINOR, handle)
        bus_id = ctypes.create_string_buffer(64)
        found = library.cuDeviceGetPCIBusId(bus_id, len(bus_id), handle) == 0
        pci = bus_id.value.decode(errors="replace").lower() if found else ""
        devices.append(CudaDevice(index, (major.value, minor.value), pci))
    return devices


def fit(architectures: Sequence[str], capability: tuple[int, int]) -> int:
    """How well code compiled for `architectures` (CMake's 86-real, 100-virtual, bare 86 meaning both;
    or nvcc's sm_86, compute_80) runs on a GPU of `capability`: 3 a cubin for it, 2 a cubin of the same
    major and a lower minor (binary compatible), 1 PTX the driver can compile, 0 none.
    Architecture-specific code (sm_120a) runs on exactly its own capability."""
    best = 0
    for entry in architectures:
        match = _ARCHITECTURE.match(entry.strip())
        if not match:
            continue
        built = (int(match[2]), int(match[3]))
        specific = match[4] is not None
        kinds = {"real", "virtual"} if not match[1] and not match[5] else {match[5] or _PREFIX_KIND[match[1]]}
        if "virtual" in kinds and (built == capability or (not specific and built <= capability)):
            best = max(best, 1)
        if "real" in kinds and built == capability:
            best = 3
        elif "real" in kinds and not specific and built[0] == capability[0] and built[1] < capability[1]:
            best = max(best, 2)
    return best


@dataclass(frozen=True)
class Verdict:
    status: Status | None  # None: load it; else "skipped" or "not chosen"
    reason: str  # what it serves, or why it is not loaded


def verdicts(modules: Sequence[ModuleFile], records: Sequence[StageRecord]) -> dict[Path, Verdict]:
    """One verdict per CUDA module: at most one is loaded. Without this, a CUDA module built without VMM
    loads and says only that the driver is "insufficient", and two CUDA modules would both register "CUDA"."""
    if not modules or IS_MACOS:
        return {}
    driver = probe_driver()
    if isinstance(driver, str):
        return {m.path: Verdict("skipped", driver) for m in modules}
    return dict(zip((m.path for m in modules), choose(modules, records, driver), strict=True))


def choose(modules: Sequence[ModuleFile], records: Sequence[StageRecord], driver: CudaDriver) -> list[Verdict]:
    """One verdict per module, in the given order; at most one is chosen."""
    supported = driver.version // 1000
    runnable: list[tuple[tuple[int, int, int], int]] = []  # (rank, index)
    reasons: dict[int, str] = {}
    fits: dict[int, list[int]] = {}
    for index, record in enumerate(records):
        if record.cuda_major is not None and record.cuda_major > supported:
            reasons[index] = f"driver supports CUDA {driver.cuda}; the module needs CUDA {record.cuda_major}"
            continue
        fits[index] = [fit(record.architectures, d.capability) for d in driver.devices] if record.architectures else []
        if driver.devices and record.architectures and not any(fits[index]):
            built = ", ".join(record.architectures)
            here = ", ".join(sorted({d.sm for d in driver.devices}))
            reasons[index] = f"compiled for {built}; no GPU here can run it ({here})"
            continue
        rank = (sum(1 for f in fits[index] if f), record.cuda_major or 0, sum(fits[index]))
        runnable.append((rank, index))
    chosen = max(runnable, key=lambda entry: (entry[0], -entry[1]))[1] if runnable else None
    refused: Status = "skipped" if chosen is None else "not chosen"
    result = []
    for index, module in enumerate(modules):
        if index == chosen:
            result.append(Verdict(None, _serves(fits[index], driver)))
        elif index in reasons:
            result.append(Verdict(refused, reasons[index]))
        else:
            assert chosen is not None  # runnable and not chosen: another module was
            better = modules[chosen]
            name = better.source if better.source != module.source else str(better.path)
            result.append(Verdict(refused, f"driver supports CUDA {driver.cuda}; {name} serves this machine better"))
    return result


def _serves(fits: list[int], driver: CudaDriver) -> str:
    how = {3: "cubin", 2: "compatible cubin", 1: "PTX, compiled by the driver"}
    served = [f"{d.sm}: {how[f]}" for d, f in zip(driver.devices, fits, strict=False) if f]
    if not fits and driver.devices:
        served = ["architectures not recorded"]
    return f"driver supports CUDA {driver.cuda}" + (f"; {', '.join(served)}" if served else "")
