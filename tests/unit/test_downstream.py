"""Another binding's ctypes structs against the build's layout record, and the links that give the
unversioned library names without a second copy of any file."""

from __future__ import annotations

import ctypes
import types
from pathlib import Path

from helpers.cpu_features import elf_linux
from llama_cpp_runtime._downstream import layout_problem, link_directory


def _binding(**structs: list[tuple[str, type]]) -> types.ModuleType:
    module = types.ModuleType("fake_llama_cpp")
    for name in ("llama_model_params", "llama_context_params", "llama_batch"):
        fields = structs.get(name, [("n", ctypes.c_int32)])
        setattr(module, name, type(name, (ctypes.Structure,), {"_fields_": fields}))
    return module


def _record(**overrides: dict[str, object]) -> dict[str, object]:
    base = {"size": 4, "fields": {"n": [0, 4]}}
    return {
        "commit": "a" * 40,
        "structs": {
            name: overrides.get(name, base) for name in ("llama_model_params", "llama_context_params", "llama_batch")
        },
    }


def test_matching_structs_pass_and_each_kind_of_difference_is_named() -> None:
    two = [("n", ctypes.c_int32), ("m", ctypes.c_int32)]
    they = "llama-cpp-python 0.3.36"
    assert layout_problem(_binding(), _record(), they) is None
    assert layout_problem(_binding(llama_batch=two), _record(), they) == (
        "llama_batch.m is declared by llama-cpp-python 0.3.36 but not in the build's headers"
    )
    moved = _record(llama_batch={"size": 8, "fields": {"n": [0, 4], "m": [0, 4]}})
    assert layout_problem(_binding(llama_batch=two), moved, they) == (
        "llama_batch.m is at offset 0 (size 4) in the build's headers, "
        "llama-cpp-python 0.3.36 declares offset 4 (size 4)"
    )
    grown = _record(llama_model_params={"size": 16, "fields": {"n": [0, 4]}})
    assert layout_problem(_binding(), grown, they) == (
        "sizeof(llama_model_params) is 16 in the build's headers, llama-cpp-python 0.3.36 declares 4"
    )
    unnamed = types.ModuleType("empty")
    assert layout_problem(unnamed, _record(), they) == "llama_model_params is not declared by llama-cpp-python 0.3.36"


@elf_linux  # .so names; macOS links .dylib names, Windows needs no links
def test_links_name_each_library_twice_point_at_the_one_file_and_are_repaired(tmp_path: Path) -> None:
    lib = tmp_path / "site" / "lib"
    lib.mkdir(parents=True)
    (lib / "libllama.so.0").write_bytes(b"\x7fELF")
    cache = tmp_path / "cache"

    directory = link_directory({"llama": lib / "libllama.so.0"}, cache)
    assert sorted(p.name for p in directory.iterdir()) == ["libllama.so", "libllama.so.0"]
    assert all(p.resolve() == lib / "libllama.so.0" for p in directory.iterdir())

    (directory / "libllama.so").unlink()
    (directory / "libllama.so").symlink_to(tmp_path / "elsewhere")  # stale: another install moved
    assert link_directory({"llama": lib / "libllama.so.0"}, cache) == directory
    assert (directory / "libllama.so").resolve() == lib / "libllama.so.0"
