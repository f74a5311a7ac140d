"""Is a patch of ours already in upstream? Two proofs, never a guess: the same change as an upstream
commit (git patch-id), or the change already present in the tree (it reverse-applies and does not apply)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..git import Git
from .patchqueue import Patch
from .tracking import Commit


def upstream_patch_ids(git: Git, old: str, new: str, paths: Iterable[str]) -> dict[str, Commit]:
    """patch-id -> upstream commit, for the commits of old..new that touch any of `paths`."""
    paths = sorted(set(paths))
    if not paths:
        return {}
    log = git.run(
        "log",
        "--no-merges",
        "--no-color",
        "--no-ext-diff",
        "-p",
        "--full-index",
        "--binary",
        "--find-renames",
        "--diff-algorithm=myers",
        "--format=commit %H",
        f"{old}..{new}",
        "--",
        *paths,
    )  # the tracking repository's git: no global configuration (diff.algorithm, ...)
    if not log.stdout:
        return {}
    subjects = dict(
        line.split(" ", 1)
        for line in git.text("log", "--no-merges", "--format=%H %s", f"{old}..{new}", "--", *paths).splitlines()
    )
    found: dict[str, Commit] = {}
    for line in git.run("patch-id", "--stable", input=log.stdout).out.splitlines():
        patch_id, sha = line.split()
        found.setdefault(patch_id, Commit(sha, subjects.get(sha, "")))
    return found


def patch_id(git: Git, content: bytes) -> str | None:
    out = git.run("patch-id", "--stable", input=content).out.split()
    return out[0] if out else None


def already_upstream(git: Git, patch: Patch, upstream_ids: Mapping[str, Commit], patch_file: str) -> str | None:
    """Why `patch` is contained in the index (HEAD of a clean tracking repository), or None."""
    identity = patch_id(git, patch.content)
    if identity and identity in upstream_ids:
        commit = upstream_ids[identity]
        return f"same change as upstream {commit.short} {commit.subject!r} (patch-id)"
    reverses = git.succeeds("apply", "--check", "--cached", "--reverse", patch_file)
    if reverses and not git.succeeds("apply", "--check", "--cached", patch_file):
        return "its change is already in the upstream tree (reverse-applies, does not apply)"
    return None
