"""Throwaway upstream repositories and projects, driven through the real git and the real CLI."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

FIXTURES = Path(__file__).parent.parent / "fixtures"
MINIGGML = FIXTURES / "miniggml"
REPO_ROOT = Path(__file__).parents[2]


def hermetic_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "BUILDSYS_", "CCACHE_", "LLAMA_CPP_"))}
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(home / ".cache"),  # the binding's per-user cache stays in the test's home
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="Test Author",
        GIT_AUTHOR_EMAIL="author@example.invalid",
        GIT_COMMITTER_NAME="Test Committer",
        GIT_COMMITTER_EMAIL="committer@example.invalid",
        PYTHONPATH=os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "bindings" / "python")]),
    )
    return env


class GitRepo:
    """A repository the test writes to with the real git, with fixed dates for stable hashes."""

    def __init__(self, path: Path, env: dict[str, str]) -> None:
        self.path = path
        self.env = env
        self._tick = 0

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        self._tick += 1
        env = dict(self.env)
        stamp = f"{1_700_000_000 + self._tick * 60} +0000"
        env.setdefault("GIT_AUTHOR_DATE", stamp)
        env.setdefault("GIT_COMMITTER_DATE", stamp)
        result = subprocess.run(["git", *args], cwd=self.path, env=env, capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def out(self, *args: str) -> str:
        return self.git(*args).stdout.strip()

    def write(self, relative: str, content: str | bytes, *, executable: bool = False) -> Path:
        path = self.path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        # bytes as given: text mode would turn "\r\n" into "\r\r\n" on Windows
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        if executable:
            path.chmod(0o755)  # on Windows git records the mode from the index instead
            if sys.platform == "win32":
                self.git("add", "--chmod=+x", "--", relative)
        return path

    def read(self, relative: str) -> str:
        return (self.path / relative).read_bytes().decode("utf-8")

    def commit(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.head()

    def head(self) -> str:
        return self.out("rev-parse", "HEAD")


def make_upstream(path: Path, env: dict[str, str]) -> tuple[GitRepo, list[str]]:
    """The miniature upstream with a history: binaries, an executable, renames, deletions, CRLF."""
    shutil.copytree(MINIGGML, path)
    repo = GitRepo(path, env)
    repo.git("init", "-q", "-b", "master")
    repo.write("ggml/src/weights.bin", bytes(range(256)) * 4)
    repo.write("ggml/src/gen-version.sh", "#!/bin/sh\necho 0.0.1\n", executable=True)
    repo.write("ggml/src/resources.rc", "LINE ONE\r\nLINE TWO\r\n")
    commits = [repo.commit("initial import of the miniature upstream")]
    repo.write("ggml/src/ggml.c", repo.read("ggml/src/ggml.c") + "\nint ggml_version(void) { return 2; }\n")
    commits.append(repo.commit("ggml: add ggml_version"))
    repo.git("mv", "src/llama.c", "src/llama-core.c")
    repo.write("CMakeLists.txt", repo.read("CMakeLists.txt").replace("src/llama.c", "src/llama-core.c"))
    repo.git("rm", "-q", "ggml/src/old-scalar.c")
    repo.write("docs/build.md", repo.read("docs/build.md") + "Renamed llama.c.\n")
    commits.append(repo.commit("rename llama.c, drop old-scalar.c"))
    repo.write("ggml/src/ggml.c", repo.read("ggml/src/ggml.c").replace("float sum = 0.0f;", "double sum = 0.0;"))
    commits.append(repo.commit("ggml: accumulate in double"))
    return repo, commits


def readelf_dynamic(library: Path) -> dict[str, list[str]]:
    """The dynamic section as readelf shows it: {"NEEDED": [...], "RUNPATH": [...], "SONAME": [...]}."""
    output = subprocess.run(
        ["readelf", "-d", str(library)], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    found: dict[str, list[str]] = {"NEEDED": [], "RUNPATH": []}
    for tag, value in re.findall(r"\((\w+)\)\s+[^\[]*\[([^\]]*)\]", output):
        found.setdefault(tag, []).append(value)
    return found


def expected_subset() -> list[str]:
    """What sync writes from the last commit of make_upstream() with the default include/exclude."""
    included = ("CMakeLists.txt", "LICENSE", "cmake/", "include/", "src/", "ggml/", "vendor/", "tools/", "common/")
    excluded = ("tools/mtmd/tests/", "tools/mtmd/test-")
    files = {
        p.relative_to(MINIGGML).as_posix() for p in MINIGGML.rglob("*") if p.is_file() and not p.name.endswith(".md")
    }
    files = {f for f in files if f in included or f.startswith(tuple(i for i in included if i.endswith("/")))}
    files = {f for f in files if not f.startswith(excluded)}
    files -= {"src/llama.c", "ggml/src/old-scalar.c"}
    files |= {"src/llama-core.c", "ggml/src/weights.bin", "ggml/src/gen-version.sh", "ggml/src/resources.rc"}
    return sorted(files)


@dataclass
class Project:
    """A project using buildsys: vendoring.toml, patches/, and the CLI run as a subprocess."""

    root: Path
    upstream: GitRepo
    commits: list[str]
    env: dict[str, str]
    launcher: tuple[str, ...] = ()  # e.g. ("unshare", "-n"): the CLI runs without a network

    def configure(self, commit: str, extra: str = "") -> None:
        (self.root / "vendoring.toml").write_text(
            f'[upstream]\nurl = {toml_string(self.upstream.path)}\ncommit = "{commit}"\n{extra}'
        )

    def run(
        self,
        *args: str,
        expect: int | None = 0,
        timeout: float = 300,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """The CLI in the project (or `cwd`), with the project's environment (or all of `env` instead)."""
        result = subprocess.run(
            [*self.launcher, sys.executable, "-m", "buildsys", *args],
            cwd=cwd or self.root,
            env=self.env if env is None else dict(env),
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
        if expect is not None and result.returncode != expect:
            raise AssertionError(
                f"buildsys {' '.join(args)} exited {result.returncode}, expected {expect}\n"
                f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
            )
        return result

    @property
    def tracking(self) -> GitRepo:
        return GitRepo(self.root / "build" / "upstream", self.env)

    @property
    def patches(self) -> Path:
        return self.root / "patches"

    @property
    def vendor(self) -> Path:
        return self.root / "vendor" / "llama.cpp"

    def patch_bytes(self) -> dict[str, bytes]:
        return {p.name: p.read_bytes() for p in sorted(self.patches.glob("*.patch"))}

    def add_patch_commits(self, *edits: tuple[str, str, str, str]) -> None:
        """Commit (subject, path, old text, new text) edits in the tracking repository, one commit each."""
        tracking = self.tracking
        for subject, path, old, new in edits:
            text = tracking.read(path)
            assert old in text, f"{old!r} not in {path}"
            tracking.write(path, text.replace(old, new, 1))
            tracking.commit(subject)


def fresh_project(base: Path) -> Project:
    """The fixture's latest commit, pinned and applied (not yet synced) in base/project."""
    env = hermetic_env(base / "home")
    (base / "home").mkdir(parents=True)
    upstream, commits = make_upstream(base / "upstream", env)
    (base / "project").mkdir()
    project = Project(base / "project", upstream, commits, env)
    project.configure(commits[-1])
    project.run("apply-patches")
    return project


def snapshot(root: Path, *, skip: tuple[str, ...] = ()) -> dict[str, tuple[int, bytes]]:
    """Every file under root with its mtime and bytes (to prove nothing was touched)."""
    found = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and not any(relative == s or relative.startswith(s + "/") for s in skip):
            found[relative] = (path.stat().st_mtime_ns, path.read_bytes())
    return found


def toml_string(value: object) -> str:
    """A TOML basic string: a Windows path's backslashes are escapes there and must be doubled."""
    return json.dumps(str(value))  # JSON's string escapes are TOML's for every character a path holds


_HOLD_THE_LOCK = """
import sys, time
from pathlib import Path
from buildsys.project_lock import project_lock
with project_lock(Path(sys.argv[1]), sys.argv[2], {}):
    print("held", flush=True)
    time.sleep(float(sys.argv[3]))
"""


def hold_project_lock(project: Project, command: str, seconds: float = 120) -> subprocess.Popen[str]:
    """A process holding the project's lock as `command` would, for `seconds`; kill it to release."""
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_THE_LOCK, str(project.root), command, str(seconds)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env=project.env,
    )
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder


