"""`check`'s work in a child process: every case of _ggml.op_cases on one device (or CPU variant), with
weights in each of the device's extra buffer types too, compared with the baseline CPU variant's results and,
where cheap, with Python's.

One `check` shares a folder with its children (BASELINE_FOLDER): the first child that needs the baseline's
results finds them there, or runs the baseline variant in a grandchild that writes them (so a baseline that
crashes fails there, naming itself). Before each case a child says on stderr which one it starts: a child
that dies of SIGILL or SIGSEGV is reported with that line, i.e. with the variant and the operation."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._child import run_child
from .._errors import ComputeError, LlamaRuntimeError, Unsupported
from .._ggml import op_cases as _op_cases
from .._ggml import reference as _reference
from .._ggml.compute import Backend
from .._report import Report
from .._runtime import Runtime, load
from .._settings import BACKENDS, CACHE_DIR, CPU_VARIANT
from . import check_model as _check_model

BASELINE_FOLDER = "LLAMA_CPP_RUNTIME_CHECK_FOLDER"  # set by `check` for its children
BASELINE_ROLE = "LLAMA_CPP_RUNTIME_CHECK_BASELINE"  # "1": this child computes the baseline's results
BASELINE_TIMEOUT = 300.0
STARTING = "check: starting"
MODEL_DEVICE_TYPES = {"CPU", "GPU", "IGPU"}  # not BLAS and the like: libllama runs them beside the CPU
GPU_TYPES = {"GPU", "IGPU"}
# the baseline's model runs: F32 attention (what CPU variants are compared with), upstream's defaults (GPUs)
MODEL_KEYS = {False: "_model", True: "_model_gpu"}


@contextlib.contextmanager
def shared_folder() -> Iterator[None]:
    """In `check`: a folder its children share for the baseline's results, for as long as it runs."""
    before = os.environ.get(BASELINE_FOLDER)
    with tempfile.TemporaryDirectory(prefix="llama-cpp-runtime-check-") as folder:
        os.environ[BASELINE_FOLDER] = folder
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(BASELINE_FOLDER, None)
            else:
                os.environ[BASELINE_FOLDER] = before


def baseline_variant(report: Report) -> str | None:
    """The CPU variant every other is compared with: x64 (the portable one) if it runs here, else the
    lowest-scoring one that does; None when the CPU backend comes without variants."""
    runnable = [
        (m.score or 0, m.name.removeprefix("ggml-cpu-"))
        for m in report.modules
        if m.backend == "cpu" and m.status in {"loaded", "not chosen"} and m.name.startswith("ggml-cpu-")
    ]
    names = [name for _, name in runnable]
    return "x64" if "x64" in names else min(runnable)[1] if runnable else None


@dataclass
class Findings:
    compared: int = 0
    worst: tuple[float, str] = (0.0, "")  # the largest error as a fraction of its tolerance, and where
    mismatches: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # the model's outcome, what was not run and why
    placed: dict[str, list[str]] = field(default_factory=dict)  # extra buffer type -> the weight types it took

    def compare(
        self, where: str, got: array[float], expected: list[float], scale: list[float], tolerance: float, against: str
    ) -> None:
        if len(got) != len(expected):
            self.mismatches.append(f"{where}: {len(got)} values, {against} gave {len(expected)}")
            return
        error = _reference.worst_error(got, expected, scale)
        self.compared += 1
        self.worst = max(self.worst, (error / tolerance, where))
        if not error <= tolerance:  # NaN too
            self.mismatches.append(f"{where} error {error:.1e} against {against} (tolerance {tolerance:.0e})")

    def detail(self, baseline: str) -> tuple[bool, str]:
        taken = "; ".join(f"{buft} took {', '.join(types)}" for buft, types in self.placed.items())
        unsupported = ", ".join(dict.fromkeys(self.unsupported))
        parts = [
            f"{self.compared} results within tolerance of {baseline} (worst {self.worst[0]:.2f} of it: {self.worst[1]})"
            if not self.mismatches
            else "MISMATCH: " + "; ".join(self.mismatches),
            taken,
            f"{unsupported} not supported by this device" if unsupported else "",
            *self.notes,
        ]
        return not self.mismatches, ", ".join(part for part in parts if part)


def device_check(device: str | None) -> dict[str, Any]:
    """The child's answer for `device`: ok and detail (a mismatch, or what was compared with what)."""
    runtime = load()
    report = runtime.report()
    base = baseline_variant(report)
    computing_baseline = os.environ.get(BASELINE_ROLE) == "1"
    is_baseline = device in {None, "CPU"} and report.cpu_variant == base
    kind = runtime.device(device or "CPU").type
    gpu = kind in GPU_TYPES
    with runtime.open(device or "CPU") as backend:
        baseline = None if is_baseline or computing_baseline else _baseline_results(base)
        results, findings = _run_cases(backend, baseline, gpu)
        ggml = backend.library
    results[MODEL_KEYS[gpu]] = _model_case(runtime, device or "CPU", kind, ggml, baseline, findings)
    if is_baseline or computing_baseline:
        results[MODEL_KEYS[True]] = _model_run(runtime, "CPU", ggml, None, gpu=True)
        _record_baseline(results)
    ok, detail = findings.detail("Python, as the baseline" if is_baseline else f"{base or 'CPU'} and Python")
    return {"ok": ok, "detail": detail}


