"""Family wheels (llama-cpp-runtime-cuda13: no files, every architecture-family wheel required) are
written only where dist/ holds every member of the same version and platform."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

from helpers.wheel_checks import check_wheel_contents, tool_versions, twine_check

from buildsys.packaging.family_wheels import write_family_wheels
from buildsys.packaging.lint_exceptions import EMPTY_ON_PURPOSE, ignored_codes
from buildsys.packaging.project_table import PROJECT_LICENSE, load_project_table
from buildsys.packaging.release_record import PatchEntry, read_wheel_record, record_bytes, wheel_record
from buildsys.packaging.wheelfile import WheelFile, WheelSpec, write_wheel

FAMILY = {"llama-cpp-runtime-cuda13": ("llama-cpp-runtime-cuda13-sm75", "llama-cpp-runtime-cuda13-sm90")}
LINUX = "py3-none-manylinux_2_28_x86_64"
WINDOWS = "py3-none-win_amd64"


def member(dist: Path, name: str, version: str, tag: str, commit: str = "") -> Path:
    """A member wheel; with `commit`, it carries a release record as `wheels` writes it."""
    architectures = {"sm75": ["75-real", "80-real"], "sm90": ["90-real", "100-virtual"]}[name.rsplit("-", 1)[-1]]
    record = wheel_record(
        distribution=name,
        version=version,
        kind="plugin",
        upstream={"commit": commit, "patch_series_sha256": "5" * 64, "llama_cpp_python": "0.3.35"},
        patches=[PatchEntry("0001-a.patch", "a" * 64)],
        presets=[{"preset": name.removeprefix("llama-cpp-runtime-"), "cuda_architectures": architectures}],
    )
    spec = WheelSpec(
        distribution=name,
        version=version,
        tag=tag,
        summary="a member",
        dist_info_files={"release.json": record_bytes(record)} if commit else {},
    )
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
    write_wheel(
        tmp_path, WheelSpec(distribution="llama-cpp-runtime", version="0.3.35", tag=LINUX, summary="x"), {}, epoch=0
    )
    assert write_family_wheels(tmp_path, FAMILY, version="0.3.35", epoch=0).written == []
    assert write_family_wheels(tmp_path / "missing", FAMILY, version="0.3.35", epoch=0).incomplete == []


def test_the_family_wheel_says_what_it_is_with_its_members_records(tmp_path: Path) -> None:
    for name in FAMILY["llama-cpp-runtime-cuda13"]:
        member(tmp_path, name, "0.3.35", LINUX, commit="c" * 40)

    [(_, wheel)] = write_family_wheels(tmp_path, FAMILY, version="0.3.35", epoch=0).written

    lines = metadata(wheel)
    table = load_project_table()
    assert lines[0] == "Metadata-Version: 2.4" and "License-Expression: MIT" in lines
    assert [line for line in lines if line.startswith("License-File:")] == ["License-File: LICENSE"]
    assert [line.split(": ", 1)[1] for line in lines if line.startswith("Classifier:")] == list(table.classifiers)
    assert [line for line in lines if line.startswith("Project-URL:")] == [
        f"Project-URL: {k}, {v}" for k, v in table.urls
    ]
    with zipfile.ZipFile(wheel) as archive:
        licence = archive.read("llama_cpp_runtime_cuda13-0.3.35.dist-info/licenses/LICENSE")
    assert licence == PROJECT_LICENSE.read_bytes()
    record = read_wheel_record(wheel)
    assert record["kind"] == "family" and record["members"] == list(FAMILY["llama-cpp-runtime-cuda13"])
    assert record["upstream_commit"] == "c" * 40 and record["llama_cpp_python"] == "0.3.35"
    assert record["patch_series"] == {"sha256": "5" * 64, "patches": [{"name": "0001-a.patch", "sha256": "a" * 64}]}
    assert [p["cuda_architectures"] for p in record["presets"]] == [["75-real", "80-real"], ["90-real", "100-virtual"]]
    page = "\n".join(lines[lines.index("") + 1 :])
    assert page.startswith("# llama-cpp-runtime-cuda13\n") and 'pip install "llama-cpp-runtime[cuda13]"' in page
    assert "| `llama-cpp-runtime-cuda13-sm90` | `sm_90`; PTX `compute_100`" in page
    assert page.index("## Links") < page.index("## Build") and f"`{'c' * 40}`" in page.split("## Build")[1]


def test_members_of_different_pins_get_no_family_wheel(tmp_path: Path) -> None:
    member(tmp_path, "llama-cpp-runtime-cuda13-sm75", "0.3.35", LINUX, commit="a" * 40)
    member(tmp_path, "llama-cpp-runtime-cuda13-sm90", "0.3.35", LINUX, commit="b" * 40)

    outcome = write_family_wheels(tmp_path, FAMILY, version="0.3.35", epoch=0)

    assert outcome.written == []
    assert outcome.incomplete == [
        "llama-cpp-runtime-cuda13 0.3.35 not written for manylinux x86_64: its members were built from different "
        f"upstream commits or patch series ({'a' * 12}, {'b' * 12})"
    ]


def test_twine_accepts_the_family_wheel_and_check_wheel_contents_finds_only_that_it_is_empty(tmp_path: Path) -> None:
    """A family wheel holds no file on purpose: check-wheel-contents says exactly W007 and W008 of it, the
    codes EMPTY_ON_PURPOSE ignores for family wheels, and nothing else; twine check --strict passes."""
    for name in FAMILY["llama-cpp-runtime-cuda13"]:
        member(tmp_path / "dist", name, "0.3.35", LINUX, commit="c" * 40)
    [(_, wheel)] = write_family_wheels(tmp_path / "dist", FAMILY, version="0.3.35", epoch=0).written

    twine = twine_check([wheel])
    plain = check_wheel_contents([wheel])
    ignored = check_wheel_contents([wheel], ignore=ignored_codes(read_wheel_record(wheel)["kind"]))

    assert twine.returncode == 0 and "PASSED" in twine.stdout, twine.stdout + twine.stderr + tool_versions()
    codes = sorted(set(re.findall(r": (W\d{3}): ", plain.stdout)))
    assert plain.returncode == 1 and codes == sorted(EMPTY_ON_PURPOSE) == ["W007", "W008"], plain.stdout
    assert ignored.returncode == 0 and ignored.stdout.strip().endswith("OK"), ignored.stdout + ignored.stderr


def test_pip_installs_a_family_with_its_members(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    for name in FAMILY["llama-cpp-runtime-cuda13"]:
        member(dist, name, "0.3.35", "py3-none-any", commit="c" * 40)
    [(_, wheel)] = write_family_wheels(dist, FAMILY, version="0.3.35", epoch=0).written
    target = tmp_path / "prefix"
    install = [sys.executable, "-m", "pip", "--disable-pip-version-check", "install", "--no-index", "--no-compile"]
    install += ["--find-links", str(dist), "--prefix", str(target), str(wheel)]
    result = subprocess.run(install, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    installed = sorted(p.name for p in target.rglob("*.dist-info"))
    assert installed == [
        "llama_cpp_runtime_cuda13-0.3.35.dist-info",
        "llama_cpp_runtime_cuda13_sm75-0.3.35.dist-info",
        "llama_cpp_runtime_cuda13_sm90-0.3.35.dist-info",
    ]
