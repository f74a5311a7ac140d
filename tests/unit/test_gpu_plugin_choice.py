"""The loader's decisions about GPU plugin modules that need no GPU to test: the environment's selection
before the file is read, the CUDA choice's one ranking (shared with the doctor's advice), and the CUDA floor
phrased from the driver's CUDA version where the driver's own version is not read (Windows, WSL)."""

from __future__ import annotations

import struct
from pathlib import Path

from llama_cpp_runtime._gpu.advice import NvidiaFacts, advise_nvidia_gpus
from llama_cpp_runtime._gpu.nvidia import CudaDevice, CudaDriver, choose_module
from llama_cpp_runtime._gpu.sysfs import Snapshot
from llama_cpp_runtime._loading.cpu_variants import Selection
from llama_cpp_runtime._loading.cuda_choice import choose
from llama_cpp_runtime._loading.discovery import ModuleFile
from llama_cpp_runtime._loading.loader import _refusal
from llama_cpp_runtime._loading.stage_record import StageRecord
from llama_cpp_runtime._settings import read_settings


def test_a_plugin_the_environment_leaves_out_is_not_read_even_when_damaged(tmp_path: Path) -> None:
    truncated = tmp_path / "modules" / "libggml-vulkan.so"
    truncated.parent.mkdir()
    header = bytearray(b"\x7fELF\x02\x01\x01" + bytes(57))  # ELF64, little-endian
    struct.pack_into("<Q", header, 0x20, 64)  # the program headers start at 64 ...
    struct.pack_into("<HH", header, 0x36, 56, 1)  # ... and one of 56 bytes would follow: the file ends first
    truncated.write_bytes(bytes(header))
    module = ModuleFile("ggml-vulkan", truncated, "llama-cpp-runtime-vulkan")
    machine = Snapshot(tmp_path / "sys")

    left_out = Selection(read_settings({"LLAMA_CPP_RUNTIME_BACKENDS": "cpu"}))
    assert _refusal(module, StageRecord(), left_out, {}, machine) == ("not in LLAMA_CPP_RUNTIME_BACKENDS=cpu", False)
    why, damaged = _refusal(module, StageRecord(), Selection(read_settings({})), {}, machine)
    assert damaged and why.startswith(f"cannot be loaded: {truncated}: ")


def test_one_ranking_chooses_the_cuda_module_for_the_loader_and_the_advice() -> None:
    sm61, sm86, sm75, sm90 = (
        (("61-real", "70-real", "75-real", "80-real"), 12),
        (("86-real", "89-real", "90-real", "90-virtual"), 12),
        (("75-real", "80-real", "86-real", "89-real"), 13),
        (("90-real", "100-real", "120a-real", "100-virtual"), 13),
    )
    assert choose_module([sm61, sm86, sm75, sm90], [(8, 6), (12, 0)]) == 1  # both GPUs: only sm86's runs both
    assert choose_module([sm61, sm86, sm75, sm90], [(8, 6)]) == 2  # a tie in GPUs served: the newer CUDA
    assert choose_module([sm61, sm75], [(12, 0)]) is None  # no code for sm_120
    assert choose_module([((), 12), ((), 13)], []) == 1  # nothing recorded, no GPU: the newest CUDA
    facts = NvidiaFacts(cuda_version=13000, driver="580.65.06")
    assert [a.extra for a in advise_nvidia_gpus([(8, 6), (12, 0)], facts)] == ["cuda12-sm86", "cuda12-sm86"]


def test_a_cuda_module_too_new_for_the_driver_names_its_floor() -> None:
    module = ModuleFile("ggml-cuda", Path("/site/cuda13/modules/libggml-cuda.so"), "llama-cpp-runtime-cuda13-sm75")
    record = StageRecord(
        architectures=("75-real",),
        cuda_major=13,
        found=True,
        driver_floor={"nvidia-linux": "580", "nvidia-windows": "580"},
    )
    [verdict] = choose([module], [record], CudaDriver(12040, (CudaDevice(0, (8, 6), "0000:01:00.0"),)))
    assert verdict.status == "skipped"
    assert verdict.reason == (
        "driver supports CUDA 12.4; the module needs CUDA 13 (NVIDIA driver 580 or newer): update the NVIDIA driver"
    )
