"""How the binding sees a machine's GPUs without loading anything: sysfs's PCI display devices and KFD nodes,
the driver versions against the plugins' floors, the wheel advised for each GPU, and the settings that
make a process fail closed, stay quiet or look at a fake machine."""

from __future__ import annotations

import json
from pathlib import Path

import llama_cpp_runtime as lcr
import pytest
from helpers.fake_machine import FakeGpu, fake_sysfs
from llama_cpp_runtime._gpu.advice import NvidiaFacts, advise, advise_amd, advise_nvidia_gpus
from llama_cpp_runtime._gpu.amd import gfx_name, kfd_gpus, rocm_version
from llama_cpp_runtime._gpu.findings import DoctorProbe, DoctorReport
from llama_cpp_runtime._gpu.floors import floor_refusal, older
from llama_cpp_runtime._gpu.machine import Machine
from llama_cpp_runtime._gpu.nvidia import driver_version
from llama_cpp_runtime._gpu.pci import bus_id, display_devices
from llama_cpp_runtime._gpu.serving import missing_requirement, service, unserved, unused_mac_gpu, why_not
from llama_cpp_runtime._gpu.sysfs import NVIDIA, Snapshot
from llama_cpp_runtime._report import Device, ModuleReport, Report
from llama_cpp_runtime._settings import read_settings

RTX_3090 = FakeGpu("0000:01:00.0", 0x10DE, 0x2204, "nvidia", pci_class="vga")
A100 = FakeGpu("0000:81:00.0", 0x10DE, 0x20B0, "nvidia", pci_class="3d")
IGPU = FakeGpu("0000:00:02.0", 0x8086, 0xA780, "i915")
APU = FakeGpu("0000:00:08.1", 0x1002, 0x15BF, "amdgpu")
RX_7900 = FakeGpu("0000:03:00.0", 0x1002, 0x744C, "amdgpu", gfx_target_version=110000)
BMC = FakeGpu("0000:05:00.0", 0x1A03, 0x2000, "ast")
PASSED = FakeGpu("0000:06:00.0", 0x10DE, 0x2204, "vfio-pci")


def test_display_devices_are_read_discrete_first_with_the_rule_said(tmp_path: Path) -> None:
    root = fake_sysfs(tmp_path, [IGPU, APU, RTX_3090, A100, BMC, PASSED])

    found = display_devices(root)

    assert [(g.bus_id, g.kind, g.driver) for g in found] == [
        ("0000:01:00.0", "discrete", "nvidia"),
        ("0000:05:00.0", "discrete", "ast"),
        ("0000:06:00.0", "discrete", "vfio-pci"),
        ("0000:81:00.0", "discrete", "nvidia"),  # a 3D controller (class 0x0302), as datacenter GPUs are
        ("0000:00:02.0", "integrated", "i915"),
        ("0000:00:08.1", "integrated", "amdgpu"),
    ]
    assert found[-2].rule == "integrated: Intel's processor graphics address, 00:02.0"
    assert found[-1].rule == "integrated: on PCI bus 0, part of the processor or chipset"
    assert [g.bus_id for g in found if g.usable] == ["0000:01:00.0", "0000:81:00.0", "0000:00:02.0", "0000:00:08.1"]
    assert display_devices(tmp_path / "nowhere") == []


def test_pci_addresses_have_one_spelling() -> None:
    assert bus_id("00000000:01:00.0") == bus_id("01:00.0") == bus_id("0000:01:00.0") == "0000:01:00.0"
    assert bus_id("0001:C4:00.0") == "0001:c4:00.0"
    assert bus_id("not an address") == ""


def test_kfd_nodes_give_each_amd_gpu_its_gfx_target(tmp_path: Path) -> None:
    assert [gfx_name(v) for v in (110000, 90010, 90402, 100300, 120001)] == [
        "gfx1100",
        "gfx90a",
        "gfx942",
        "gfx1030",
        "gfx1201",
    ]
    [node] = kfd_gpus(fake_sysfs(tmp_path, [RX_7900]))
    assert (node.bus_id, node.gfx, node.vendor_id) == ("0000:03:00.0", "gfx1100", 0x1002)


