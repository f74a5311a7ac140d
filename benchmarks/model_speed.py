"""Tokens/s of the binding against upstream's own llama-bench, on the very same libraries.

llama-bench is built from the project's tracking repository (the pin + our patches: the whole upstream
tree, tools included) and run with the project's staged libraries (LD_LIBRARY_PATH) and CPU variant
modules (beside the executable, where ggml's loader looks), so both sides run byte-identical ggml and
llama code and pick the same variant: the ratio is what the binding's path costs. Models are generated
(tests/tiny_models.py, 25.8 M parameters) in F16, Q8_0 and Q4_0. Rounds are interleaved; each side's
figure is the median over rounds of its mean over repetitions.

    python benchmarks/model_speed.py --project PROJECT   # after `buildsys wheels --backend cpu` there
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, run, write_readme

from buildsys.build import default_jobs
from buildsys.cmake_tool import find_tools
from buildsys.presets import load_matrix

sys.path.insert(0, str(REPO / "tests"))
import tiny_models

# The cpu preset's settings, with the tools llama-bench needs and no CPU backend of its own (it runs the
# staged variant modules).
BENCH_BUILD = [
    f"-D{name}={value}"
    for name, value in {**load_matrix().get("cpu").cache_variables, "GGML_CPU": "OFF", "GGML_CPU_ALL_VARIANTS": "OFF",
                        "LLAMA_BUILD_COMMON": "ON", "LLAMA_BUILD_TOOLS": "ON", "LLAMA_BUILD_MTMD": "OFF"}.items()
]  # fmt: skip
DTYPES = ("f16", "q8_0", "q4_0")


def build_llama_bench(project: Path, scratch: Path) -> Path:
    """llama-bench linked against libraries with the staged ones' SONAMEs; no CPU backend of its own."""
    tools = find_tools(os.environ)
    tree = project / "build" / "bench-llama-bench"
    env = dict(os.environ)
    run([str(tools.cmake), "-S", str(project / "build" / "upstream"), "-B", str(tree), "-G", "Ninja",
         f"-DCMAKE_MAKE_PROGRAM={tools.ninja}", *BENCH_BUILD], project, env)  # fmt: skip
    run([str(tools.cmake), "--build", str(tree), "--target", "llama-bench", "--parallel", str(default_jobs())],
        project, env)  # fmt: skip
    home = scratch / "llama-bench"
    home.mkdir()
    # a copy: ggml's loader looks beside /proc/self/exe, which a symlink would resolve to the build tree
    shutil.copy2(tree / "bin" / "llama-bench", home / "llama-bench")
    for module in (project / "build" / "stage" / "cpu" / "modules").glob("*ggml-cpu-*"):
        (home / module.name).symlink_to(module)
    return home / "llama-bench"


def llama_bench(executable: Path, stage: Path, model: Path, args: argparse.Namespace) -> dict[str, float]:
    env = {**os.environ, "LD_LIBRARY_PATH": str(stage / "lib")}
    result = subprocess.run(
        [str(executable), "-m", str(model), "-p", str(args.n_prompt), "-n", str(args.n_gen),
         "-r", str(args.repetitions), "-t", str(args.threads), "-o", "json"],
        capture_output=True, text=True, check=True, env=env, cwd=executable.parent,
    )  # fmt: skip
    rows = json.loads(result.stdout)
    return {("pp" if row["n_prompt"] else "tg") + str(row["n_prompt"] or row["n_gen"]): row["avg_ts"] for row in rows}


def binding_bench(python: Path, stage: Path, model: Path, args: argparse.Namespace) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "bindings" / "python"), "LLAMA_CPP_RUNTIME_LIBRARY_DIR": str(stage)}
    result = subprocess.run(
        [str(python), "-m", "llama_cpp_runtime", "bench", "--model", str(model), "--device", "CPU", "--json",
         "-p", str(args.n_prompt), "-n", str(args.n_gen), "-r", str(args.repetitions), "--threads", str(args.threads)],
        capture_output=True, text=True, check=True, env=env,
    )  # fmt: skip
    return {row["test"]: row["tokens_per_second"] for row in json.loads(result.stdout)}


def variant_of(stage: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO / "bindings" / "python"), "LLAMA_CPP_RUNTIME_LIBRARY_DIR": str(stage)}
    result = subprocess.run([sys.executable, "-m", "llama_cpp_runtime", "info", "--json"], capture_output=True,
                            text=True, check=True, env=env)  # fmt: skip
    return str(json.loads(result.stdout)["cpu_variant"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, required=True, help="a project with build/upstream and its cpu stage")
    parser.add_argument("--title", default="model speed: the binding against llama-bench")
    parser.add_argument("-p", "--n-prompt", type=int, default=512)
    parser.add_argument("-n", "--n-gen", type=int, default=128)
    parser.add_argument("-r", "--repetitions", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=default_jobs())
    args = parser.parse_args()
    project = args.project.resolve()
    stage = project / "build" / "stage" / "cpu"
    with tempfile.TemporaryDirectory(prefix="bench-model-") as scratch_name:
        scratch = Path(scratch_name)
        executable = build_llama_bench(project, scratch)
        models = {dtype: tiny_models.write_bench_model(scratch / f"bench-{dtype}.gguf", dtype) for dtype in DTYPES}
        ours: dict[tuple[str, str], list[float]] = {}
        theirs: dict[tuple[str, str], list[float]] = {}
        for round_number in range(args.rounds):
            for dtype, model in models.items():
                print(f"  … round {round_number + 1}/{args.rounds} {dtype}", file=sys.stderr, flush=True)
                for test, speed in binding_bench(Path(sys.executable), stage, model, args).items():
                    ours.setdefault((dtype, test), []).append(speed)
                for test, speed in llama_bench(executable, stage, model, args).items():
                    theirs.setdefault((dtype, test), []).append(speed)
        sizes = {dtype: model.stat().st_size / 2**20 for dtype, model in models.items()}
    lines = [
        f"### {args.title}",
        "",
        f"{default_jobs()} cores, {args.threads} threads, CPU variant `{variant_of(stage)}` on both sides, "
        f"{time.strftime('%Y-%m-%d')}; 25.8 M-parameter llama, {args.repetitions} repetitions per run, median of "
        f"{args.rounds} interleaved rounds.",
        "",
        "| model | test | binding t/s | llama-bench t/s | binding / llama-bench |",
        "|---|---|---:|---:|---:|",
    ]
    for (dtype, test), speeds in sorted(ours.items()):
        mine, upstream = statistics.median(speeds), statistics.median(theirs[(dtype, test)])
        ratio = mine / upstream
        lines.append(f"| {dtype} ({sizes[dtype]:.0f} MiB) | {test} | {mine:.1f} | {upstream:.1f} | {ratio:.3f} |")
    section = "\n".join(lines) + "\n"
    print(section)
    write_readme(args.title, section)


if __name__ == "__main__":
    main()
