"""`bump` against moving the pin by hand, side by side in one run, on real ggml history.

    nox -s bench -- bump --upstream /path/to/ggml.git [--old SHA] [--new SHA] [--repeat 3]

Both sides start from a copy of the same project: pinned at --old, our patches applied and synced.
  by hand   write the new commit into vendoring.toml, then apply-patches, create-patches, sync
  bump      `python -m buildsys bump <new>` (the same work, plus finding patches already upstream,
            reading what the range changes for the build, and the summary)
The queue is this repository's patches/ (ggml paths) and one upstream commit of the range carried as a
patch, so one patch is dropped on the way. Medians of --repeat runs; ratio = bump / by hand.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from _common import run, write_readme  # noqa: E402

from buildsys.builder.driver import default_jobs  # noqa: E402

OLD = "812c5772e6ec72641c085bfb0259c3be26603f63"
NEW = "9f186280fea410f1602c74cf3b83c4d526dcd286"
CARRIED = "40423e6ddf5d0ded7f66e2291f9b6d73a441da6f"  # in OLD..NEW: our patch until upstream has it
LAYOUT = (
    '[sync]\ndestination = "vendor/ggml"\n'
    'include = ["CMakeLists.txt", "LICENSE", "ggml.pc.in", "cmake/", "include/", "src/"]\n'
)


def environment() -> dict[str, str]:
    identity = {
        "GIT_AUTHOR_NAME": "bench",
        "GIT_AUTHOR_EMAIL": "bench@invalid",
        "GIT_COMMITTER_NAME": "bench",
        "GIT_COMMITTER_EMAIL": "bench@invalid",
    }
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("BUILDSYS_", "GIT_"))}
    return {**clean, **identity, "PYTHONPATH": str(REPO)}


def buildsys(project: Path, *args: str) -> None:
    run([sys.executable, "-m", "buildsys", "-q", *args], project, environment())


def prepare(base: Path, upstream: str, old: str, carried: str) -> Path:
    """A project at `old` with our patches (ggml paths) and `carried` cherry-picked, exported and synced."""
    project = base / "template"
    (project / "patches").mkdir(parents=True)
    (project / "vendoring.toml").write_text(f'[upstream]\nurl = "{upstream}"\ncommit = "{old}"\n{LAYOUT}')
    for patch in sorted((REPO / "patches").glob("*.patch")):
        ggml_paths = re.sub(rb"(?m)^(diff --git a/|--- a/|\+\+\+ b/| )ggml/", rb"\1", patch.read_bytes())
        (project / "patches" / patch.name).write_bytes(ggml_paths.replace(b" b/ggml/", b" b/"))
    buildsys(project, "apply-patches")
    tracking = project / "build" / "upstream"
    run(["git", "fetch", "-q", "upstream", carried], tracking, environment())
    run(["git", "cherry-pick", carried], tracking, environment())
    buildsys(project, "create-patches")
    buildsys(project, "sync")
    return project


def by_hand(project: Path, new: str, stops: list[int]) -> None:
    """The maintainer's way before `bump`; each `git am` stop is answered with `--skip`, as they would for a
    patch upstream already has (counted: someone had to look at it)."""
    toml = project / "vendoring.toml"
    toml.write_text(re.sub(r'commit = "[0-9a-f]{40}"', f'commit = "{new}"', toml.read_text()))
    applied = subprocess.run(
        [sys.executable, "-m", "buildsys", "-q", "apply-patches"],
        cwd=project,
        env=environment(),
        capture_output=True,
        text=True,
        check=False,
    )
    stopped = 0
    while applied.returncode == 4 or (project / "build/upstream/.git/rebase-apply").exists():
        stopped += 1
        applied = subprocess.run(
            ["git", "am", "--skip"],
            cwd=project / "build" / "upstream",
            env=environment(),
            capture_output=True,
            text=True,
            check=False,
        )
    if applied.returncode not in (0, 128):
        raise SystemExit(f"apply-patches failed:\n{applied.stderr}")
    stops.append(stopped)
    for command in ("create-patches", "sync"):
        buildsys(project, command)


def timed(template: Path, scratch: Path, action: Callable[[Path], None]) -> float:
    copy = scratch / "run"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(template, copy, symlinks=True)
    start = time.perf_counter()
    action(copy)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--upstream",
        default=os.environ.get("BUILDSYS_REAL_UPSTREAM"),
        help="a local mirror of ggml-org/ggml (default: $BUILDSYS_REAL_UPSTREAM)",
    )
    parser.add_argument("--old", default=OLD)
    parser.add_argument("--new", default=NEW)
    parser.add_argument("--carried", default=CARRIED, help="an upstream commit of old..new carried as a patch")
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args()
    if not arguments.upstream:
        raise SystemExit("name a ggml mirror: --upstream PATH or BUILDSYS_REAL_UPSTREAM")
    count = ["git", "-C", arguments.upstream, "rev-list", "--count", f"{arguments.old}..{arguments.new}"]
    commits = subprocess.run(count, capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="bench-bump-") as scratch:
        template = prepare(Path(scratch), arguments.upstream, arguments.old, arguments.carried)
        queue = len(list((template / "patches").glob("*.patch")))
        hand: list[float] = []
        bump: list[float] = []
        stops: list[int] = []
        for _ in range(arguments.repeat):  # interleaved, so both sides see the same machine load
            hand.append(timed(template, Path(scratch), lambda p: by_hand(p, arguments.new, stops)))
            bump.append(timed(template, Path(scratch), lambda p: buildsys(p, "bump", arguments.new)))
    hand_s, bump_s = statistics.median(hand), statistics.median(bump)
    section = (
        f"### bump: real ggml {arguments.old[:8]}..{arguments.new[:8]}\n\n"
        f"{commits} upstream commits, {queue} patches (one of them upstream in the range), median of "
        f"{arguments.repeat} run(s), {default_jobs()} cores, {time.strftime('%Y-%m-%d')}.\n\n"
        "| case | by hand | bump | bump / by hand |\n|---|---:|---:|---:|\n"
        f"| move the pin, carry the queue, export, sync (s) | {hand_s:.2f} | {bump_s:.2f} | {bump_s / hand_s:.2f} |\n"
        f"| `git am` stops a maintainer must answer | {max(stops)} | 0 | |\n"
    )
    print(section)
    write_readme(section.split("\n", 1)[0].removeprefix("### "), section)


if __name__ == "__main__":
    main()
