"""The GPU plugin wheels there are, what each was compiled for and the driver it needs: the matrix of
buildsys/cmake/CMakePresets.json as the installed binding knows it (the presets do not ship in the wheel).
tests/unit/test_gpu_catalogue.py proves it equal to the presets, so the matrix is still declared once.

The extras are the core's (`pip install 'llama-cpp-runtime[cuda13-sm75]'`): one per plugin wheel and one
per family (`[cuda13]`: every architecture family of a CUDA major).
"""

from __future__ import annotations

from dataclasses import dataclass

from .sysfs import CORE, NAMES, extra_for, install

__all__ = ["CORE", "NAMES", "WHEELS", "PluginWheel", "backend_of_extra", "extra_for", "family_floor", "install"]
_CUDA12 = (("nvidia-linux", "525.60.13"), ("nvidia-windows", "528.33"))
_CUDA13 = (("nvidia-linux", "580"), ("nvidia-windows", "580"))


@dataclass(frozen=True)
class PluginWheel:
    extra: str  # the core's extra that installs it: "cuda13-sm75", "vulkan", "rocm"
    backend: str  # cuda, hip, vulkan
    family: str = ""  # the extra that installs it with its siblings ("cuda13"); "" when it stands alone
    cuda_major: int | None = None  # the CUDA toolkit it is built with
    architectures: tuple[str, ...] = ()  # CMAKE_CUDA_ARCHITECTURES
    gfx_targets: tuple[str, ...] = ()  # AMDGPU_TARGETS
    floors: tuple[tuple[str, str], ...] = ()  # ("nvidia-linux", "525.60.13"): driver_floor

    @property
    def floor(self) -> dict[str, str]:
        """The driver floors as a mapping: {"nvidia-linux": "525.60.13", ...}."""
        return dict(self.floors)


WHEELS = (
    PluginWheel("cuda12-sm61", "cuda", "cuda12", 12, ("61-real", "70-real", "75-real", "80-real"), floors=_CUDA12),
    PluginWheel("cuda12-sm86", "cuda", "cuda12", 12, ("86-real", "89-real", "90-real", "90-virtual"), floors=_CUDA12),
    PluginWheel("cuda13-sm75", "cuda", "cuda13", 13, ("75-real", "80-real", "86-real", "89-real"), floors=_CUDA13),
    PluginWheel(
        "cuda13-sm90", "cuda", "cuda13", 13, ("90-real", "100-real", "120a-real", "100-virtual"), floors=_CUDA13
    ),
    PluginWheel("vulkan", "vulkan"),
    PluginWheel(
        "rocm",
        "hip",
        gfx_targets=("gfx908", "gfx90a", "gfx942", "gfx1030", "gfx1100", "gfx1101", "gfx1102", "gfx1200", "gfx1201"),
        floors=(("rocm", "6.1"),),
    ),
)


def wheels_for(backend: str) -> list[PluginWheel]:
    return [wheel for wheel in WHEELS if wheel.backend == backend]


def family_floor(family: str, key: str) -> str:
    """The driver floor a family's members share ("" when none says one)."""
    return next((w.floor[key] for w in WHEELS if w.family == family and key in w.floor), "")


def backend_of_extra(extra: str) -> str:
    """The backend an extra installs (cuda13-sm75 and cuda13: cuda; rocm: hip); "" for none."""
    return next((w.backend for w in WHEELS if extra and extra in {w.extra, w.family}), "")
