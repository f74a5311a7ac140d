"""The matrix declaration itself: what every consumer of CMakePresets.json relies on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from buildsys.builder.presets import PRESETS_FILE, load_matrix
from buildsys.errors import ConfigError

DESIGN_WHEELS = {
    "llama-cpp-runtime",
    "llama-cpp-runtime-cuda12",
    "llama-cpp-runtime-cuda13",
    "llama-cpp-runtime-vulkan",
    "llama-cpp-runtime-rocm",
    "llama-cpp-runtime-server",
}
CUDA_PRESETS = ["cuda12-sm61", "cuda12-sm86", "cuda13-sm75", "cuda13-sm90"]
GPU_PRESETS = [*CUDA_PRESETS, "vulkan", "hip", "metal"]
# Measured on the pin's real ggml-cuda (CUDA 13.0, fatbin compression on): 16.4-17.3 MiB per cubin,
# 17.6 MiB for the compute_100 PTX, 2.7 MiB of host code, all deflated. Five entries come to about
# 88 MiB (92 MB): the most one plugin wheel may carry under PyPI's 100 MB file limit.
MOST_CUDA_ENTRIES_PER_WHEEL = 5


def test_the_matrix_declares_every_backend_once() -> None:
    assert load_matrix().names() == ["cpu", *CUDA_PRESETS, "vulkan", "hip", "metal", "server"]


def test_the_server_preset_builds_upstreams_program_only_when_named() -> None:
    server = load_matrix().get("server")
    assert server.ships_program and server.builds_llama_cpp and not server.installs_core and not server.default
    assert server.build_targets == ("llama-server",)
    assert server.cache_variables["LLAMA_BUILD_UI"] == "OFF"  # npm and a download: never in our build
    assert all(p.default for p in load_matrix().presets if p.name != "server")


def test_cpu_preset_builds_every_variant_portably_as_modules() -> None:
    cpu = load_matrix().get("cpu")
    options = cpu.cache_variables
    assert options["GGML_CPU_ALL_VARIANTS"] == "ON" and options["GGML_NATIVE"] == "OFF"
    assert options["GGML_BACKEND_DL"] == "ON" and options["BUILD_SHARED_LIBS"] == "ON"
    assert cpu.installs_core and cpu.build_targets == ()
    assert {cpu.applies_to(system) for system in ("Linux", "Darwin", "Windows")} == {True}


@pytest.mark.parametrize("name", ["cpu", *GPU_PRESETS])
def test_no_preset_leaves_blas_to_ggmls_platform_default(name: str) -> None:
    """ggml turns GGML_BLAS on by default on Apple: the metal preset then configured a ggml-blas module it
    never built, and the superbuild's install of it failed."""
    assert load_matrix().get(name).cache_variables["GGML_BLAS"] == "OFF"


@pytest.mark.parametrize("name", GPU_PRESETS)
def test_gpu_presets_build_only_their_module(name: str) -> None:
    preset = load_matrix().get(name)
    assert preset.cache_variables["GGML_CPU"] == "OFF"
    assert preset.cache_variables["GGML_CPU_ALL_VARIANTS"] == "OFF"
    assert not preset.installs_core
    assert preset.build_targets == (f"ggml-{preset.backend}",)


@pytest.mark.parametrize(("family", "oldest"), [("cuda12", 61), ("cuda13", 75)])
def test_a_cuda_family_ships_real_cubins_and_exactly_one_forward_compatible_ptx(family: str, oldest: int) -> None:
    matrix = load_matrix()
    members = [matrix.get(name) for name in matrix.expand(family)]
    architectures = [a for p in members for a in p.cache_variables["CMAKE_CUDA_ARCHITECTURES"].split(";")]
    ptx = [a for a in architectures if a.endswith("-virtual")]
    cubins = [a for a in architectures if a.endswith("-real")]
    assert len(ptx) == 1 and len(cubins) == len(architectures) - 1  # no bare entries: they would be both
    # ggml rewrites 12X to the arch-specific 12Xa, whose PTX does not run on later GPUs: the PTX is below it.
    assert not ptx[0].split("-")[0].endswith("a") and not ptx[0].startswith("12")
    numbers = [int(a.split("-")[0].rstrip("a")) for a in cubins]
    assert numbers == sorted(numbers) and numbers[0] == oldest  # members in order, no architecture twice
    assert int(ptx[0].split("-")[0]) in numbers  # the newest portable feature level we also ship as a cubin
    assert ptx[0] in members[-1].cache_variables["CMAKE_CUDA_ARCHITECTURES"]  # with the newest GPUs


@pytest.mark.parametrize("name", CUDA_PRESETS)
def test_each_cuda_wheel_fits_pypis_file_limit_and_belongs_to_its_family(name: str) -> None:
    preset = load_matrix().get(name)
    assert len(preset.cache_variables["CMAKE_CUDA_ARCHITECTURES"].split(";")) <= MOST_CUDA_ENTRIES_PER_WHEEL
    family = name.split("-", maxsplit=1)[0]
    assert preset.family == f"llama-cpp-runtime-{family}" and preset.wheel == f"llama-cpp-runtime-{name}"
    assert f"nvcc-{family.removeprefix('cuda')}" in preset.requires