def _run_cases(backend: Backend, baseline: dict[str, Any] | None, gpu: bool) -> tuple[dict[str, Any], Findings]:
    findings = Findings()
    results: dict[str, Any] = {}
    extra = backend.extra_buffer_types()
    for case in _op_cases.cases(backend.library):
        for buft_name, buft in [("", None), *(extra if case.weighted else [])]:
            where = f"{case.label} in {buft_name}" if buft_name else case.label
            print(f"{STARTING} {where}", file=sys.stderr, flush=True)
            try:
                got = backend.graph(case.inputs(), case.build, weights_in=buft)
            except Unsupported:
                if buft is None:
                    findings.unsupported.append(_kind(case.label))
                    results[case.label] = None
                continue  # an extra buffer type that does not take these weights: ggml would not put them there
            except ComputeError as error:
                findings.mismatches.append(f"{where}: {error}")
                continue
            if buft is None:
                results[case.label] = list(got)
            else:
                placed = findings.placed.setdefault(buft_name, [])
                placed += [] if case.label.split()[1] in placed else [case.label.split()[1]]
            scale = case.scale() if case.scale else [1.0] * len(got)
            if case.python is not None:
                expected, python_scale, tolerance = case.python()
                findings.compare(where, got, expected, python_scale, tolerance, "Python")
            reference = (baseline or {}).get(case.label)
            if isinstance(reference, list):
                tolerance = case.tolerance_on(gpu)
                findings.compare(where, got, reference, scale, tolerance, baseline_name(baseline, None))
    return results, findings


def _model_case(
    runtime: Runtime, device: str, kind: str, ggml: Any, baseline: dict[str, Any] | None, findings: Findings
) -> dict[str, Any]:
    """The tiny model on this device (of ggml's device type `kind`) against the baseline's run of it (recorded by
    the baseline under MODEL_KEYS: with F32 attention for CPU variants, with upstream's defaults for GPUs)."""
    print(f"{STARTING} {_check_model.LABEL}", file=sys.stderr, flush=True)
    gpu = kind in GPU_TYPES
    theirs = (baseline or {}).get(MODEL_KEYS[gpu]) or {}
    if kind not in MODEL_DEVICE_TYPES:
        findings.notes.append(f"MODEL not run on {device}, an accelerator (libllama runs models beside the CPU)")
        return {"skipped": "an accelerator"}
    mine = _model_run(runtime, device, ggml, theirs.get("tokens"), gpu)
    if "failed" in mine:
        findings.mismatches.append(f"{_check_model.LABEL}: {mine['failed']}")
    elif "skipped" in mine:
        findings.notes.append(f"{_check_model.LABEL.split()[0]} not run: {mine['skipped']}")
    elif "logits" in theirs:
        tolerance = _check_model.GPU_TOLERANCE if gpu else _check_model.TOLERANCE
        worst, problems = _check_model.compare(mine, theirs, tolerance)
        findings.compared += 1
        findings.worst = max(findings.worst, (worst / tolerance, _check_model.LABEL))
        if not problems:
            steps = len(mine["tokens"])
            findings.notes.append(
                f"MODEL: {steps} greedy tokens as {baseline_name(baseline, None)}'s, logits within {worst:.0e}"
            )
        findings.mismatches += [
            f"{_check_model.LABEL} {problem} against {baseline_name(baseline, None)}" for problem in problems
        ]
    elif baseline is None:
        findings.notes.append(f"MODEL generated {len(mine['tokens'])} tokens, the reference")
    elif "failed" in theirs:
        findings.notes.append(f"{_check_model.LABEL.split()[0]} not compared: the baseline failed it")
    return mine


def _model_run(runtime: Runtime, device: str, ggml: Any, forced: list[int] | None, gpu: bool) -> dict[str, Any]:
    """check_model.run's answer, or {"failed": why} when libllama refused it."""
    try:
        return _check_model.run(runtime, device, _folder(), ggml, forced, f32_attention=not gpu)
    except LlamaRuntimeError as error:
        return {"failed": str(error)}


def _kind(label: str) -> str:
    """The operation and its type without the shape: "MUL_MAT q4_0 64x9x256" -> "MUL_MAT q4_0"."""
    words = label.split()
    return " ".join(words[: next((i for i, w in enumerate(words) if w[0].isdigit()), len(words))])


def baseline_name(baseline: dict[str, Any] | None, default: str | None) -> str:
    return str((baseline or {}).get("_variant") or default or "the baseline")


def _folder() -> Path:
    folder = os.environ.get(BASELINE_FOLDER)
    if not folder:  # a child run by hand: a folder of its own
        folder = tempfile.mkdtemp(prefix="llama-cpp-runtime-check-")
        os.environ[BASELINE_FOLDER] = folder
    return Path(folder)


def _record_baseline(results: dict[str, Any]) -> None:
    path = _folder() / "baseline.json"
    if not path.exists():
        report = load().report()
        path.write_text(json.dumps({"_variant": report.cpu_variant or "CPU", **results}), encoding="utf-8")


def _baseline_results(base: str | None) -> dict[str, Any]:
    """The baseline's results from the shared folder, computed by a grandchild the first time; a baseline that
    failed is a mismatch of every case that needs it (quantized weights have no Python result)."""
    path, failed = _folder() / "baseline.json", _folder() / "baseline-failed.txt"
    if not path.exists() and not failed.exists():
        env = {**os.environ, BASELINE_ROLE: "1", CACHE_DIR: "off", BACKENDS: "cpu"}
        if base is not None:
            env[CPU_VARIANT] = base
        child = run_child(["_check", "CPU"], env, BASELINE_TIMEOUT)
        if child.failure and not path.exists():
            failed.write_text(f"the baseline {base or 'CPU'} failed: {child.failure}", encoding="utf-8")
    if failed.exists():
        raise ComputeError(failed.read_text(encoding="utf-8"))
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded
