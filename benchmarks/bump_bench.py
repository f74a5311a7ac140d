"""Is the new pin slower than the old one? Both pins' cpu stages, benchmarked on one machine in one run.

Each project (a checkout of this repository: the old pin's, e.g. main, and the new pin's, e.g. the bump
branch) gets its cpu stage from `python -m buildsys build --backend cpu` run by this checkout's toolkit
(apply-patches and sync first when its vendor/ is missing or stale; ccache makes an unchanged file free).
Then this checkout's binding runs `bench --model ... --json` on each stage, so the pins are the only
difference: generated 25.8 M-parameter llamas (tests/helpers/tiny_models.py, F16, Q8_0 and Q4_0), pp and
tg tokens/s at 1 thread and at every CPU. Old and new run back to back for every case of every round, the
one that goes first alternating; a figure is the median over the rounds.

The table marks a row whose new/old (of the medians) is below 0.95 "warning", below 0.85 "critical", and ends
with a one-line verdict. Beside each ratio are the lowest and highest of the rounds' own new/old, and under
the title the CPU-seconds other processes took while it measured (Linux): a mark with a wide spread, on a
machine that was busy, is worth a second run before it is believed. Slower is not a failure (the gate
informs the pull request, it does not stop the bump): the exit status is 0 with or without marks, and 1
with one `bump_bench: error:` line when the benchmark cannot run (a build fails, a stage cannot load a model).

    python benchmarks/bump_bench.py OLD_PROJECT NEW_PROJECT [--report FILE]
    nox -s bump-bench -- OLD_PROJECT NEW_PROJECT [options]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, machine_cpu_seconds, write_readme

from buildsys.builder.driver import default_jobs

sys.path.insert(0, str(REPO / "tests"))
from helpers import tiny_models

WARNING = 0.95  # new/old below this: "warning"
CRITICAL = 0.85  # below this: "critical"
DTYPES = ("f16", "q8_0", "q4_0")
OUT_OF_DATE = 5  # buildsys's exit status for a missing or stale vendor/: apply-patches and sync, then build again
TITLE = "bump bench: the new pin against the old one"
BINDING = REPO / "bindings" / "python"


class BenchError(Exception):
    """Why the benchmark cannot run, in one line."""


@dataclass(frozen=True)
class Side:
    """One pin: a project whose build/stage/cpu the binding runs, with extra environment for the binding."""

    name: str  # "old" or "new"
    project: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def stage(self) -> Path:
        return self.project / "build" / "stage" / "cpu"

    def binding_env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(BINDING), "LLAMA_CPP_RUNTIME_LIBRARY_DIR": str(self.stage), **self.env}


@dataclass(frozen=True)
class Sizes:
    n_prompt: int
    n_gen: int
    repetitions: int
    timeout: float


@dataclass(frozen=True)
class Row:
    """One line of the table: medians over the rounds, and the spread of the rounds' own new/old."""

    model: str
    test: str
    threads: int
    old: float
    new: float
    lowest: float  # of the per-round new/old ratios
    highest: float

    @property
    def ratio(self) -> float:
        """new/old as the table shows it (3 decimals): the mark is judged on what is shown."""
        return round(self.new / self.old, 3)


def mark(ratio: float) -> str:
    if ratio < CRITICAL:
        return "critical"
    if ratio < WARNING:
        return "warning"
    return ""


def verdict(rows: Sequence[Row]) -> str:
    """One line: the worst mark, how many rows carry one, and the lowest row."""
    if not rows:
        raise BenchError("no rows were measured")
    lowest = min(rows, key=lambda row: row.ratio)
    where = f"{lowest.model} {lowest.test} at {lowest.threads} thread{'s' if lowest.threads > 1 else ''}"
    critical = sum(mark(row.ratio) == "critical" for row in rows)
    marked = sum(bool(mark(row.ratio)) for row in rows)
    if not marked:
        return (
            f"**Verdict: no slowdown**: every row of the new pin is at least {WARNING}× the old one's "
            f"(lowest {lowest.ratio:.3f}×, {where})."
        )
    level = "critical" if critical else "warning"
    return (
        f"**Verdict: slower ({level})**: {marked} of {len(rows)} rows below {WARNING}×"
        f"{f', {critical} below {CRITICAL}×' if critical else ''}; lowest {lowest.ratio:.3f}× ({where})."
    )


