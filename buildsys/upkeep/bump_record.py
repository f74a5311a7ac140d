"""What a bump keeps so that an interrupted one can be aborted: patches/ and vendoring.toml as they were.

They are copied into the tracking repository's .git directory before the bump changes anything. Once the
bump has started rewriting them, `bump --abort` puts them back, and both `--abort` and `--continue` first
refuse a file that holds neither the original bytes nor the bump's own (an edit made after the
interruption is the maintainer's work).
"""

from __future__ import annotations

import shutil
import tomllib
from dataclasses import dataclass

from ..config import Config
from ..errors import ConfigError, WorkWouldBeLost
from ..fileops import write_atomically
from ..vendoring.patchqueue import Patch, read_series
from ..vendoring.tracking import BumpProgress, TrackingRepo
from .pin_file import rewrite_pin

FOLDER = "buildsys-bump-originals"
_COMPLETE = ".complete"  # written last: a copy interrupted half-way is no record


@dataclass(frozen=True)
class Originals:
    patches: dict[str, bytes]
    config: bytes

    @property
    def ref(self) -> str | None:
        """[upstream] ref as it was (the bump record does not repeat it)."""
        try:
            upstream = tomllib.loads(self.config.decode("utf-8")).get("upstream", {})
        except (UnicodeDecodeError, tomllib.TOMLDecodeError):  # it was loaded when the bump began
            return None
        ref = upstream.get("ref") if isinstance(upstream, dict) else None
        return ref if isinstance(ref, str) else None


def keep(repo: TrackingRepo, config: Config, series: list[Patch]) -> None:
    folder = repo.git_dir / FOLDER
    shutil.rmtree(folder, ignore_errors=True)
    for patch in series:
        write_atomically(folder / "patches" / patch.name, patch.content)
    write_atomically(folder / "vendoring.toml", config.source.read_bytes())
    write_atomically(folder / _COMPLETE, b"")


def drop(repo: TrackingRepo) -> None:
    shutil.rmtree(repo.git_dir / FOLDER, ignore_errors=True)


def read(repo: TrackingRepo, config: Config) -> Originals:
    folder = repo.git_dir / FOLDER
    if not (folder / _COMPLETE).is_file():
        raise WorkWouldBeLost(
            f"the bump's copy of patches/ and vendoring.toml before it started is missing ({folder})",
            hint="restore patches/ and vendoring.toml from version control by hand, then "
            f"`git -C {config.relative(config.tracking)} am --abort` if needed and `nox -s apply-patches`",
        )
    kept = {patch.name: patch.content for patch in read_series(folder / "patches")}
    return Originals(kept, (folder / "vendoring.toml").read_bytes())


def refuse_foreign(config: Config, originals: Originals, planned: dict[str, bytes], progress: BumpProgress) -> None:
    """Refuse when patches/ or vendoring.toml hold bytes that are neither the originals nor the bump's."""
    foreign = [
        f"{config.relative(config.patches)}/{patch.name}"
        for patch in read_series(config.patches)
        if patch.content not in (originals.patches.get(patch.name), planned.get(patch.name))
    ]
    current = config.source.read_bytes()
    if current not in (originals.config, _planned_config(originals, progress)):
        foreign.append(config.relative(config.source))
    if foreign:
        raise WorkWouldBeLost(
            f"{len(foreign)} file(s) changed since the bump was interrupted, by someone other than the bump",
            details="\n".join(foreign),
            hint="copy them elsewhere and put back what the bump wrote or what was there before it, then run "
            "`nox -s bump -- --continue` or `-- --abort` again",
        )


def restore(config: Config, originals: Originals) -> list[str]:
    """patches/ and vendoring.toml back to their bytes before the bump; what was put back, by name."""
    current = {patch.name: patch.content for patch in read_series(config.patches)}
    changed = [
        name
        for name in sorted(set(current) | set(originals.patches))
        if current.get(name) != originals.patches.get(name)
    ]
    for name in changed:
        if name in originals.patches:
            write_atomically(config.patches / name, originals.patches[name])
        else:
            (config.patches / name).unlink()
    restored = [f"{config.relative(config.patches)}/{name}" for name in changed]
    if config.source.read_bytes() != originals.config:
        write_atomically(config.source, originals.config)
        restored.append(config.relative(config.source))
    return restored


def _planned_config(originals: Originals, progress: BumpProgress) -> bytes | None:
    try:
        return rewrite_pin(originals.config.decode("utf-8"), progress.target, progress.ref).encode("utf-8")
    except (UnicodeDecodeError, ConfigError):  # not rewritable in place: the bump could not have written it
        return None


def planned_patches(repo: TrackingRepo, progress: BumpProgress) -> dict[str, bytes]:
    """What the bump writes into patches/: the export of its commits on the target."""
    return {item.patch.name: item.patch.content for item in repo.export(progress.target)}
