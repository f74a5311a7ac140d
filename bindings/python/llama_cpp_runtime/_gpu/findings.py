"""What the doctor found, as `lcr.doctor()` returns it and `python -m llama_cpp_runtime doctor` prints it."""

from __future__ import annotations

from dataclasses import dataclass

_ENOUGH = "nothing to install: the best wheel for it serves it"


@dataclass(frozen=True)
class DoctorProbe:
    """One look at the machine: `sysfs` in this process, the others in a child process."""

    name: str  # sysfs, nvidia, vulkan, metal, load
    ok: bool  # False: it crashed, hung or answered nonsense (what it found is then unknown)
    detail: str  # what it found, or how it failed ("crashed (SIGSEGV)", "timed out after 30s")
    seconds: float


@dataclass(frozen=True)
class GpuFinding:
    """One GPU: what it is, what serves it now, and what would."""

    name: str  # what a driver calls it ("NVIDIA GeForce RTX 3090"), else its vendor and PCI ids
    vendor: str
    bus_id: str  # "0000:01:00.0"; "" when no probe gave one (Metal)
    pci_ids: str  # "10de:2204"; "" when unknown
    integrated: bool
    rule: str  # why it counts as integrated or discrete
    facts: tuple[str, ...]  # compute capability, gfx target, kernel driver, what Vulkan says
    served_by: str  # "CUDA0 (ggml-cuda from llama-cpp-runtime-cuda12-sm86)"; "" when nothing serves it
    now: str  # what serves it, or why nothing does
    install: str  # the command that would serve it (better); "" when nothing would or nothing needs to
    first: str = ""  # what to do before the install helps (a driver to install or update)
    why: str = ""  # what the advice rests on
    later: str = ""  # what a newer driver would allow


@dataclass(frozen=True)
class DoctorReport:
    """What `python -m llama_cpp_runtime doctor` prints (`lines()`) and `--json` writes (dataclasses.asdict)."""

    system: str  # linux, win32, darwin
    gpus: tuple[GpuFinding, ...]  # discrete first
    display_only: tuple[str, ...]  # display adapters no backend computes on (a server's BMC, a VM's)
    drivers: tuple[str, ...]  # each driver's version beside the floor the plugins need
    software: tuple[str, ...]  # CPU implementations Vulkan offers (lavapipe): not GPUs
    cpu: str  # what computes when no GPU does
    probes: tuple[DoctorProbe, ...]
    passed_through: tuple[str, ...] = ()  # GPUs bound to vfio-pci or pci-stub: handed to a virtual machine

    @property
    def healthy(self) -> bool:
        """Every GPU is served and every probe answered."""
        return all(g.served_by for g in self.gpus) and all(p.ok for p in self.probes)

    def lines(self) -> list[str]:
        """The report as the command prints it."""
        out = [_headline(self), ""]
        for number, gpu in enumerate(self.gpus, start=1):
            out += _gpu_lines(number, gpu)
        if self.display_only:
            out += [*(f"display only (no compute backend): {d}" for d in self.display_only), ""]
        if self.passed_through:
            out += [*(f"passed through to a virtual machine (not this system's): {d}" for d in self.passed_through), ""]
        out += ["drivers:", *(f"  {line}" for line in self.drivers)]
        out += [f"  {line}" for line in self.software]
        out += [f"CPU: {self.cpu}", "", "probes (sysfs read here, the others each in a child process):"]
        width = max(len(p.name) for p in self.probes)
        for probe in self.probes:
            state = "ok" if probe.ok else "FAILED"
            out.append(f"  {probe.name.ljust(width)}  {state.ljust(6)}  {probe.seconds:5.2f}s  {probe.detail}")
        return out


def _headline(report: DoctorReport) -> str:
    if not report.gpus:
        looked = "PCI display devices, " if report.system.startswith("linux") else ""
        asked = "Metal" if report.system == "darwin" else "the NVIDIA driver, ROCm (KFD) and Vulkan"
        return f"No GPU found (asked: {looked}{asked}): llama-cpp-runtime computes on the CPU here."
    unserved = sum(1 for g in report.gpus if not g.served_by)
    state = f"{unserved} not used" if unserved else "every one used"
    return f"{len(report.gpus)} GPU(s) found, {state}:"


def _gpu_lines(number: int, gpu: GpuFinding) -> list[str]:
    where = ", ".join(part for part in (gpu.bus_id, gpu.pci_ids) if part)
    out = [f"{number}. {gpu.name} [{where or 'no PCI address'}] {gpu.rule}"]
    out += [f"   {fact}" for fact in gpu.facts]
    out.append(f"   now:      {gpu.now}")
    if gpu.first:
        out.append(f"   first:    {gpu.first}")
    if gpu.install:
        out.append(f"   install:  {gpu.install}" + (f"  ({gpu.why})" if gpu.why else ""))
    else:
        out.append(f"   install:  {_ENOUGH if gpu.served_by else 'nothing more: ' + gpu.why}")
    if gpu.later:
        out.append(f"   later:    {gpu.later}")
    return [*out, ""]
