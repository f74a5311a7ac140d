"""Family wheels (llama-cpp-runtime-cuda13: no files, every architecture-family wheel required) are
written only where dist/ holds every member of the same version and platform."""

from __future__ import annotations

import zipfile
from pathlib import Path

from buildsys.packaging.family_wheels import write_family_wheels
from buildsys.packaging.wheelfile import WheelFile, WheelSpec, write_wheel

FAMILY = {"llama-cpp-runtime-cuda13": ("llama-cpp-runtime-cuda13-sm75", "llama-cpp-runtime-cuda13-sm90")}
LINUX = "py3-none-manylinux_2_28_x86_64"
WINDOWS = "py3-none-win_amd64"


def member(dist: Path, name: str, version: str, tag: str) -> Path:
    spec = WheelSpec(distribution=name, version=version, tag=tag, summary="a member")
    return write_wheel(dist, spec, {"pkg/modules/libggml-cuda.so": WheelFile(b"\x7fELF")}, epoch=0)


def metadata(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return archive.read(name).decode().splitlines()


def test_the_family_wheel_requires_every_member_at_its_version_and_holds_no_file(tmp_path: Path) -> None:
    for name in FAMILY["llama-cpp-runtime-cuda13"]:
        member(tmp_path, name, "0.3.35", LINUX)

    outcome = write_family_wheels(tmp_path, FAMILY, version="0.3.35", epoch=0)

    [(family, wheel)] = outcome.written
    assert family == "llama-cpp-runtime-cuda13" and wheel.name == f"llama_cpp_runtime_cuda13-0.3.35-{LINUX}.whl"
    lines = metadata(wheel)
    assert "Requires-Dist: llama-cpp-runtime-cuda13-sm75==0.3.35" in lines
    assert "Requires-Dist: llama-cpp-runtime-cuda13-sm90==0.3.35" in lines
    with zipfile.ZipFile(wheel) as archive:
        assert all(".dist-info/" in name for name in archive.namelist())
    first = wheel.read_bytes()
    write_family_wheels(tmp_path, FAMILY, version="0.3.35", epoch=0)  # another job writes the same bytes
    assert wheel.read_bytes() == first and outcome.incomplete == []


def test_a_platform_missing_a_member_gets_no_family_wheel_and_says_which(tmp_path: Path) -> None:
    for name in FAMILY["llama-cpp-runtime-cuda13"]:
        member(tmp_path, name, "0.3.35", LINUX)
    member(tmp_path, "llama-cpp-runtime-cuda13-sm75", "0.3.35", WINDOWS)
    member(tmp_path, "llama-cpp-runtime-cuda13-sm90", "0.3.34", WINDOWS)  # another version: not a member

    outcome = write_family_wheels(tmp_path, FAMILY, version="0.3.35", epoch=0)

    assert [wheel.name for _, wheel in outcome.written] == [f"llama_cpp_runtime_cuda13-0.3.35-{LINUX}.whl"]
    assert outcome.incomplete == [
        "llama-cpp-runtime-cuda13 0.3.35 not written for win_amd64: llama-cpp-runtime-cuda13-sm90 not in dist/"
    ]


def test_members_tagged_for_different_glibcs_get_a_family_wheel_for_the_newest(tmp_path: Path) -> None:
    """auditwheel tags each wheel with the oldest glibc it allows: one real build gave 2_34 and 2_35."""
    member(tmp_path, "llama-cpp-runtime-cuda13-sm75", "0.3.35", "py3-none-manylinux_2_28_x86_64")
    member(tmp_path, "llama-cpp-runtime-cuda13-sm90", "0.3.35", "py3-none-manylinux_2_35_x86_64")
    member(tmp_path, "llama-cpp-runtime-cuda13-sm75", "0.3.35", "py3-none-manylinux_2_28_aarch64")

    outcome = write_family_wheels(tmp_path, FAMILY, version="0.3.35", epoch=0)

    assert [wheel.name for _, wheel in outcome.written] == [
        "llama_cpp_runtime_cuda13-0.3.35-py3-none-manylinux_2_35_x86_64.whl"
    ]
    assert outcome.incomplete == [
        "llama-cpp-runtime-cuda13 0.3.35 not written for manylinux aarch64: llama-cpp-runtime-cuda13-sm90 not in dist/"
    ]


def test_no_member_built_means_nothing_to_say(tmp_path: Path) -> None:
    member(tmp_path, "llama-cpp-runtime", "0.3.35", LINUX)
    assert write_family_wheels(tmp_path, FAMILY, version="0.3.35", epoch=0).written == []
    assert write_family_wheels(tmp_path / "missing", FAMILY, version="0.3.35", epoch=0).incomplete == []
