"""`python -m llama_cpp_runtime info | doctor | check | bench | run`.

`check` and `bench` never run a device in their own process: each device (and each CPU variant) runs
in a child process with a timeout, so a driver that crashes or hangs is reported as that device
failing instead of taking the caller down (Debian bookworm's lavapipe segfaults on some ggml Vulkan
MUL_MAT shapes).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shlex
import signal
import sys
import time
import warnings
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .._child import interrupt, run_child
from .._errors import LlamaRuntimeError, Unsupported, UnusedGpuWarning
from .._ggml import reference as _reference
from .._gpu import KINDS
from .._runtime import load
from .._settings import BACKENDS, CACHE_DIR, CPU_VARIANT, SYSFS_ROOT, read_settings
from . import check as _cli_check
from . import model as _cli_model
from . import rpc as _cli_rpc
from .arguments import MAX_TIMEOUT, CommandError, positive

CHECK_SHAPE = {"m": 33, "n": 17, "k": 129}  # odd sizes: every vector path runs its scalar tail too
TOLERANCE = 1e-2  # of each element's scale: room for fp16 paths, far below a wrong value (~1.0)
NORM_EPS = 1e-5


@dataclass(frozen=True)
class Target:
    label: str  # what the table shows: "CPU (haswell)", "Vulkan0"
    device: str
    env: dict[str, str]
    variant: str | None = None


@dataclass(frozen=True)
class Outcome:
    target: Target
    ok: bool
    detail: str
    seconds: float


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llama_cpp_runtime", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="what loaded, what did not and why; the devices")
    info.add_argument("--json", action="store_true")
    environment = commands.add_parser(
        "env", help="the variables that make llama-cpp-python (in another process) use these libraries"
    )
    environment.add_argument("--json", action="store_true")
    doctor = commands.add_parser("doctor", help="every GPU here: what serves it, and the pip install that would")
    doctor.add_argument("--json", action="store_true")
    doctor.add_argument(
        "--timeout", type=positive(float, MAX_TIMEOUT), default=30.0, help="seconds per probe (default 30)"
    )
    commands.add_parser("_gpu_probe").add_argument("kind", choices=KINDS)
    for name, text in (
        ("check", "run what models compute on every device and CPU variant, against the baseline variant and Python"),
        ("bench", "matrix-multiply throughput per device and CPU variant"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument(
            "--timeout", type=positive(float, MAX_TIMEOUT), default=120.0, help="seconds per device (default 120)"
        )
        sub.add_argument("--device", action="append", default=[], help="only these devices (repeatable)")
        if name == "bench":
            sub.add_argument("--size", type=positive(int), default=256, help="m = n = k of the multiply (default 256)")
            _cli_model.add_bench_options(sub)
    _cli_model.add_run(commands)
    _cli_model.add_bench_child(commands)
    _cli_rpc.add_rpc_server(commands)
    commands.add_parser("_inspect").add_argument("model")
    for hidden in ("_probe", "_check", "_bench"):
        child = commands.add_parser(hidden)
        child.add_argument("device", nargs="?")
        if hidden == "_bench":
            child.add_argument("--size", type=int, default=256)
    parser.add_argument("-v", "--verbose", action="store_true", help="show ggml's own log on stderr")
    arguments = parser.parse_args(argv)
    # ggml's messages are in the report already; on stderr only when asked for.
    logging.basicConfig(format="ggml: %(message)s", level=logging.DEBUG if arguments.verbose else logging.CRITICAL)
    warnings.showwarning = _one_line_warning
    try:
        with _termination_as_interrupt():
            return _COMMANDS[arguments.command](arguments)
    except (CommandError, LlamaRuntimeError) as error:  # said once, here, for every command
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code if isinstance(error, CommandError) else 2
    except BrokenPipeError:
        return 141
    except KeyboardInterrupt as interruption:  # Ctrl-C or SIGTERM: as buildsys says it
        print("interrupted", file=sys.stderr)
        return 128 + (signal.SIGTERM if isinstance(interruption, _Terminated) else signal.SIGINT)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be: a child being waited for is killed on the way out (subprocess
    kills it on any exception) instead of being left running as an orphan."""


def _terminate(signum: int, frame: object) -> None:
    interrupt(_Terminated())  # while a child is being started: once it has, so that it is killed with us


@contextlib.contextmanager
def _termination_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C for the duration (buildsys/cli.py does the same)."""
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread: signals are whoever runs us's to handle
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _one_line_warning(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
    """A warning as one line, without the source line Python would quote."""
    print(f"warning: {message}", file=sys.stderr)


# ---- in this process -------------------------------------------------------------------------------


def _info(arguments: argparse.Namespace) -> int:
    runtime = load()
    report = runtime.report()
    if arguments.json:  # one line: the doctor's load child answers with it (Report.from_json reads it back)
        print(json.dumps(report.to_json()))
    else:
        print("\n".join(report.lines()))
    return 0


def _doctor(arguments: argparse.Namespace) -> int:
    """Exit 0 when every GPU here is served and every probe answered, else 1."""
    from .._gpu.doctor import doctor

    report = doctor(arguments.timeout)
    if arguments.json:
        print(json.dumps({**asdict(report), "healthy": report.healthy}, indent=1))
    else:
        print("\n".join(report.lines()))
    return 0 if report.healthy else 1


def _gpu_probe(arguments: argparse.Namespace) -> int:
    """One of the doctor's probes, in this (child) process: its answer as JSON on stdout."""
    from .._gpu.probes import run_probe

    # only the sysfs root: another variable set wrong is the load probe's failure to report, not every probe's
    print(json.dumps(run_probe(arguments.kind, Path(os.environ.get(SYSFS_ROOT) or "/sys"))))
    return 0


