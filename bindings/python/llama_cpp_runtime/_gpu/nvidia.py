"""NVIDIA's driver, asked directly: its CUDA version and each GPU's compute capability through the driver
API (libcuda: cuDriverGetVersion, cuDeviceGetAttribute), its own version from the kernel module (sysfs) or,
on Windows, from NVML; and NVIDIA's rules for which compiled code runs on which GPU.

Loading libcuda can fault inside a broken driver: load() does it only to choose among installed CUDA
modules (which would load it next anyway), and the doctor only in a child process.
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .._platform import IS_WINDOWS
from .sysfs import Snapshot

DRIVER_LIBRARY = "nvcuda.dll" if IS_WINDOWS else "libcuda.so.1"
NVML_LIBRARY = "nvml.dll"  # in System32 since driver 4xx; Linux reads the kernel module's version instead
_COMPUTE_CAPABILITY_MAJOR, _COMPUTE_CAPABILITY_MINOR = 75, 76  # CUdevice_attribute
_ARCHITECTURE = re.compile(r"^(sm_|compute_)?(\d+?)(\d)(a|f)?(?:-(real|virtual))?$")
_PREFIX_KIND = {"sm_": "real", "compute_": "virtual"}


@dataclass(frozen=True)
class CudaDevice:
    index: int
    capability: tuple[int, int]
    pci_bus_id: str  # lower case, "0000:01:00.0", as ggml's device_id; "" when the driver did not say
    name: str = ""  # cuDeviceGetName: "NVIDIA GeForce RTX 3090"

    @property
    def sm(self) -> str:
        return sm(self.capability)


@dataclass(frozen=True)
class CudaDriver:
    version: int  # cuDriverGetVersion: 1000 * major + 10 * minor
    devices: tuple[CudaDevice, ...]

    @property
    def cuda(self) -> str:
        return cuda_text(self.version)


def sm(capability: tuple[int, int]) -> str:
    """A compute capability as nvcc names its code: (8, 6) -> "sm_86"."""
    return f"sm_{capability[0]}{capability[1]}"


def cuda_text(version: int | None) -> str:
    """cuDriverGetVersion's number as CUDA's version: 12040 -> "12.4"; "?" when unknown."""
    return "?" if version is None else f"{version // 1000}.{version % 1000 // 10}"


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
        devices.append(CudaDevice(index, (major.value, minor.value), pci, _name(library, handle)))
    return devices


def _name(library: ctypes.CDLL, handle: ctypes.c_int) -> str:
    get_name = getattr(library, "cuDeviceGetName", None)  # every real driver has it; a stand-in may not
    buffer = ctypes.create_string_buffer(256)
    if get_name is None or get_name(buffer, len(buffer), handle) != 0:
        return ""
    return buffer.value.decode(errors="replace")


def driver_version(sysfs_root: Path) -> str | None:
    """The NVIDIA driver's own version ("550.54.14"), or None when nothing says it (no driver; WSL, whose
    driver is Windows's). Linux: the kernel module's sysfs entry, read without loading anything."""
    return _nvml_driver_version() if IS_WINDOWS else Snapshot(sysfs_root).nvidia


def _nvml_driver_version() -> str | None:
    """Windows: NVML's nvmlSystemGetDriverVersion. Written from NVML's reference, not run here (no Windows)."""
    try:
        nvml = ctypes.CDLL(NVML_LIBRARY)
    except OSError:
        return None
    if nvml.nvmlInit_v2() != 0:
        return None
    buffer = ctypes.create_string_buffer(96)  # NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE is 80
    try:
        return buffer.value.decode() if nvml.nvmlSystemGetDriverVersion(buffer, len(buffer)) == 0 else None
    finally:
        nvml.nvmlShutdown()


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


HOW = {3: "cubin", 2: "compatible cubin", 1: "PTX, compiled by the driver"}  # what fit()'s numbers mean


def choose_module(
    modules: Sequence[tuple[Sequence[str], int | None]], capabilities: Sequence[tuple[int, int]]
) -> int | None:
    """Which of several CUDA modules, each (architectures, CUDA major), serves GPUs of these capabilities:
    the one whose code runs on the most of them, then the newer CUDA major, then the better code (a cubin
    before PTX); the first of equals. None when none runs on any (a module that recorded no architectures
    runs anywhere, for all anyone knows). The loader's choice (cuda_choice) and the doctor's advice both ask
    this, each having left out the modules the driver does not run."""
    best: tuple[tuple[int, int, int], int] | None = None
    for index, (architectures, cuda_major) in enumerate(modules):
        fits = [fit(architectures, capability) for capability in capabilities] if architectures else []
        if capabilities and architectures and not any(fits):
            continue
        rank = (sum(1 for f in fits if f), cuda_major or 0, sum(fits))
        if best is None or rank > best[0]:
            best = (rank, index)
    return None if best is None else best[1]