def test_driver_versions_are_read_and_compared_with_the_floors(tmp_path: Path) -> None:
    root = fake_sysfs(tmp_path / "sys", [RTX_3090], nvidia_driver="520.61.05")
    (tmp_path / "rocm").write_text("6.0.2-115\n")
    drivers = Snapshot(root, tmp_path / "rocm")

    assert driver_version(root) == "520.61.05" and driver_version(tmp_path) is None
    assert rocm_version(tmp_path / "rocm") == "6.0.2"
    assert older("520.61.05", "525.60.13") and not older("525.60.13", "525.60.13") and older("575.64", "580")
    assert not older("580", "580.0.0") and not older("unknown", "580")
    assert floor_refusal("cuda", {"nvidia-linux": "525.60.13"}, 12, drivers) == (
        "NVIDIA driver 520.61.05 is older than 525.60.13, the oldest that runs CUDA 12: "
        "update the NVIDIA driver to 525.60.13 or newer"
    )
    assert floor_refusal("hip", {"rocm": "6.1"}, None, drivers) == (
        "ROCm 6.0.2 is older than 6.1, the oldest this module runs on: install ROCm 6.1 or newer"
    )
    assert floor_refusal("vulkan", {}, None, drivers) == ""
    unknown = Snapshot(tmp_path / "no-sysfs", tmp_path / "no-rocm")
    assert floor_refusal("cuda", {"nvidia-linux": "525.60.13"}, 12, unknown) == ""  # the CUDA check decides


@pytest.mark.parametrize(
    ("facts", "extra", "first"),
    [
        (NvidiaFacts((8, 6), 12040, "550.54.14"), "cuda12-sm86", ""),
        (NvidiaFacts((8, 6), 13000, "580.65.06"), "cuda13-sm75", ""),
        (NvidiaFacts((6, 1), 13000, "580.65.06"), "cuda12-sm61", ""),  # CUDA 13 has no Pascal
        (NvidiaFacts((12, 0), 13000, "580.65.06"), "cuda13-sm90", ""),
        (NvidiaFacts((12, 0), 12080, "570.124.06"), "cuda12-sm86", ""),  # PTX now; a cubin with driver 580
        (NvidiaFacts((9, 0), 11080, "520.61.05"), "cuda12-sm86", "update the NVIDIA driver to 525.60.13 or newer"),
        (NvidiaFacts((5, 2), 12040, "550.54.14"), "vulkan", ""),  # Maxwell: no wheel has code for it
        (NvidiaFacts(driver="550.54.14"), "cuda12", ""),  # load(): no capability, the family
        (NvidiaFacts(driver="470.256.02"), "cuda12", "update the NVIDIA driver to 525.60.13 or newer"),
        (NvidiaFacts(kernel_driver="nouveau"), "cuda13", "install NVIDIA's driver"),
    ],
)
def test_an_nvidia_gpu_is_advised_the_wheel_its_capability_and_driver_run(
    facts: NvidiaFacts, extra: str, first: str
) -> None:
    advice = advise(NVIDIA, facts)
    assert advice.extra == extra
    assert advice.first.startswith(first) and bool(advice.first) == bool(first)


def test_a_newer_driver_is_named_when_it_would_run_better_code() -> None:
    advice = advise(NVIDIA, NvidiaFacts((12, 0), 12080, "570.124.06"))
    assert advice.why == "sm_120: PTX, compiled by the driver; CUDA 12, NVIDIA driver 525.60.13 or newer"
    assert advice.later == "with NVIDIA driver 580 or newer, [cuda13-sm90] runs it from a cubin"


def test_an_amd_gpu_is_advised_rocm_for_its_targets_and_vulkan_otherwise() -> None:
    assert advise_amd("gfx1100", "6.2.0").line() == "pip install 'llama-cpp-runtime[rocm]' (gfx1100; ROCm 6.2.0)"
    assert advise_amd("gfx1100", "5.7.1").first == "update ROCm to 6.1 or newer (it is 5.7.1)"
    assert advise_amd("gfx1031", None).extra == "vulkan"
    assert advise_amd("", None).extra == "vulkan"
    assert advise(0x8086).extra == "vulkan"


