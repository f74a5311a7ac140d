"""`check`'s scratch checkout: pinned commit + patches, rebuilt from scratch, of the subset only.

It was a checkout of the whole upstream in a fresh temporary folder: ~160 MB of llama.cpp, of which
`check` compares a fraction, left behind by every `check` that was killed, and on a small $TMPDIR a
failure of thousands of lines that never said "no space". Now it holds what the include patterns match
and what the patches touch (committed as the base the patches go onto), in one folder per project
that the next `check` clears, and lack of room is one line naming the folder and the need.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..config import Config
from ..errors import NO_SPACE, NoSpace, no_space
from ..git import NETWORK_TIMEOUT, TOOL_IDENTITY, Git
from ..project_lock import exclusive
from .patchqueue import Patch, paths_on_both_sides
from .tracking import REMOTE, TREE_CONFIG, TrackingRepo
from .upstream_tree import tree_entries

# The base commit of the scratch is ours alone and never leaves it; a fixed identity keeps it reproducible.
_SCRATCH_IDENTITY = {
    **TOOL_IDENTITY,
    "GIT_AUTHOR_NAME": "buildsys",
    "GIT_AUTHOR_EMAIL": "buildsys@localhost",
    "GIT_AUTHOR_DATE": "1700000000 +0000",
    "GIT_COMMITTER_DATE": "1700000000 +0000",
}


def scratch_folder(root: Path) -> Path:
    """One name per project (its path, byte for byte), so that the next `check` finds and clears it."""
    digest = hashlib.sha256(os.fsencode(root)).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"buildsys-check-{digest}"


@contextmanager
def subset_checkout(config: Config, repo: TrackingRepo, series: list[Patch]) -> Iterator[Git]:
    """A checkout of the pinned commit's subset, committed, ready for `git am` of `series`."""
    folder = scratch_folder(config.root)
    with exclusive(folder.with_name(folder.name + ".lock"), f"this project's scratch checkout ({folder})"):
        _clear(folder, repo)
        try:
            with _named_lack_of_room(folder, config):
                yield _prepare(config, repo, series, folder)
        finally:
            _clear(folder, repo)


def _prepare(config: Config, repo: TrackingRepo, series: list[Patch], folder: Path) -> Git:
    pinned = config.upstream.commit
    folder.mkdir(parents=True)
    if repo.exists() and repo.git.resolve_commit(pinned) == pinned:
        repo.git.run("worktree", "add", "--quiet", "--no-checkout", "--detach", str(folder / "tree"), pinned)
        git = Git(folder / "tree", config=TREE_CONFIG)
        _check_out_subset(git, config, series, fetch_blobs=False)
        return git
    scratch = TrackingRepo(folder / "upstream")
    scratch.ensure_initialised()
    scratch.fetch_commit(config.upstream.url, pinned)
    _check_out_subset(scratch.git, config, series, fetch_blobs=True)
    return scratch.git


def _check_out_subset(git: Git, config: Config, series: list[Patch], *, fetch_blobs: bool) -> None:
    """Index and tree of what the include patterns match (excluded or not, as sync sees them) and what the
    patches touch, committed on the pin: `git am` refuses an index that differs from HEAD."""
    pinned = config.upstream.commit
    touched = {path for patch in series for path in paths_on_both_sides(patch.content)}
    wanted = [
        entry
        for entry in tree_entries(git, pinned)
        if entry.kind == "blob" and (config.sync.filter.included(entry.path) or entry.path in touched)
    ]
    if fetch_blobs and wanted and git.run("config", "--get", f"remote.{REMOTE}.promisor", check=False).out.strip():
        # a partial clone would fetch each blob on its own as the checkout asks for it: one batch instead
        oids = "".join(f"{entry.sha}\n" for entry in wanted).encode()
        fetch = ("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--filter=blob:none", REMOTE, "--stdin")
        git.run(*fetch, input=oids, timeout=NETWORK_TIMEOUT)
    if wanted:
        paths = "".join(f"{entry.path}\0" for entry in wanted).encode("utf-8", errors="surrogateescape")
        git.run("--literal-pathspecs", "checkout", pinned, "--pathspec-from-file=-", "--pathspec-file-nul", input=paths)
    tree = git.text("write-tree")
    message = ("commit-tree", tree, "-p", pinned, "-m", "buildsys check: the subset of the pin")
    base = git.run(*message, env=_SCRATCH_IDENTITY).out.strip()
    git.run("update-ref", "--no-deref", "HEAD", base)


def _clear(folder: Path, repo: TrackingRepo) -> None:
    """Remove a scratch folder (this check's, or one a killed check left) and its worktree registration."""
    if folder.is_dir() and not folder.is_symlink():
        shutil.rmtree(folder)
    elif folder.exists() or folder.is_symlink():
        folder.unlink()
    if repo.exists():
        repo.git.run("worktree", "prune", check=False)


@contextmanager
def _named_lack_of_room(folder: Path, config: Config) -> Iterator[None]:
    try:
        yield
    except NoSpace as error:
        raise _no_room(folder, config, error.message) from None
    except OSError as error:
        if error.errno not in NO_SPACE:
            raise
        raise _no_room(folder, config, f"{error.filename or 'a file'}: {error.strerror}") from None


def _no_room(folder: Path, config: Config, said: str) -> NoSpace:
    need = _subset_size(config.sync.destination)
    error = no_space(
        folder.parent,
        f"check's scratch checkout ({folder.name}) did not fit",
        need=f"it needs about {need}, the size of {config.relative(config.sync.destination)}" if need else "",
        hint="free some space there, or point TMPDIR at a folder with room (the scratch is removed when check ends)",
    )
    error.details = said
    return error


def _subset_size(destination: Path) -> str:
    total = sum(path.stat().st_size for path in destination.rglob("*") if path.is_file() and not path.is_symlink())
    return f"{total / 1e6:.1f} MB" if total >= 1e5 else f"{max(total, 1) / 1e3:.0f} KB" if total else ""