def _environment(arguments: argparse.Namespace) -> int:
    variables = load().environment()
    if arguments.json:
        print(json.dumps(variables, indent=1))
    else:
        print("\n".join(f"{name}={shlex.quote(value)}" for name, value in variables.items()))
    return 0


def _check(arguments: argparse.Namespace) -> int:
    with _cli_check.shared_folder():  # the baseline variant's results, for every child to compare with
        return _run_targets(arguments, "_check", "check")


def _bench(arguments: argparse.Namespace) -> int:
    if arguments.model is None:
        return _run_targets(arguments, "_bench", "bench", ["--size", str(arguments.size)])
    _cli_model.check_bench_model(arguments)
    probe = _probe_devices(arguments)
    targets = [Target(d, d, {}) for d in probe["devices"] if not arguments.device or d in arguments.device]
    rows: list[dict[str, object]] = []

    def bench_one(target: Target) -> Outcome:
        found, failure, seconds = _cli_model.bench_device(arguments, target.device)
        rows.extend(found)
        return Outcome(target, not failure, failure, seconds)

    outcomes = _each_target("bench", targets, bench_one)
    _cli_model.print_rows(rows, arguments.json)
    _raise_failures("bench", outcomes, probe, [f"{o.target.label}: {o.detail}" for o in outcomes if not o.ok])
    return 0


def _probe_devices(arguments: argparse.Namespace) -> dict[str, Any]:
    """What a child process sees (devices, CPU variants, unusable modules); CommandError when it cannot be
    told, or a --device is not among the devices. A GPU the child's load() leaves unused is warned about
    here, as load() would have in this process."""
    listing = run_child(["_probe"], _measuring(), arguments.timeout)
    probe = listing.json()
    if listing.failure or not isinstance(probe, dict):
        said = listing.failure or f"answered no JSON: {listing.stdout.strip()[:120]!r}"
        raise CommandError(f"listing the devices failed: {said}")
    if probe.get("gpu_warning") and not read_settings(os.environ).quiet_gpu:
        warnings.warn(probe["gpu_warning"], UnusedGpuWarning, stacklevel=1)
    devices = probe["devices"]
    unknown = [name for name in arguments.device if name not in devices]
    if unknown:
        why = _no_cpu(probe) if "CPU" in unknown else ""
        here = ", ".join(devices) or "none"
        raise CommandError(f"no device {', '.join(unknown)}; devices here: {here}{why}", 2)
    return probe


