"""What a user of the wheels gets, measured side by side in one run.

    nox -s bench -- wheels                       # the miniature upstream (a throwaway project)
    nox -s bench -- wheels --project DIR         # a synced project, e.g. one pinned to real ggml

Rows:
  size         each wheel in dist/: compressed, installed, libraries (libggml-python's PyPI wheel,
               one CPU build that needs AVX2, is 2.5 MB for comparison)
  latency      `import llama_cpp_runtime as r; r.load().devices()` in a fresh venv with the core wheel,
               minus bare interpreter start-up (medians of --repeat runs)
  throughput   mul_mat GFLOP/s of the variant the wheel chooses on this CPU against a build of the same
               upstream with GGML_NATIVE=ON (-march=native, no variants), through the same binding
The table is printed and written into benchmarks/README.md.
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
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from _common import fixture_project, raw_cmake_build, run, write_readme  # noqa: E402

from buildsys.builder.driver import default_jobs  # noqa: E402
from buildsys.cmake_tool import find_tools  # noqa: E402
from buildsys.config import load_config  # noqa: E402

NATIVE = ["-DGGML_NATIVE=ON", "-DGGML_CPU_ALL_VARIANTS=OFF", "-DGGML_BACKEND_DL=OFF"]


def sizes(dist: Path) -> list[str]:
    rows = ["| wheel | compressed | installed | libraries |", "|---|---:|---:|---:|"]
    for wheel in sorted(dist.glob("*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            installed = sum(i.file_size for i in archive.infolist())
            libraries = sum(1 for n in archive.namelist() if re.search(r"\.(so(\.\d+)*|dylib|dll)$", n))
        rows.append(
            f"| `{wheel.name}` | {wheel.stat().st_size / 2**20:.2f} MiB | {installed / 2**20:.2f} MiB | {libraries} |"
        )
    rows.append("| libggml-python (PyPI, for comparison: one AVX2 CPU build) | 2.5 MB | | |")
    return rows


def timed(args: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(args, env=env, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def clean_environment() -> dict[str, str]:
    """This process's environment without settings that would steer the installed runtime."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("LLAMA_CPP_RUNTIME_", "PYTHON", "GGML_"))}


def latency(python: Path, env: dict[str, str], cwd: Path, repeat: int) -> tuple[float, float]:
    load = [str(python), "-c", "import llama_cpp_runtime as r; r.load().devices()"]
    bare = [str(python), "-c", "pass"]
    timed(load, env, cwd)  # page cache warm, like any second start
    return (
        statistics.median(timed(load, env, cwd) for _ in range(repeat)),
        statistics.median(timed(bare, env, cwd) for _ in range(repeat)),
    )


def gflops(python: Path, env: dict[str, str], cwd: Path, size: int, row: str) -> float:
    result = subprocess.run(
        [str(python), "-m", "llama_cpp_runtime", "bench", "--size", str(size)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    for line in result.stdout.splitlines():
        if line.startswith(row):
            match = re.search(r"([\d.]+) GFLOP/s", line)
            if match:
                return float(match[1])
    raise SystemExit(f"no {row!r} row in:\n{result.stdout}")


def native_stage(project: Path, scratch: Path) -> Path:
    """The same upstream with GGML_NATIVE=ON: one CPU backend for this machine, linked into libggml."""
    config = load_config(project / "vendoring.toml", env=os.environ)
    tree, stage = project / "build" / "bench-native", scratch / "native-stage"
    raw_cmake_build(find_tools(os.environ), config.sync.destination, tree, stage, dict(os.environ), *NATIVE)
    return stage


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, help="a synced project (default: the miniature upstream)")
    parser.add_argument("--title", help="the README section title")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--size", type=int, default=512, help="m = n = k of the timed multiply")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-wheels-") as scratch_name:
        scratch = Path(scratch_name)
        project = arguments.project.resolve() if arguments.project else fixture_project(scratch)
        title = arguments.title or (
            "wheels: miniature upstream" if not arguments.project else f"wheels: {project.name}"
        )
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        if not list((project / "dist").glob("llama_cpp_runtime-*.whl")):
            run([sys.executable, "-m", "buildsys", "-q", "wheels", "--backend", "cpu"], project, env)
        subprocess.run([sys.executable, "-m", "venv", str(scratch / "venv")], check=True)
        python = scratch / "venv" / "bin" / "python"
        core = max((project / "dist").glob("llama_cpp_runtime-*.whl"), key=lambda p: p.stat().st_mtime)
        run([str(python), "-m", "pip", "install", "-q", "--no-index", str(core)], scratch, env)
        clean = clean_environment()
        loaded, bare = latency(python, clean, scratch, arguments.repeat)
        report = subprocess.run(
            [str(python), "-m", "llama_cpp_runtime", "info", "--json"],
            capture_output=True,
            text=True,
            check=True,
            cwd=scratch,
            env=clean,
        ).stdout
        variant = json.loads(report)["cpu_variant"] or "none"
        wheel_rate = gflops(python, clean, scratch, arguments.size, f"CPU ({variant})")
        native = native_stage(project, scratch)
        native_env = {**clean, "LLAMA_CPP_RUNTIME_LIBRARY_DIR": str(native)}
        native_rate = gflops(python, native_env, scratch, arguments.size, "CPU")
        shutil.rmtree(project / "build" / "bench-native", ignore_errors=True)
        size_rows = sizes(project / "dist")
    lines = [
        f"### {title}",
        "",
        f"{default_jobs()} cores, {time.strftime('%Y-%m-%d')}; latency and throughput are medians.",
        "",
        *size_rows,
        "",
        "| measure | wheel | reference | ratio |",
        "|---|---:|---:|---:|",
        f"| import + load() + devices() (s), against bare `python -c pass` | {loaded:.3f} | {bare:.3f} | "
        f"+{loaded - bare:.3f} s |",
        f"| mul_mat {arguments.size}³ f32 GFLOP/s: chosen variant `{variant}` against GGML_NATIVE=ON | "
        f"{wheel_rate:.2f} | {native_rate:.2f} | {wheel_rate / native_rate:.2f} |",
    ]
    section = "\n".join(lines) + "\n"
    print(section)
    write_readme(title, section)


if __name__ == "__main__":
    main()