def report(modules: list[ModuleReport], devices: list[Device]) -> Report:
    return Report("/lib", tuple(modules), "x64", 1, tuple(devices))


def test_a_gpu_is_served_by_the_device_at_its_address_and_otherwise_told_why_not() -> None:
    cuda = ModuleReport("ggml-cuda", "cuda", "loaded", "1 device(s)", "/m/libggml-cuda.so", "llama-cpp-runtime-cuda13")
    vulkan = ModuleReport("ggml-vulkan", "vulkan", "absent", "not installed")
    served = report([cuda, vulkan], [Device("CUDA0", "", "GPU", 1, 1, "CUDA", "0000:01:00.0")])

    assert service("0000:01:00.0", NVIDIA, served).device == "CUDA0"
    other = service("0000:02:00.0", NVIDIA, served)
    assert other.device == "" and other.module.startswith(
        "ggml-cuda (llama-cpp-runtime-cuda13) loaded; its devices (CUDA0)"
    )
    anonymous = report([cuda], [Device("CUDA0", "", "GPU", 1, 1, "CUDA")])
    assert not service("0000:02:00.0", NVIDIA, anonymous).exact  # no address: taken to be this GPU
    skipped = ModuleReport("ggml-cuda", "cuda", "skipped", "no NVIDIA driver (...)", source="llama-cpp-runtime-cuda12")
    assert why_not(("cuda", "vulkan"), report([skipped], [])) == (
        "ggml-cuda (llama-cpp-runtime-cuda12) skipped: no NVIDIA driver (...); no Vulkan plugin is installed"
    )


def test_the_gpu_settings_are_parsed_and_refused_by_name(tmp_path: Path) -> None:
    settings = read_settings(
        {
            "LLAMA_CPP_RUNTIME_REQUIRE": " CUDA, rocm,cuda",
            "LLAMA_CPP_RUNTIME_QUIET_GPU": "1",
            "LLAMA_CPP_RUNTIME_SYSFS_ROOT": str(tmp_path),
        }
    )
    assert (settings.require, settings.quiet_gpu, settings.sysfs_root) == (("cuda", "hip"), True, tmp_path)
    unset = read_settings({})
    assert (unset.require, unset.quiet_gpu, unset.sysfs_root) == ((), False, Path("/sys"))
    with pytest.raises(lcr.SettingError, match=r"LLAMA_CPP_RUNTIME_REQUIRE=cuda,opencl: unknown backend 'opencl'"):
        read_settings({"LLAMA_CPP_RUNTIME_REQUIRE": "cuda,opencl"})
    with pytest.raises(lcr.SettingError, match=r"LLAMA_CPP_RUNTIME_QUIET_GPU=maybe: expected 1 or 0"):
        read_settings({"LLAMA_CPP_RUNTIME_QUIET_GPU": "maybe"})


def test_several_nvidia_gpus_get_the_one_cuda_wheel_the_loader_would_choose() -> None:
    facts = NvidiaFacts(cuda_version=13000, driver="580.65.06")
    both = advise_nvidia_gpus([(8, 6), (12, 0)], facts)
    assert [a.extra for a in both] == ["cuda12-sm86", "cuda12-sm86"]  # runs both; the cuda13 members one each
    apart = advise_nvidia_gpus([(6, 1), (12, 0)], facts)
    assert [a.extra for a in apart] == ["vulkan", "cuda13-sm90"]
    assert [a.extra for a in advise_nvidia_gpus([(8, 6)], facts)] == ["cuda13-sm75"]


def test_a_mac_whose_metal_module_serves_nothing_is_said() -> None:
    metal = ModuleReport("ggml-metal", "metal", "skipped", "cannot be loaded: ...", source="llama-cpp-runtime")
    assert unused_mac_gpu(report([metal], [])) == (
        "this Mac's GPU is not used: ggml-metal (llama-cpp-runtime) skipped: cannot be loaded: ...: "
        "reinstall llama-cpp-runtime"
    )
    assert unused_mac_gpu(report([metal], [Device("MTL0", "", "GPU", 1, 1, "MTL")])) == ""


