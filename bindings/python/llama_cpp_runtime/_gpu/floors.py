"""The oldest driver each GPU plugin runs on, as its build recorded it (stage.json's "driver_floor", from
the preset), compared with the installed one before the module is opened: a CUDA runtime newer than the
driver fails inside ggml with "CUDA driver version is insufficient", after the library was loaded.

NVIDIA's floors are its minimum drivers for CUDA minor version compatibility (CUDA Toolkit release notes,
"CUDA Toolkit and Minimum Required Driver Version for CUDA Minor Version Compatibility"; CUDA Compatibility
guide): CUDA 12.x needs 525.60.13 on Linux, 528.33 on Windows; CUDA 13.x needs 580.
"""

from __future__ import annotations

from collections.abc import Mapping

from .._platform import IS_WINDOWS
from .sysfs import Snapshot, leading_version

NVIDIA_LINUX, NVIDIA_WINDOWS, ROCM = "nvidia-linux", "nvidia-windows", "rocm"
NVIDIA_HERE = NVIDIA_WINDOWS if IS_WINDOWS else NVIDIA_LINUX


def version_key(text: str) -> tuple[int, ...] | None:
    """ "525.60.13" -> (525, 60, 13); None when the text does not start with a version."""
    version = leading_version(text)
    return tuple(int(part) for part in version.split(".")) if version else None


def older(installed: str, floor: str) -> bool:
    """Whether `installed` is below `floor` ("580" counts as 580.0.0); False when either is not a version."""
    have, need = version_key(installed), version_key(floor)
    if have is None or need is None:
        return False
    width = max(len(have), len(need))
    return have + (0,) * (width - len(have)) < need + (0,) * (width - len(need))


def floor_refusal(backend: str, floors: Mapping[str, str], cuda_major: int | None, drivers: Snapshot) -> str:
    """Why a module cannot run under the installed driver, naming both versions ("" when it can, or when
    either version is unknown: then the dynamic loader and the CUDA version check have their say). The
    snapshot reads each driver's version once, when a floor first asks for it."""
    if backend == "cuda" and (floor := floors.get(NVIDIA_HERE)) and drivers.nvidia and older(drivers.nvidia, floor):
        toolkit = f"CUDA {cuda_major}" if cuda_major else "the CUDA it was built with"
        return (
            f"NVIDIA driver {drivers.nvidia} is older than {floor}, the oldest that runs {toolkit}: "
            f"update the NVIDIA driver to {floor} or newer"
        )
    if backend == "hip" and (floor := floors.get(ROCM)) and drivers.rocm and older(drivers.rocm, floor):
        return (
            f"ROCm {drivers.rocm} is older than {floor}, the oldest this module runs on: install ROCm {floor} or newer"
        )
    return ""
