"""Is the shipped CPU code as fast as building it yourself? The wheel's variants against GGML_NATIVE=ON.

One benchmark-only build of the project's tracking repository (the pin + our patches) with
GGML_NATIVE=ON gives upstream's own tools — `test-backend-ops` and `llama-bench` — with the CPU code
linked into libggml: the reference. A second one builds the same CPU sources as a loadable module with
`-march=native` (what GGML_NATIVE adds on x86; ggml refuses GGML_NATIVE with GGML_BACKEND_DL), so that
the binding, which loads its CPU code only as a module, runs native code too. Every other side runs the
project's staged core libraries and differs in one file only: the CPU module beside the executable
(where ggml's loader looks) or in the binding's modules directory. So a ratio is the variant against
native, or the binding against llama-bench, and nothing else. Rounds are interleaved; a figure is the
median over rounds.

    python benchmarks/cpu_speed.py --project PROJECT   # after `buildsys build --backend cpu` there

A shorter run: `--tables tokens --models q4_0 --threads 2` (only what those tables need is built);
`--no-readme` prints the section without writing it into benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from _common import REPO, run, write_readme

from buildsys.builder.driver import default_jobs
from buildsys.builder.presets import load_matrix
from buildsys.cmake_tool import find_tools

sys.path.insert(0, str(REPO / "tests"))
from helpers import tiny_models

NATIVE_BUILD = [
    f"-D{name}={value}"
    for name, value in {
        **load_matrix().get("cpu").cache_variables,
        "GGML_NATIVE": "ON",
        "GGML_BACKEND_DL": "OFF",
        "GGML_CPU_ALL_VARIANTS": "OFF",
        "LLAMA_BUILD_COMMON": "ON",
        "LLAMA_BUILD_TOOLS": "ON",
        "LLAMA_BUILD_TESTS": "ON",
        "LLAMA_BUILD_MTMD": "OFF",
    }.items()
]
TARGETS = ("llama-bench", "test-backend-ops", "ggml-cpu")
NATIVE_MODULE_BUILD = [
    f"-D{name}={value}"
    for name, value in {
        **load_matrix().get("cpu").cache_variables,
        "GGML_NATIVE": "OFF",  # every GGML_<ISA> option off with it: -march=native alone picks the code
        "GGML_BACKEND_DL": "ON",
        "GGML_CPU_ALL_VARIANTS": "OFF",
        "CMAKE_C_FLAGS": "-march=native",
        "CMAKE_CXX_FLAGS": "-march=native",
    }.items()
]
DTYPES = ("f16", "q8_0", "q4_0")
TABLES = ("start-up", "kernels", "tokens", "variants", "threading")
KERNEL_TYPES = ("f32", "f16", "q8_0", "q4_0", "q4_K")
KERNEL_BATCHES = (1, 512)  # a generated token, and a prompt chunk
BINDING = {"PYTHONPATH": str(REPO / "bindings" / "python")}


def build_native_tools(project: Path, *, openmp: bool | None = None) -> Path:
    """test-backend-ops and llama-bench built with GGML_NATIVE=ON beside the project's trees: threads as the
    cpu preset has them, or OpenMP (on) against ggml's own threadpool (off)."""
    threading = [] if openmp is None else [f"-DGGML_OPENMP={'ON' if openmp else 'OFF'}"]
    name = {None: "bench-cpu-native", True: "bench-native-openmp", False: "bench-native-threadpool"}[openmp]
    return _build(project, name, [*NATIVE_BUILD, *threading], TARGETS)


def build_native_module(project: Path) -> Path:
    """The CPU sources as one loadable module compiled with -march=native (libggml-cpu.so)."""
    return _build(project, "bench-cpu-native-module", NATIVE_MODULE_BUILD, ("ggml-cpu",)) / "libggml-cpu.so"


def _build(project: Path, name: str, cache: list[str], targets: tuple[str, ...]) -> Path:
    tools = find_tools(os.environ)
    tree = project / "build" / name
    env = dict(os.environ)
    run(
        [
            str(tools.cmake),
            "-S",
            str(project / "build" / "upstream"),
            "-B",
            str(tree),
            "-G",
            "Ninja",
            f"-DCMAKE_MAKE_PROGRAM={tools.ninja}",
            *cache,
        ],
        project,
        env,
    )
    run([str(tools.cmake), "--build", str(tree), "--target", *targets, "--parallel", str(default_jobs())], project, env)
    return tree / "bin"