def test_a_requirement_names_the_module_why_and_the_fix(tmp_path: Path) -> None:
    root = fake_sysfs(tmp_path, [RTX_3090, BMC], nvidia_driver="550.54.14")
    skipped = ModuleReport("ggml-cuda", "cuda", "skipped", "no NVIDIA driver (...)", source="llama-cpp-runtime-cuda12")

    machine = Snapshot(root)
    assert missing_requirement("cuda", report([skipped], []), machine) == (
        "no CUDA device: ggml-cuda (llama-cpp-runtime-cuda12) skipped: no NVIDIA driver (...); for the NVIDIA GPU at "
        "0000:01:00.0: pip install 'llama-cpp-runtime[cuda12]' (driver 550.54.14 runs CUDA 12, not 13)"
    )
    served = report([], [Device("Vulkan0", "", "GPU", 1, 1, "Vulkan", "0000:01:00.0")])
    assert missing_requirement("gpu", served, machine) == missing_requirement("vulkan", served, machine) == ""
    assert [u.gpu.bus_id for u in unserved(report([], []), machine)] == ["0000:01:00.0"]  # not the BMC


def test_the_doctor_puts_the_probes_answers_together_per_gpu(tmp_path: Path) -> None:
    apu = FakeGpu("0000:c4:00.0", 0x1002, 0x15BF, "amdgpu", gfx_target_version=110003)
    root = fake_sysfs(tmp_path, [IGPU, apu])
    vulkan = {
        "devices": [
            {
                "name": "Intel(R) Graphics (RPL-S)",
                "type": "integrated",
                "vendor_id": 0x8086,
                "device_id": 0xA780,
                "api_version": "1.3.255",
                "bus_id": "",
            },
            {
                "name": "AMD Radeon 780M (RADV GFX1103_R1)",
                "type": "integrated",
                "vendor_id": 0x1002,
                "device_id": 0x15BF,
                "api_version": "1.3.255",
                "bus_id": "0000:c4:00.0",
            },
            {
                "name": "llvmpipe (LLVM 15.0.6, 256 bits)",
                "type": "cpu",
                "vendor_id": 0x10005,
                "device_id": 0,
                "api_version": "1.3.230",
                "bus_id": "",
            },
        ]
    }
    load = {
        "library_dir": "/lib",
        "cpu_variant": "x64",
        "cpu_variant_score": 1,
        "no_cpu_backend": "",
        "modules": [
            {
                "name": "ggml-vulkan",
                "backend": "vulkan",
                "status": "loaded",
                "reason": "2 device(s)",
                "path": "/m/libggml-vulkan.so",
                "source": "llama-cpp-runtime-vulkan",
            }
        ],
        "devices": [
            {
                "name": "Vulkan0",
                "description": "Intel(R) Graphics",
                "type": "IGPU",
                "memory_free": 1,
                "memory_total": 1,
                "backend": "Vulkan",
                "device_id": "0000:00:02.0",
                "same_as": "",
                "preferred": True,
            }
        ],
    }
    answers = {
        "vulkan": (DoctorProbe("vulkan", True, "", 0.1), vulkan),
        "nvidia": (DoctorProbe("nvidia", False, "crashed (SIGSEGV)", 0.1), None),
        "load": (DoctorProbe("load", True, "", 0.1), load),
    }
    machine = Machine(display_devices(root), kfd_gpus(root), answers, Snapshot(root))

    intel, radeon = machine.findings()  # both integrated, by address; the APU by Vulkan's word, not the PCI rule
    assert (radeon.name, radeon.integrated, radeon.rule) == (
        "AMD Radeon 780M (RADV GFX1103_R1)",
        True,
        "integrated: Vulkan's device type",
    )
    assert "ROCm target gfx1103" in radeon.facts  # not among the ROCm wheel's targets: Vulkan, which is installed
    assert (radeon.served_by, radeon.install, radeon.first) == ("", "", "")
    assert radeon.why.endswith("yet ggml-vulkan does not offer it: does GGML_VK_VISIBLE_DEVICES leave it out?")
    assert intel.served_by == "Vulkan0 (ggml-vulkan from llama-cpp-runtime-vulkan)" and intel.install == ""
    assert machine.software_lines() == [
        "Vulkan device llvmpipe (LLVM 15.0.6, 256 bits): a CPU implementation (lavapipe/llvmpipe), not a GPU"
    ]
    assert machine.driver_lines()[0] == (
        "NVIDIA driver: the probe failed: crashed (SIGSEGV) — [cuda12] needs ≥ 525.60.13; [cuda13] needs ≥ 580"
    )


