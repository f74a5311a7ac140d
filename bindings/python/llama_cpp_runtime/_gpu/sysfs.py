"""What load() needs of the machine in every process: the raw read of sysfs, with functions, tuples and one
small class only (a dataclass costs more to define than this costs to run: about 0.5 ms for a few devices),
and the few names the loader's hints share with the catalogue (each module imported costs about a millisecond).

One Snapshot per load holds what was read (the PCI display devices, the NVIDIA driver's version, the KFD
nodes, the ROCm release), each read once and only when something asks: the driver floors, the unused-GPU
warning and require all look at the same snapshot. Whether a loaded device serves a GPU is decided here
from the raw tuples, so that the advice's modules are imported only when one is not served.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path

from .._platform import IS_MACOS, IS_WINDOWS
from .._report import Device, backend_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .amd import KfdGpu

NVIDIA, AMD, INTEL = 0x10DE, 0x1002, 0x8086
COMPUTE_VENDORS = frozenset({NVIDIA, AMD, INTEL})
PASSED_THROUGH = frozenset({"vfio-pci", "pci-stub"})  # bound for a virtual machine: not this system's to use
# The backends that can drive a GPU of each vendor, best first; any other vendor's: Vulkan.
CANDIDATES = {NVIDIA: ("cuda", "vulkan"), AMD: ("hip", "vulkan")}
GPU_BACKENDS = ("metal",) if IS_MACOS else ("cuda", "hip", "vulkan")  # what "gpu" may be served by here
CORE = "llama-cpp-runtime"
NAMES = {"cuda": "CUDA", "hip": "ROCm/HIP", "vulkan": "Vulkan", "metal": "Metal"}  # as the messages name them
# The core's extra that installs a backend's plugin when nothing more is known: CUDA's newest family. Kept
# here, not in the catalogue, because every load() names it for an absent backend; the catalogue's test
# proves it agrees with the wheels.
_EXTRA_OF_BACKEND = {"cuda": "cuda13", "hip": "rocm", "vulkan": "vulkan"}
ROCM_VERSION_FILE = "/opt/rocm/.info/version"  # "6.2.0-66": written by every ROCm install
DEFAULT_ROOT = "/sys"
_VERSION = re.compile(r"\d+(?:\.\d+)*")

RawDevice = tuple[str, int, int, str]  # the folder's name ("0000:01:00.0"), vendor, device, kernel driver


def raw_display_devices(sysfs_root: str) -> list[RawDevice]:
    """Each PCI device of class 0x03xxxx under sysfs_root/bus/pci/devices; [] without that folder."""
    folder = os.path.join(sysfs_root, "bus", "pci", "devices")
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    found = []
    for name in names:
        path = os.path.join(folder, name)
        if not _read(os.path.join(path, "class")).startswith("0x03"):  # most devices stop here
            continue
        vendor, device = _hex(_read(os.path.join(path, "vendor"))), _hex(_read(os.path.join(path, "device")))
        if vendor is not None and device is not None:
            found.append((name, vendor, device, _link_name(os.path.join(path, "driver"))))
    return found


def usable(vendor_id: int, kernel_driver: str) -> bool:
    """Whether this system could compute on a display device: a GPU vendor's, and not handed to a virtual machine."""
    return vendor_id in COMPUTE_VENDORS and kernel_driver not in PASSED_THROUGH


def candidates(vendor_id: int) -> tuple[str, ...]:
    """The backends that can drive a GPU of this vendor, best first."""
    return CANDIDATES.get(vendor_id, ("vulkan",))


def serving_device(bus_id: str, vendor_id: int, devices: Iterable[Device]) -> tuple[Device | None, bool]:
    """The loaded GPU device serving the GPU at `bus_id` (the preferred one when two backends drive it), and
    whether by its address (True) or as the one GPU device of a candidate backend that gives no address
    (False: nothing proves it is another GPU); (None, True) when none does."""
    gpus = [d for d in devices if d.gpu]
    exact = sorted((d for d in gpus if bus_id and d.device_id == bus_id), key=lambda d: not d.preferred)
    if exact:
        return exact[0], True
    backends = candidates(vendor_id)
    anonymous = next((d for d in gpus if not d.device_id and backend_of(d.backend) in backends), None)
    return anonymous, anonymous is None


