"""The doctor's probes that load a driver library, each run by `python -m llama_cpp_runtime _gpu_probe <kind>`
in a child process and answered as JSON on stdout: a driver that faults or hangs there ends the child, not
the caller, and the doctor reports it as that probe failing."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import KINDS
from .metal import probe_metal
from .nvidia import DRIVER_LIBRARY, CudaDevice, CudaDriver, driver_version, probe_driver
from .vulkan import LOADER, VulkanDevice, probe_vulkan

__all__ = ["KINDS", "LIBRARIES", "nvidia_from", "run_probe", "vulkan_from"]


def run_probe(kind: str, sysfs_root: Path) -> dict[str, Any]:
    """What one probe found, as JSON-ready data: {"error": why} when the driver or loader is not there."""
    if kind == "nvidia":
        driver = probe_driver()
        version = driver_version(sysfs_root)
        if isinstance(driver, str):
            return {"error": driver, "driver_version": version}
        return {
            "cuda_version": driver.version,
            "devices": [asdict(d) for d in driver.devices],
            "driver_version": version,
        }
    found: list[Any] | str = probe_vulkan() if kind == "vulkan" else probe_metal()
    if isinstance(found, str):
        return {"error": found}
    return {"devices": [asdict(device) for device in found]}


def nvidia_from(answer: dict[str, Any]) -> CudaDriver | str:
    """The nvidia probe's answer as the driver it describes, or why there is none."""
    if "error" in answer:
        return str(answer["error"])
    devices = tuple(
        CudaDevice(d["index"], (d["capability"][0], d["capability"][1]), d["pci_bus_id"], d.get("name", ""))
        for d in answer["devices"]
    )
    return CudaDriver(int(answer["cuda_version"]), devices)


def vulkan_from(answer: dict[str, Any]) -> list[VulkanDevice] | str:
    if "error" in answer:
        return str(answer["error"])
    return [VulkanDevice(**device) for device in answer["devices"]]


LIBRARIES = {"nvidia": DRIVER_LIBRARY, "vulkan": LOADER, "metal": "Metal.framework"}
