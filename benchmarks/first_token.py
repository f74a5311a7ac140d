"""From an empty venv to the first generated token, three ways: (a) our core wheel and its binding, (b)
llama-cpp-python on our core wheel, installed from its PyPI sdist with nothing compiled (docs/binding.md,
"llama-cpp-python on these wheels"), (c) llama-cpp-python from its PyPI sdist, compiling llama.cpp here.
Each case gets a fresh `python -m venv` (made before the clock starts), pip without its cache or any
configuration file, and an empty per-user cache; the install phase is pip's commands, the first-token phase
is one new interpreter that imports, loads the same tiny generated GGUF model and generates one token,
timed from its start to the token. Wall time and CPU seconds (the children's, from getrusage) of each.
One run, not a median: case (c) compiles llama.cpp for minutes; run it where nobody else builds meanwhile
(the section reports the CPU the rest of the machine used).

    nox -s bench -- first_token --core dist/llama_cpp_runtime-*.whl [--case core|wheel|sdist ...] [--report-section]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, clean_environment, fresh_venv, machine_cpu_seconds, run, write_readme

sys.path.insert(0, str(REPO / "tests"))
from helpers import tiny_models

TITLE = "first token: install, then import, load and generate one token"
LLAMA_CPP_PYTHON = "llama-cpp-python==0.3.35"
# docs/binding.md: llama-cpp-python's Python layer on our libraries, no compiler at all (`false` stands in
# for one, CMake is told not to try it, and nothing is built)
NOTHING_BUILT = {
    "CMAKE_ARGS": "-DLLAMA_BUILD=OFF -DLLAVA_BUILD=OFF -DCMAKE_C_COMPILER_FORCED=ON -DCMAKE_CXX_COMPILER_FORCED=ON",
    "CC": "false",
    "CXX": "false",
}
# What would make a case differ from a user's first install: build flags, pip's configuration (this machine's
# has local indexes), a warm ccache (llama.cpp's CMake uses ccache when it finds it: CCACHE_DISABLE=1 below).
STEERING = {"CC", "CXX", "CFLAGS", "CXXFLAGS", "LDFLAGS", "CMAKE_ARGS", "FORCE_CMAKE", "MAKEFLAGS"}
STEERING_PREFIXES = ("PIP_", "UV_", "CMAKE_", "SKBUILD", "CCACHE_", "GGML_", "XDG_CACHE_HOME")
KEPT = {"PIP_CERT"}  # the machine's CA bundle: how PyPI is reached, not what is installed

# Each script prints "token <id>" when the token is there and ends at once (os._exit: no teardown timed).
OURS = """
import os, sys
import llama_cpp_runtime as lcr
with lcr.load().load_model(sys.argv[1]) as model, model.context(n_ctx=256) as ctx:
    token = next(ctx.stream(model.tokenize("Hello world"), 1))
    print("token", token, flush=True)
    os._exit(0)
