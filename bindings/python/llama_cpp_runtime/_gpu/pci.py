"""The display devices on the PCI bus, read from sysfs (Linux): cheap enough for every load().

A device of class 0x03xxxx (VGA, XGA, 3D controller, other display controller) is a GPU when its vendor
makes GPUs that a ggml backend computes on (NVIDIA, AMD, Intel). Other display adapters, such as a
server's management controller (ASPEED) or a virtual machine's (virtio, QXL, VMware, Hyper-V), are
display-only and never reported as unused.

Discrete or integrated, by one rule: a device on bus 0 of its PCI domain is part of the processor or the
chipset (Intel's processor graphics sits at 00:02.0); one behind a bridge (bus 1 and up) is a card in a
slot. `boot_vga` is not used: it marks the firmware's console, which on a desktop is the discrete card.
AMD's processor graphics sits behind an internal bridge, so this rule calls it discrete; the doctor asks
Vulkan, whose device type is the driver's own word, and prefers it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .sysfs import AMD, COMPUTE_VENDORS, INTEL, NVIDIA, RawDevice, pci_address, raw_display_devices, usable

VENDORS = {
    NVIDIA: "NVIDIA",
    AMD: "AMD",
    INTEL: "Intel",
    0x1A03: "ASPEED",
    0x1AF4: "virtio",
    0x1B36: "Red Hat",
    0x15AD: "VMware",
    0x1414: "Microsoft",
    0x102B: "Matrox",
    0x1234: "QEMU",
    0x1013: "Cirrus Logic",
}

_BUS_ID = re.compile(r"^(?:([0-9a-fA-F]{1,8}):)?([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})\.([0-7])$")


@dataclass(frozen=True)
class PciGpu:
    bus_id: str  # "0000:01:00.0", as ggml's device_id and the CUDA driver write it
    vendor_id: int
    device_id: int
    integrated: bool
    rule: str  # why it counts as integrated or discrete
    driver: str  # the kernel driver bound to it (nvidia, amdgpu, i915, xe, nouveau); "" when none
    compute: bool  # a vendor ggml computes on; False: a display-only adapter

    @property
    def vendor(self) -> str:
        return VENDORS.get(self.vendor_id, f"vendor {self.vendor_id:04x}")

    @property
    def ids(self) -> str:
        return f"{self.vendor_id:04x}:{self.device_id:04x}"

    @property
    def kind(self) -> str:
        return "integrated" if self.integrated else "discrete"

    @property
    def usable(self) -> bool:
        """Whether this system could compute on it: a GPU vendor's, and not handed to a virtual machine."""
        return usable(self.vendor_id, self.driver)


def bus_id(text: str) -> str:
    """A PCI address in one spelling: "00000000:01:00.0" (NVML), "01:00.0" and "0000:01:00.0" are the same
    device; "" when the text is not an address."""
    match = _BUS_ID.match(text.strip())
    if not match:
        return ""
    domain, bus, device, function = (int(part or "0", 16) for part in match.groups())
    return pci_address(domain, bus, device, function)


def display_devices(sysfs_root: Path, raw: list[RawDevice] | None = None) -> list[PciGpu]:
    """Every display device under sysfs_root/bus/pci/devices (or of the raw tuples a Snapshot read there),
    discrete before integrated, then by address; [] where there is no such folder (macOS, Windows, a
    container without /sys)."""
    found = []
    for name, vendor, device, driver in raw_display_devices(str(sysfs_root)) if raw is None else raw:
        address = bus_id(name)
        if address:
            integrated, rule = _integration(address, vendor)
            found.append(PciGpu(address, vendor, device, integrated, rule, driver, vendor in COMPUTE_VENDORS))
    return sorted(found, key=lambda d: (d.integrated, d.bus_id))


def _integration(address: str, vendor: int) -> tuple[bool, str]:
    if vendor == INTEL and address.endswith(":00:02.0"):
        return True, "integrated: Intel's processor graphics address, 00:02.0"
    if address.split(":")[1] == "00":
        return True, "integrated: on PCI bus 0, part of the processor or chipset"
    return False, "discrete: behind a PCI bridge, a card in a slot"
