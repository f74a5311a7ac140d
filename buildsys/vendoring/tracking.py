"""The tracking repository: upstream at the pinned commit with our patches as commits on top."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from .. import ui
from ..errors import BuildsysError, GitError, NoSpace, UpstreamError, UsageError, WorkWouldBeLost
from ..fileops import write_atomically
from ..git import FULL_SHA, NETWORK_TIMEOUT, TOOL_IDENTITY, Git, GitResult, require_version, shielded
from .patchqueue import Patch, normalise_patch, patch_file_name

REMOTE = "upstream"
WORK_BRANCH = "patched"
BACKUP_REF = "refs/buildsys/previous-head"
TARGET_REF = "refs/buildsys/bump-target"
_SHORT_SHA = re.compile(r"[0-9a-fA-F]{7,39}")
_STATE_FILE = "buildsys-state.json"

# Every git command in the tracking repository runs without the global and system configuration
# (ISOLATED_CONFIG): a global core.autocrlf=true checked the pin out with CRLF, a global
# core.attributesFile did the same through `eol=crlf`, and `git am` then found every patched file changed
# and called the pristine pin a conflict. Only fetches read the user's configuration (proxies, insteadOf).

FORMAT_PATCH_OPTIONS = (
    "--no-numbered",
    "--no-signature",
    "--zero-commit",
    "--full-index",
    "--binary",
    "--find-renames",
    "--diff-algorithm=myers",
    "--src-prefix=a/",
    "--dst-prefix=b/",
    "--no-relative",
    "--no-color",
    "--no-to",
    "--no-cc",
    "--no-add-header",
    "--no-base",
    "--no-thread",
    "--no-cover-letter",
    "--no-attach",
    "--no-notes",
    "--no-signoff",
    "--no-from",
    "--encode-email-headers",
    "--stat=80,60",
    "--stat-graph-width=20",
)
AM_OPTIONS = ("--3way", "--keep-non-patch", "--keep-cr", "--committer-date-is-author-date", "--no-gpg-sign")


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str

    @property
    def short(self) -> str:
        return self.sha[:12]


@dataclass(frozen=True)
class ExportedCommit:
    commit: Commit
    patch: Patch


@dataclass
class TrackingState:
    """What buildsys remembers about the tracking repository, kept inside its .git directory."""

    base: str | None = None
    exported: set[str] = field(default_factory=set)
    apply_stopped: bool = False  # the last apply-patches stopped at a conflict
    bump: BumpProgress | None = None  # a bump that has not finished (stopped at a conflict, or interrupted)
    # The command whose `git am` is running, set until it returns: found set by a later command, it means
    # that am was interrupted (buildsys killed), not that it stopped at a conflict for the maintainer.
    am_by: str | None = None


@dataclass(frozen=True)
class PatchOutcome:
    patch: str  # its name in patches/ when the bump started
    outcome: str  # "clean", "3-way merge", "resolved by hand", "already upstream", "dropped by hand"
    detail: str = ""
    commit: str | None = None  # the commit it became on the new base, if any

    @property
    def carried(self) -> bool:
        return self.commit is not None


# A bump's phases, in order. "checkout": from before the checkout of the target until it completed (a bump
# killed then left a half-written tree of ours: the tree was clean when it started). "carry": the patches
# cross one at a time. "export": patches/ and vendoring.toml are being rewritten. "sync": the destination is.
BUMP_PHASES = ("checkout", "carry", "export", "sync")


@dataclass
class BumpProgress:
    """A bump under way: where from and to, which patches/ it started from, and each patch's fate so far."""

    previous: str
    target: str
    ref: str | None
    series_sha256: str
    position: int = 0  # the next patch to take (the conflicted one while stopped)
    outcomes: list[PatchOutcome] = field(default_factory=list)
    phase: str = "carry"
    # [upstream] ref before the bump is not kept here: --abort reads it from the kept vendoring.toml

    @property
    def rewrote_files(self) -> bool:
        """patches/, vendoring.toml (and in "sync" the destination) may hold the bump's bytes by now."""
        return BUMP_PHASES.index(self.phase) >= BUMP_PHASES.index("export")

    def where(self) -> str:
        """Where the bump stands, as words after "interrupted" or "under way"."""
        return {
            "checkout": f"while checking out {self.target[:12]}",
            "carry": f"at patch {self.position + 1}",
            "export": "while rewriting patches/ and vendoring.toml",
            "sync": "while syncing the destination",
        }[self.phase]

    def to_json(self) -> dict[str, object]:
        return {
            "previous": self.previous,
            "target": self.target,
            "ref": self.ref,
            "series_sha256": self.series_sha256,
            "position": self.position,
            "outcomes": [vars(outcome) for outcome in self.outcomes],
            "phase": self.phase,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BumpProgress:
        legacy = "carry" if data.get("checked_out", True) else "checkout"  # records of before the phases
        return cls(
            previous=str(data["previous"]),
            target=str(data["target"]),
            ref=data.get("ref"),
            series_sha256=str(data["series_sha256"]),
            position=int(data["position"]),
            outcomes=[PatchOutcome(**item) for item in data.get("outcomes", [])],
            phase=str(data.get("phase", legacy)),
        )


def parse_state(data: object) -> TrackingState:
    """The state file's JSON, checked field by field (ValueError/TypeError/KeyError name what is wrong)."""
    if not isinstance(data, dict):
        raise TypeError("not a JSON object")
    base = data.get("base")
    exported = data.get("exported", [])
    if base is not None and not (isinstance(base, str) and FULL_SHA.fullmatch(base)):
        raise ValueError(f"'base' is {base!r}, not a commit")
    if not (isinstance(exported, list) and all(isinstance(c, str) for c in exported)):
        raise ValueError(f"'exported' is {exported!r}, not a list of commits")
    bump = data.get("bump")
    if bump is not None and not isinstance(bump, dict):
        raise ValueError(f"'bump' is {bump!r}, not an object")
    am_by = data.get("am_by")
    if am_by is not None and not isinstance(am_by, str):
        raise ValueError(f"'am_by' is {am_by!r}, not a command name")
    return TrackingState(
        base=base,
        exported=set(exported),
        apply_stopped=bool(data.get("apply_stopped", False)),
        bump=_parse_bump(bump) if bump is not None else None,
        am_by=am_by,
    )


def _parse_bump(data: dict[str, Any]) -> BumpProgress:
    for key in ("previous", "target", "series_sha256"):
        if not isinstance(data.get(key), str):
            raise ValueError(f"'bump.{key}' is {data.get(key)!r}, not a string")
    if not isinstance(data.get("position", 0), int) or data.get("position", 0) < 0:
        raise ValueError(f"'bump.position' is {data.get('position')!r}, not a count")
    outcomes = data.get("outcomes", [])
    if not (isinstance(outcomes, list) and all(isinstance(o, dict) for o in outcomes)):
        raise ValueError("'bump.outcomes' is not a list of objects")
    if data.get("phase", "carry") not in BUMP_PHASES:
        raise ValueError(f"'bump.phase' is {data.get('phase')!r}, not one of {', '.join(BUMP_PHASES)}")
    return BumpProgress.from_json(data)


@dataclass(frozen=True)
class Survey:
    """The tracking repository relative to its base and to patches/."""

    state: TrackingState
    base: str
    on_base: bool  # HEAD descends from base, so base..HEAD is the patch queue
    exported: list[ExportedCommit]  # base..HEAD as it would be exported
    unexported: list[Commit]  # of those, the ones that exist nowhere else
    dirty: list[str]


@dataclass(frozen=True)
class AmProgress:
    current: int
    total: int


class TrackingRepo:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.git = Git(path, isolated=True)
        self._exists: bool | None = None  # asked once per command: every check and report starts with it
        self._head: tuple[str | None] | None = None  # HEAD's commit until a method of ours moves it
        self._remote: str | None = None  # the URL set_remote made sure of
        self._present: set[str] = set()  # full commit ids found here: an object, once stored, stays

    # -- existence -----------------------------------------------------------------------------

    def exists(self) -> bool:
        if self._exists is None:
            self._exists = self.path.is_dir() and (self.path / ".git").exists() and self.git.is_repository_root()
        return self._exists

    def damage(self) -> str | None:
        """Why git cannot use a repository that is evidently there (.git present), or None. A damaged
        one must not look "not set up": that advice ends in a refusal, or in a reset over its edits."""
        if not (self.path / ".git").exists():
            return None
        if not self.exists():
            said = self.git.run("rev-parse", "--git-dir", check=False).err.strip().splitlines()
            return f"git does not recognise it as a repository ({said[-1] if said else 'no reason given'})"
        if self.head() is not None:
            return None
        # git itself refuses to name the branch of a broken HEAD ("No such ref"): read the file
        head = (self.git_dir / "HEAD").read_text(encoding="utf-8", errors="replace").strip()
        branch = head.removeprefix("ref: ").strip() if head.startswith("ref: ") else ""
        if branch and (self.git_dir / branch).is_file():
            return f"{branch} does not name a commit (the file holds something else)"
        return None

    def ensure_initialised(self) -> None:
        if self.exists():
            return
        if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            raise UsageError(
                f"{self.path} exists and is not a git repository",
                hint="move it away or point [tracking] path somewhere else; buildsys never deletes it",
            )
        self.path.mkdir(parents=True, exist_ok=True)
        self.git.run("init", "--quiet")
        self._exists = None
        self._moved()

    # -- state ---------------------------------------------------------------------------------

    @cached_property
    def git_dir(self) -> Path:
        return self.git.git_dir()

    def _state_path(self) -> Path:
        return self.git_dir / _STATE_FILE

    def load_state(self) -> TrackingState:
        path = self._state_path()
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return TrackingState()
        try:
            return parse_state(json.loads(text))
        except (ValueError, TypeError, KeyError) as error:
            reason = error.args[0] if error.args else type(error).__name__
            raise WorkWouldBeLost(
                f"{path} is damaged ({reason}): buildsys' record of which commits are exported and of a bump "
                "under way cannot be read",
                hint=f"restore it, or move it away if no bump is under way (`mv {path} {path}.damaged`): "
                "apply-patches will then list the commits it cannot account for instead of trusting them",
            ) from None

    def save_state(self, state: TrackingState) -> None:
        payload: dict[str, object] = {
            "base": state.base,
            "exported": sorted(state.exported),
            "apply_stopped": state.apply_stopped,
        }
        if state.bump is not None:
            payload["bump"] = state.bump.to_json()
        if state.am_by is not None:
            payload["am_by"] = state.am_by
        # in one rename: a kill half-way through the record of a bump must not leave it unreadable
        write_atomically(self._state_path(), (json.dumps(payload, indent=1) + "\n").encode())

    # -- fetching ------------------------------------------------------------------------------

    def set_remote(self, url: str) -> None:
        if self._remote == url:  # set (or found) already by this command
            return
        self._remote = url
        current = self.git.run("remote", "get-url", REMOTE, check=False)
        if current.returncode != 0:
            self.git.run("remote", "add", REMOTE, url)
        elif current.exact != url:  # byte for byte: a local path need not be UTF-8
            ui.info(f"  upstream URL changed: {current.exact} -> {url}")
            self.git.run("remote", "set-url", REMOTE, url)

    def fetch_commit(self, url: str, commit: str, *, named_by: str = "[upstream] commit in vendoring.toml") -> None:
        """Make `commit` present, fetching it from `url` unless it already is; verify what arrived."""
        self.set_remote(url)
        if self.has_commit(commit):
            return
        fetched = self._fetch(commit)
        _raise_if_unreachable(fetched, url)
        if fetched.returncode != 0:
            self._fetch_every_branch()  # some servers refuse to serve a commit by id
        if not self.has_commit(commit):
            self._refuse_other_object(commit, url, named_by)
            raise UpstreamError(
                f"commit {commit} is not in {url}",
                details=fetched.err.strip(),
                hint=f"check {named_by} (a full 40-hex SHA of a commit of that repository)",
            )

    def resolve_target(self, url: str, target: str) -> tuple[str, str | None]:
        """A commit, branch or tag of upstream as (full commit, the name if one was given), fetched."""
        if FULL_SHA.fullmatch(target):
            self.fetch_commit(url, target.lower(), named_by="the bump's target")
            return target.lower(), None
        self.set_remote(url)
        fetched = self._fetch(f"+{target}:{TARGET_REF}")
        if fetched.returncode == 0:
            commit = self.git.resolve_commit(TARGET_REF)
            if commit:
                return commit, target
        if "couldn't find remote ref" not in fetched.err:
            _raise_if_unreachable(fetched, url)
        if _SHORT_SHA.fullmatch(target):
            self._fetch_every_branch()  # servers do not resolve abbreviated commits; git does, here
            commit = self.git.resolve_commit(target)
            if commit:
                return commit, None
            self._refuse_other_object(target, url, "the bump's target")
        raise UpstreamError(
            f"{target!r} is neither a branch, a tag nor a commit of {url}",
            details=fetched.err.strip(),
            hint="give a full commit SHA, a tag (e.g. b6000) or a branch name",
        )

    def _refuse_other_object(self, name: str, url: str, named_by: str) -> None:
        """A tree or blob id is easily copied for a commit's (`git ls-tree`, a web page's "tree" link): name
        it for what it is instead of calling it absent."""
        kind = self.git.run("cat-file", "-t", "--end-of-options", name, check=False).out.strip()
        if kind in {"tree", "blob"}:
            raise UpstreamError(
                f"{name} is a {kind} of {url}, not a commit",
                hint=f"{named_by} must name a commit: `git log --format=%H` lists them "
                f"(a {kind} id names {'a snapshot of folders' if kind == 'tree' else 'the content of a file'}, "
                "not a point in the history)",
            )

    def _fetch(self, *refspecs: str, tags: bool = False) -> GitResult:
        # Partial clone: llama.cpp's full history is large and only the trees we check out are needed;
        # servers without filter support ignore the option and send everything.
        return self.git.run(
            "fetch",
            "--quiet",
            "--tags" if tags else "--no-tags",
            "--filter=blob:none",
            REMOTE,
            *refspecs,
            check=False,
            timeout=NETWORK_TIMEOUT,
            user_config=True,
        )

    def _fetch_every_branch(self) -> None:
        self._fetch(f"+refs/heads/*:refs/remotes/{REMOTE}/*", tags=True)

    # -- inspection ----------------------------------------------------------------------------

    def has_commit(self, sha: str) -> bool:
        """Whether the full commit id `sha` is stored here (asked of git once per command)."""
        if sha not in self._present and self.git.resolve_commit(sha) == sha.lower():
            self._present.add(sha)
        return sha in self._present

    def head(self) -> str | None:
        """HEAD's commit, asked of git once until this object moves it (checkout, am, reset)."""
        if self._head is None:
            self._head = (self.git.resolve_commit("HEAD"),)
        return self._head[0]

    def _moved(self) -> None:
        self._head = None

    def reset_keep(self, commit: str) -> None:
        """HEAD back to `commit`, keeping what is uncommitted (`git reset --keep`)."""
        self._moved()
        self.git.run("reset", "--quiet", "--keep", commit)

    def branch(self) -> str | None:
        result = self.git.run("symbolic-ref", "--quiet", "--short", "HEAD", check=False)
        return result.out.strip() or None

    def dirty_files(self) -> list[str]:
        out = self.git.run("status", "--porcelain=v1", "-z", "--untracked-files=all").out
        return [entry[3:] for entry in out.split("\0") if len(entry) > 3]

    def am_progress(self) -> AmProgress | None:
        apply_dir = self.git_dir / "rebase-apply"
        if not (apply_dir / "applying").exists() and not (apply_dir / "next").exists():
            return None
        try:
            return AmProgress(int((apply_dir / "next").read_text()), int((apply_dir / "last").read_text()))
        except (OSError, ValueError):
            return AmProgress(0, 0)

    def am(self, patch_files: list[Path], *, by: str) -> AmOutcome:
        """`git am` recorded while it runs (`am_by`, cleared by the caller's next save_state, with what came
        of it). Interrupted (Ctrl-C, SIGTERM), its session is aborted before the interruption goes on: the
        next command would otherwise find it and call it a conflict."""
        require_version(self.git)
        state = self.load_state()
        state.am_by = by
        self.save_state(state)
        self._moved()
        try:
            outcome = apply_with_am(self.git, patch_files)
        except KeyboardInterrupt:
            with shielded():
                self.abort_am()
            raise
        except NoSpace:  # no conflict for anyone to resolve: take back what it half did, if there is room to
            with contextlib.suppress(BuildsysError, OSError):
                self.abort_am()
            raise
        return outcome  # am_by stays until the caller saves what came of it (one write, not two)

    def abort_am(self) -> None:
        """Abort the session of a `git am` of buildsys' own that was cut short, and forget that it ran."""
        (self.git_dir / "index.lock").unlink(missing_ok=True)  # the killed am's; we hold the project lock
        self._moved()
        if self.am_progress() is not None:  # an identity: the abort writes the reflog, and may have none here
            self.git.run("am", "--abort", check=False, env=TOOL_IDENTITY)
        state = self.load_state()
        state.am_by = None
        self.save_state(state)

    def conflicted_files(self) -> list[str]:
        out = self.git.run("diff", "--name-only", "--diff-filter=U", "-z").out
        return [p for p in out.split("\0") if p]

    def commits_since(self, base: str) -> list[Commit]:
        out = self.git.run("log", "--reverse", "--format=%H%x00%P%x00%s", f"{base}..HEAD").out
        commits = []
        for line in out.splitlines():
            sha, parents, subject = line.split("\0", 2)
            if " " in parents:
                raise UsageError(
                    f"the tracking repository has a merge commit after {base[:12]} ({sha[:12]})",
                    hint="a patch queue is linear: rebase it (git rebase) before exporting",
                )
            commits.append(Commit(sha, subject))
        return commits

    def export(self, base: str) -> list[ExportedCommit]:
        """base..HEAD as normalised patches, named NNNN-subject.patch."""
        commits = self.commits_since(base)
        if not commits:
            return []
        require_version(self.git)
        with tempfile.TemporaryDirectory(prefix="buildsys-export-") as out:
            self.git.run("format-patch", *FORMAT_PATCH_OPTIONS, "-o", out, f"{base}..HEAD")
            files = sorted(Path(out).iterdir())
            if len(files) != len(commits):
                raise GitError(f"format-patch wrote {len(files)} patches for {len(commits)} commits")
            return [
                ExportedCommit(
                    commit, Patch(patch_file_name(index, commit.subject), normalise_patch(file.read_bytes()))
                )
                for index, (commit, file) in enumerate(zip(commits, files, strict=True), start=1)
            ]

    def survey(self, pinned: str, series: list[Patch]) -> Survey:
        """One look at the repository that every command's safety check and report reads from."""
        state = self.load_state()
        base = state.base or pinned
        on_base = self.has_commit(base) and self.git.is_ancestor(base, "HEAD")
        exported = self.export(base) if on_base else []
        saved = {patch.content for patch in series}
        unexported = [
            item.commit
            for item in exported
            if item.commit.sha not in state.exported and item.patch.content not in saved
        ]
        return Survey(state, base, on_base, exported, unexported, self.dirty_files())

    # -- changing ------------------------------------------------------------------------------

    def force_checkout(self, commit: str) -> None:
        """Put `commit` on the patch branch over a tree that only buildsys wrote to (an interrupted
        checkout): its stale index lock, half-written files and leftovers go."""
        (self.git_dir / "index.lock").unlink(missing_ok=True)
        self._moved()
        self.git.run("checkout", "--quiet", "--force", "-B", WORK_BRANCH, commit)
        self.git.run("clean", "--quiet", "--force", "-d")

    def checkout_base(self, commit: str) -> None:
        head = self.head()
        if head:
            self.git.run("update-ref", "-m", "buildsys: before apply-patches", BACKUP_REF, head)
        self._moved()
        self.git.run("checkout", "--quiet", "-B", WORK_BRANCH, commit)

    def store_queue_blobs(self, base: str, patch_files: list[Path]) -> int:
        """Apply the queue to `base` in a throwaway index, so that every blob the patches name exists here.

        `git am --3way` rebuilds a patch's preimage from the blob ids on its `index` lines; in a fresh or
        partial clone the intermediate versions (base + earlier patches) were never stored, and a patch that
        merges cleanly would conflict. Returns how many patches applied on `base` (they all should).
        """
        return self.queue_tree(base, patch_files).applied

    def queue_tree(self, base: str, patch_files: list[Path], *, three_way: bool = False) -> QueueTree:
        """The queue applied to `base` in a throwaway index, never a checkout: `git apply --cached` per
        patch, then `write-tree`. With `three_way`, a patch whose context moved merges as `git am --3way`
        takes it, so the tree is the one apply-patches commits. The index lives in the git folder (one per
        process; what a killed process left is cleared by the next), not in $TMPDIR."""
        require_version(self.git)
        _clear_dead_indexes(self.git_dir)
        prefix = f"{_INDEX_PREFIX}{os.getpid()}-"
        with tempfile.TemporaryDirectory(prefix=prefix, dir=self.git_dir) as scratch:
            index = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            self.git.run("read-tree", base, env=index)
            for count, patch_file in enumerate(patch_files):
                applied = self.git.run(
                    "apply",
                    "--cached",
                    *(["--3way"] if three_way else []),
                    "--whitespace=nowarn",
                    str(patch_file),
                    check=False,
                    env=index,
                )
                if applied.returncode != 0:
                    return QueueTree(count, None)
            return QueueTree(len(patch_files), self.git.run("write-tree", env=index).out.strip())


@dataclass(frozen=True)
class QueueTree:
    applied: int  # how many patches applied, in order
    tree: str | None  # the tree of base + all of them, or None when one did not apply


_INDEX_PREFIX = "buildsys-index-"


def _clear_dead_indexes(git_dir: Path) -> None:
    for folder in git_dir.glob(f"{_INDEX_PREFIX}*-*"):
        pid = folder.name.removeprefix(_INDEX_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # someone else's process: alive
        return True
    return True


@dataclass(frozen=True)
class AmOutcome:
    """How `git am` took each patch it applied ("clean" or "3-way merge"), and whether one stopped it."""

    applied: tuple[str, ...]
    stopped: bool
    said: str = ""  # git's own error lines when it stopped ("patch does not apply", "corrupt patch at line 9")


def apply_with_am(git: Git, patch_files: list[Path]) -> AmOutcome:
    """`git am` the files in order; on a stop the repository is left mid-am for the maintainer."""
    if not patch_files:
        return AmOutcome((), stopped=False)
    result = git.run(
        "am",
        *AM_OPTIONS,
        "--",
        *map(str, patch_files),
        check=False,
        env=TOOL_IDENTITY,  # git is the tracking repository's: no global configuration (am.threeWay, ...)
    )
    how: list[str] = []
    for line in result.out.splitlines():
        if line.startswith("Applying: "):
            how.append("clean")
        elif line.startswith("Falling back to patching base and 3-way merge") and how:
            how[-1] = "3-way merge"
    stopped = result.returncode != 0
    said = "\n".join(line for line in result.err.splitlines() if line.startswith(("error:", "fatal:", "warning:")))
    return AmOutcome(tuple(how[:-1] if stopped and how else how), stopped=stopped, said=said)


def _raise_if_unreachable(fetched: GitResult, url: str) -> None:
    if fetched.returncode != 0 and _is_unreachable_url(fetched.err):
        raise UpstreamError(
            f"cannot fetch {url}", details=fetched.err.strip(), hint="check the URL or BUILDSYS_UPSTREAM_URL"
        )


def _is_unreachable_url(stderr: str) -> bool:
    markers = (
        "does not appear to be a git repository",
        "Could not resolve host",
        "Repository not found",
        "unable to access",
        "Could not read from remote repository",
        "not found",
    )
    return any(marker in stderr for marker in markers) and "not our ref" not in stderr