"""
THEIRS = """
import os, sys
{prelude}from llama_cpp import Llama
llm = Llama(model_path=sys.argv[1], n_ctx=256, verbose=False)
token = next(llm.generate(llm.tokenize(b"Hello world"), top_k=1, temp=0.0))
print("token", token, flush=True)
os._exit(0)
"""
USE_FOR = 'import llama_cpp_runtime\nllama_cpp_runtime.use_for("llama_cpp")\n'


@dataclasses.dataclass(frozen=True)
class Cost:
    wall: float
    cpu: float

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.wall + other.wall, self.cpu + other.cpu)


@dataclasses.dataclass(frozen=True)
class Case:
    key: str
    label: str
    installs: Callable[[Path], list[tuple[list[str], dict[str, str]]]]  # core wheel -> (pip arguments, env)
    script: str


@dataclasses.dataclass(frozen=True)
class Outcome:
    case: Case
    install: Cost
    first_token: Cost
    token: str
    installed: list[str]
    others: float | None  # CPU seconds the rest of the machine used meanwhile


def machine_busy() -> float | None:
    """CPU seconds every process of the machine has used since boot, stolen ones included; None where unknown."""
    machine = machine_cpu_seconds()
    return None if machine is None else sum(machine)


def pip_install(*requirements: str) -> list[str]:
    return ["-m", "pip", "install", "-q", "--no-cache-dir", *requirements]


CASES = (
    Case(
        "core",
        "(a) our core wheel, its binding",
        lambda core: [(pip_install("--no-index", str(core)), {})],
        OURS,
    ),
    Case(
        "wheel",
        "(b) llama-cpp-python 0.3.35 on our core wheel, nothing compiled",
        lambda core: [(pip_install("--no-index", str(core)), {}), (pip_install(LLAMA_CPP_PYTHON), NOTHING_BUILT)],
        THEIRS.format(prelude=USE_FOR),
    ),
    Case(
        "sdist",
        "(c) llama-cpp-python 0.3.35 from its sdist, compiled here",
        lambda core: [(pip_install(LLAMA_CPP_PYTHON), {})],
        THEIRS.format(prelude=""),
    ),
)


def cpu_seconds(who: int = resource.RUSAGE_CHILDREN) -> float:
    """User + system CPU seconds of every child this process has waited for (and theirs), or its own (SELF)."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def benchmark_environment(cache: Path) -> dict[str, str]:
    """A first-time user's: no pip configuration or cache, no ccache, no build flags, an empty per-user cache."""
    env = {
        name: value
        for name, value in clean_environment().items()
        if name in KEPT or (name not in STEERING and not name.startswith(STEERING_PREFIXES))
    }
    quiet = {"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "CCACHE_DISABLE": "1"}
    return {**env, **quiet, "XDG_CACHE_HOME": str(cache)}


def measured(args: list[str], env: dict[str, str], cwd: Path) -> Cost:
    before, started = cpu_seconds(), time.perf_counter()
    run(args, cwd, env)
    return Cost(time.perf_counter() - started, cpu_seconds() - before)


def first_token(python: Path, script: str, model: Path, env: dict[str, str], cwd: Path) -> tuple[Cost, str]:
    """Wall time from the interpreter's start to its "token" line; CPU seconds of the whole process, which
    ends right after that line."""
    log = cwd / "first-token.stderr"
    with log.open("w") as stderr:
        before, started = cpu_seconds(), time.perf_counter()
        with subprocess.Popen(
            [str(python), "-c", script, str(model)], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True
        ) as process:
            assert process.stdout is not None
            line = process.stdout.readline()
            wall = time.perf_counter() - started
        cost = Cost(wall, cpu_seconds() - before)
    if process.returncode != 0 or not line.startswith("token "):
        errors = log.read_text()[-3000:]
        raise SystemExit(f"the first token of {python} failed (exit {process.returncode}): {line}\n{errors}")
    return cost, line.split()[1]


def installed(python: Path, env: dict[str, str], cwd: Path) -> list[str]:
    listing = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze", "--exclude", "pip", "--exclude", "setuptools"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return listing.stdout.split()


def run_case(case: Case, core: Path, model: Path, base: Path) -> Outcome:
    where = base / case.key
    where.mkdir()
    env = benchmark_environment(where / "cache")
    python = fresh_venv(where / "venv", env)  # not timed: the venv is there, empty, when the clock starts
    busy, own = machine_busy(), cpu_seconds(resource.RUSAGE_SELF)
    install = Cost(0.0, 0.0)
    for args, extra in case.installs(core):
        install += measured([str(python), *args], {**env, **extra}, where)
    cost, token = first_token(python, case.script, model, env, where)
    after, ours = machine_busy(), install.cpu + cost.cpu + cpu_seconds(resource.RUSAGE_SELF) - own
    others = None if busy is None or after is None else max(0.0, after - busy - ours)
    return Outcome(case, install, cost, token, installed(python, env, where), others)


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def section(outcomes: list[Outcome], core: Path) -> str:
    rows = [
        f"| {o.case.label} | {o.install.wall:.1f} | {o.install.cpu:.1f} | {o.first_token.wall:.2f} | "
        f"{o.first_token.cpu:.2f} | {(o.install + o.first_token).wall:.1f} | {(o.install + o.first_token).cpu:.1f} |"
        for o in outcomes
    ]
    tokens = ", ".join(f"{o.case.label[:3]} {o.token}" for o in outcomes)
    others = ", ".join(f"{o.case.label[:3]} {o.others:.1f} s" for o in outcomes if o.others is not None)
    return "\n".join(
        [
            f"### {TITLE}",
            "",
            f"One run on one machine ({cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}), "
            f"{datetime.date.today()}, one case after the other; `{core.name}`, the model "
            f"`tiny_models.write_llama_model(vocab='spm', dtype='f16')`; greedy first token: {tokens}.",
            "",
            "| case | install wall (s) | install CPU (s) | first token wall (s) | first token CPU (s) "
            "| total wall (s) | total CPU (s) |",
            "|---|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            f"CPU the rest of the machine used during each case (`/proc/stat` busy time less the case's own): "
            f"{others or 'not measured here'}.",
            "",
            "What each venv held afterwards (pip and setuptools aside):",
            "",
            *(f"- {o.case.label[:3]} {', '.join(o.installed)}" for o in outcomes),
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--core", type=Path, required=True, help="the core wheel (installed from this file)")
    parser.add_argument("--case", action="append", choices=[case.key for case in CASES], help="default: all three")
    parser.add_argument("--report-section", action="store_true", help="rewrite this benchmark's README section")
    options = parser.parse_args()
    core = options.core.resolve()
    cases = [case for case in CASES if options.case is None or case.key in options.case]
    with tempfile.TemporaryDirectory(prefix="bench-first-token-") as scratch:
        base = Path(scratch)
        model = tiny_models.write_llama_model(base / "tiny.gguf", vocab="spm", dtype="f16")
        outcomes = []
        for case in cases:
            print(f"{case.label} ...", file=sys.stderr, flush=True)
            outcomes.append(run_case(case, core, model, base))
    text = section(outcomes, core)
    print(text)
    if options.report_section:
        write_readme(TITLE, text)


if __name__ == "__main__":
    main()
