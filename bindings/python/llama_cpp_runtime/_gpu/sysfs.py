"""The raw read of the PCI display devices in sysfs: functions and tuples only, because load() runs it in
every process (a dataclass costs more to define than this costs to run: about 0.5 ms for a few devices)."""

from __future__ import annotations

import os

NVIDIA, AMD, INTEL = 0x10DE, 0x1002, 0x8086
COMPUTE_VENDORS = frozenset({NVIDIA, AMD, INTEL})
PASSED_THROUGH = frozenset({"vfio-pci", "pci-stub"})  # bound for a virtual machine: not this system's to use

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


def usable_gpu_present(sysfs_root: str) -> bool:
    """Whether a GPU of a vendor ggml computes on is here for this system to use (load()'s first question)."""
    return any(v in COMPUTE_VENDORS and d not in PASSED_THROUGH for _, v, _, d in raw_display_devices(sysfs_root))


def _read(path: str) -> str:
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return ""
    try:
        return os.read(descriptor, 64).decode("ascii", errors="replace").strip()
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