def _measuring(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A child's environment: this one, with every CPU variant asked for its score instead of remembered
    (check and bench are how an install is verified: they trust no cache, which may be wrong)."""
    return {**os.environ, **(extra or {}), CACHE_DIR: "off"}


def _no_cpu(probe: dict[str, Any]) -> str:
    """Why the child saw no CPU device, for an error that would otherwise only say there is none."""
    missing = probe.get("no_cpu_backend")
    return f" (no CPU backend: {missing})" if missing else ""


def _run_targets(arguments: argparse.Namespace, child: str, title: str, extra: Sequence[str] = ()) -> int:
    probe = _probe_devices(arguments)
    outcomes = _each_target(
        title,
        _targets(probe, arguments.device),
        lambda target: _child([child, target.device, *extra], _measuring(target.env), arguments.timeout, target),
    )
    cpu_checked = title == "check" and "CPU" in [o.target.device for o in outcomes]
    not_runnable = probe.get("not_runnable", []) if cpu_checked else []  # this machine's reason, not a failure
    width = max([len(o.target.label) for o in outcomes] + [len(name) for name, _ in not_runnable] + [6])
    print(f"{'target'.ljust(width)}  result  time     detail")
    for outcome in outcomes:
        result = "ok" if outcome.ok else "FAILED"
        print(f"{outcome.target.label.ljust(width)}  {result.ljust(6)}  {outcome.seconds:6.2f}s  {outcome.detail}")
    for name, reason in not_runnable:
        print(f"{name.ljust(width)}  {'-'.ljust(6)}  {'-'.rjust(7)}  not runnable here: {reason}")
    broken = probe.get("unusable", [])
    for name, reason in broken:  # shipped but unusable on any machine: a broken package, not this machine
        print(f"{name.ljust(width)}  FAILED     -     ships in the package but cannot be used: {reason}")
    _raise_failures(title, outcomes, probe, [o.target.label for o in outcomes if not o.ok] + [n for n, _ in broken])
    return 0


def _each_target(title: str, targets: Sequence[Target], run: Callable[[Target], Outcome]) -> list[Outcome]:
    """Each target run in turn (in a child process), announced on stderr as it starts."""
    outcomes = []
    for target in targets:
        print(f"  … {title} {target.label}", file=sys.stderr, flush=True)
        outcomes.append(run(target))
    return outcomes


def _raise_failures(title: str, outcomes: Sequence[Outcome], probe: dict[str, Any], failed: Sequence[str]) -> None:
    """CommandError (exit 1) when nothing ran, or something failed (each named as `failed` says it)."""
    if not outcomes:
        raise CommandError(f"no device to run on{_no_cpu(probe)}")
    if failed:
        raise CommandError(f"{title} failed: {', '.join(failed)}")


def _targets(probe: dict[str, object], only: Sequence[str]) -> list[Target]:
    targets = []
    devices = probe["devices"]
    variants = probe["cpu_variants"]
    assert isinstance(devices, list) and isinstance(variants, list)
    for device in devices:
        if only and device not in only:
            continue
        if device == "CPU" and variants:
            for variant in variants:
                env = {CPU_VARIANT: variant, BACKENDS: "cpu"}
                targets.append(Target(f"CPU ({variant})", "CPU", env, variant))
        else:
            targets.append(Target(device, device, {}))
    return targets


def _child(args: Sequence[str], env: dict[str, str], timeout: float, target: Target) -> Outcome:
    """Run one child; its crash, hang or error becomes this target's failure."""
    child = run_child(args, env, timeout)
    if child.failure:
        return Outcome(target, False, child.failure, child.seconds)
    answer = child.json()
    if not isinstance(answer, dict):
        return Outcome(target, False, f"answered no JSON: {child.stdout.strip()[:120]!r}", child.seconds)
    if target.variant and answer.get("cpu_variant") != target.variant:
        reason = answer.get("cpu_variant_reason")
        return Outcome(target, False, f"{target.variant} was refused: {reason}", child.seconds)
    return Outcome(target, bool(answer["ok"]), str(answer["detail"]), child.seconds)


# ---- in a child process ----------------------------------------------------------------------------


def _probe(arguments: argparse.Namespace) -> int:
    runtime = load()
    report = runtime.report()
    variants = [
        m.name.removeprefix("ggml-cpu-")
        for m in report.modules
        if m.backend == "cpu" and m.status in {"loaded", "not chosen"}
    ]
    unusable = [[m.name, m.reason] for m in report.modules if m.unusable]
    # variants this CPU cannot run (score 0): check names them, so none looks forgotten
    not_runnable = [
        [m.name, m.reason]
        for m in report.modules
        if m.backend == "cpu" and m.status == "skipped" and m.score == 0 and not m.unusable
    ]
    print(
        json.dumps(
            {
                "devices": [d.name for d in report.devices],
                "cpu_variants": variants,
                "not_runnable": not_runnable,
                "unusable": unusable,
                "no_cpu_backend": report.no_cpu_backend,
                "gpu_warning": runtime.unused_gpu_warning(),  # the parent gives it, as load() would have
            }
        )
    )
    return 0


def _child_answer(**fields: object) -> int:
    report = load().report()
    cpu = next((m for m in report.modules if m.name == f"ggml-cpu-{os.environ.get(CPU_VARIANT)}"), None)
    print(json.dumps({"cpu_variant": report.cpu_variant, "cpu_variant_reason": cpu.reason if cpu else "", **fields}))
    return 0


def _device_check(arguments: argparse.Namespace) -> int:
    return _child_answer(**_cli_check.device_check(arguments.device))


def _device_bench(arguments: argparse.Namespace) -> int:
    runtime = load()
    size = arguments.size
    # float32 arrays once, before timing: converting Python lists on every call cost more than the multiply
    a, b = array("f", _reference.inputs(size * size, 3)), array("f", _reference.inputs(size * size, 4))
    timings = []
    with runtime.open(arguments.device) as backend:
        try:
            backend.mul_mat(a, b, m=size, n=size, k=size)  # warm-up: pipelines, allocations
        except Unsupported:
            return _child_answer(ok=True, detail="mul_mat not supported by this device")
        for _ in range(5):
            start = time.perf_counter()
            backend.mul_mat(a, b, m=size, n=size, k=size)
            timings.append(time.perf_counter() - start)
    median = sorted(timings)[len(timings) // 2]
    gflops = 2 * size**3 / median / 1e9
    return _child_answer(
        ok=True, detail=f"{gflops:.2f} GFLOP/s (mul_mat {size}³ f32, median of 5: {median * 1e3:.1f} ms)"
    )


_COMMANDS = {
    "info": _info,
    "doctor": _doctor,
    "_gpu_probe": _gpu_probe,
    "env": _environment,
    "check": _check,
    "bench": _bench,
    "run": _cli_model.run,
    "rpc-server": _cli_rpc.rpc_server,
    "_rpc_model": _cli_rpc.rpc_model_child,
    "_bench_model": _cli_model.bench_model_child,
    "_inspect": lambda arguments: _cli_model.inspect_in_child(arguments.model),
    "_probe": _probe,
    "_check": _device_check,
    "_bench": _device_bench,
}
