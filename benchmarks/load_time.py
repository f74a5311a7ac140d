"""What `import llama_cpp_runtime; rt = load(); rt.devices()` costs over a bare interpreter, warm, from installed
wheels: the core alone and the core with a GPU plugin, in fresh venvs, interleaved rounds (medians); then
where the time goes: `python -X importtime` (the slowest imports) and cProfile of load() (the slowest calls).

    nox -s bench -- load_time --core dist/llama_cpp_runtime-*.whl [--plugin dist/llama_cpp_runtime_vulkan-*.whl]
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import clean_environment, fresh_venv, run, write_readme

LOAD = "import llama_cpp_runtime as r; rt = r.load(); rt.devices()"
PROFILE = """
import cProfile, pstats, io, sys
profile = cProfile.Profile()
profile.enable()
import llama_cpp_runtime as r
r.load().devices()
profile.disable()
out = io.StringIO()
pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(int(sys.argv[1]))
print(out.getvalue())
"""


def environment(where: Path, wheels: list[Path], env: dict[str, str]) -> Path:
    python = fresh_venv(where, env)
    run([str(python), "-m", "pip", "install", "-q", "--no-index", "--no-deps", *map(str, wheels)], where.parent, env)
    return python


def timed(args: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(args, env=env, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - started


def slowest_imports(python: Path, env: dict[str, str], cwd: Path, count: int) -> list[tuple[str, int, int]]:
    """(module, self µs, cumulative µs) of the slowest imports under the package, by cumulative time."""
    result = subprocess.run(
        [str(python), "-X", "importtime", "-c", LOAD], env=env, cwd=cwd, capture_output=True, text=True, check=True
    )
    rows = []
    for line in result.stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if match:
            rows.append((match[4], int(match[1]), int(match[2])))
    return sorted(rows, key=lambda row: -row[2])[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--core", type=Path, required=True, help="the core wheel")
    parser.add_argument("--plugin", type=Path, help="a GPU plugin wheel of the same release (e.g. Vulkan)")
    parser.add_argument("--rounds", type=int, default=15)
    options = parser.parse_args()
    env = clean_environment()
    with tempfile.TemporaryDirectory(prefix="bench-load-") as scratch:
        base = Path(scratch)
        pythons = {"core": environment(base / "core", [options.core.resolve()], env)}
        if options.plugin:
            wheels = [options.core.resolve(), options.plugin.resolve()]
            pythons["core + plugin"] = environment(base / "plugin", wheels, env)
        samples: dict[str, list[float]] = {"bare": [], **{name: [] for name in pythons}}
        for python in pythons.values():  # warm: the page cache, the binding's variant cache, .pyc files
            timed([str(python), "-c", LOAD], env, base)
        for _ in range(options.rounds):
            samples["bare"].append(timed([str(pythons["core"]), "-c", "pass"], env, base))
            for name, python in pythons.items():
                samples[name].append(timed([str(python), "-c", LOAD], env, base))
        imports = slowest_imports(pythons["core"], env, base, 8)
        profile = subprocess.run(
            [str(pythons["core"]), "-c", PROFILE, "14"], env=env, cwd=base, capture_output=True, text=True, check=True
        ).stdout
    bare = statistics.median(samples["bare"]) * 1000
    rows = [
        f"| {name} | {statistics.median(values) * 1000:.1f} | +{statistics.median(values) * 1000 - bare:.1f} |"
        for name, values in samples.items()
        if name != "bare"
    ]
    section = "\n".join(
        [
            "### load: import + load() + devices()",
            "",
            f"`{options.core.name}`{f' and `{options.plugin.name}`' if options.plugin else ''}, fresh venvs, warm, "
            f"median of {options.rounds} interleaved rounds, {os.cpu_count()} cores, {datetime.date.today()}; "
            f"bare `python -c pass`: {bare:.1f} ms.",
            "",
            "| installed | import + load() + devices() (ms) | over bare (ms) |",
            "|---|---:|---:|",
            *rows,
            "",
            "Slowest imports (`-X importtime`, core only):",
            "",
            "| module | self (ms) | cumulative (ms) |",
            "|---|---:|---:|",
            *(f"| `{module}` | {own / 1000:.1f} | {total / 1000:.1f} |" for module, own, total in imports),
            "",
        ]
    )
    print(section)
    print(profile)
    write_readme("load: import + load() + devices()", section)


if __name__ == "__main__":
    main()
