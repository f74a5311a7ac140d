"""`tags`: upstream's release tags matching a pattern, newest first, read with `git ls-remote` (no clone:
the scheduled bump asks this before anything is fetched).

"Newest" is by the numbers in the name compared as numbers (b7000 after b999, v0.10.0 after v0.9.4);
with the same numbers, the name with less text wins (b7000 after b7000-rc). Tag dates say when a tag was
pushed, not what is newer. Pre-releases that carry a number of their own (v1.0rc1) would sort above
their release: the pattern should leave them out.
"""

from __future__ import annotations

import fnmatch
import re

from ..config import Config
from ..errors import UpstreamError, UsageError
from ..git import NETWORK_TIMEOUT, Git

_PART = re.compile(r"(\d+)")


def version_key(tag: str) -> tuple[tuple[int, ...], int, str]:
    parts = [part for part in _PART.split(tag) if part]
    numbers = tuple(int(part) for part in parts if part.isdigit())
    return numbers, -sum(1 for part in parts if not part.isdigit()), tag


def matching_tags(config: Config, pattern: str) -> list[str]:
    """The upstream tags matching the glob, newest first."""
    result = Git(config.root).run(
        "ls-remote", "--tags", "--refs", config.upstream.url, check=False, timeout=NETWORK_TIMEOUT
    )
    if result.returncode != 0:
        said = (result.err or result.out).strip().splitlines()
        raise UpstreamError(f"cannot list the tags of {config.upstream.url}", details="\n".join(said[-5:]))
    names = [line.split("\t", 1)[1].removeprefix("refs/tags/") for line in result.out.splitlines() if "\t" in line]
    chosen = [name for name in names if fnmatch.fnmatchcase(name, pattern)]
    if not chosen:
        raise UpstreamError(
            f"no tag of {config.upstream.url} matches {pattern!r} ({len(names)} tag(s) there)",
            hint="give another --pattern, or set [upstream] release-tags in vendoring.toml",
        )
    return sorted(chosen, key=version_key, reverse=True)


def tag_pattern(config: Config, given: str | None) -> str:
    pattern = given or config.upstream.release_tags
    if not pattern:
        raise UsageError(
            "no tag pattern", hint='pass --pattern, e.g. --pattern "b[0-9]*", or set [upstream] release-tags'
        )
    return pattern