def test_the_load_time_amd_advice_knows_the_installed_rocm(tmp_path: Path) -> None:
    none = Snapshot(fake_sysfs(tmp_path / "bare", [RX_7900]))
    old = Snapshot(fake_sysfs(tmp_path / "old", [RX_7900], rocm="5.7.1-98"))
    new = Snapshot(fake_sysfs(tmp_path / "new", [RX_7900], rocm="6.2.0-66"))

    assert none.rocm is None and old.rocm == "5.7.1" and new.rocm == "6.2.0"
    [bare] = unserved(report([], []), none)
    assert bare.advice.first == "install ROCm 6.1 or newer (the wheel uses its libraries)"
    [outdated] = unserved(report([], []), old)
    assert outdated.advice.first == "update ROCm to 6.1 or newer (it is 5.7.1)"
    [ready] = unserved(report([], []), new)
    assert (ready.advice.extra, ready.advice.first, ready.advice.why) == ("rocm", "", "gfx1100; ROCm 6.2.0")


def test_a_snapshot_reads_each_part_once_and_decides_served_from_the_raw_listing(tmp_path: Path) -> None:
    root = fake_sysfs(tmp_path, [RTX_3090, IGPU, BMC, PASSED], nvidia_driver="550.54.14")
    machine = Snapshot(root)
    assert [raw[0] for raw in machine.usable] == ["0000:00:02.0", "0000:01:00.0"]
    assert machine.nvidia == "550.54.14"
    (root / "module" / "nvidia" / "version").write_text("560.0\n")
    assert machine.nvidia == "550.54.14"  # read on first use, then kept for the whole load
    cuda = Device("CUDA0", "", "GPU", 1, 1, "CUDA", "0000:01:00.0")
    anonymous_vulkan = Device("Vulkan0", "", "IGPU", 1, 1, "Vulkan")
    assert [raw[0] for raw in machine.unserved([cuda])] == ["0000:00:02.0"]
    assert machine.unserved([cuda, anonymous_vulkan]) == []  # no address: taken to serve the Intel GPU
    assert Snapshot("/sys").rocm_file == "/opt/rocm/.info/version"
    assert Snapshot(root).rocm_file == str(root / "opt" / "rocm" / ".info" / "version")


def test_the_report_goes_to_json_and_back_whole() -> None:
    original = Report(
        "/lib",
        (ModuleReport("ggml-cpu-x64", "cpu", "loaded", "score 1", "/m/x.so", "llama-cpp-runtime", 1),),
        "x64",
        1,
        (Device("Vulkan0", "Intel", "IGPU", 1, 2, "Vulkan", "0000:00:02.0", _handle=1234),),
        core_libraries=(("ggml", "/lib/libggml.so"),),
        upstream={"commit": "abc", "patch_series_sha256": "def"},
        ggml_commit="abc",
        llama_abi="matches",
        no_cpu_backend="",
    )
    document = original.to_json()
    assert "_handle" not in document["devices"][0] and document["devices"][0]["preferred"] is True
    assert Report.from_json(json.loads(json.dumps(document))) == original  # _handle is not compared
    assert Report.from_json({**document, "added_later": 1}).devices == original.devices


def test_a_gpu_passed_through_to_a_virtual_machine_is_listed_as_such(tmp_path: Path) -> None:
    probes = (DoctorProbe("sysfs", True, "", 0.0),)
    report = DoctorReport("linux", (), (), ("NVIDIA driver: not asked",), (), "x64", probes, ("NVIDIA 10de:2204 at x",))
    assert "passed through to a virtual machine (not this system's): NVIDIA 10de:2204 at x" in report.lines()
