"""AMD GPUs as ROCm sees them: each GPU node of the KFD topology (sysfs, no library loaded) with its gfx
target, and the ROCm release installed, which the ROCm plugin's runtime libraries come from."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .sysfs import ROCM_VERSION_FILE, leading_version, pci_address


@dataclass(frozen=True)
class KfdGpu:
    bus_id: str  # "0000:03:00.0"
    gfx: str  # "gfx1100"
    vendor_id: int
    device_id: int


def gfx_name(version: int) -> str:
    """KFD's gfx_target_version as LLVM names the target: 110000 -> gfx1100, 90010 -> gfx90a, 90402 -> gfx942."""
    major, minor, stepping = version // 10000, version // 100 % 100, version % 100
    return f"gfx{major}{minor:x}{stepping:x}"


def kfd_gpus(sysfs_root: Path) -> list[KfdGpu]:
    """Every GPU node under sysfs_root/class/kfd/kfd/topology/nodes (CPU nodes have gfx_target_version 0);
    [] without the amdgpu driver's KFD."""
    folder = sysfs_root / "class" / "kfd" / "kfd" / "topology" / "nodes"
    try:
        nodes = sorted(os.listdir(folder))
    except OSError:
        return []
    found = []
    for node in nodes:
        properties = _properties(folder / node / "properties")
        version = properties.get("gfx_target_version", 0)
        if version:
            found.append(_gpu(properties, version))
    return found


def _gpu(properties: dict[str, int], version: int) -> KfdGpu:
    location = properties.get("location_id", 0)  # bus << 8 | device << 3 | function
    domain = properties.get("domain", 0)
    bus_id = pci_address(domain, location >> 8, location >> 3 & 0x1F, location & 7)
    return KfdGpu(bus_id, gfx_name(version), properties.get("vendor_id", 0), properties.get("device_id", 0))


def _properties(path: Path) -> dict[str, int]:
    """A KFD properties file: one "name value" pair a line, every value an integer."""
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return {}
    pairs = (line.split() for line in text.splitlines())
    return {pair[0]: int(pair[1]) for pair in pairs if len(pair) == 2 and re.fullmatch(r"\d+", pair[1])}


def rocm_version(version_file: Path = Path(ROCM_VERSION_FILE)) -> str | None:
    """The installed ROCm release ("6.2.0"), or None when there is none in its usual place."""
    try:
        text = version_file.read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    return leading_version(text)
