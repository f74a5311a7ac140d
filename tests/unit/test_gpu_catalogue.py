"""The binding's list of GPU plugin wheels is the presets' matrix (they do not ship in the wheel), and each
plugin's driver floor travels from its preset into its stage.json and its wheel's description."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from llama_cpp_runtime._gpu.catalogue import CORE, WHEELS, PluginWheel
from llama_cpp_runtime._loading.stage_record import read_stage_record

from buildsys.builder.presets import load_matrix
from buildsys.builder.stage import write_stage_record
from buildsys.packaging.wheels import _description, driver_floor_text


def wheels_from_the_presets() -> list[PluginWheel]:
    """What the catalogue must say, read from CMakePresets.json."""
    found = []
    for preset in load_matrix().presets:
        if preset.wheel == CORE or preset.ships_program:  # CPU variants, Metal: the core's; llama-server: no GPU
            continue
        majors = [int(r.removeprefix("nvcc-")) for r in preset.requires if r.startswith("nvcc-")]
        variables = preset.cache_variables
        found.append(
            PluginWheel(
                extra=preset.wheel.removeprefix(f"{CORE}-"),
                backend=preset.backend,
                family=preset.family.removeprefix(f"{CORE}-"),
                cuda_major=majors[0] if majors else None,
                architectures=tuple(a for a in variables.get("CMAKE_CUDA_ARCHITECTURES", "").split(";") if a),
                gfx_targets=tuple(t for t in variables.get("AMDGPU_TARGETS", "").split(";") if t),
                floors=tuple(sorted(preset.driver_floor.items())),
            )
        )
    return found


def test_the_catalogue_is_the_presets_matrix() -> None:
    ours = [PluginWheel(**{**w.__dict__, "floors": tuple(sorted(w.floors))}) for w in WHEELS]
    assert ours == wheels_from_the_presets()


def test_every_gpu_plugin_has_a_driver_floor_but_vulkan() -> None:
    floors = {
        p.name: dict(p.driver_floor) for p in load_matrix().presets if p.backend not in {"cpu", "metal", "server"}
    }
    assert floors == {
        "cuda12-sm61": {"nvidia-linux": "525.60.13", "nvidia-windows": "528.33"},
        "cuda12-sm86": {"nvidia-linux": "525.60.13", "nvidia-windows": "528.33"},
        "cuda13-sm75": {"nvidia-linux": "580", "nvidia-windows": "580"},
        "cuda13-sm90": {"nvidia-linux": "580", "nvidia-windows": "580"},
        "vulkan": {},
        "hip": {"rocm": "6.1"},
    }


def test_the_floor_goes_into_stage_json_where_the_binding_reads_it(tmp_path: Path) -> None:
    floor = load_matrix().get("cuda12-sm86").driver_floor
    write_stage_record(
        tmp_path,
        preset="cuda12-sm86",
        backend="cuda",
        provenance={},
        options={},
        requires=["nvcc-12"],
        files=[],
        driver_floor=floor,
    )

    assert json.loads((tmp_path / "stage.json").read_text())["driver_floor"] == floor
    assert read_stage_record(tmp_path).driver_floor == floor
    assert read_stage_record(tmp_path).cuda_major == 12


def test_the_wheel_description_says_the_floor() -> None:
    assert (
        driver_floor_text(load_matrix().get("cuda13-sm90").driver_floor)
        == "NVIDIA driver ≥ 580 (Linux), ≥ 580 (Windows)"
    )
    assert driver_floor_text(load_matrix().get("hip").driver_floor) == "ROCm ≥ 6.1"
    assert driver_floor_text({}) == ""
    provenance = {"commit": "c" * 40, "patch_series_sha256": "p" * 64}
    plugin = _description([SimpleNamespace(preset=load_matrix().get("cuda12-sm86"), options={})], provenance)  # type: ignore[list-item]
    assert plugin.endswith(
        "\nNeeds NVIDIA driver ≥ 525.60.13 (Linux), ≥ 528.33 (Windows): the binding skips its module, naming both "
        "versions, under an older one.\n"
    )
    core = _description([SimpleNamespace(preset=load_matrix().get("cpu"), options={})], provenance)  # type: ignore[list-item]
    assert "Needs" not in core and core.endswith("- preset `cpu`: \n")


def test_the_extra_named_for_each_backend_is_a_wheel_of_that_backend() -> None:
    from llama_cpp_runtime._gpu.catalogue import backend_of_extra, extra_for

    for backend in ("cuda", "hip", "vulkan"):
        extra = extra_for(backend)
        assert any(extra in {w.extra, w.family} and w.backend == backend for w in WHEELS), backend
        assert backend_of_extra(extra) == backend
    assert extra_for("metal") == "" and backend_of_extra("cuda12-sm86") == "cuda" and backend_of_extra("") == ""
