"""Real llama.cpp trees, offline: a local git repository made from llama-cpp-python sdists on PyPI.

Every llama-cpp-python sdist carries the whole llama.cpp tree it vendors under `vendor/llama.cpp`.
This script downloads the sdists it is asked for with pip (once: they are kept in the cache) and
commits each tree onto one linear history, oldest version first, tagged `v<version>`:

    python tests/helpers/real_llama_cpp.py             # the default versions; prints the repository's path
    python tests/helpers/real_llama_cpp.py 0.3.30 0.3.35

The repository lives in the user's cache (`$XDG_CACHE_HOME` or `~/.cache`, `llama-cpp-runtime/`),
outside any checkout, and is reused across runs. Commits are made with a fixed author and dates, so the
same versions give the same commit SHAs on every machine. It is used by the real-upstream tests
through `BUILDSYS_REAL_LLAMA_CPP`, and by hand as an upstream URL:

    BUILDSYS_UPSTREAM_URL=$(python tests/helpers/real_llama_cpp.py) nox -s apply-patches

Nothing here is part of buildsys, and nothing it downloads is ever committed to this repository.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

# llama-cpp-python 0.3.35 vendors the commit our vendoring.toml pins; 0.3.36 is the newer tree.
DEFAULT_VERSIONS = ("0.3.35", "0.3.36")
# Which llama.cpp commit each release vendors (llama-cpp-python's git tags, vendor/llama.cpp submodule).
VENDORED_COMMITS = {
    "0.3.30": "e3a74b299085cd00013804f7fca2e03441b2da20",
    "0.3.35": "4df29be4f4c3673f428170fda944a5b19f743bb8",
}
_IDENTITY = {
    "GIT_AUTHOR_NAME": "llama-cpp-python sdist",
    "GIT_AUTHOR_EMAIL": "sdist@pypi.invalid",
    "GIT_COMMITTER_NAME": "llama-cpp-python sdist",
    "GIT_COMMITTER_EMAIL": "sdist@pypi.invalid",
}
_TIMEOUT = 1800


class RealTreeError(Exception):
    """The sdist could not be downloaded or turned into a repository."""


def cache_root(env: Mapping[str, str] = os.environ) -> Path:
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return Path(base) / "llama-cpp-runtime"


def repository_path(versions: Sequence[str], root: Path | None = None) -> Path:
    return (root or cache_root()) / f"llama.cpp-{'-'.join(_ordered(versions))}.git"


def _ordered(versions: Sequence[str]) -> list[str]:
    return sorted(set(versions), key=lambda v: tuple(int(p) if p.isdigit() else p for p in v.split(".")))


def _git_env(stamp: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(_IDENTITY, LC_ALL="C", GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
    env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = f"{stamp} +0000"
    return env


def _run(args: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    try:
        result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RealTreeError(f"{args[0]} failed: {error}") from None
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise RealTreeError(f"`{' '.join(args)}` exited {result.returncode}:\n{tail}")
    return result.stdout


def download_sdist(version: str, sdists: Path) -> Path:
    """llama_cpp_python-<version>.tar.gz from PyPI (pip), kept in `sdists`."""
    target = sdists / f"llama_cpp_python-{version}.tar.gz"
    if target.is_file():
        return target
    sdists.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=sdists) as scratch:
        # `--no-binary` names the one package: `:all:` would also compile the build backend's own
        # requirements (CMake among them) from source while pip prepares the sdist's metadata.
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--no-binary",
                "llama-cpp-python",
                "--dest",
                scratch,
                f"llama-cpp-python=={version}",
            ]
        )
        downloaded = Path(scratch) / target.name
        if not downloaded.is_file():
            raise RealTreeError(f"pip did not produce {target.name}: {sorted(os.listdir(scratch))}")
        downloaded.replace(target)
    return target


def _extract_llama_cpp(sdist: Path, scratch: Path) -> Path:
    prefix = sdist.name.removesuffix(".tar.gz") + "/vendor/llama.cpp/"
    with tarfile.open(sdist) as archive:
        members = [m for m in archive.getmembers() if m.name.startswith(prefix)]
        if not members:
            raise RealTreeError(f"{sdist.name} has no vendor/llama.cpp")
        archive.extractall(scratch, members=members, filter="tar")
    tree = scratch / prefix
    # The sdist keeps the submodule's `.git` file, which points into llama-cpp-python's repository.
    (tree / ".git").unlink(missing_ok=True)
    return tree


def _commit_tree(repo: Path, tree: Path, version: str, parent: str | None, stamp: int) -> str:
    env = _git_env(stamp)
    index = repo / f"index-{version}"
    env["GIT_INDEX_FILE"] = str(index)
    git = ["git", f"--git-dir={repo}", f"--work-tree={tree}"]
    try:
        _run([*git, "add", "--all", "--force", "."], env=env)
        tree_id = _run([*git, "write-tree"], env=env).strip()
    finally:
        index.unlink(missing_ok=True)
    vendored = VENDORED_COMMITS.get(version)
    message = f"llama.cpp as vendored by llama-cpp-python {version}"
    if vendored:
        message += f"\n\nllama.cpp commit {vendored} (llama-cpp-python's tag v{version})"
    parents = ["-p", parent] if parent else []
    return _run([*git, "commit-tree", tree_id, *parents, "-m", message], env=env).strip()


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """One holder at a time (parallel test workers share caches and builds)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        try:
            import fcntl
        except ImportError:  # Windows: test workers there do not share a cache concurrently
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def make_repository(versions: Sequence[str] = DEFAULT_VERSIONS, root: Path | None = None) -> Path:
    """The bare repository of these versions, made once and reused; raises RealTreeError."""
    root = root or cache_root()
    repo = repository_path(versions, root)
    done = repo / "buildsys-complete"
    with locked(root / ".lock"):
        if done.is_file():
            return repo
        shutil.rmtree(repo, ignore_errors=True)
        _run(["git", "init", "--quiet", "--bare", "--initial-branch=master", str(repo)], env=_git_env(0))
        # The project fetches with --filter=blob:none.
        _run(["git", f"--git-dir={repo}", "config", "uploadpack.allowFilter", "true"], env=_git_env(0))
        parent = None
        for number, version in enumerate(_ordered(versions)):
            sdist = download_sdist(version, root / "sdists")
            with tempfile.TemporaryDirectory(dir=root) as scratch:
                tree = _extract_llama_cpp(sdist, Path(scratch))
                parent = _commit_tree(repo, tree, version, parent, 1_700_000_000 + number * 86_400)
            _run(["git", f"--git-dir={repo}", "tag", f"v{version}", parent], env=_git_env(0))
        assert parent is not None
        _run(["git", f"--git-dir={repo}", "update-ref", "refs/heads/master", parent], env=_git_env(0))
        _run(["git", f"--git-dir={repo}", "gc", "--quiet"], env=_git_env(0))
        done.write_text("\n".join(_ordered(versions)) + "\n")
    return repo


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("versions", nargs="*", default=list(DEFAULT_VERSIONS), help="llama-cpp-python versions")
    parser.add_argument("--cache", type=Path, help="cache directory (default: ~/.cache/llama-cpp-runtime)")
    options = parser.parse_args(argv)
    try:
        print(make_repository(options.versions, options.cache))
    except RealTreeError as error:
        print(f"error: real llama.cpp trees: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
