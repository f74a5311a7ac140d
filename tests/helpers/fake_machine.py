"""Machines this one is not: a fake sysfs tree (LLAMA_CPP_RUNTIME_SYSFS_ROOT points the binding at it) with
PCI display devices, the NVIDIA kernel module's version and AMD's KFD topology, and the stand-in libcuda
(tests/fixtures/nvidia-driver) answering for the same GPUs. Together they make the machine the doctor,
load()'s warning and require see, without a GPU."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

FAKE_DRIVER = Path(__file__).resolve().parents[1] / "fixtures" / "nvidia-driver" / "libcuda.c"
CLASSES = {"vga": "0x030000", "3d": "0x030200", "bridge": "0x060400", "network": "0x020000"}


@dataclass(frozen=True)
class FakeGpu:
    bus_id: str  # "0000:01:00.0"
    vendor: int  # 0x10de
    device: int
    driver: str = ""  # the kernel driver bound: nvidia, amdgpu, i915, nouveau; "" none
    pci_class: str = "vga"
    capability: str = ""  # NVIDIA: "8.6", what the stand-in libcuda reports for it
    gfx_target_version: int = 0  # AMD: KFD's 110000 for gfx1100


def fake_sysfs(root: Path, gpus: list[FakeGpu], *, nvidia_driver: str = "", rocm: str = "") -> Path:
    """root laid out as /sys: bus/pci/devices/<address>/{class,vendor,device,driver}, a host bridge and a
    network card beside the GPUs, module/nvidia/version, class/kfd/kfd/topology/nodes/<n>/properties; and
    the ROCm release `rocm` in opt/rocm/.info/version, where the binding looks on a fake machine (the
    host's own /opt/rocm never counts there)."""
    devices = root / "bus" / "pci" / "devices"
    drivers = root / "bus" / "pci" / "drivers"
    others = [
        FakeGpu("0000:00:00.0", 0x8086, 0x0D57, pci_class="bridge"),
        FakeGpu("0000:00:03.0", 0x1AF4, 0x1041, pci_class="network"),
    ]
    for gpu in [*others, *gpus]:
        folder = devices / gpu.bus_id
        folder.mkdir(parents=True)
        (folder / "class").write_text(CLASSES[gpu.pci_class] + "\n")
        (folder / "vendor").write_text(f"0x{gpu.vendor:04x}\n")
        (folder / "device").write_text(f"0x{gpu.device:04x}\n")
        if gpu.driver:
            (drivers / gpu.driver).mkdir(parents=True, exist_ok=True)
            os.symlink(os.path.relpath(drivers / gpu.driver, folder), folder / "driver")
    if nvidia_driver:
        (root / "module" / "nvidia").mkdir(parents=True)
        (root / "module" / "nvidia" / "version").write_text(nvidia_driver + "\n")
    _kfd(root, [gpu for gpu in gpus if gpu.gfx_target_version])
    if rocm:
        (root / "opt" / "rocm" / ".info").mkdir(parents=True)
        (root / "opt" / "rocm" / ".info" / "version").write_text(rocm + "\n")
    return root


def _kfd(root: Path, gpus: list[FakeGpu]) -> None:
    if not gpus:
        return
    nodes = root / "class" / "kfd" / "kfd" / "topology" / "nodes"
    (nodes / "0").mkdir(parents=True)
    (nodes / "0" / "properties").write_text("cpu_cores_count 16\nsimd_count 0\ngfx_target_version 0\n")
    for index, gpu in enumerate(gpus, start=1):
        domain, bus, rest = gpu.bus_id.split(":")
        device, function = rest.split(".")
        location = int(bus, 16) << 8 | int(device, 16) << 3 | int(function)
        (nodes / str(index)).mkdir()
        (nodes / str(index) / "properties").write_text(
            f"cpu_cores_count 0\nsimd_count 192\ngfx_target_version {gpu.gfx_target_version}\n"
            f"vendor_id {gpu.vendor}\ndevice_id {gpu.device}\nlocation_id {location}\ndomain {int(domain, 16)}\n"
        )


def stand_in_libcuda(directory: Path) -> Path:
    """The stand-in libcuda.so.1 compiled into `directory` (put it on LD_LIBRARY_PATH)."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "libcuda.so.1"
    if not target.exists():
        compiler = shutil.which("cc")
        assert compiler, "the stand-in libcuda needs a C compiler"
        subprocess.run(
            [compiler, "-shared", "-fPIC", "-Wl,-soname,libcuda.so.1", "-o", str(target), str(FAKE_DRIVER)],
            check=True,
            timeout=60,
        )
    return directory


def machine_env(sysfs: Path, gpus: list[FakeGpu], driver_dir: Path | None, cuda_version: int = 0) -> dict[str, str]:
    """The variables that make a process see the fake machine: the sysfs root, and when NVIDIA GPUs are
    on it, the stand-in libcuda reporting them (FAKE_CUDA_DEVICES) under `cuda_version` (12040: CUDA 12.4)."""
    env = {"LLAMA_CPP_RUNTIME_SYSFS_ROOT": str(sysfs)}
    nvidia = [g for g in gpus if g.capability]
    if driver_dir is not None:
        env["LD_LIBRARY_PATH"] = str(driver_dir)
        env["FAKE_CUDA_DEVICES"] = ",".join(f"{g.capability}@{g.bus_id}" for g in nvidia)
        if cuda_version:
            env["FAKE_CUDA_DRIVER_VERSION"] = str(cuda_version)
    return env