def pci_address(domain: int, bus: int, device: int, function: int) -> str:
    """A PCI address as sysfs, ggml's device_id and the CUDA driver write it: "0000:01:00.0"."""
    return f"{domain:04x}:{bus:02x}:{device:02x}.{function:x}"


def extra_for(backend: str) -> str:
    """The extra that installs a backend's plugin when nothing more is known ("" for Metal: the core has it)."""
    return _EXTRA_OF_BACKEND.get(backend, "")


def install(extra: str) -> str:
    """The command that installs an extra of the core, quoted for a POSIX shell and for PowerShell alike."""
    return f"pip install '{CORE}[{extra}]'"


def requirement_met(wanted: str, devices: Iterable[Device]) -> bool:
    """Whether a GPU device of `wanted`'s backends (cuda, hip, vulkan, metal; gpu: any here) is loaded."""
    backends = GPU_BACKENDS if wanted == "gpu" else (wanted,)
    return any(d.gpu and backend_of(d.backend) in backends for d in devices)


def leading_version(text: str) -> str | None:
    """The version a text starts with ("6.2.0-66" -> "6.2.0", "525.60.13" -> itself); None when none."""
    match = _VERSION.match(text.strip())
    return match[0] if match else None


def rocm_version_file(sysfs_root: str | os.PathLike[str]) -> str:
    """Where the ROCm release is written: /opt/rocm/.info/version, or for a fake machine (a sysfs root other
    than /sys) <root>/opt/rocm/.info/version, so that the host's own ROCm never leaks into it."""
    root = os.fspath(sysfs_root)
    return ROCM_VERSION_FILE if root == DEFAULT_ROOT else os.path.join(root, ROCM_VERSION_FILE.lstrip("/"))


class Snapshot:
    """The machine as one load() sees it: each part read at most once, on first use."""

    def __init__(self, sysfs_root: str | os.PathLike[str], rocm_file: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(sysfs_root)
        self.rocm_file = os.fspath(rocm_file) if rocm_file is not None else rocm_version_file(sysfs_root)

    @cached_property
    def pci(self) -> list[RawDevice]:
        """Every PCI display device, as raw tuples."""
        return raw_display_devices(os.fspath(self.root))

    @cached_property
    def usable(self) -> list[RawDevice]:
        """The display devices this system could compute on."""
        return [raw for raw in self.pci if usable(raw[1], raw[3])]

    @cached_property
    def nvidia(self) -> str | None:
        """The NVIDIA driver's own version ("550.54.14") from its kernel module's sysfs entry; None when nothing
        says it, and always on Windows, whose version NVML would give only by loading nvml.dll in this process
        (the CUDA module's floor is phrased from the driver's CUDA version when the module is chosen instead)."""
        if IS_WINDOWS:
            return None
        return _read(os.path.join(self.root, "module", "nvidia", "version"), 256) or None

    @cached_property
    def kfd(self) -> list[KfdGpu]:
        """Every GPU node of AMD's KFD topology."""
        from .amd import kfd_gpus

        return kfd_gpus(self.root)

    @cached_property
    def rocm(self) -> str | None:
        """The installed ROCm release ("6.2.0"), or None when there is none in its usual place."""
        return leading_version(_read(self.rocm_file, 256))

    def unserved(self, devices: Iterable[Device]) -> list[RawDevice]:
        """The usable GPUs no loaded device serves (usually none: then nothing more is imported)."""
        listed = list(devices)
        return [raw for raw in self.usable if serving_device(raw[0], raw[1], listed)[0] is None]


def _read(path: str, size: int = 64) -> str:
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return ""
    try:
        return os.read(descriptor, size).decode("ascii", errors="replace").strip()
    except OSError:
        return ""
    finally:
        os.close(descriptor)


def _link_name(path: str) -> str:
    """The last part of where a symbolic link points (sysfs's driver link names the driver); "" without one."""
    try:
        return os.path.basename(os.readlink(path))
    except OSError:
        return ""


def _hex(text: str) -> int | None:
    try:
        return int(text, 16)
    except ValueError:
        return None