def table(rows: Sequence[Row]) -> list[str]:
    lines = [
        "| model | test | threads | old tok/s | new tok/s | new/old | mark | rounds' new/old |",
        "|---|---|---:|---:|---:|---:|---|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.model} | {row.test} | {row.threads} | {row.old:.1f} | {row.new:.1f} | {row.ratio:.3f} "
            f"| {mark(row.ratio)} | {row.lowest:.3f}–{row.highest:.3f} |"
        )
    return lines


def parse_bench(text: str) -> dict[str, float]:
    """`bench --model ... --json`'s rows as {test: tokens/s}, e.g. {"pp512": 4001.2, "tg128": 1012.4}."""
    try:
        rows = json.loads(text)
        found = {str(row["test"]): float(row["tokens_per_second"]) for row in rows}
    except (ValueError, TypeError, KeyError) as error:
        raise BenchError(f"bench answered no rows ({error.__class__.__name__}): {text.strip()[:120]!r}") from None
    if not found or any(value <= 0 for value in found.values()):
        raise BenchError(f"bench answered no positive tokens/s: {text.strip()[:120]!r}")
    return found


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def build(side: Side) -> None:
    """The project's cpu stage, by this checkout's toolkit; apply-patches and sync first when vendor/ is not
    the pin + patches (a fresh checkout has none)."""
    status, said = buildsys(side, "build", "--backend", "cpu")
    if status == OUT_OF_DATE:
        progress(f"{side.name}: {said}")
        for command in (("apply-patches",), ("sync",), ("build", "--backend", "cpu")):
            status, said = buildsys(side, *command)
            if status != 0:
                break
    if status != 0:
        raise BenchError(f"building the {side.name} side's cpu stage in {side.project} exited {status}: {said}")


