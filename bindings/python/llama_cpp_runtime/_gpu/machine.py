"""The doctor's probes put together: one entry per GPU, matched across sysfs, the NVIDIA driver, KFD, Vulkan
and Metal by PCI address (else by PCI ids), then what serves each one now and what would."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._platform import IS_WINDOWS
from .._report import Device, ModuleReport, Report, backend_of
from .advice import VULKAN, Advice, NvidiaFacts, advise, advise_amd, advise_nvidia_gpus, vulkan_driver_hint
from .amd import KfdGpu, rocm_version
from .catalogue import WHEELS
from .findings import DoctorProbe, GpuFinding
from .floors import NVIDIA_HERE, ROCM, older
from .metal import MetalDevice
from .nvidia import CudaDevice, CudaDriver, driver_version
from .pci import VENDORS, PciGpu
from .probes import KINDS, nvidia_from, vulkan_from
from .serving import Service, service, with_plugins
from .sysfs import AMD, NVIDIA
from .vulkan import VulkanDevice

APPLE = 0x106B
_NOT_OFFERED = (
    "the Vulkan plugin is installed and Vulkan sees this GPU, yet ggml-vulkan does not offer it: "
    "does GGML_VK_VISIBLE_DEVICES leave it out?"
)


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
        sysfs_root: Path,
    ) -> None:
        self.answers = {name: answer for name, (_, answer) in answers.items()}
        self.failed = {name: probe.detail for name, (probe, _) in answers.items() if not probe.ok}
        self.seen = [_Seen(g.bus_id, g.vendor_id, g.device_id, g.integrated, g.rule, g.driver) for g in pci if g.usable]
        nvidia, vulkan, load = (self.answers.get(name) for name in ("nvidia", "vulkan", "load"))
        self.driver = nvidia_from(nvidia) if nvidia else None
        self.vulkan = vulkan_from(vulkan) if vulkan else None
        self.report = _report_from(load) if load else None
        self.rocm = rocm_version()
        # Linux: a sysfs file, read here too, so that a crashed driver probe still leaves the version known
        child_said = (nvidia or {}).get("driver_version")
        self.nvidia_version: str | None = child_said if IS_WINDOWS else driver_version(sysfs_root)
        self._add_cuda()
        self._add_kfd(kfd)
        self._add_vulkan()
        self._add_metal()

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
        advised = _backend_of_extra(advice.extra)
        enough = bool(now.device) and advised in {_backend_of_device(now.device, self.report), "vulkan", ""}
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
            return Service(metal.name, "ggml-metal") if metal else Service("", "ggml-metal serves no device")
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
            advice = self._nvidia_plan().get(id(seen)) or advise(NVIDIA, self._nvidia_facts(seen))
        elif seen.vendor_id == AMD:
            advice = advise_amd(seen.gfx, self.rocm)
        else:
            advice = VULKAN
        if self.report is not None:
            advice = self._knowing_the_plugins(seen, advice, self.report)
        if advice.extra == "vulkan" and isinstance(self.vulkan, list) and seen.vulkan is None:
            first = advice.first or vulkan_driver_hint(seen.vendor_id)
            return Advice(advice.extra, first=first, why=advice.why, later=advice.later)
        return advice

    @staticmethod
    def _knowing_the_plugins(seen: _Seen, advice: Advice, report: Report) -> Advice:
        """The advice once the installed plugins are known: an installed Vulkan plugin needs the GPU's Vulkan
        driver when the loader does not see the GPU, and says what is odd when it does."""
        vulkan_loaded = any(m.backend == "vulkan" and m.status == "loaded" for m in report.modules)
        if seen.vulkan is None or advice.extra != "vulkan" or not vulkan_loaded:
            return with_plugins(advice, seen.vendor_id, report)
        return Advice("", why=_NOT_OFFERED)

    def _nvidia_plan(self) -> dict[int, Advice]:
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
            lines.append(_floor_line("ROCm", self.rocm or "not installed (/opt/rocm/.info/version)", ROCM, self.rocm))
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
        floor = dict(wheel.floors).get(key)
        if floor:
            floors.setdefault(floor, wheel.family or wheel.extra)
    said = []
    for floor, who in floors.items():
        verdict = "" if version is None else (": too old" if older(version, floor) else ": ok")
        said.append(f"[{who}] needs ≥ {floor}{verdict}")
    return f"{label}: {have}" + (f" — {'; '.join(said)}" if said else "")


def _backend_of_device(device: str, report: Report | None) -> str:
    found = next((d for d in report.devices if d.name == device), None) if report else None
    return backend_of(found.backend) if found else ""


def _backend_of_extra(extra: str) -> str:
    return "cuda" if extra.startswith("cuda") else {"rocm": "hip", "vulkan": "vulkan"}.get(extra, "")


def _report_from(document: dict[str, Any]) -> Report:
    """`info --json` read back into the report load() made in the child (what serving.service asks)."""
    devices = tuple(
        Device(**{k: v for k, v in d.items() if k not in {"preferred", "_handle"}}) for d in document["devices"]
    )
    return Report(
        library_dir=document["library_dir"],
        modules=tuple(ModuleReport(**m) for m in document["modules"]),
        cpu_variant=document["cpu_variant"],
        cpu_variant_score=document["cpu_variant_score"],
        devices=devices,
        no_cpu_backend=document.get("no_cpu_backend", ""),
    )
