"""Which wheel serves a GPU: the CUDA family member whose code runs on its compute capability under the
installed driver, ROCm for a gfx target the ROCm wheel is built for, Vulkan otherwise. What is known decides
how exact the advice is: the doctor knows the compute capability (from the driver, in a child process);
load() knows the vendor and the driver's version only (sysfs), and names the family.
"""

from __future__ import annotations

from dataclasses import dataclass

from .catalogue import PluginWheel, family_floor, install, wheels_for
from .floors import NVIDIA_HERE, ROCM, older, version_key
from .nvidia import HOW, choose_module, cuda_text, fit
from .nvidia import sm as sm_name
from .sysfs import AMD, INTEL, NVIDIA


@dataclass(frozen=True)
class Advice:
    extra: str  # the core's extra to install ("cuda12-sm86", "vulkan"); "" when nothing would serve it
    first: str = ""  # what to do before it helps ("update the NVIDIA driver to 580 or newer (it is 550.54.14)")
    why: str = ""  # what the choice rests on ("sm_86: cubin; NVIDIA driver ≥ 525.60.13")
    later: str = ""  # what a newer driver would allow ("with NVIDIA driver 580 or newer: [cuda13-sm75] ...")

    @property
    def command(self) -> str:
        return install(self.extra) if self.extra else ""

    def line(self) -> str:
        """The advice as one line: `first, then <command>` with the reason."""
        steps = "; then ".join(step for step in (self.first, self.command) if step)
        return steps + (f" ({self.why})" if self.why else "")


@dataclass(frozen=True)
class NvidiaFacts:
    capability: tuple[int, int] | None = None  # from the driver: None when not asked (load()) or no driver
    cuda_version: int | None = None  # cuDriverGetVersion: 12040 is CUDA 12.4
    driver: str | None = None  # the driver's own version ("550.54.14")
    kernel_driver: str = ""  # the Linux kernel driver bound to the GPU (nvidia, nouveau), "" when unknown


VULKAN = Advice("vulkan", why="Vulkan serves any GPU with a Vulkan driver")
_VULKAN_DRIVERS = {  # what the Vulkan loader lacks when it sees no device for a GPU: its installable client driver
    NVIDIA: "install the Vulkan part of NVIDIA's driver (its nvidia_icd.json; Debian/Ubuntu: libnvidia-gl-<version>)",
    AMD: "install Mesa's Vulkan driver for it, RADV (Debian/Ubuntu: mesa-vulkan-drivers)",
    INTEL: "install Mesa's Vulkan driver for it, ANV (Debian/Ubuntu: mesa-vulkan-drivers)",
}


def vulkan_driver_hint(vendor_id: int) -> str:
    return _VULKAN_DRIVERS.get(vendor_id, "install a Vulkan driver for it")


_NOT_OFFERED = (
    "the Vulkan plugin is installed and Vulkan sees this GPU, yet ggml-vulkan does not offer it: "
    "does GGML_VK_VISIBLE_DEVICES leave it out?"
)


def vulkan_advice(advice: Advice, vendor_id: int, *, plugin_loaded: bool, seen_by_vulkan: bool | None = None) -> Advice:
    """Advice of Vulkan, once Vulkan's state is known (any other advice as it is). `plugin_loaded`: the Vulkan
    plugin loaded (and serves no device for this GPU); `seen_by_vulkan`: whether the Vulkan loader lists the
    GPU (None: not asked, as in load()). An installed plugin needs the GPU's Vulkan driver, not a second
    install; one the loader sees and ggml-vulkan does not offer is odd, and said so."""
    if advice.extra != "vulkan":
        return advice
    if plugin_loaded and seen_by_vulkan:
        return Advice("", why=_NOT_OFFERED)
    first = advice.first or vulkan_driver_hint(vendor_id)
    if plugin_loaded:
        return Advice("", first=first, why="the Vulkan plugin is installed")
    if seen_by_vulkan is False:
        return Advice(advice.extra, first=first, why=advice.why, later=advice.later)
    return advice


def advise(vendor_id: int, nvidia: NvidiaFacts | None = None, gfx: str = "", rocm: str | None = None) -> Advice:
    """The wheel for a GPU of this vendor, from what is known of it."""
    if vendor_id == NVIDIA:
        return advise_nvidia(nvidia or NvidiaFacts())
    if vendor_id == AMD:
        return advise_amd(gfx, rocm)
    return VULKAN


def advise_nvidia(facts: NvidiaFacts) -> Advice:
    if facts.kernel_driver not in {"", "nvidia"} and facts.driver is None and facts.cuda_version is None:
        return Advice(
            "cuda13",
            first=f"install NVIDIA's driver (the kernel drives this GPU with {facts.kernel_driver}, which has no CUDA)",
            why=f"CUDA 13 needs driver {family_floor('cuda13', NVIDIA_HERE)} or newer; [vulkan] works without it",
        )
    if facts.capability is None:
        return _nvidia_family(facts)
    return _nvidia_member(facts, facts.capability)


