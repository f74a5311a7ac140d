"""`python -m llama_cpp_runtime doctor` and `llama_cpp_runtime.doctor()`: every GPU here, what serves it
now and the `pip install` that would, discrete before integrated.

Nothing that touches a GPU runs in the caller's process: sysfs is read here (files only), while the NVIDIA
driver, the Vulkan loader, Metal and a full load() each run in a child process with a timeout
(`python -m llama_cpp_runtime _gpu_probe <kind>`, `info --json`). A probe that crashes or hangs is reported
as such, and the report is made from the others.
"""

from __future__ import annotations

import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .._child import check_timeout, run_child
from .._settings import REQUIRE, SYSFS_ROOT
from . import KINDS
from .amd import KfdGpu
from .findings import DoctorProbe, DoctorReport
from .machine import Machine
from .nvidia import cuda_text
from .pci import PciGpu, display_devices
from .probes import LIBRARIES
from .sysfs import DEFAULT_ROOT, PASSED_THROUGH, Snapshot

PROBE_TIMEOUT = 30.0


def doctor(timeout: float = PROBE_TIMEOUT) -> DoctorReport:
    """Every GPU here, what serves it now (a plugin loaded, skipped and why, or none installed) and the
    exact `pip install` that would; each probe that loads a driver runs in a child process, at most
    `timeout` seconds."""
    check_timeout(timeout)  # before any child starts: a bad one fails once, here
    # Only the sysfs root is read here: any other variable is the load child's to parse, and a bad one is
    # that probe's failure, said in the report, instead of a diagnostic that raises before it looks.
    snapshot = Snapshot(os.environ.get(SYSFS_ROOT) or DEFAULT_ROOT)
    start = time.monotonic()
    pci, kfd = display_devices(snapshot.root, snapshot.pci), snapshot.kfd
    sysfs = DoctorProbe("sysfs", True, _sysfs_detail(pci, kfd, snapshot.root), time.monotonic() - start)
    answers = _run_children(timeout)
    machine = Machine(pci, kfd, answers, snapshot)
    return DoctorReport(
        system=sys.platform,
        gpus=tuple(machine.findings()),
        display_only=tuple(f"{g.vendor} {g.ids} at {g.bus_id}" for g in pci if not g.compute),
        passed_through=tuple(
            f"{g.vendor} {g.ids} at {g.bus_id} (bound to {g.driver})" for g in pci if g.driver in PASSED_THROUGH
        ),
        drivers=tuple(machine.driver_lines()),
        software=tuple(machine.software_lines()),
        cpu=machine.cpu_line(),
        probes=(sysfs, *(probe for probe, _ in answers.values())),
    )


def _sysfs_detail(pci: list[PciGpu], kfd: list[KfdGpu], root: Path) -> str:
    said = f"{len(pci)} PCI display device(s) in {root}/bus/pci/devices"
    return said + (f", {len(kfd)} ROCm (KFD) GPU node(s)" if kfd else "")


def _run_children(timeout: float) -> dict[str, tuple[DoctorProbe, dict[str, Any] | None]]:
    """Every child probe at once (each waits on its own child), by name: the probe and its JSON answer."""
    env = {k: v for k, v in os.environ.items() if k != REQUIRE}  # the load is looked at, not required
    jobs = {kind: ["_gpu_probe", kind] for kind in KINDS} | {"load": ["info", "--json"]}
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {name: pool.submit(_child, name, args, env, timeout) for name, args in jobs.items()}
        return {name: future.result() for name, future in futures.items()}


def _child(
    name: str, args: list[str], env: dict[str, str], timeout: float
) -> tuple[DoctorProbe, dict[str, Any] | None]:
    child = run_child(args, env, timeout)
    if child.failure:
        return DoctorProbe(name, False, child.failure, child.seconds), None
    answer = child.json()
    if not isinstance(answer, dict):
        return DoctorProbe(name, False, f"answered no JSON: {child.stdout.strip()[:120]!r}", child.seconds), None
    return DoctorProbe(name, True, _summary(name, answer), child.seconds), answer


def _summary(name: str, answer: dict[str, Any]) -> str:
    if "error" in answer:
        return str(answer["error"])
    if name == "load":
        loaded = [m["name"] for m in answer.get("modules", []) if m["backend"] != "cpu" and m["status"] == "loaded"]
        return f"CPU variant {answer.get('cpu_variant')}; GPU modules loaded: {', '.join(loaded) or 'none'}"
    devices = answer.get("devices", [])
    driver = f"CUDA {cuda_text(answer['cuda_version'])}, " if name == "nvidia" else ""
    return f"{driver}{len(devices)} device(s) ({LIBRARIES[name]})"
