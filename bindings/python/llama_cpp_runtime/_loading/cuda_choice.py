"""Which CUDA module serves this machine when several are installed: one plugin per CUDA major
(cuda12, cuda13) and one wheel per architecture family within each. Every one of them registers the
backend "CUDA", so at most one is loaded: the one whose runtime the driver supports and whose code runs
on the most GPUs here, natively (a cubin) before by JIT (PTX), the newer CUDA major first.

The driver is asked directly (libcuda: cuDriverGetVersion, each device's compute capability); what a
module was compiled for is read from the stage.json its wheel carries beside modules/.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .._gpu.floors import NVIDIA_HERE
from .._gpu.nvidia import HOW, CudaDriver, choose_module, fit, probe_driver
from .._platform import IS_MACOS
from .._report import Status
from .discovery import ModuleFile
from .stage_record import StageRecord


@dataclass(frozen=True)
class Verdict:
    status: Status | None  # None: load it; else "skipped" or "not chosen"
    reason: str  # what it serves, or why it is not loaded


def verdicts(modules: Sequence[ModuleFile], records: Sequence[StageRecord]) -> dict[Path, Verdict]:
    """One verdict per CUDA module: at most one is loaded. Without this, a CUDA module built without VMM
    loads and says only that the driver is "insufficient", and two CUDA modules would both register "CUDA"."""
    if not modules or IS_MACOS:
        return {}
    driver = probe_driver()
    if isinstance(driver, str):
        return {m.path: Verdict("skipped", driver) for m in modules}
    return dict(zip((m.path for m in modules), choose(modules, records, driver), strict=True))


def choose(modules: Sequence[ModuleFile], records: Sequence[StageRecord], driver: CudaDriver) -> list[Verdict]:
    """One verdict per module, in the given order; at most one is chosen."""
    supported = driver.version // 1000
    capabilities = [d.capability for d in driver.devices]
    runnable: list[int] = []
    reasons: dict[int, str] = {}
    fits: dict[int, list[int]] = {}
    for index, record in enumerate(records):
        if record.cuda_major is not None and record.cuda_major > supported:
            reasons[index] = f"driver supports CUDA {driver.cuda}; the module needs CUDA {record.cuda_major}"
            reasons[index] += _floor_words(record)
            continue
        fits[index] = [fit(record.architectures, c) for c in capabilities] if record.architectures else []
        if driver.devices and record.architectures and not any(fits[index]):
            built = ", ".join(record.architectures)
            here = ", ".join(sorted({d.sm for d in driver.devices}))
            reasons[index] = f"compiled for {built}; no GPU here can run it ({here})"
            continue
        runnable.append(index)
    best = choose_module([(records[i].architectures, records[i].cuda_major) for i in runnable], capabilities)
    chosen = None if best is None else runnable[best]
    refused: Status = "skipped" if chosen is None else "not chosen"
    result = []
    for index, module in enumerate(modules):
        if index == chosen:
            result.append(Verdict(None, _serves(fits[index], driver)))
        elif index in reasons:
            result.append(Verdict(refused, reasons[index]))
        else:
            assert chosen is not None  # runnable and not chosen: another module was
            better = modules[chosen]
            name = better.source if better.source != module.source else str(better.path)
            result.append(Verdict(refused, f"driver supports CUDA {driver.cuda}; {name} serves this machine better"))
    return result


def _floor_words(record: StageRecord) -> str:
    """The driver the module's floor names, when its build recorded one: on Windows this is where the floor
    is said (the driver's own version would take loading nvml.dll in this process; its CUDA version is
    known here, from the driver this choice opened anyway)."""
    floor = record.driver_floor.get(NVIDIA_HERE)
    return f" (NVIDIA driver {floor} or newer): update the NVIDIA driver" if floor else ""


def _serves(fits: list[int], driver: CudaDriver) -> str:
    served = [f"{d.sm}: {HOW[f]}" for d, f in zip(driver.devices, fits, strict=False) if f]
    if not fits and driver.devices:
        served = ["architectures not recorded"]
    return f"driver supports CUDA {driver.cuda}" + (f"; {', '.join(served)}" if served else "")
