"""The one way this toolkit runs git: argument lists, a clean environment, a timeout, separated output.

GitPython was considered and not used: its `Git.execute` copies `os.environ` and can only add to it, so
inherited `GIT_DIR`/`GIT_WORK_TREE`/`GIT_INDEX_FILE` (set when running from a git hook or an IDE) would
silently redirect every call to another repository.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import GitError

FULL_SHA = re.compile(r"[0-9a-fA-F]{40}")

LOCAL_TIMEOUT = 600.0
NETWORK_TIMEOUT = 3600.0

# Variables that configure *how* git reaches a remote, not *which* repository it works on.
_KEPT_GIT_VARIABLES = frozenset(
    {"GIT_EXEC_PATH", "GIT_SSH", "GIT_SSH_COMMAND", "GIT_ASKPASS", "GIT_SSL_CAINFO", "GIT_SSL_NO_VERIFY"}
)

# Identity for the commits `git am` creates in the tracking repository. Those commits only carry
# patches; the author (who wrote the patch) is kept from the patch itself.
TOOL_IDENTITY = {
    "GIT_COMMITTER_NAME": "buildsys",
    "GIT_COMMITTER_EMAIL": "buildsys@localhost",
}


def clean_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {
        key: value
        for key, value in (os.environ if base is None else base).items()
        if not key.startswith("GIT_") or key in _KEPT_GIT_VARIABLES
    }
    env["LC_ALL"] = "C"
    env["LANGUAGE"] = "C"
    env["GIT_TERMINAL_PROMPT"] = "0"  # a missing or private URL must fail, not wait for a password
    env["GIT_PAGER"] = "cat"
    return env


@dataclass(frozen=True)
class GitResult:
    args: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def out(self) -> str:
        return self.stdout.decode("utf-8", errors="replace")

    @property
    def err(self) -> str:
        return self.stderr.decode("utf-8", errors="replace")


def format_command(args: Sequence[str]) -> str:
    return shlex.join(args)


class Git:
    """git bound to one working directory."""

    def __init__(self, cwd: Path, *, extra_env: Mapping[str, str] | None = None) -> None:
        self.cwd = cwd
        self._extra_env = dict(extra_env or {})

    def run(
        self,
        *args: str,
        check: bool = True,
        timeout: float = LOCAL_TIMEOUT,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
    ) -> GitResult:
        argv = ("git", *args)
        environment = clean_environment()
        environment.update(self._extra_env)
        if env:
            environment.update(env)
        try:
            completed = subprocess.run(  # noqa: S603 - the one git wrapper; argv is a list, never a shell
                argv,
                cwd=self.cwd,
                env=environment,
                input=input,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise GitError(
                f"`{format_command(argv)}` did not finish within {timeout:.0f} s",
                hint=f"in {self.cwd}",
            ) from None
        except FileNotFoundError:
            raise GitError("git is not installed or not on PATH", hint="install git >= 2.30") from None
        result = GitResult(argv, completed.returncode, completed.stdout, completed.stderr)
        if check and result.returncode != 0:
            raise GitError(
                f"`{format_command(argv)}` failed (exit {result.returncode})",
                details=(result.err or result.out).rstrip(),
            )
        return result

    def text(self, *args: str, timeout: float = LOCAL_TIMEOUT) -> str:
        return self.run(*args, timeout=timeout).out.strip()

    def succeeds(self, *args: str) -> bool:
        return self.run(*args, check=False).returncode == 0

    def git_dir(self) -> Path:
        return (self.cwd / self.text("rev-parse", "--git-dir")).resolve()

    def resolve_commit(self, revision: str) -> str | None:
        result = self.run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}", check=False)
        return result.out.strip() if result.returncode == 0 else None

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return self.succeeds("merge-base", "--is-ancestor", ancestor, descendant)

    def is_repository_root(self) -> bool:
        result = self.run("rev-parse", "--show-toplevel", check=False)
        return result.returncode == 0 and Path(result.out.strip()).resolve() == self.cwd.resolve()