KERNEL_FILTER = (
    rf"^type_a=({'|'.join(KERNEL_TYPES)}),type_b=f32,m=4096,n=({'|'.join(map(str, KERNEL_BATCHES))}),"
    r"k=14336,bs=\[1,1\],nr=\[1,1\],per=\[0,1,2,3\]"
)  # upstream's own LLM shape (7B-class FFN)
KERNEL_LINE = re.compile(r"MUL_MAT\(type_a=(\w+),type_b=f32,m=4096,n=(\d+),.*?([\d.]+) us/run")
MUL_MAT_SNIPPET = """
import sys, time, llama_cpp_runtime as lcr
from array import array
size, threads = 512, int(sys.argv[1])
a = array("f", [((i * 7) % 13 - 6) / 8 for i in range(size * size)])
with lcr.load().open("CPU", n_threads=threads) as backend:
    backend.mul_mat(a, a, m=size, n=size, k=size)
    times = []
    for _ in range(9):
        start = time.perf_counter()
        backend.mul_mat(a, a, m=size, n=size, k=size)
        times.append(time.perf_counter() - start)
print(2 * size**3 / sorted(times)[4] / 1e9)
"""


class Side:
    """One way of running the CPU code: upstream's tools and the binding, with one CPU module."""

    def __init__(self, label: str, home: Path, library_env: dict[str, str], binding_env: dict[str, str]) -> None:
        self.label, self.home = label, home
        self.tools_env = {**os.environ, **library_env}
        self.binding_env = {**os.environ, **BINDING, **binding_env}

    def kernels(self) -> dict[tuple[str, int], float]:
        """MUL_MAT microseconds per run from `test-backend-ops perf`, every CPU thread (its only setting)."""
        output = self._run(
            [str(self.home / "test-backend-ops"), "perf", "-o", "MUL_MAT", "-b", "CPU", "-p", KERNEL_FILTER],
            self.tools_env,
            cwd=self.home,
        )
        return {(m[1], int(m[2])): float(m[3]) for m in KERNEL_LINE.finditer(output)}

    def llama_bench(self, model: Path, threads: int, args: argparse.Namespace) -> dict[str, float]:
        output = self._run(
            [
                str(self.home / "llama-bench"),
                "-m",
                str(model),
                "-p",
                str(args.n_prompt),
                "-n",
                str(args.n_gen),
                "-r",
                str(args.repetitions),
                "-t",
                str(threads),
                "-o",
                "json",
            ],
            self.tools_env,
            cwd=self.home,
        )
        rows = json.loads(output)
        return {("pp" if r["n_prompt"] else "tg") + str(r["n_prompt"] or r["n_gen"]): r["avg_ts"] for r in rows}

    def binding_bench(self, model: Path, threads: int, args: argparse.Namespace) -> dict[str, float]:
        output = self._run(
            [
                sys.executable,
                "-m",
                "llama_cpp_runtime",
                "bench",
                "--model",
                str(model),
                "--device",
                "CPU",
                "--json",
                "-p",
                str(args.n_prompt),
                "-n",
                str(args.n_gen),
                "-r",
                str(args.repetitions),
                "--threads",
                str(threads),
            ],
            self.binding_env,
        )
        return {row["test"]: row["tokens_per_second"] for row in json.loads(output)}

    def binding_mul_mat(self, threads: int) -> float:
        return float(self._run([sys.executable, "-c", MUL_MAT_SNIPPET, str(threads)], self.binding_env))

    @staticmethod
    def _run(args: list[str], env: dict[str, str], cwd: Path | None = None) -> str:
        result = subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd, timeout=1800, check=False)
        if result.returncode != 0:
            raise SystemExit(f"benchmark step failed: {args[:3]}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
        return result.stdout


def tool_home(scratch: Path, name: str, native_bin: Path, module: Path | None) -> Path:
    """Copies of the tools (ggml's loader looks beside /proc/self/exe, which a symlink would resolve to the
    build tree) with exactly one CPU module beside them, or none (the native build links its own)."""
    home = scratch / name
    home.mkdir()
    for tool in ("llama-bench", "test-backend-ops"):
        shutil.copy2(native_bin / tool, home / tool)
    if module is not None:
        (home / module.name).symlink_to(module)
    return home


def native_stage(scratch: Path, native_module: Path, stage: Path) -> Path:
    """The stage's core libraries with the native module as its only CPU module: what the binding loads. Its
    stage.json without the file list (a hand-made folder: the shipped modules are not missing from it)."""
    root = scratch / "native-stage"
    (root / "lib").mkdir(parents=True)
    (root / "modules").mkdir()
    for library in (stage / "lib").iterdir():
        (root / "lib" / library.name).symlink_to(library.resolve())
    (root / "modules" / "libggml-cpu-native.so").symlink_to(native_module)
    record = json.loads((stage / "stage.json").read_text())
    record.pop("files", None)
    (root / "stage.json").write_text(json.dumps(record))
    shutil.copy2(stage / "llama-abi.json", root / "llama-abi.json")  # libllama's struct layouts
    return root


def native_module_side(
    scratch: Path, native_bin: Path, native_module: Path, stage: Path, staged: dict[str, str]
) -> Side:
    """The stage's libraries with the native module: beside llama-bench, and as the binding's only CPU module
    (which it must then have chosen, or the column would measure something else)."""
    libraries = native_stage(scratch, native_module, stage)
    chosen = binding_info(libraries).get("cpu_variant")
    if chosen != "native":
        raise SystemExit(f"the binding did not load the native module from {libraries} (it chose {chosen!r})")
    home = tool_home(scratch, "native-module", native_bin, native_module)
    return Side("native module", home, staged, {"LLAMA_CPP_RUNTIME_LIBRARY_DIR": str(libraries)})


def binding_info(stage: Path) -> dict[str, Any]:
    env = {**os.environ, **BINDING, "LLAMA_CPP_RUNTIME_LIBRARY_DIR": str(stage)}
    result = subprocess.run(
        [sys.executable, "-m", "llama_cpp_runtime", "info", "--json"],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def runnable_variants(stage: Path) -> tuple[str, list[str]]:
    report = binding_info(stage)
    scored = [m for m in report["modules"] if m["backend"] == "cpu" and (m["score"] or 0) > 0]
    ranked = sorted(scored, key=lambda m: -m["score"])
    return str(report["cpu_variant"]), [m["name"].removeprefix("ggml-cpu-") for m in ranked]


Figures = dict[Any, float]


def medians(samples: dict[Any, list[float]]) -> Figures:
    return {key: statistics.median(values) for key, values in samples.items()}


Step = Callable[[], Mapping[Any, float]]


def interleaved(rounds: int, label: str, steps: Mapping[str, Step]) -> dict[str, Figures]:
    """Every step once per round, in turn; each step's figures are medians over the rounds."""
    return {name: medians(values) for name, values in interleaved_samples(rounds, label, steps).items()}


def interleaved_samples(rounds: int, label: str, steps: Mapping[str, Step]) -> dict[str, dict[Any, list[float]]]:
    """Every step once per round, in turn, each round starting one step later (no step always runs first or
    right after the same other one); each step's figures, one per round."""
    collected: dict[str, dict[Any, list[float]]] = {name: {} for name in steps}
    names = list(steps)
    for round_number in range(rounds):
        print(f"  … {label}: round {round_number + 1}/{rounds}", file=sys.stderr, flush=True)
        first = round_number % len(names)
        for name in names[first:] + names[:first]:
            for key, value in steps[name]().items():
                collected[name].setdefault(key, []).append(value)
    return collected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, required=True, help="a project with build/upstream and its cpu stage")
    parser.add_argument("--build-only", action="store_true", help="build the native tools and stop")
    parser.add_argument("--title", default="cpu speed: the shipped variants against GGML_NATIVE=ON")
    parser.add_argument("-p", "--n-prompt", type=int, default=512)
    parser.add_argument("-n", "--n-gen", type=int, default=128)
    parser.add_argument("-r", "--repetitions", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tables", type=_choices(TABLES), default=TABLES, help=f"some of {','.join(TABLES)}")
    parser.add_argument(
        "--models", type=_choices(DTYPES), default=DTYPES, help=f"the tokens table's: {','.join(DTYPES)}"
    )
    parser.add_argument("--threads", type=_counts, help="the tokens table's thread counts (default: 1 and every CPU)")
    parser.add_argument("--no-readme", action="store_true", help="print the section only")
    args = parser.parse_args()
    project = args.project.resolve()
    native_bin = build_native_tools(project)
    native_module = build_native_module(project) if {"kernels", "tokens"} & set(args.tables) else None
    if "threading" in args.tables:
        openmp_bin, threadpool_bin = build_native_tools(project, openmp=True), build_native_tools(project, openmp=False)
    if args.build_only:
        return
    stage = project / "build" / "stage" / "cpu"
    chosen, variants = runnable_variants(stage)
    threads = args.threads or sorted({1, default_jobs()})
    with tempfile.TemporaryDirectory(prefix="bench-cpu-") as scratch_name:
        scratch = Path(scratch_name)
        staged = {"LD_LIBRARY_PATH": str(stage / "lib")}
        homes = {v: tool_home(scratch, v, native_bin, stage / "modules" / f"libggml-cpu-{v}.so") for v in variants}
        variant = Side(f"variant {chosen}", homes[chosen], staged, {"LLAMA_CPP_RUNTIME_LIBRARY_DIR": str(stage)})
        native = Side("native build", tool_home(scratch, "native", native_bin, None), {}, {})
        module = native_module_side(scratch, native_bin, native_module, stage, staged) if native_module else None
        needed = set(args.models) | ({"f16", "q4_0"} if {"variants", "threading"} & set(args.tables) else set())
        models = {d: tiny_models.write_bench_model(scratch / f"bench-{d}.gguf", d) for d in DTYPES if d in needed}
        sections = [
            f"### {args.title}",
            "",
            f"{default_jobs()} cores, {time.strftime('%Y-%m-%d')}; ggml chose `{chosen}`; every figure is the median "
            f"of {args.rounds} interleaved rounds. Both sides run the same commit and patches, the same core "
            "libraries and the same tools; only the CPU code differs.",
            "",
        ]
        if "start-up" in args.tables:
            sections += latency_table(stage, scratch)
        if module is not None and "kernels" in args.tables:
            sections += kernel_table(args, variant, native, module)
        if module is not None and "tokens" in args.tables:
            sections += tokens_table(args, {d: models[d] for d in args.models}, variant, native, module, threads)
        if "variants" in args.tables:
            sections += variants_table(args, models, chosen, variants, homes, staged)
        if "threading" in args.tables:
            openmp = Side("openmp", tool_home(scratch, "openmp", openmp_bin, None), {}, {})
            threadpool = Side("threadpool", tool_home(scratch, "threadpool", threadpool_bin, None), {}, {})
            sections += threading_table(args, models["q4_0"], openmp, threadpool)
    section = "\n".join(sections) + "\n"
    print(section)
    if not args.no_readme:
        write_readme(args.title, section)


def _choices(allowed: tuple[str, ...]) -> Callable[[str], tuple[str, ...]]:
    def parse(text: str) -> tuple[str, ...]:
        chosen = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
        unknown = [c for c in chosen if c not in allowed]
        if unknown or not chosen:
            raise argparse.ArgumentTypeError(f"{text!r}: expected some of {','.join(allowed)}")
        return chosen

    return parse


def _counts(text: str) -> list[int]:
    try:
        counts = sorted({int(part) for part in text.split(",")})
    except ValueError:
        counts = []
    if not counts or counts[0] < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected thread counts above 0, e.g. 1,2")
    return counts


def latency_table(stage: Path, scratch: Path, runs: int = 15) -> list[str]:
    """Start-up of a fresh interpreter: bare, importing the package, and import + load() + devices(), the
    last with the variant scores remembered (a second run) and without (a first run: an empty cache)."""
    env = {**os.environ, **BINDING, "LLAMA_CPP_RUNTIME_LIBRARY_DIR": str(stage)}
    loading = "import llama_cpp_runtime as lcr; lcr.load().devices()"
    cases = {
        "bare `python -c pass`": ("pass", None),
        "`import llama_cpp_runtime`": ("import llama_cpp_runtime", None),
        "import + load() + devices(), first run": (loading, "first"),
        "import + load() + devices(), later runs": (loading, "warm"),
    }
    timings: dict[str, list[float]] = {name: [] for name in cases}
    subprocess.run(
        [sys.executable, "-c", loading], env={**env, "LLAMA_CPP_RUNTIME_CACHE_DIR": str(scratch / "warm")}, check=True
    )
    for number in range(runs):
        for name, (code, cache) in cases.items():
            directory = scratch / (f"first-{number}" if cache == "first" else "warm")
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-c", code], env={**env, "LLAMA_CPP_RUNTIME_CACHE_DIR": str(directory)}, check=True
            )
            timings[name].append(time.perf_counter() - start)
    bare = statistics.median(timings["bare `python -c pass`"])
    lines = [
        f"#### Start-up (median of {runs} fresh interpreters, interleaved)",
        "",
        "| measure | ms | over bare Python (ms) |",
        "|---|---:|---:|",
    ]
    for name, values in timings.items():
        median = statistics.median(values)
        lines.append(f"| {name} | {median * 1e3:.1f} | {(median - bare) * 1e3:+.1f} |")
    return [*lines, ""]


def kernel_table(args: argparse.Namespace, variant: Side, native: Side, module: Side) -> list[str]:
    results = interleaved(args.rounds, "kernels", {"variant": variant.kernels, "native": native.kernels})
    mul_mat_steps: dict[str, Step] = {
        f"{name}-{t}": partial(_gflops, side, t)
        for name, side in (("variant", variant), ("native", module))
        for t in (1, default_jobs())
    }
    mul_mat = interleaved(args.rounds, "binding mul_mat", mul_mat_steps)
    lines = [
        "#### MUL_MAT kernels (upstream's `test-backend-ops perf`, m=4096 k=14336, every thread)",
        "",
        f"| type | n | {variant.label} (µs) | native build (µs) | variant speed / native |",
        "|---|---:|---:|---:|---:|",
    ]
    for (dtype, n), mine in sorted(results["variant"].items(), key=lambda kv: (KERNEL_TYPES.index(kv[0][0]), kv[0][1])):
        theirs = results["native"][(dtype, n)]
        lines.append(f"| {dtype} | {n} | {mine:.0f} | {theirs:.0f} | {theirs / mine:.3f} |")
    lines += [
        "",
        'The binding\'s own path (`Runtime.open("CPU").mul_mat`, f32 512³, median of 9 calls):',
        "",
        "| threads | variant GFLOP/s | native module GFLOP/s | variant / native |",
        "|---:|---:|---:|---:|",
    ]
    for t in (1, default_jobs()):
        mine, theirs = mul_mat[f"variant-{t}"]["gflops"], mul_mat[f"native-{t}"]["gflops"]
        lines.append(f"| {t} | {mine:.1f} | {theirs:.1f} | {mine / theirs:.3f} |")
    return [*lines, ""]


def _gflops(side: Side, threads: int) -> dict[str, float]:
    return {"gflops": side.binding_mul_mat(threads)}


TOKEN_SIDES = (
    "binding",
    "llama-bench",
    "llama-bench, native build",
    "binding, native module",
    "llama-bench, native module",
)


def tokens_table(
    args: argparse.Namespace,
    models: dict[str, Path],
    variant: Side,
    native: Side,
    module: Side,
    threads: list[int],
) -> list[str]:
    """Five sides per model and thread count, interleaved: the binding and llama-bench on the stage's chosen
    variant, llama-bench built natively (the reference), and the binding and llama-bench on the same CPU
    sources compiled as a -march=native module. Each ratio is the median of the per-round ratios, with the
    rounds' range: the spread one run can show."""
    lines = [
        f"#### Tokens/s (generated 25.8 M-parameter llama; pp{args.n_prompt}, tg{args.n_gen}; "
        f"{args.repetitions} repetitions per run; {variant.label})",
        "",
        "| model | test | threads | " + " | ".join(TOKEN_SIDES) + " | binding / llama-bench (same libraries) "
        "| binding / native build | binding on the native module / native build "
        "| llama-bench: native module / native build |",
        "|---|---|---:|" + "---:|" * len(TOKEN_SIDES) + "---:|---:|---:|---:|",
    ]
    for dtype, model in models.items():
        for t in threads:
            sides = (
                variant.binding_bench,
                variant.llama_bench,
                native.llama_bench,
                module.binding_bench,
                module.llama_bench,
            )
            steps = {name: partial(run, model, t, args) for name, run in zip(TOKEN_SIDES, sides, strict=True)}
            samples = interleaved_samples(args.rounds, f"tokens {dtype} {t} threads", steps)
            for test in samples["llama-bench, native build"]:
                row = {name: samples[name][test] for name in TOKEN_SIDES}
                ratios = [
                    _round_ratios(row["binding"], row["llama-bench"]),
                    _round_ratios(row["binding"], row["llama-bench, native build"]),
                    _round_ratios(row["binding, native module"], row["llama-bench, native build"]),
                    _round_ratios(row["llama-bench, native module"], row["llama-bench, native build"]),
                ]
                lines.append(
                    f"| {dtype} | {test} | {t} | "
                    + " | ".join(f"{statistics.median(row[name]):.1f}" for name in TOKEN_SIDES)
                    + " | "
                    + " | ".join(ratios)
                    + " |"
                )
    return [*lines, ""]


def _round_ratios(mine: list[float], theirs: list[float]) -> str:
    ratios = [m / t for m, t in zip(mine, theirs, strict=True)]
    return f"{statistics.median(ratios):.3f} ({min(ratios):.3f}–{max(ratios):.3f})"


def variants_table(
    args: argparse.Namespace,
    models: dict[str, Path],
    chosen: str,
    variants: list[str],
    homes: dict[str, Path],
    staged: dict[str, str],
) -> list[str]:
    sides = {v: Side(v, homes[v], staged, {}) for v in variants}
    lines = [
        f"#### Every variant this CPU runs (llama-bench, {default_jobs()} threads), best score first",
        "",
        "| variant | " + " | ".join(f"{d} {t}" for d in ("f16", "q4_0") for t in ("pp", "tg")) + " |",
        "|---|" + "---:|" * 4,
    ]
    figures: dict[str, list[float]] = {v: [] for v in variants}
    for dtype in ("f16", "q4_0"):
        results = interleaved(
            args.rounds,
            f"variants {dtype}",
            {v: partial(s.llama_bench, models[dtype], default_jobs(), args) for v, s in sides.items()},
        )
        for v in variants:
            figures[v] += [results[v][f"pp{args.n_prompt}"], results[v][f"tg{args.n_gen}"]]
    for v in variants:
        marker = " (chosen)" if v == chosen else ""
        cells = [f"{value:.1f} ({value / figures[chosen][i]:.2f})" for i, value in enumerate(figures[v])]
        lines.append(f"| {v}{marker} | " + " | ".join(cells) + " |")
    lines += ["", "In brackets: against the chosen variant."]
    return [*lines, ""]


def threading_table(args: argparse.Namespace, model: Path, openmp: Side, threadpool: Side) -> list[str]:
    """ggml's CPU threads from OpenMP (what the wheels ship on Linux and Windows) or from ggml's own
    threadpool, on an idle machine and with another program spinning on one CPU (oversubscribed)."""
    lines = [
        "#### Threads: OpenMP against ggml's threadpool (native builds, llama-bench, q4_0)",
        "",
        "| threads | machine | OpenMP pp | threadpool pp | OpenMP tg | threadpool tg | threadpool / OpenMP (tg) |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for busy in (False, True):
        for t in sorted({1, default_jobs()}):
            hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
            try:
                results = interleaved(
                    args.rounds,
                    f"threading t={t} busy={busy}",
                    {
                        "openmp": partial(openmp.llama_bench, model, t, args),
                        "threadpool": partial(threadpool.llama_bench, model, t, args),
                    },
                )
            finally:
                if hog is not None:
                    hog.kill()
                    hog.wait()
            pp, tg = f"pp{args.n_prompt}", f"tg{args.n_gen}"
            o, p = results["openmp"], results["threadpool"]
            machine = "another program busy on 1 CPU" if busy else "idle"
            lines.append(
                f"| {t} | {machine} | {o[pp]:.1f} | {p[pp]:.1f} | {o[tg]:.1f} | {p[tg]:.1f} | {p[tg] / o[tg]:.3f} |"
            )
    return [*lines, ""]


if __name__ == "__main__":
    main()
