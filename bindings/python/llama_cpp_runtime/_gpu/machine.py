"""The doctor's probes put together: one entry per GPU, matched across sysfs, the NVIDIA driver, KFD, Vulkan
and Metal by PCI address (else by PCI ids), then what serves each one now and what would."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .._report import Report, backend_of
from . import KINDS
from .advice import VULKAN, Advice, NvidiaFacts, advise, advise_amd, advise_nvidia_gpus
from .amd import KfdGpu
from .catalogue import WHEELS, backend_of_extra
from .findings import DoctorProbe, GpuFinding
from .floors import NVIDIA_HERE, ROCM, older
from .metal import MetalDevice
from .nvidia import CudaDevice, CudaDriver
from .pci import VENDORS, PciGpu
from .probes import nvidia_from, vulkan_from
from .serving import Service, service, with_plugins
from .sysfs import AMD, NVIDIA, Snapshot
from .vulkan import VulkanDevice

APPLE = 0x106B


@dataclass
class _Seen:
    """One GPU as the probes saw it, gathered before the finding is made."""

    bus_id: str
    vendor_id: int
    device_id: int = 0
    integrated: bool = False
    rule: str = ""
    kernel_driver: str | None = None  # None: no PCI listing said
    cuda: CudaDevice | None = None
    gfx: str = ""
    vulkan: VulkanDevice | None = None
    metal: MetalDevice | None = None
    names: list[str] = field(default_factory=list)


class Machine:
    """The probes' answers put together, one _Seen per GPU (matched by PCI address, else by PCI ids)."""

    def __init__(
        self,
        pci: list[PciGpu],
        kfd: list[KfdGpu],
        answers: dict[str, tuple[DoctorProbe, dict[str, Any] | None]],
        machine: Snapshot,
    ) -> None:
        self.answers = {name: answer for name, (_, answer) in answers.items()}
        self.failed = {name: probe.detail for name, (probe, _) in answers.items() if not probe.ok}
        self.seen = [_Seen(g.bus_id, g.vendor_id, g.device_id, g.integrated, g.rule, g.driver) for g in pci if g.usable]
        nvidia, vulkan, load = (self.answers.get(name) for name in ("nvidia", "vulkan", "load"))
        self.driver = nvidia_from(nvidia) if nvidia else None
        self.vulkan = vulkan_from(vulkan) if vulkan else None
        self.report = Report.from_json(load) if load else None
        self.rocm, self.rocm_file = machine.rocm, machine.rocm_file
        # the probe's word; when it crashed, the kernel module's sysfs file (Linux: read, nothing loaded)
        child_said = (nvidia or {}).get("driver_version")
        self.nvidia_version: str | None = child_said if nvidia else machine.nvidia
        self._add_cuda()
        self._add_kfd(kfd)
        self._add_vulkan()
        self._add_metal()
        self._nvidia_plan = self._plan_nvidia()

    def _find(self, bus_id: str, vendor_id: int = 0, device_id: int = 0) -> _Seen | None:
        by_address = next((s for s in self.seen if bus_id and s.bus_id == bus_id), None)
        if by_address or not vendor_id:
            return by_address
        return next(
            (s for s in self.seen if (s.vendor_id, s.device_id) == (vendor_id, device_id) and not s.vulkan), None
        )

    def _add_cuda(self) -> None:
        for device in self.driver.devices if isinstance(self.driver, CudaDriver) else ():
            seen = self._find(device.pci_bus_id)
            if seen is None:  # no PCI listing (Windows, WSL): the driver's word is all there is
                seen = _Seen(device.pci_bus_id, NVIDIA, rule="discrete: reported by the CUDA driver")
                self.seen.append(seen)
            seen.cuda = device
            seen.names.append(device.name)

    def _add_kfd(self, kfd: list[KfdGpu]) -> None:
        for node in kfd:
            seen = self._find(node.bus_id)
            if seen is None:
                seen = _Seen(node.bus_id, node.vendor_id or AMD, node.device_id, rule="discrete: reported by KFD")
                self.seen.append(seen)
            seen.gfx = node.gfx

    def _add_vulkan(self) -> None:
        for device in self.vulkan if isinstance(self.vulkan, list) else ():
            if not device.gpu:
                continue
            seen = self._find(device.bus_id, device.vendor_id, device.device_id)
            if seen is None:
                seen = _Seen(device.bus_id, device.vendor_id, device.device_id)
                self.seen.append(seen)
            seen.vulkan = device
            seen.names.append(device.name)
            if device.type in {"integrated", "discrete"}:  # the driver's own word beats the PCI rule
                seen.integrated, seen.rule = device.type == "integrated", f"{device.type}: Vulkan's device type"

    def _add_metal(self) -> None:
        answer = self.answers.get("metal")
        for device in (answer or {}).get("devices", []):
            metal = MetalDevice(**device)
            kind = "integrated" if metal.integrated else "discrete"
            self.seen.append(
                _Seen("", APPLE, 0, metal.integrated, f"{kind}: Metal", None, metal=metal, names=[metal.name])
            )

    def findings(self) -> list[GpuFinding]:
        ordered = sorted(self.seen, key=lambda s: (s.integrated, s.bus_id))
        return [self._finding(seen) for seen in ordered]

    def _finding(self, seen: _Seen) -> GpuFinding:
        vendor = VENDORS.get(seen.vendor_id, "Apple" if seen.vendor_id == APPLE else f"vendor {seen.vendor_id:04x}")
        ids = f"{seen.vendor_id:04x}:{seen.device_id:04x}" if seen.device_id else ""
        now = self._service(seen)
        advice = self._advice(seen)
        # served already: another wheel is advised only for a better backend than the serving one (CUDA, not Vulkan)
        advised = backend_of_extra(advice.extra)
        enough = bool(now.device) and advised in {now.backend, "vulkan", ""}
        return GpuFinding(
            name=next((n for n in seen.names if n), f"{vendor} GPU"),
            vendor=vendor,
            bus_id=seen.bus_id,
            pci_ids=ids,
            integrated=seen.integrated,
            rule=seen.rule,
            facts=tuple(self._facts(seen)),
            served_by=f"{now.device} ({now.module})" if now.device else "",
            now=self._now_text(now),
            install="" if enough else advice.command,
            first="" if enough else advice.first,
            why=advice.why,
            later=advice.later,
        )

    def _service(self, seen: _Seen) -> Service:
        if self.report is None:
            why = self.failed.get("load", "the load probe gave nothing")
            return Service("", f"unknown: loading the libraries in a child process failed: {why}")
        if seen.metal is not None:
            metal = next((d for d in self.report.devices if backend_of(d.backend) == "metal"), None)
            return (
                Service(metal.name, "ggml-metal", backend="metal")
                if metal
                else Service("", "ggml-metal serves no device")
            )
        return service(seen.bus_id, seen.vendor_id, self.report)

    @staticmethod
    def _now_text(now: Service) -> str:
        if not now.device:
            return f"not used: {now.module}"
        guess = "" if now.exact else " (its backend gives no PCI address: taken to be this GPU)"
        return f"used by {now.device}, {now.module}{guess}"

    def _advice(self, seen: _Seen) -> Advice:
        if seen.metal is not None:
            return Advice("", why="Metal is part of the core wheel")
        if seen.vendor_id == NVIDIA:
            advice = self._nvidia_plan.get(id(seen)) or advise(NVIDIA, self._nvidia_facts(seen))
        elif seen.vendor_id == AMD:
            advice = advise_amd(seen.gfx, self.rocm)
        else:
            advice = VULKAN
        # whether the Vulkan loader lists the GPU: None when it was not asked (or failed)
        seen_by_vulkan = (seen.vulkan is not None) if isinstance(self.vulkan, list) else None
        report = self.report or Report("", (), None, None, ())
        return with_plugins(advice, seen.vendor_id, report, seen_by_vulkan)

    def _plan_nvidia(self) -> dict[int, Advice]:
        """The advice for every NVIDIA GPU whose compute capability the driver gave, made together: one CUDA
        module serves them all or some of them."""
        known = [s for s in self.seen if s.vendor_id == NVIDIA and s.cuda is not None]
        if not known:
            return {}
        facts = self._nvidia_facts(known[0])
        plan = advise_nvidia_gpus([s.cuda.capability for s in known if s.cuda], facts)
        return {id(seen): advice for seen, advice in zip(known, plan, strict=True)}

    def _nvidia_facts(self, seen: _Seen) -> NvidiaFacts:
        driver = self.driver if isinstance(self.driver, CudaDriver) else None
        return NvidiaFacts(
            capability=seen.cuda.capability if seen.cuda else None,
            cuda_version=driver.version if driver else None,
            driver=self.nvidia_version,
            kernel_driver=seen.kernel_driver or "",
        )

    def _facts(self, seen: _Seen) -> list[str]:
        facts = []
        if seen.cuda:
            facts.append(f"compute capability {seen.cuda.capability[0]}.{seen.cuda.capability[1]} ({seen.cuda.sm})")
        if seen.gfx:
            facts.append(f"ROCm target {seen.gfx}")
        if seen.kernel_driver is not None:
            facts.append(f"kernel driver: {seen.kernel_driver or 'none bound'}")
        if seen.vulkan:
            facts.append(f"Vulkan: {seen.vulkan.name} ({seen.vulkan.type}, Vulkan {seen.vulkan.api_version})")
        elif isinstance(self.vulkan, list) and seen.metal is None:
            facts.append("Vulkan: not seen (no Vulkan driver for it is installed)")
        return facts

    def driver_lines(self) -> list[str]:
        lines = []
        if "nvidia" in KINDS:
            lines.append(self._nvidia_line())
        if any(s.vendor_id == AMD for s in self.seen) or self.rocm:
            lines.append(_floor_line("ROCm", self.rocm or f"not installed ({self.rocm_file})", ROCM, self.rocm))
        if "vulkan" in KINDS:
            lines.append(self._vulkan_line())
        return lines

    def _nvidia_line(self) -> str:
        version = self.nvidia_version
        if "nvidia" in self.failed:
            failed = f"the probe failed: {self.failed['nvidia']}"
            said = f"{version}; {failed}" if version else failed
            return _floor_line("NVIDIA driver", said, NVIDIA_HERE, version)
        if isinstance(self.driver, str) or self.driver is None:
            return f"NVIDIA driver: {self.driver or 'not asked'}"
        said = f"{version}, " if version else ""
        return _floor_line("NVIDIA driver", f"{said}CUDA {self.driver.cuda}", NVIDIA_HERE, version)

    def _vulkan_line(self) -> str:
        if "vulkan" in self.failed:
            return f"Vulkan: the probe failed: {self.failed['vulkan']}"
        if isinstance(self.vulkan, str) or self.vulkan is None:
            return f"Vulkan: {self.vulkan or 'not asked'}"
        gpus = [d.name for d in self.vulkan if d.gpu]
        return f"Vulkan: {len(self.vulkan)} device(s), GPUs: {', '.join(gpus) or 'none'}"

    def software_lines(self) -> list[str]:
        found = self.vulkan if isinstance(self.vulkan, list) else []
        return [
            f"Vulkan device {d.name}: a CPU implementation (lavapipe/llvmpipe), not a GPU" for d in found if not d.gpu
        ]

    def cpu_line(self) -> str:
        if self.report is None:
            return f"unknown (the load probe failed: {self.failed.get('load', '?')})"
        return (
            f"ggml-cpu-{self.report.cpu_variant}" if self.report.cpu_variant else f"none: {self.report.no_cpu_backend}"
        )


def _floor_line(label: str, have: str, key: str, version: str | None) -> str:
    """A driver's version beside every floor a plugin wheel sets for it: "CUDA 12 wheels need ≥ 525.60.13: ok"."""
    floors: dict[str, str] = {}
    for wheel in WHEELS:
        floor = wheel.floor.get(key)
        if floor:
            floors.setdefault(floor, wheel.family or wheel.extra)
    said = []
    for floor, who in floors.items():
        verdict = "" if version is None else (": too old" if older(version, floor) else ": ok")
        said.append(f"[{who}] needs ≥ {floor}{verdict}")
    return f"{label}: {have}" + (f" — {'; '.join(said)}" if said else "")
