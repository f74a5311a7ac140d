from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

from buildsys.packaging.wheelfile import WheelFile, WheelSpec, metadata_text, write_wheel

SPEC = WheelSpec(
    distribution="llama-cpp-runtime-vulkan",
    version="1.2.3",
    tag="py3-none-linux_x86_64",
    summary="test",
    requires=["llama-cpp-runtime==1.2.3"],
    extras={"x": ["other==1"]},
    entry_points={"llama_cpp_runtime.backends": {"vulkan": "llama_cpp_runtime_vulkan:module_dir"}},
)
FILES = {"pkg/b.so": WheelFile(b"\x7fELF...", executable=True), "pkg/a.py": WheelFile(b"print(1)\n")}


def test_the_same_inputs_give_the_same_bytes(tmp_path: Path) -> None:
    first = write_wheel(tmp_path / "one", SPEC, FILES, epoch=1_700_000_000).read_bytes()
    second = write_wheel(tmp_path / "two", SPEC, dict(reversed(FILES.items())), epoch=1_700_000_000).read_bytes()
    assert first == second
    assert write_wheel(tmp_path / "three", SPEC, FILES, epoch=1_700_086_400).read_bytes() != first


def test_record_names_every_file_with_its_hash_and_dist_info_comes_last(tmp_path: Path) -> None:
    wheel = write_wheel(tmp_path, SPEC, FILES, epoch=0)
    assert wheel.name == "llama_cpp_runtime_vulkan-1.2.3-py3-none-linux_x86_64.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert names[:2] == ["pkg/a.py", "pkg/b.so"] and names[-1].endswith(".dist-info/RECORD")
        record = archive.read(names[-1]).decode().splitlines()
        for line in record[:-1]:
            name, digest, size = line.split(",")
            data = archive.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert digest == f"sha256={expected}" and int(size) == len(data)
        assert {line.split(",")[0] for line in record} == set(names)
        assert archive.getinfo("pkg/b.so").external_attr >> 16 == 0o100755
        assert archive.getinfo("pkg/a.py").date_time == (1980, 1, 1, 0, 0, 0)
        entry_points = archive.read("llama_cpp_runtime_vulkan-1.2.3.dist-info/entry_points.txt").decode()
        assert "[llama_cpp_runtime.backends]\nvulkan = llama_cpp_runtime_vulkan:module_dir\n" in entry_points


def test_metadata_declares_requirements_and_extras() -> None:
    text = metadata_text(SPEC)
    assert "Name: llama-cpp-runtime-vulkan\nVersion: 1.2.3\n" in text
    assert "Requires-Dist: llama-cpp-runtime==1.2.3\n" in text
    assert 'Provides-Extra: x\nRequires-Dist: other==1; extra == "x"\n' in text