def test_a_family_name_stands_for_its_members_and_a_preset_for_itself() -> None:
    matrix = load_matrix()
    assert matrix.expand("cuda13") == ["cuda13-sm75", "cuda13-sm90"]
    assert matrix.expand("cuda13-sm90") == ["cuda13-sm90"] and matrix.expand("cuda14") == []
    assert matrix.family_members() == {
        "llama-cpp-runtime-cuda12": ("llama-cpp-runtime-cuda12-sm61", "llama-cpp-runtime-cuda12-sm86"),
        "llama-cpp-runtime-cuda13": ("llama-cpp-runtime-cuda13-sm75", "llama-cpp-runtime-cuda13-sm90"),
    }


def test_platform_conditions() -> None:
    matrix = load_matrix()
    assert [p.name for p in matrix.presets if p.applies_to("Darwin")] == ["cpu", "metal", "server"]
    assert [p.name for p in matrix.presets if p.applies_to("Linux")] == [
        "cpu",
        *CUDA_PRESETS,
        "vulkan",
        "hip",
        "server",
    ]
    assert matrix.get("hip").cache_variables["AMDGPU_TARGETS"].startswith("gfx")


def test_every_preset_names_a_wheel_of_the_design_or_a_member_of_one() -> None:
    assert {p.family or p.wheel for p in load_matrix().presets} == DESIGN_WHEELS


def _broken(tmp_path: Path, edit: str) -> Path:
    document = json.loads(PRESETS_FILE.read_text())
    cpu = next(p for p in document["configurePresets"] if p["name"] == "cpu")
    if edit == "no-vendor":
        del cpu["vendor"]
    elif edit == "unknown-requirement":
        cpu["vendor"]["llama-cpp-runtime"]["requires"].append("fortran")
    elif edit == "bad-floor":
        hip = next(p for p in document["configurePresets"] if p["name"] == "hip")
        hip["vendor"]["llama-cpp-runtime"]["driver_floor"] = {"rocm": "6.1 or newer"}
    elif edit == "reserved":
        cpu["name"] = "stage"
        document["buildPresets"][0]["configurePreset"] = "stage"
    path = tmp_path / "CMakePresets.json"
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ("no-vendor", "configurePresets.cpu: no vendor.llama-cpp-runtime block"),
        ("unknown-requirement", "configurePresets.cpu.vendor.llama-cpp-runtime.requires: unknown fortran"),
        ("reserved", "configurePresets.stage: the name is reserved for build/stage/"),
        ("bad-floor", "configurePresets.hip.vendor.llama-cpp-runtime.driver_floor: rocm is no version"),
    ],
)
def test_a_broken_matrix_is_a_config_error_naming_the_preset(tmp_path: Path, edit: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_matrix(_broken(tmp_path, edit))
    assert any(problem.startswith(message) for problem in raised.value.problems)


def test_cuda_plugins_require_the_nvidia_runtime_wheels_of_their_major_and_nothing_else_does() -> None:
    dependencies = {p.name: p.dependencies for p in load_matrix().presets if p.dependencies}

    cuda12 = ("nvidia-cuda-runtime-cu12>=12,<13", "nvidia-cublas-cu12>=12,<13")
    cuda13 = ("nvidia-cuda-runtime>=13,<14", "nvidia-cublas>=13,<14")
    assert dependencies == {"cuda12-sm61": cuda12, "cuda12-sm86": cuda12, "cuda13-sm75": cuda13, "cuda13-sm90": cuda13}


def test_a_family_declares_what_its_members_share_once_and_a_member_may_override_it(tmp_path: Path) -> None:
    matrix = load_matrix()
    for family in ("cuda12", "cuda13"):
        members = [p for p in matrix.presets if p.family == f"llama-cpp-runtime-{family}"]
        assert len(members) == 2
        assert all(m.backend == "cuda" and m.driver_floor and m.dependencies for m in members)
        assert len({(m.requires, m.dependencies, tuple(m.driver_floor.items())) for m in members}) == 1
    document = json.loads(PRESETS_FILE.read_text())
    member = next(p for p in document["configurePresets"] if p["name"] == "cuda12-sm61")
    member["vendor"]["llama-cpp-runtime"]["driver_floor"] = {"nvidia-linux": "535"}
    path = tmp_path / "CMakePresets.json"
    path.write_text(json.dumps(document))
    edited = load_matrix(path)
    assert edited.get("cuda12-sm61").driver_floor == {"nvidia-linux": "535"}  # the nearest declaration wins
    assert edited.get("cuda12-sm86").driver_floor == matrix.get("cuda12-sm86").driver_floor
