"""A GPU is never silently missing (issue 25): the doctor names the wheel for each GPU, load() warns once
when a GPU is not used, require fails closed, and a plugin is refused before dlopen when the driver is
older than its floor. No GPU is needed: a fake sysfs tree (LLAMA_CPP_RUNTIME_SYSFS_ROOT) and the stand-in
libcuda make the machine; the Vulkan loader with lavapipe is this machine's own."""

from __future__ import annotations

import ctypes
import json
import re
import subprocess
from pathlib import Path

import pytest
from helpers.cpu_features import elf_linux
from helpers.fake_machine import FakeGpu, fake_sysfs, machine_env, stand_in_libcuda
from helpers.support import Project
from helpers.toolchains_present import vulkan
from test_binding import compile_module, env_for, python, runtime_cli
from test_plugin_choice import GPU_PLUGIN

pytestmark = [pytest.mark.slow, elf_linux]

RTX_3090 = FakeGpu("0000:01:00.0", 0x10DE, 0x2204, "nvidia", capability="8.6")
GTX_1080 = FakeGpu("0000:02:00.0", 0x10DE, 0x1B80, "nvidia", capability="6.1")
RTX_5090 = FakeGpu("0000:41:00.0", 0x10DE, 0x2B85, "nvidia", capability="12.0")
INTEL_IGPU = FakeGpu("0000:00:02.0", 0x8086, 0xA780, "i915")
RX_7900 = FakeGpu("0000:03:00.0", 0x1002, 0x744C, "amdgpu", gfx_target_version=110000)
BMC = FakeGpu("0000:05:00.0", 0x1A03, 0x2000, "ast")
CUDA_12_4, CUDA_13_0 = ("550.54.14", 12040), ("580.65.06", 13000)


def _lavapipe() -> bool:
    try:
        ctypes.CDLL("libvulkan.so.1")
    except OSError:
        return False
    return any(Path("/usr/share/vulkan/icd.d").glob("lvp_icd*.json"))


lavapipe = pytest.mark.skipif(not _lavapipe(), reason="needs the Vulkan loader and Mesa's lavapipe")


def machine(
    tmp_path: Path, gpus: list[FakeGpu], driver: tuple[str, int] | None = None, rocm: str = ""
) -> dict[str, str]:
    """The environment of a process on a machine with these GPUs, this NVIDIA driver (version, CUDA) and
    this ROCm release (none: the host's own /opt/rocm is never looked at on a fake machine)."""
    sysfs = fake_sysfs(tmp_path / "sys", gpus, nvidia_driver=driver[0] if driver else "", rocm=rocm)
    libcuda = stand_in_libcuda(tmp_path / "driver") if driver else None
    return machine_env(sysfs, gpus, libcuda, driver[1] if driver else 0)


