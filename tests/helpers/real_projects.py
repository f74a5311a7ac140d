"""Projects of this repository's configuration on real llama.cpp trees (see real_llama_cpp.py), run
offline: the upstream is a local repository and any download goes nowhere."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from helpers.real_llama_cpp import cache_root
from helpers.support import REPO_ROOT, GitRepo, Project

# The real builds' objects, outside any clone: a second CI run reuses them.
CCACHE_DIR = cache_root() / "ccache"


def no_network() -> tuple[str, ...]:
    """`unshare -n` where it works (root on Linux): the CLI then runs with no network device at all."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return ()
    works = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False).returncode == 0
    return ("unshare", "-n") if works else ()


def offline(env: dict[str, str]) -> dict[str, str]:
    """Any download CMake or git might try goes to a closed port (the upstream is a local path); with
    no_network() there is not even a route."""
    dead = "http://127.0.0.1:9"
    return {
        **env,
        "http_proxy": dead,
        "https_proxy": dead,
        "HTTP_PROXY": dead,
        "HTTPS_PROXY": dead,
        "ALL_PROXY": dead,
        "no_proxy": "",
        "NO_PROXY": "",
    }


def project_at(
    root: Path, repo: Path, version: str, env: dict[str, str], *, include: str | None = None, existing: bool = False
) -> Project:
    """A project with this repository's vendoring.toml and patches/, pinned at a real tree's commit
    (`existing`: the one made earlier at `root`, as it is)."""
    upstream = GitRepo(repo, env)
    commit = tagged_commit(upstream, version)
    project_env = offline({**env, "BUILDSYS_UPSTREAM_URL": str(repo), "CCACHE_DIR": str(CCACHE_DIR)})
    if existing:
        return Project(root, upstream, [commit], project_env, launcher=no_network())
    root.mkdir()
    config = (REPO_ROOT / "vendoring.toml").read_text()
    config = re.sub(r'(?m)^commit = "[0-9a-f]{40}"', f'commit = "{commit}"', config)
    if include is not None:
        config = re.sub(r"(?ms)^include = \[.*?\n\]", f"include = {include}", config)
    (root / "vendoring.toml").write_text(config)
    shutil.copytree(REPO_ROOT / "patches", root / "patches")
    return Project(root, upstream, [commit], project_env, launcher=no_network())


def tagged_commit(upstream: GitRepo, version: str) -> str:
    return upstream.out("rev-parse", f"v{version}^{{commit}}")
