"""How the binding finds plugin distributions (entry points read from dist-info, as importlib.metadata
would find them) and which CPU facts key its remembered variant scores."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from llama_cpp_runtime._loading.discovery import ENTRY_POINT_GROUP, backend_entry_points
from llama_cpp_runtime._loading.variant_cache import cpu_identity_from_cpuinfo
from pytest import MonkeyPatch

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 143
model name\t: Intel(R) Xeon(R) Processor
cpu MHz\t\t: {mhz}
core id\t\t: 0
flags\t\t: fpu sse2 avx2 {extra}
bogomips\t: 4200.00

processor\t: 1
vendor_id\t: GenuineIntel
cpu MHz\t\t: 1000.000
flags\t\t: fpu sse2 avx2 avx512f
"""


def _distribution(site: Path, directory: str, entry_points: str | None) -> None:
    info = site / directory
    info.mkdir(parents=True)
    name = directory.rsplit(".", 1)[0].split("-", maxsplit=1)[0].replace("_", "-")
    for metadata_file in ("METADATA", "PKG-INFO"):  # dist-info's name, egg-info's name
        (info / metadata_file).write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    if entry_points is not None:
        (info / "entry_points.txt").write_text(entry_points)


def test_entry_points_are_read_as_importlib_metadata_reads_them(tmp_path: Path, monkeypatch: MonkeyPatch) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    group = f"[{ENTRY_POINT_GROUP}]"
    _distribution(
        first,
        "llama_cpp_runtime_vulkan-1.0.dist-info",
        f"# generated\n[console_scripts]\nx = y:z\n\n{group}\nvulkan = llama_cpp_runtime_vulkan:module_dir\n",
    )
    _distribution(first, "other.egg-info", f"{group}\n# a comment\nother = other.plugin:where [extra]\n")
    _distribution(first, "no_entry_points-2.0.dist-info", None)
    _distribution(first, "unrelated-3.0.dist-info", "[console_scripts]\nvulkan = a:b\n")
    # the same distribution again later on the path: the first one wins
    _distribution(second, "llama_cpp_runtime_vulkan-0.9.dist-info", f"{group}\nold = stale:module_dir\n")
    (tmp_path / "archive.zip").write_bytes(b"PK")  # zip entries on sys.path hold no native plugin
    search_path = [str(first), str(tmp_path / "archive.zip"), str(tmp_path / "missing"), str(second)]

    found = [(e.name, e.value, e.distribution) for e in backend_entry_points(search_path)]

    monkeypatch.setattr(sys, "path", search_path)
    expected = sorted(
        (e.name, e.value, e.dist.name if e.dist else "") for e in metadata.entry_points(group=ENTRY_POINT_GROUP)
    )
    assert (
        found
        == expected
        == [
            ("other", "other.plugin:where [extra]", "other"),
            ("vulkan", "llama_cpp_runtime_vulkan:module_dir", "llama-cpp-runtime-vulkan"),
        ]
    )


def test_a_cpus_identity_is_its_model_and_flags_not_its_clock() -> None:
    base = cpu_identity_from_cpuinfo(CPUINFO.format(mhz="2100.000", extra=""))

    assert base == cpu_identity_from_cpuinfo(CPUINFO.format(mhz="3500.123", extra=""))
    assert base != cpu_identity_from_cpuinfo(CPUINFO.format(mhz="2100.000", extra="amx_tile"))
    assert "model name:Intel(R) Xeon(R) Processor" in base and "avx512f" not in base  # the first CPU only