def doctor(
    built: Project, stage: Path, tmp_path: Path, env: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    result = runtime_cli("doctor", *args, env=env_for(built, stage, **env), cwd=tmp_path)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def findings(built: Project, stage: Path, tmp_path: Path, env: dict[str, str]) -> list[dict[str, object]]:
    result = doctor(built, stage, tmp_path, env, "--json")
    gpus: list[dict[str, object]] = json.loads(result.stdout)["gpus"]
    return gpus


@pytest.mark.parametrize(
    ("driver", "wheel", "floors"),
    [
        (CUDA_12_4, "cuda12-sm86", "[cuda12] needs ≥ 525.60.13: ok; [cuda13] needs ≥ 580: too old"),
        (CUDA_13_0, "cuda13-sm75", "[cuda12] needs ≥ 525.60.13: ok; [cuda13] needs ≥ 580: ok"),
    ],
)
def test_an_sm86_gpu_is_told_the_family_member_its_driver_runs(
    built: Project, stage: Path, tmp_path: Path, driver: tuple[str, int], wheel: str, floors: str
) -> None:
    result = doctor(built, stage, tmp_path, machine(tmp_path, [RTX_3090], driver))

    assert result.returncode == 1, result.stdout  # a GPU is not used
    text = result.stdout
    assert "compute capability 8.6 (sm_86)" in text
    assert "now:      not used: no CUDA or Vulkan plugin is installed" in text
    assert f"install:  pip install 'llama-cpp-runtime[{wheel}]'  (sm_86: cubin" in text
    assert f"NVIDIA driver: {driver[0]}, CUDA {driver[1] // 1000}.{driver[1] % 1000 // 10} — {floors}" in text


@pytest.mark.parametrize(
    ("gpus", "wheels"),
    [
        # one CUDA module per process: the one wheel the loader would choose runs both (sm_120 from PTX)
        ([RTX_3090, RTX_5090], {"0000:01:00.0": "cuda12-sm86", "0000:41:00.0": "cuda12-sm86"}),
        # no CUDA wheel runs both: the newer one gets CUDA, the Pascal card Vulkan, and it is said why
        ([GTX_1080, RTX_5090], {"0000:02:00.0": "vulkan", "0000:41:00.0": "cuda13-sm90"}),
    ],
)
def test_gpus_of_different_families_are_advised_what_one_cuda_module_serves(
    built: Project, stage: Path, tmp_path: Path, gpus: list[FakeGpu], wheels: dict[str, str]
) -> None:
    found = findings(built, stage, tmp_path, machine(tmp_path, gpus, CUDA_13_0))

    assert {g["bus_id"]: g["install"] for g in found} == {
        address: f"pip install 'llama-cpp-runtime[{wheel}]'" for address, wheel in wheels.items()
    }
    why = {g["bus_id"]: g["why"] for g in found}
    if "0000:02:00.0" in why:
        assert why["0000:02:00.0"] == (
            "one CUDA module per process: [cuda13-sm90] serves the other GPU(s), not sm_61 "
            "(alone it would take [cuda12-sm61])"
        )
    else:
        assert why["0000:41:00.0"] == (
            "sm_120: PTX, compiled by the driver; CUDA 12, NVIDIA driver 525.60.13 or newer; "
            "alone it would take [cuda13-sm90]"
        )


def test_discrete_comes_before_integrated_and_the_rule_is_said(built: Project, stage: Path, tmp_path: Path) -> None:
    env = machine(tmp_path, [INTEL_IGPU, RTX_3090, BMC], CUDA_13_0)

    gpus = findings(built, stage, tmp_path, env)

    assert [(g["bus_id"], g["integrated"]) for g in gpus] == [("0000:01:00.0", False), ("0000:00:02.0", True)]
    assert gpus[0]["rule"] == "discrete: behind a PCI bridge, a card in a slot"
    assert gpus[1]["rule"] == "integrated: Intel's processor graphics address, 00:02.0"
    assert gpus[1]["install"] == "pip install 'llama-cpp-runtime[vulkan]'"
    text = doctor(built, stage, tmp_path, env).stdout
    assert "display only (no compute backend): ASPEED 1a03:2000 at 0000:05:00.0" in text


def test_an_amd_gfx1100_is_told_rocm_and_the_rocm_it_needs(built: Project, stage: Path, tmp_path: Path) -> None:
    [gpu] = findings(built, stage, tmp_path, machine(tmp_path, [RX_7900]))

    assert "ROCm target gfx1100" in gpu["facts"]  # type: ignore[operator]
    assert gpu["install"] == "pip install 'llama-cpp-runtime[rocm]'"
    assert gpu["first"] == "install ROCm 6.1 or newer (the wheel uses its libraries)"  # the fake machine has none


def test_an_installed_rocm_is_read_from_the_fake_machine_by_the_doctor_and_by_load(
    built: Project, stage: Path, tmp_path: Path
) -> None:
    env = machine(tmp_path, [RX_7900], rocm="5.7.1-98")
    [gpu] = findings(built, stage, tmp_path, env)
    assert gpu["first"] == "update ROCm to 6.1 or newer (it is 5.7.1)"
    assert "ROCm: 5.7.1 — [rocm] needs ≥ 6.1: too old" in doctor(built, stage, tmp_path, env).stdout
    warned = runtime_cli("info", env=env_for(built, stage, **env), cwd=tmp_path).stderr
    assert "pip install 'llama-cpp-runtime[rocm]'" in warned and "update ROCm to 6.1 or newer (it is 5.7.1)" in warned


def test_a_bad_variable_is_the_load_probes_failure_and_a_passed_through_gpu_is_listed(
    built: Project, stage: Path, tmp_path: Path
) -> None:
    passed = FakeGpu("0000:06:00.0", 0x10DE, 0x2204, "vfio-pci")
    env = {**machine(tmp_path, [passed]), "LLAMA_CPP_RUNTIME_BACKEND_ORDER": "opencl"}

    result = doctor(built, stage, tmp_path, env)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "  load    FAILED" in result.stdout and "LLAMA_CPP_RUNTIME_BACKEND_ORDER=opencl" in result.stdout
    assert "  nvidia  ok" in result.stdout and "  vulkan  ok" in result.stdout  # the probes read only the sysfs root
    assert (
        "passed through to a virtual machine (not this system's): NVIDIA 10de:2204 at 0000:06:00.0 (bound to vfio-pci)"
        in result.stdout
    )


@lavapipe
def test_no_gpu_at_all_is_said_and_lavapipe_is_not_taken_for_one(built: Project, stage: Path, tmp_path: Path) -> None:
    result = doctor(built, stage, tmp_path, machine(tmp_path, []))

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("No GPU found (asked: PCI display devices, the NVIDIA driver, ROCm (KFD) and Vulkan)")
    assert any(line.endswith("a CPU implementation (lavapipe/llvmpipe), not a GPU") for line in lines)
    assert any(line.startswith("  NVIDIA driver: no NVIDIA driver (libcuda.so.1: ") for line in lines)


@pytest.mark.parametrize(("misbehave", "failure"), [("crash", "crashed (SIGSEGV)"), ("hang", "timed out after 3s")])
def test_a_probe_that_crashes_or_hangs_is_reported_and_the_rest_still_prints(
    built: Project, stage: Path, tmp_path: Path, misbehave: str, failure: str
) -> None:
    env = {**machine(tmp_path, [RTX_3090, INTEL_IGPU], CUDA_12_4), "FAKE_CUDA_MISBEHAVE": misbehave}

    result = doctor(built, stage, tmp_path, env, "--timeout", "3")

    assert result.returncode == 1
    text = result.stdout
    assert "  nvidia  FAILED" in text and failure in text
    assert "NVIDIA driver: 550.54.14; the probe failed" in text  # the version is sysfs's: still known
    assert "install:  pip install 'llama-cpp-runtime[cuda12]'" in text  # no capability: the family
    assert "install:  pip install 'llama-cpp-runtime[vulkan]'" in text  # the Intel GPU is still advised
    assert "  load    ok" in text


def test_load_warns_once_per_process_with_the_doctors_advice_and_a_variable_silences_it(
    built: Project, stage: Path, tmp_path: Path
) -> None:
    code = """
        import warnings, llama_cpp_runtime as lcr
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            lcr.load(); lcr.load()
        print(len(caught)); [print(w.category.__name__, w.message) for w in caught]
        """
    env = env_for(built, stage, **machine(tmp_path, [RTX_3090], CUDA_12_4))

    lines = python(code, env, tmp_path).stdout.splitlines()
    assert lines[0] == "1"
    assert lines[1] == (
        "UnusedGpuWarning NVIDIA GPU 0000:01:00.0 (10de:2204, discrete) is not used: no CUDA or Vulkan plugin is "
        "installed: pip install 'llama-cpp-runtime[cuda12]' (driver 550.54.14 runs CUDA 12, not 13). "
        "`python -m llama_cpp_runtime doctor` says more; LLAMA_CPP_RUNTIME_QUIET_GPU=1 silences this"
    )
    assert python(
        "import llama_cpp_runtime as lcr; assert issubclass(lcr.UnusedGpuWarning, RuntimeWarning)", env, tmp_path
    )
    quiet = python(code, {**env, "LLAMA_CPP_RUNTIME_QUIET_GPU": "1"}, tmp_path).stdout.splitlines()
    assert quiet == ["0"]
    cli = runtime_cli("info", env=env, cwd=tmp_path)
    assert cli.returncode == 0 and cli.stderr.startswith(
        "warning: NVIDIA GPU 0000:01:00.0 (10de:2204, discrete) is not used"
    )


def test_info_and_check_are_unchanged_where_no_gpu_exists(built: Project, stage: Path, tmp_path: Path) -> None:
    plain = env_for(built, stage)
    empty = env_for(built, stage, **machine(tmp_path, []))
    for command in (["info"], ["check", "--device", "CPU"]):
        before, after = runtime_cli(*command, env=plain, cwd=tmp_path), runtime_cli(*command, env=empty, cwd=tmp_path)
        assert after.returncode == before.returncode == 0, after.stderr
        assert "warning" not in after.stderr and "GPU" not in after.stderr
    info = runtime_cli("info", env=empty, cwd=tmp_path).stdout
    assert _steady(info) == _steady(runtime_cli("info", env=plain, cwd=tmp_path).stdout)


def _steady(info: str) -> str:
    """`info` without the free memory it reads at the moment (another process may take or give some back)."""
    return re.sub(r"\b\d+(\.\d+)?/(\d+(\.\d+)? [KMGT]?i?B)\b", r"?/\2", info)


def cuda_plugin(stage: Path, root: Path, major: int, floor: str, architectures: str) -> Path:
    """A CUDA plugin as its wheel installs it, offering one device at 0000:01:00.0, with the driver floor of its
    CUDA major in its stage.json."""
    upstream = json.loads((stage / "stage.json").read_text())["upstream"]
    (root / "modules").mkdir(parents=True)
    compile_module(
        GPU_PLUGIN,
        root / "modules" / "libggml-cuda.so",
        '-DNAME="CUDA"',
        "-DCOUNT=1",
        '-DID0="0000:01:00.0"',
        "-DID1=NULL",
    )
    record = {
        "upstream": upstream,
        "requires": ["c-compiler", f"nvcc-{major}"],
        "backend": "cuda",
        "cmake_options": {"CMAKE_CUDA_ARCHITECTURES": architectures},
        "driver_floor": {"nvidia-linux": floor, "nvidia-windows": floor},
    }
    (root / "stage.json").write_text(json.dumps(record))
    return root / "modules"


def test_a_gpu_its_plugin_serves_is_used_quietly_and_the_doctor_says_by_what(
    built: Project, stage: Path, tmp_path: Path
) -> None:
    plugin = cuda_plugin(stage, tmp_path / "cuda13-sm75", 13, "580", "75-real;80-real;86-real;89-real")
    env = {**machine(tmp_path, [RTX_3090], CUDA_13_0), "LLAMA_CPP_RUNTIME_PLUGIN_DIRS": str(plugin)}

    [gpu] = findings(built, stage, tmp_path, env)
    assert gpu["served_by"] == "CUDA0 (ggml-cuda from LLAMA_CPP_RUNTIME_PLUGIN_DIRS)"
    assert gpu["install"] == ""
    assert doctor(built, stage, tmp_path, env).returncode == 0
    quiet = python(
        "import llama_cpp_runtime as lcr; lcr.load(require='cuda,gpu')", env_for(built, stage, **env), tmp_path
    )
    assert quiet.stderr == ""


def test_a_driver_older_than_the_floor_is_refused_before_dlopen_naming_both(
    built: Project, stage: Path, tmp_path: Path
) -> None:
    plugin = cuda_plugin(stage, tmp_path / "cuda12-sm86", 12, "525.60.13", "86-real;89-real;90-real;90-virtual")
    env = {
        **machine(tmp_path, [RTX_3090], ("520.61.05", 11080)),
        "LLAMA_CPP_RUNTIME_PLUGIN_DIRS": str(plugin),
        "LD_DEBUG": "files",
    }

    result = runtime_cli("info", "--json", env=env_for(built, stage, **env), cwd=tmp_path)

    [row] = [m for m in json.loads(result.stdout)["modules"] if m["backend"] == "cuda"]
    refusal = (
        "NVIDIA driver 520.61.05 is older than 525.60.13, the oldest that runs CUDA 12: "
        "update the NVIDIA driver to 525.60.13 or newer"
    )
    assert (row["status"], row["reason"]) == ("skipped", refusal)
    opened = [line for line in result.stderr.splitlines() if "file=" in line and "libggml-cuda.so" in line]
    assert opened == []  # never opened, as glibc's LD_DEBUG accounts for every file
    assert f"is not used: ggml-cuda (LLAMA_CPP_RUNTIME_PLUGIN_DIRS) skipped: {refusal}" in result.stderr
    text = doctor(built, stage, tmp_path, env).stdout
    assert "NVIDIA driver: 520.61.05, CUDA 11.8 — [cuda12] needs ≥ 525.60.13: too old" in text


def test_require_fails_closed_naming_the_module_why_and_the_fix(built: Project, stage: Path, tmp_path: Path) -> None:
    env = env_for(built, stage, **machine(tmp_path, [RTX_3090], CUDA_12_4), LLAMA_CPP_RUNTIME_REQUIRE="cuda")

    result = runtime_cli("info", env=env, cwd=tmp_path)

    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        "error: LLAMA_CPP_RUNTIME_REQUIRE=cuda refuses to run on the CPU instead: cuda: no CUDA device: no CUDA plugin "
        "is installed; for the NVIDIA GPU at 0000:01:00.0: pip install 'llama-cpp-runtime[cuda12]' "
        "(driver 550.54.14 runs CUDA 12, not 13)"
    )
    code = """
        import llama_cpp_runtime as lcr
        try:
            lcr.load(require=["gpu"])
        except lcr.GpuUnavailable as error:
            print(error)
        """
    nothing = env_for(built, stage, **machine(tmp_path / "empty", []))
    said = python(code, nothing, tmp_path).stdout.strip()
    assert said.startswith("load(require='gpu') refuses to run on the CPU instead: gpu: no GPU device: ")
    assert said.endswith(
        "and no GPU was found on this machine (`python -m llama_cpp_runtime doctor` lists what is there)"
    )