# Patch files damaged as people damage them, and the words buildsys then names them with.
PATCH_DAMAGE: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "empty": (lambda patch: b"", "it is empty"),
    "crlf": (lambda patch: patch.replace(b"\n", b"\r\n"), "it has CRLF line endings"),
    "garbage": (lambda patch: b"this is not a patch\n" * 3, "it does not start with a `From ` line"),
    "no-diff": (lambda patch: patch.split(b"\ndiff --git", 1)[0] + b"\n", "it has no `diff --git` section"),
    # well formed, but its first hunk header claims lines the hunk does not have: git's own "corrupt patch"
    "corrupt-hunk": (lambda patch: patch.replace(b"@@ -", b"@@ -1,400 +1,400 @@\n-x\n@@ -", 1), "corrupt patch"),
}


def apply_our_two_patches(project: Project) -> None:
    """The pin applied, two patches of ours committed on it, exported and synced (FIRST_PATCH, SECOND_PATCH)."""
    project.run("apply-patches")
    project.add_patch_commits(
        ("ggml: mark our accumulator", "ggml/src/ggml.c", "float sum = 0.0f;", "float sum = 0.0f; /* ours */"),
        (
            "llama: declare llama_patched",
            "include/llama.h",
            "int llama_version(void);",
            "int llama_version(void);\nint llama_patched(void);",
        ),
    )
    project.run("create-patches")
    project.run("sync")