def _nvidia_family(facts: NvidiaFacts) -> Advice:
    """Without the compute capability (load() does not ask the driver): the CUDA major the driver runs."""
    newest = next((f for f in ("cuda13", "cuda12") if _driver_runs(facts, f)), "")
    if newest == "cuda13":
        return Advice(
            "cuda13", why="compute capability not asked: [cuda13] serves Turing (sm_75) and newer, [cuda12] older"
        )
    if newest:
        return Advice(newest, why=f"driver {facts.driver or cuda_text(facts.cuda_version)} runs CUDA 12, not 13")
    floor = family_floor("cuda12", NVIDIA_HERE)
    return Advice("cuda12", first=f"update the NVIDIA driver to {floor} or newer (it is {facts.driver})")


def _driver_runs(facts: NvidiaFacts, family: str) -> bool:
    """Whether the installed driver runs a family's CUDA major (True when nothing says it does not)."""
    major = int(family.removeprefix("cuda"))
    if facts.cuda_version is not None and facts.cuda_version // 1000 < major:
        return False
    floor = family_floor(family, NVIDIA_HERE)
    return not (facts.driver and floor and older(facts.driver, floor))


def _nvidia_member(facts: NvidiaFacts, capability: tuple[int, int]) -> Advice:
    """The member whose code runs this capability best (a cubin before PTX, the newer CUDA major on a tie),
    among those the driver runs; and what a newer driver would add."""
    sm = sm_name(capability)
    fitting = [(fit(w.architectures, capability), w.cuda_major or 0, w) for w in wheels_for("cuda")]
    fitting = sorted((entry for entry in fitting if entry[0]), key=lambda e: (e[0], e[1]), reverse=True)
    if not fitting:
        return Advice("vulkan", why=f"no CUDA wheel has code for {sm}; Vulkan serves it")
    runnable = [entry for entry in fitting if _driver_runs(facts, entry[2].family)]
    best = fitting[0]
    if not runnable:  # the smallest driver update that runs it, then the better code
        nearest = min(fitting, key=lambda e: (version_key(family_floor(e[2].family, NVIDIA_HERE)) or (), -e[0]))
        floor = family_floor(nearest[2].family, NVIDIA_HERE)
        have = facts.driver or f"CUDA {cuda_text(facts.cuda_version)}"
        first = f"update the NVIDIA driver to {floor} or newer (it is {have})"
        return Advice(nearest[2].extra, first=first, why=_why(nearest, sm))
    chosen = runnable[0]
    later = ""
    if best[0] > chosen[0]:  # a cubin where the driver allows only PTX, say
        floor = family_floor(best[2].family, NVIDIA_HERE)
        later = f"with NVIDIA driver {floor} or newer, [{best[2].extra}] runs it from a {HOW[best[0]]}"
    return Advice(chosen[2].extra, why=_why(chosen, sm), later=later)


def advise_nvidia_gpus(capabilities: list[tuple[int, int]], facts: NvidiaFacts) -> list[Advice]:
    """One advice per GPU of a machine with several: at most one CUDA module is loaded per process, so the
    wheel is the one the loader would choose among every wheel the driver runs (the most GPUs served, the
    newer CUDA major, the better code), and a GPU it has no code for is advised Vulkan, saying why."""
    runnable = [w for w in wheels_for("cuda") if _driver_runs(facts, w.family)]
    best = choose_module([(w.architectures, w.cuda_major) for w in runnable], capabilities)
    alone = [_nvidia_member(facts, capability) for capability in capabilities]
    if best is None:
        return alone
    chosen = runnable[best]
    return [_beside(chosen, capability, own) for capability, own in zip(capabilities, alone, strict=True)]


def _beside(chosen: PluginWheel, capability: tuple[int, int], own: Advice) -> Advice:
    """A GPU's advice once the machine's CUDA wheel is chosen: its own when they agree."""
    if own.extra == chosen.extra:
        return own
    sm = sm_name(capability)
    how = fit(chosen.architectures, capability)
    if how:
        alone = "" if own.extra == "vulkan" else f"; alone it would take [{own.extra}]"
        return Advice(chosen.extra, why=_why((how, 0, chosen), sm) + alone)
    alone = "" if own.extra == "vulkan" else f" (alone it would take [{own.extra}])"
    return Advice(
        "vulkan", why=f"one CUDA module per process: [{chosen.extra}] serves the other GPU(s), not {sm}{alone}"
    )


def _why(entry: tuple[int, int, PluginWheel], sm: str) -> str:
    how, _, wheel = entry
    floor = family_floor(wheel.family, NVIDIA_HERE)
    return f"{sm}: {HOW[how]}; CUDA {wheel.cuda_major}, NVIDIA driver {floor} or newer"


def advise_amd(gfx: str, rocm: str | None) -> Advice:
    [wheel] = wheels_for("hip")
    floor = dict(wheel.floors).get(ROCM, "")
    if not gfx:
        return Advice(
            "vulkan", why="ROCm does not see it (no KFD node: the amdgpu driver is not loaded); Vulkan serves it"
        )
    if gfx not in wheel.gfx_targets:
        targets = ", ".join(wheel.gfx_targets)
        return Advice("vulkan", why=f"{gfx} is not among the ROCm wheel's targets ({targets}); Vulkan serves it")
    if rocm is None:
        return Advice("rocm", first=f"install ROCm {floor} or newer (the wheel uses its libraries)", why=gfx)
    if older(rocm, floor):
        return Advice("rocm", first=f"update ROCm to {floor} or newer (it is {rocm})", why=gfx)
    return Advice("rocm", why=f"{gfx}; ROCm {rocm}")