def test_load_model_on_gpu_refuses_when_there_is_none(built: Project, stage: Path, tmp_path: Path) -> None:
    from helpers.tiny_models import write_llama_model

    model = write_llama_model(tmp_path / "tiny.gguf")
    code = f"""
        import llama_cpp_runtime as lcr
        rt = lcr.load()
        for devices in ("gpu", "Vulkan0"):
            try:
                rt.load_model({str(model)!r}, devices=devices)
            except (lcr.GpuUnavailable, lcr.UnknownDevice) as error:
                print(type(error).__name__, error)
        """
    lines = python(code, env_for(built, stage, **machine(tmp_path, [])), tmp_path).stdout.splitlines()
    assert lines[0].startswith('GpuUnavailable load_model(devices="gpu"): no GPU device: ')
    assert lines[1] == "UnknownDevice devices='Vulkan0': give \"gpu\" or a list of device names, e.g. ['Vulkan0']"


@vulkan
def test_lavapipe_through_the_vulkan_plugin_is_no_gpu_to_require(built: Project, stage: Path, tmp_path: Path) -> None:
    if not (built.root / "build/stage/vulkan/modules/libggml-vulkan.so").exists():
        built.run("build", "--backend", "vulkan")
    plugin = built.root / "build/stage/vulkan/modules"
    env = env_for(built, stage, LLAMA_CPP_RUNTIME_PLUGIN_DIRS=str(plugin), **machine(tmp_path, []))
    visible = {**env, "GGML_VK_VISIBLE_DEVICES": "0"}  # lavapipe offered as a ggml device

    required = runtime_cli("info", env={**visible, "LLAMA_CPP_RUNTIME_REQUIRE": "gpu"}, cwd=tmp_path)
    assert required.returncode == 2, required.stderr
    assert "gpu: no GPU device: ggml-vulkan (LLAMA_CPP_RUNTIME_PLUGIN_DIRS) loaded and offers no GPU device, only " in (
        required.stderr
    )
    assert required.stderr.rstrip().endswith(
        "which runs on the CPU; no CUDA or ROCm/HIP plugin is installed; and no GPU "
        "was found on this machine (`python -m llama_cpp_runtime doctor` lists what is there)"
    )
    result = runtime_cli("doctor", env=visible, cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.startswith("No GPU found")
    assert runtime_cli("info", env=env, cwd=tmp_path).stderr == ""  # no GPU here: nothing to warn about
