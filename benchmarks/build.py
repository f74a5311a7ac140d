"""The build driver against the same raw CMake commands, side by side in one run.

    nox -s bench -- build                      # the miniature upstream (a throwaway project)
    nox -s bench -- build --project DIR        # a synced project, e.g. one pinned to real ggml
    nox -s bench -- build --repeat 5 --cold    # also time cold builds (no ccache) on a real upstream

Rows (preset `cpu`, medians of --repeat runs, ratio = driver / raw):
  cold build        empty build tree, ccache disabled
  no-op rebuild     nothing changed since the last build
  ccache-warm       build tree wiped, every object in ccache
The raw side runs exactly what the driver runs (`cmake --preset`, `cmake --build`, `cmake --install`);
the difference is the driver's own work: toolchain detection, logs, the staged-tree scan and record.
The table is printed and written into benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from _common import fixture_project, raw_cmake_build, run, write_readme  # noqa: E402

from buildsys import ccache  # noqa: E402
from buildsys.builder.driver import default_jobs, require_current_vendor  # noqa: E402
from buildsys.cmake_tool import find_tools  # noqa: E402
from buildsys.config import load_config  # noqa: E402

PRESET = "cpu"


def timed(action: Callable[[], None]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


class Sides:
    """The two ways of building one preset of one project, with the same tools, cache and directories."""

    def __init__(self, project: Path, scratch: Path) -> None:
        self.project = project
        config = load_config(project / "vendoring.toml", env=os.environ)
        self.tools = find_tools(os.environ)
        require_current_vendor(config)  # both sides build the synced tree: refuse a stale one first
        self.env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.env.update(ccache.environment(self.tools.ccache, project, self.env))
        self.driver_tree = project / "build" / PRESET
        # Beside the driver's tree, at the same depth: ccache (CCACHE_BASEDIR = the project) then serves both.
        self.raw_tree = project / "build" / f"bench-raw-{PRESET}"
        self.raw_stage = scratch / "raw-stage"
        self.source = config.sync.destination

    def driver(self) -> None:
        run([sys.executable, "-m", "buildsys", "-q", "build", "--backend", PRESET], self.project, self.env)

    def raw(self) -> None:
        raw_cmake_build(self.tools, self.source, self.raw_tree, self.raw_stage, self.env)

    def wipe(self) -> None:
        shutil.rmtree(self.driver_tree, ignore_errors=True)
        shutil.rmtree(self.raw_tree, ignore_errors=True)


def measure(sides: Sides, repeat: int, cold: bool) -> list[tuple[str, float, float]]:
    rows = []
    if cold:
        cold_env = dict(sides.env)
        sides.env["CCACHE_DISABLE"] = "1"
        raw, driver = [], []
        for _ in range(repeat):
            sides.wipe()
            raw.append(timed(sides.raw))
            driver.append(timed(sides.driver))
        sides.env = cold_env
        rows.append(("cold build (no ccache)", statistics.median(raw), statistics.median(driver)))
    sides.wipe()
    sides.raw()  # fills ccache and both trees
    sides.driver()
    raw = [timed(sides.raw) for _ in range(repeat)]
    driver = [timed(sides.driver) for _ in range(repeat)]
    rows.append(("no-op rebuild", statistics.median(raw), statistics.median(driver)))
    raw, driver = [], []
    for _ in range(repeat):
        sides.wipe()
        raw.append(timed(sides.raw))
        driver.append(timed(sides.driver))
    rows.append(("ccache-warm, build tree wiped", statistics.median(raw), statistics.median(driver)))
    return rows


def table(title: str, rows: list[tuple[str, float, float]], repeat: int) -> str:
    lines = [
        f"### {title}",
        "",
        f"Preset `{PRESET}`, median of {repeat} run(s), {default_jobs()} cores, {time.strftime('%Y-%m-%d')}.",
        "",
        "| case | raw cmake (s) | driver (s) | driver / raw |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {name} | {raw:.2f} | {driver:.2f} | {driver / raw:.2f} |" for name, raw, driver in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project", type=Path, help="a synced project (default: the miniature upstream)")
    parser.add_argument("--title", help="the README section title (default: from the project)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="also time cold builds (default on for the fixture)")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-build-") as scratch_name:
        scratch = Path(scratch_name)
        project = arguments.project.resolve() if arguments.project else fixture_project(scratch)
        title = arguments.title or ("build: miniature upstream" if not arguments.project else f"build: {project.name}")
        sides = Sides(project, scratch)
        try:
            rows = measure(sides, arguments.repeat, arguments.cold or not arguments.project)
        finally:
            shutil.rmtree(sides.raw_tree, ignore_errors=True)
    section = table(title, rows, arguments.repeat)
    print(section)
    write_readme(title, section)


if __name__ == "__main__":
    main()
