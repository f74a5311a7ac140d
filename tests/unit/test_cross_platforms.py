"""Cross builds without building: the platform names, the cross compiler's detection, the toolchain file, the
record of variants the compiler could not build, and the names ARM variants carry (a dot in them)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from buildsys.builder.cross import read_unbuildable, toolchain_file
from buildsys.builder.platforms import CROSS_TARGETS, KNOWN, host_platform, resolve
from buildsys.builder.stage import StagedFile, module_name
from buildsys.builder.toolchains import Found, Host, Missing, detect
from buildsys.ci.matrix import PLATFORMS
from buildsys.errors import UsageError

AARCH64 = CROSS_TARGETS[("linux-x86_64", "linux-aarch64")]


def test_the_platform_names_are_the_wheel_matrixs() -> None:
    assert list(KNOWN) == [p.name for p in PLATFORMS]
    assert {name: system for name, (system, _) in KNOWN.items()} == {p.name: p.system for p in PLATFORMS}


def test_the_hosts_platform_is_named_as_the_matrix_names_it() -> None:
    assert host_platform("Linux", "x86_64") == "linux-x86_64"
    assert host_platform("Linux", "aarch64") == "linux-aarch64"
    assert host_platform("Darwin", "arm64") == "macos-arm64"
    assert host_platform("Windows", "AMD64") == "windows-x86_64"


def test_an_unknown_platform_is_refused_listing_the_known_ones() -> None:
    with pytest.raises(UsageError) as refused:
        resolve("linux-riscv64", host="linux-x86_64")
    assert refused.value.exit_code == 2
    assert "linux-riscv64" in refused.value.message
    assert refused.value.hint == "platforms: linux-x86_64, linux-aarch64, macos-arm64, windows-x86_64"


def test_the_hosts_own_platform_is_no_cross_build_and_an_unreachable_one_is_refused() -> None:
    assert resolve("linux-x86_64", host="linux-x86_64") is None
    assert resolve("linux-aarch64", host="linux-x86_64") is AARCH64
    with pytest.raises(UsageError) as refused:
        resolve("macos-arm64", host="linux-x86_64")
    assert "linux-x86_64 cannot build for macos-arm64" in refused.value.message
    assert "here: linux-x86_64, linux-aarch64" in refused.value.hint


@pytest.mark.skipif(sys.platform == "win32", reason="the fake compilers are POSIX shell scripts")
def test_the_cross_compiler_is_found_on_path_or_named_with_its_package(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    gcc = bin_dir / "aarch64-linux-gnu-gcc"
    gcc.write_text("#!/bin/sh\necho 'aarch64-linux-gnu-gcc (Debian 12.2.0-14) 12.2.0'\n")
    gcc.chmod(0o755)
    host = Host(env={"PATH": str(bin_dir), "CC": "/usr/bin/gcc"}, system="Linux", cross=AARCH64)
    [missing] = detect(["c-compiler"], host)  # g++ is not there; CC, the host's compiler, is not asked
    assert isinstance(missing, Missing)
    assert missing.reason == "no cross compiler for linux-aarch64: aarch64-linux-gnu-g++ is not on PATH"
    assert missing.hint == "apt-get install g++-aarch64-linux-gnu"
    gxx = bin_dir / "aarch64-linux-gnu-g++"
    gxx.write_bytes(gcc.read_bytes())
    gxx.chmod(0o755)
    [found] = detect(["c-compiler"], host)
    assert isinstance(found, Found)
    assert found.cmake_variables == {"CMAKE_C_COMPILER": str(gcc), "CMAKE_CXX_COMPILER": str(gxx)}
    assert "12.2.0" in found.detail and "cross to linux-aarch64" in found.detail


def test_the_toolchain_file_names_the_target_the_compilers_the_sysroot_and_the_emulator() -> None:
    compilers = {"CMAKE_C_COMPILER": "/usr/bin/aarch64-linux-gnu-gcc", "CMAKE_CXX_COMPILER": "/usr/bin/x y"}
    text = toolchain_file(AARCH64, compilers, Path("/usr/bin/qemu-aarch64"))
    assert "set(CMAKE_SYSTEM_NAME Linux)\nset(CMAKE_SYSTEM_PROCESSOR aarch64)\n" in text
    assert 'set(CMAKE_CXX_COMPILER "/usr/bin/x y")' in text
    assert 'set(CMAKE_FIND_ROOT_PATH "/usr/aarch64-linux-gnu")' in text
    assert 'set(CMAKE_CROSSCOMPILING_EMULATOR "/usr/bin/qemu-aarch64" -L "/usr/aarch64-linux-gnu")' in text
    assert "EMULATOR" not in toolchain_file(AARCH64, compilers, None)


def test_the_variants_the_compiler_could_not_build_are_read_with_its_words(tmp_path: Path) -> None:
    record = tmp_path / "unbuildable-variants.txt"
    assert read_unbuildable(record) == {}
    record.write_text("ggml-cpu-armv9.2_1\t-march=armv9.2-a+sme: error: unknown value\nnot a record line\n")
    assert read_unbuildable(record) == {"ggml-cpu-armv9.2_1": "-march=armv9.2-a+sme: error: unknown value"}


def test_a_variant_name_with_a_dot_keeps_it() -> None:
    def named(path: str) -> str:
        return module_name(StagedFile(path, "module", 0, ""))

    assert named("modules/libggml-cpu-armv8.2_1.so") == "ggml-cpu-armv8.2_1"
    assert named("modules/libggml-cpu-haswell.so") == "ggml-cpu-haswell"
    assert named("modules/ggml-vulkan.dll") == "ggml-vulkan"
