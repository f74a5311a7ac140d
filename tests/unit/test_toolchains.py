"""Toolchain detection against fake toolchains: scripts on a PATH we control, SDK layouts in tmp."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from buildsys.builder.toolchains import Found, Host, Missing, cublas_wheel_for_nvcc, detect

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the fake toolchains are POSIX shell scripts")


def fake_tool(directory: Path, name: str, output: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    tool = directory / name
    tool.write_text(f"#!/bin/sh\necho '{output}'\n")
    tool.chmod(0o755)
    return tool


def host(path: Path, **env: str) -> Host:
    return Host(env={"PATH": str(path), **env}, system="Linux", python_paths=("/nonexistent",))


def test_nvcc_of_the_wrong_major_is_missing_with_the_version_found(tmp_path: Path) -> None:
    nvcc = fake_tool(tmp_path / "bin", "nvcc", "Cuda compilation tools, release 12.4, V12.4.131")
    [wrong] = detect(["nvcc-13"], host(tmp_path / "bin"))
    assert isinstance(wrong, Missing) and wrong.reason == f"{nvcc} is CUDA 12.4, this preset needs CUDA 13"
    [right] = detect(["nvcc-12"], host(tmp_path / "bin"))
    assert isinstance(right, Found) and right.cmake_variables == {"CMAKE_CUDA_COMPILER": str(nvcc)}


def test_nvcc_is_also_found_through_cuda_path(tmp_path: Path) -> None:
    fake_tool(tmp_path / "cuda" / "bin", "nvcc", "Cuda compilation tools, release 13.0, V13.0.48")
    [found] = detect(["nvcc-13"], host(tmp_path / "empty", CUDA_PATH=str(tmp_path / "cuda")))
    assert isinstance(found, Found) and "CUDA 13.0" in found.detail


def test_cublas_from_nvidia_wheels_is_located_for_cmake(tmp_path: Path) -> None:
    fake_tool(tmp_path / "bin", "nvcc", "Cuda compilation tools, release 13.0, V13.0.48")
    site = tmp_path / "site-packages"
    (site / "nvidia/cu13/include").mkdir(parents=True)
    (site / "nvidia/cu13/include/cublas_v2.h").write_text("")
    (site / "nvidia/cu13/lib").mkdir()
    (site / "nvidia/cu13/lib/libcublas.so.13").write_text("")
    probe_host = Host(env={"PATH": str(tmp_path / "bin")}, system="Linux", python_paths=(str(site),))
    nvcc, cublas = detect(["nvcc-13", "cublas"], probe_host)
    assert isinstance(nvcc, Found) and isinstance(cublas, Found)
    assert cublas.cmake_variables["CUDA_cublas_LIBRARY"] == str(site / "nvidia/cu13/lib/libcublas.so.13")
    assert cublas.cmake_variables["CMAKE_CUDA_STANDARD_INCLUDE_DIRECTORIES"] == str(site / "nvidia/cu13/include")


def test_cublas_for_cuda12_names_the_cu12_wheel(tmp_path: Path) -> None:
    fake_tool(tmp_path / "bin", "nvcc", "Cuda compilation tools, release 12.8, V12.8.93")
    _, cublas = detect(["nvcc-12", "cublas"], host(tmp_path / "bin"))
    assert isinstance(cublas, Missing) and "pip install nvidia-cublas-cu12" in cublas.hint


def test_the_cublas_wheel_to_install_follows_the_nvcc_found(tmp_path: Path) -> None:
    """What `nox -s build/wheels` install so that a toolkit without cuBLAS can build the CUDA presets."""
    fake_tool(tmp_path / "12" / "bin", "nvcc", "Cuda compilation tools, release 12.8, V12.8.93")
    fake_tool(tmp_path / "13" / "bin", "nvcc", "Cuda compilation tools, release 13.0, V13.0.48")
    assert cublas_wheel_for_nvcc(host(tmp_path / "12" / "bin")) == "nvidia-cublas-cu12>=12,<13"
    assert cublas_wheel_for_nvcc(host(tmp_path / "empty", CUDA_PATH=str(tmp_path / "13"))) == "nvidia-cublas>=13,<14"
    assert cublas_wheel_for_nvcc(host(tmp_path / "empty")) is None


def test_missing_glslc_says_what_to_install(tmp_path: Path) -> None:
    [glslc] = detect(["glslc"], host(tmp_path))
    assert isinstance(glslc, Missing) and "apt-get install glslc" in glslc.hint
    fake_tool(tmp_path / "sdk" / "bin", "glslc", "shaderc")
    [found] = detect(["glslc"], host(tmp_path, VULKAN_SDK=str(tmp_path / "sdk")))
    assert isinstance(found, Found) and found.cmake_variables["Vulkan_GLSLC_EXECUTABLE"].endswith("glslc")


def test_old_hip_is_missing_with_its_version(tmp_path: Path) -> None:
    fake_tool(tmp_path / "rocm" / "bin", "hipconfig", "5.2.21153-0")
    [hip] = detect(["hip"], host(tmp_path / "empty", ROCM_PATH=str(tmp_path / "rocm")))
    assert isinstance(hip, Missing) and "HIP 5.2, 6.1 is needed" in hip.reason


def test_metal_is_missing_off_macos(tmp_path: Path) -> None:
    [metal] = detect(["xcode-metal"], host(tmp_path))
    assert isinstance(metal, Missing) and metal.reason == "Metal builds only on macOS"


def test_the_cuda_driver_stub_is_found_in_the_toolkit_or_not_needed_without_vmm(tmp_path: Path) -> None:
    toolkit = tmp_path / "cuda"
    fake_tool(toolkit / "bin", "nvcc", "Cuda compilation tools, release 13.0, V13.0.48")
    (toolkit / "lib64/stubs").mkdir(parents=True)
    (toolkit / "lib64/stubs/libcuda.so").write_text("")
    _, stub = detect(["nvcc-13", "cuda-driver"], host(toolkit / "bin"))
    assert isinstance(stub, Found) and stub.detail == str(toolkit / "lib64/stubs/libcuda.so")

    (toolkit / "lib64/stubs/libcuda.so").unlink()
    no_vmm = Host(env={"PATH": str(toolkit / "bin")}, system="Linux", definitions={"GGML_CUDA_NO_VMM": "ON"})
    _, skipped = detect(["nvcc-13", "cuda-driver"], no_vmm)
    assert isinstance(skipped, Found) and skipped.detail == "not linked: GGML_CUDA_NO_VMM=ON"
    _, missing = detect(["nvcc-13", "cuda-driver"], host(toolkit / "bin"))
    if not Path("/usr/lib/x86_64-linux-gnu/libcuda.so").exists():
        assert isinstance(missing, Missing) and "-D GGML_CUDA_NO_VMM=ON" in missing.hint


def test_metal_needs_the_sdk_not_the_optional_shader_compiler(tmp_path: Path) -> None:
    """Xcode 26 images may lack the `metal` compiler; the preset embeds the shader source instead."""
    sdk = tmp_path / "MacOSX.sdk"
    fake_tool(tmp_path / "bin", "xcrun", str(sdk))  # answers --show-sdk-path; `-f metal` would fail
    darwin = Host(env={"PATH": str(tmp_path / "bin")}, system="Darwin", python_paths=("/nonexistent",))
    [without] = detect(["xcode-metal"], darwin)
    assert isinstance(without, Missing) and without.reason == f"the macOS SDK at {sdk} has no Metal.framework"
    (sdk / "System/Library/Frameworks/Metal.framework").mkdir(parents=True)
    [found] = detect(["xcode-metal"], darwin)
    assert isinstance(found, Found) and found.detail == f"macOS SDK {sdk}"


def test_hip_names_rocms_clang_for_cmake(tmp_path: Path) -> None:
    """The manylinux container has no ROCm on PATH: CMake would find no HIP compiler unless told."""
    rocm = tmp_path / "rocm"
    for package in ("hipblas", "rocblas"):
        (rocm / "lib/cmake" / package).mkdir(parents=True)
    hipconfig = rocm / "bin" / "hipconfig"
    hipconfig.parent.mkdir(parents=True)
    # `hipconfig --version` and `hipconfig -l` (the clang directory), as ROCm's script answers them
    hipconfig.write_text(f'#!/bin/sh\n[ "$1" = -l ] && echo {rocm}/llvm/bin && exit 0\necho 6.2.41133-dd7f95766\n')
    hipconfig.chmod(0o755)
    [missing] = detect(["hip"], host(tmp_path / "empty", ROCM_PATH=str(rocm)))
    assert (
        isinstance(missing, Missing)
        and missing.reason == f"ROCm's clang is not at {rocm}/llvm/bin/clang (hipconfig -l)"
    )
    fake_tool(rocm / "llvm/bin", "clang", "AMD clang version 18.0.0")
    [found] = detect(["hip"], host(tmp_path / "empty", ROCM_PATH=str(rocm)))
    assert isinstance(found, Found)
    assert found.cmake_variables == {"CMAKE_PREFIX_PATH": str(rocm), "CMAKE_HIP_COMPILER": f"{rocm}/llvm/bin/clang"}
