"""The one way this toolkit runs git: argument lists, a clean environment, a timeout, separated output.

GitPython was considered and not used: its `Git.execute` copies `os.environ` and can only add to it, so
inherited `GIT_DIR`/`GIT_WORK_TREE`/`GIT_INDEX_FILE` (set when running from a git hook or an IDE) would
silently redirect every call to another repository.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import FileSystemError, GitError, no_space
from .ui import bounded

FULL_SHA = re.compile(r"[0-9a-fA-F]{40}")

LOCAL_TIMEOUT = 600.0
NETWORK_TIMEOUT = 3600.0
# GIT_CONFIG_GLOBAL (git 2.32) is what keeps a maintainer's ~/.gitconfig out of exports and `git am`;
# an older git ignores it silently, and the patch files would differ from machine to machine.
MINIMUM_VERSION = "2.32"
# How much of a failed command's output an error carries: a checkout on a full disk says 3,000 lines.
SHOWN_LINES = 20
# What git prints when the file system refuses a write for lack of room.
_NO_SPACE_WORDS = ("No space left on device", "Disk quota exceeded", "File too large", "Out of diskspace")
# What it prints for a write that failed without saying why (checkout: "unable to write file X"), and how
# little room must be left for that to count as a full disk.
_WRITE_FAILED_WORDS = ("unable to write", "unable to create", "short write", "write error")
_ROOM_LEFT = 1 << 20

# Variables that configure *how* git reaches a remote, not *which* repository it works on.
_KEPT_GIT_VARIABLES = frozenset(
    {"GIT_EXEC_PATH", "GIT_SSH", "GIT_SSH_COMMAND", "GIT_ASKPASS", "GIT_SSL_CAINFO", "GIT_SSL_NO_VERIFY"}
)

# No global or system configuration (GIT_CONFIG_GLOBAL: git 2.32): what a repository whose bytes must be
# upstream's, and whose exports must not differ from machine to machine, runs with. core.autocrlf,
# core.attributesFile (`*.c text eol=crlf`), core.hooksPath, diff.algorithm, format.signature, am.threeWay
# and whatever else ~/.gitconfig holds reach none of its commands; only those that talk to a remote opt
# back in (proxies, url.insteadOf, credential helpers).
ISOLATED_CONFIG = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}

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

    @property
    def exact(self) -> str:
        """The output, stripped, byte for byte as the file system would take it (a path that is not UTF-8
        stays itself instead of becoming U+FFFD)."""
        return os.fsdecode(self.stdout.strip())

    @property
    def path(self) -> Path:
        return Path(self.exact)

    def no_space(self, where: Path) -> str | None:
        """git's words when it ran out of room to write (or was killed for a file too large), else None.
        Some of its messages name no cause ("unable to write file X"): then a full file system is one."""
        if self.returncode == 0:
            return None
        if self.returncode == -getattr(signal, "SIGXFSZ", 0):
            return "File too large"
        said = next((words for words in _NO_SPACE_WORDS if words in self.err), None)
        if said is None and any(words in self.err for words in _WRITE_FAILED_WORDS) and _nearly_full(where):
            said = f"{_first_line_with(self.err, _WRITE_FAILED_WORDS)}; the file system has no room left"
        return said


def _first_line_with(text: str, words: tuple[str, ...]) -> str:
    return next(line.strip() for line in text.splitlines() if any(word in line for word in words))


def _nearly_full(where: Path) -> bool:
    for folder in (where, *where.parents):
        try:
            return shutil.disk_usage(folder).free < _ROOM_LEFT
        except OSError:
            continue
    return False


@contextmanager
def shielded() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait while the clean-up after an interruption runs (a second Ctrl-C would
    otherwise cut the `git am --abort` that puts the repository back)."""
    try:
        previous = {number: signal.signal(number, signal.SIG_IGN) for number in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: signals are not ours to hold
        yield
        return
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


_checked_version: list[str] = []  # once per process


def require_version(git: Git) -> None:
    """Refuse a git older than MINIMUM_VERSION before anything is exported or applied: it would ignore
    GIT_CONFIG_GLOBAL without a word, and the maintainer's configuration would shape the patches."""
    if _checked_version:
        return
    said = git.run("version", check=False).out.strip()
    found = re.search(r"(\d+)\.(\d+)", said)
    least = tuple(int(part) for part in MINIMUM_VERSION.split("."))
    if found and (int(found[1]), int(found[2])) < least:
        raise GitError(
            f"{said} is older than {MINIMUM_VERSION}, the oldest that keeps ~/.gitconfig out of the tracking "
            "repository (GIT_CONFIG_GLOBAL)",
            hint=f"install git >= {MINIMUM_VERSION}",
        )
    _checked_version.append(said)


def format_command(args: Sequence[str]) -> str:
    return shlex.join(args)


def bounded_text(text: str, limit: int = SHOWN_LINES) -> str:
    """The first `limit` lines of a tool's output, and how many more there were."""
    return "\n".join(bounded(text.rstrip().splitlines(), limit, unit=" line(s)"))


class Git:
    """git bound to one working directory; `config` is given as `-c` options to every command. `isolated`:
    no global or system configuration, except for the calls that pass `user_config=True` (fetch, ls-remote)."""

    def __init__(
        self,
        cwd: Path,
        *,
        extra_env: Mapping[str, str] | None = None,
        config: Mapping[str, str] | None = None,
        isolated: bool = False,
    ) -> None:
        self.cwd = cwd
        self._extra_env = dict(extra_env or {})
        self.config = dict(config or {})
        self.isolated = isolated

    def run(
        self,
        *args: str,
        check: bool = True,
        timeout: float = LOCAL_TIMEOUT,
        input: bytes | None = None,
        env: Mapping[str, str] | None = None,
        user_config: bool = False,
    ) -> GitResult:
        options = [option for key, value in self.config.items() for option in ("-c", f"{key}={value}")]
        argv = ("git", *options, *args)
        shown = format_command(("git", *args))  # the options are ours, the same on every call: not news
        environment = clean_environment()
        if self.isolated and not user_config:
            environment.update(ISOLATED_CONFIG)
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
                f"`{shown}` did not finish within {timeout:.0f} s",
                hint=f"in {self.cwd}",
            ) from None
        except FileNotFoundError as error:
            if error.filename is not None and Path(error.filename) == self.cwd:  # the folder, not git, is missing
                raise FileSystemError(f"{self.cwd}: no such folder", hint="check the path, then run again") from None
            raise GitError("git is not installed or not on PATH", hint=f"install git >= {MINIMUM_VERSION}") from None
        result = GitResult(argv, completed.returncode, completed.stdout, completed.stderr)
        said = result.no_space(self.cwd)
        if said:  # whatever the caller would make of the failure ("does not apply", "not found"), it is not that
            command = next((arg for arg in args if not arg.startswith("-")), "")
            refused = no_space(self.cwd, f"`git {command}` could not write ({said})")
            refused.details = bounded_text(result.err, 3)  # git's own line names the file, wherever it was
            raise refused
        if check and result.returncode != 0:
            raise GitError(
                f"`{shown}` failed (exit {result.returncode})",
                details=bounded_text(result.err or result.out),
            )
        return result

    def text(self, *args: str, timeout: float = LOCAL_TIMEOUT) -> str:
        return self.run(*args, timeout=timeout).out.strip()

    def succeeds(self, *args: str) -> bool:
        return self.run(*args, check=False).returncode == 0

    def git_dir(self) -> Path:
        return (self.cwd / self.run("rev-parse", "--git-dir").path).resolve()

    def resolve_commit(self, revision: str) -> str | None:
        result = self.run("rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}", check=False)
        return result.out.strip() if result.returncode == 0 else None

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return self.succeeds("merge-base", "--is-ancestor", ancestor, descendant)

    def is_repository_root(self) -> bool:
        result = self.run("rev-parse", "--show-toplevel", check=False)
        return result.returncode == 0 and result.path.resolve() == self.cwd.resolve()