def buildsys(side: Side, *command: str) -> tuple[int, str]:
    """`python -m buildsys COMMAND` in the project: its exit status and the last line it said."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = [sys.executable, "-m", "buildsys", *command]
    started = time.monotonic()
    result = subprocess.run(args, cwd=side.project, env=env, capture_output=True, text=True, check=False)
    said = last_line(result.stderr + result.stdout)
    progress(f"{side.name}: buildsys {' '.join(command)} in {side.project}: {time.monotonic() - started:.1f} s, {said}")
    return result.returncode, said


def pin(side: Side) -> str:
    """The stage's commit, from its stage.json, as `f13a88d4 (v0.3.36)`: with vendoring.toml's `ref` when that
    file pins the same commit (the stage's own llama-cpp-python release is whatever [downstream] said, which a
    bump leaves for a person to update)."""
    try:
        commit = str(json.loads((side.stage / "stage.json").read_text())["upstream"]["commit"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise BenchError(f"the {side.name} side has no cpu stage to run ({side.stage}: {error})") from None
    try:
        upstream = tomllib.loads((side.project / "vendoring.toml").read_text())["upstream"]
    except (OSError, ValueError, KeyError):
        upstream = {}
    ref = upstream.get("ref") if upstream.get("commit") == commit else None
    return commit[:8] + (f" ({ref})" if ref else "")


def chosen_variant(side: Side) -> str:
    result = run_binding(side, ["info", "--json"], 300)
    try:
        return str(json.loads(result)["cpu_variant"])
    except (ValueError, KeyError, TypeError):
        raise BenchError(f"`info --json` on the {side.name} side answered no CPU variant") from None


def run_binding(side: Side, args: list[str], timeout: float) -> str:
    command = [sys.executable, "-m", "llama_cpp_runtime", *args]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, env=side.binding_env(), timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"`{' '.join(args[:1])}` on the {side.name} side took more than {timeout:g} s") from None
    if result.returncode != 0:
        raise BenchError(
            f"`{args[0]}` on the {side.name} side ({side.stage}) exited {result.returncode}: {last_line(result.stderr)}"
        )
    return result.stdout


def bench_once(side: Side, model: Path, threads: int, sizes: Sizes) -> dict[str, float]:
    args = ["bench", "--model", str(model), "--device", "CPU", "--json", "--threads", str(threads)]
    args += ["-p", str(sizes.n_prompt), "-n", str(sizes.n_gen), "-r", str(sizes.repetitions)]
    return parse_bench(run_binding(side, args, sizes.timeout))


Measure = Callable[[Side, Path, int], dict[str, float]]


def interleaved(
    old: Side, new: Side, models: dict[str, Path], threads: Sequence[int], rounds: int, measure: Measure
) -> list[Row]:
    """Every case (model, threads) in every round, old and new back to back, the first alternating by round."""
    samples: dict[tuple[str, int, str], dict[str, list[float]]] = {}
    for number in range(rounds):
        progress(f"round {number + 1}/{rounds}")
        for dtype, model in models.items():
            for count in threads:
                order = (old, new) if number % 2 == 0 else (new, old)
                for side in order:
                    for test, speed in measure(side, model, count).items():
                        samples.setdefault((dtype, count, test), {"old": [], "new": []})[side.name].append(speed)
    return [rows_of(key, figures) for key, figures in samples.items()]


def rows_of(key: tuple[str, int, str], figures: dict[str, list[float]]) -> Row:
    dtype, count, test = key
    old, new = figures["old"], figures["new"]
    if not old or len(old) != len(new):
        raise BenchError(f"{dtype} {test} at {count} threads was measured {len(old)} times old, {len(new)} new")
    ratios = [n / o for o, n in zip(old, new, strict=True)]
    return Row(dtype, test, count, statistics.median(old), statistics.median(new), min(ratios), max(ratios))


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def progress(text: str) -> None:
    print(f"  … {text}", file=sys.stderr, flush=True)


def environment_pairs(values: Sequence[str]) -> dict[str, str]:
    pairs = {}
    for value in values:
        name, equals, setting = value.partition("=")
        if not equals or not name:
            raise BenchError(f"{value!r} is not NAME=VALUE")
        pairs[name] = setting
    return pairs


def thread_counts(value: str) -> list[int]:
    counts = sorted({int(part) for part in value.split(",") if part.strip()})
    if not counts or counts[0] < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a list of thread counts above 0, e.g. 1,4")
    return counts


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old", type=Path, help="the old pin's project (a checkout of this repository)")
    parser.add_argument("new", type=Path, help="the new pin's project")
    parser.add_argument("--report", type=Path, help="also write the table and the verdict (Markdown) here")
    parser.add_argument("--readme", action="store_true", help="also rewrite this section of benchmarks/README.md")
    parser.add_argument("--no-build", action="store_true", help="run the stages as they are (no buildsys build)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; figures are medians (default 5)")
    parser.add_argument(
        "--threads",
        type=thread_counts,
        default=sorted({1, default_jobs()}),
        help="comma-separated thread counts (default: 1 and every CPU of this process)",
    )
    parser.add_argument(
        "--dtypes", default=",".join(DTYPES), help=f"generated models' weight types (default {','.join(DTYPES)})"
    )
    parser.add_argument("-p", "--n-prompt", type=int, default=512)
    parser.add_argument("-n", "--n-gen", type=int, default=128)
    parser.add_argument("-r", "--repetitions", type=int, default=3, help="bench's repetitions per run (default 3)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds for one bench run (default 1800)")
    for name in ("old", "new"):
        parser.add_argument(
            f"--{name}-env",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help=f"environment for the {name} side's binding (e.g. LLAMA_CPP_RUNTIME_CPU_VARIANT=haswell)",
        )
    arguments = parser.parse_args(argv)
    if arguments.rounds < 1:
        parser.error(f"--rounds {arguments.rounds} is not above 0")
    unknown = sorted(set(arguments.dtypes.split(",")) - set(tiny_models.FILE_TYPES))
    if unknown:
        parser.error(f"--dtypes: no such weight type {', '.join(unknown)} (known: {', '.join(tiny_models.FILE_TYPES)})")
    return arguments


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    try:
        text = bump_bench(arguments)
    except BenchError as error:
        print(f"bump_bench: error: {error}", file=sys.stderr)
        return 1
    print(text, end="")
    if arguments.report:
        arguments.report.write_text(text)
    if arguments.readme:
        write_readme(TITLE, text)
    return 0


def bump_bench(arguments: argparse.Namespace) -> str:
    old = Side("old", arguments.old.resolve(), environment_pairs(arguments.old_env))
    new = Side("new", arguments.new.resolve(), environment_pairs(arguments.new_env))
    for side in (old, new):
        if not (side.project / "vendoring.toml").is_file():
            raise BenchError(f"the {side.name} side {side.project} is not a project (no vendoring.toml)")
        if not arguments.no_build:
            build(side)
    pins = {side.name: pin(side) for side in (old, new)}
    variants = {side.name: chosen_variant(side) for side in (old, new)}
    sizes = Sizes(arguments.n_prompt, arguments.n_gen, arguments.repetitions, arguments.timeout)
    started, before = time.monotonic(), cpu_seconds()
    with tempfile.TemporaryDirectory(prefix="bump-bench-") as scratch:
        models = {d: tiny_models.write_bench_model(Path(scratch) / f"{d}.gguf", d) for d in arguments.dtypes.split(",")}
        rows = interleaved(
            old,
            new,
            models,
            arguments.threads,
            arguments.rounds,
            lambda side, model, threads: bench_once(side, model, threads, sizes),
        )
    minutes = (time.monotonic() - started) / 60
    busy = others(before, cpu_seconds())
    lines = [
        f"### {TITLE}",
        "",
        f"`{pins['old']}` → `{pins['new']}`: {how(old, new, variants, sizes, arguments.rounds, minutes)}{busy}",
        "",
        *table(rows),
        "",
        verdict(rows),
    ]
    return "\n".join(lines) + "\n"


CpuSeconds = tuple[float, float, float]  # the machine's busy and stolen CPU-seconds, this process's children's


def cpu_seconds() -> CpuSeconds | None:
    """Where the CPU time went, from /proc/stat and getrusage (Linux); None elsewhere."""
    machine = machine_cpu_seconds()
    if machine is None:
        return None
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return *machine, children.ru_utime + children.ru_stime


def others(before: CpuSeconds | None, after: CpuSeconds | None) -> str:
    """How much CPU the rest of the machine took while the benchmark ran: a noisy run says so."""
    if before is None or after is None:
        return ""
    busy, stolen, ours = (a - b for a, b in zip(after, before, strict=True))
    return (
        f" While it measured, other processes used {max(busy - ours, 0.0):.1f} CPU-s beside its {ours:.1f}"
        f"{f', and the hypervisor took {stolen:.1f} s' if stolen >= 0.05 else ''}."
    )


def how(old: Side, new: Side, variants: dict[str, str], sizes: Sizes, rounds: int, minutes: float) -> str:
    """The sentence under the title: the machine, what ran, how long it took."""
    chosen = (
        f"ggml chose `{variants['old']}` on both"
        if variants["old"] == variants["new"]
        else f"ggml chose `{variants['old']}` on the old pin and `{variants['new']}` on the new one"
    )
    settings = [
        f"the {s.name} side with `{' '.join(f'{k}={v}' for k, v in s.env.items())}`" for s in (old, new) if s.env
    ]
    return (
        f"{default_jobs()} CPUs, {datetime.date.today()}, {minutes:.1f} min of measuring; this checkout's binding on "
        f"each pin's cpu stage ({chosen}{'; ' if settings else ''}{', '.join(settings)}); generated 25.8 M-parameter "
        f"llamas, pp{sizes.n_prompt} and tg{sizes.n_gen}, {plural(sizes.repetitions, 'repetition')} per run; each "
        f"figure is the median of {plural(rounds, 'interleaved round')} (old and new back to back, alternating "
        "which goes first). "
        f"Marks: `warning` below {WARNING}×, `critical` below {CRITICAL}×; they inform, they do not fail the bump."
    )


if __name__ == "__main__":
    sys.exit(main())
