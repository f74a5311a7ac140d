"""Family wheels: a distribution such as llama-cpp-runtime-cuda13 that holds no file and requires its
member wheels (one per GPU architecture family, each under PyPI's 100 MB file limit) at the same version.

A family wheel is written for a platform only when every member of that version is in dist/ for it, so
it never requires a wheel that was not built. Members of one platform may carry different tags: auditwheel
gives each the oldest glibc it allows (manylinux_2_34 and manylinux_2_35 from one build here). The family
wheel then takes the newest of them, so that pip installs it only where every member installs. The
members may come from separate CI jobs: a CI job writes the family wheels from what the build jobs uploaded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .wheelfile import WheelSpec, normalise, write_wheel

_WHEEL_NAME = re.compile(r"^(?P<name>[a-z0-9_]+)-(?P<version>[^-]+)-(?P<tag>py3-none-[^-]+)\.whl$")
_PLATFORM_VERSION = re.compile(r"^(manylinux|musllinux|macosx)_(\d+)_(\d+)_(.+)$")


def _platform(tag: str) -> tuple[str, tuple[int, int]]:
    """py3-none-manylinux_2_35_x86_64 -> ("manylinux x86_64", (2, 35)); win_amd64 -> ("win_amd64", (0, 0)).
    A compound tag is judged by its first platform."""
    first = tag.removeprefix("py3-none-").split(".")[0]
    match = _PLATFORM_VERSION.match(first)
    return (f"{match[1]} {match[4]}", (int(match[2]), int(match[3]))) if match else (first, (0, 0))


@dataclass(frozen=True)
class FamilyOutcome:
    written: list[tuple[str, Path]]  # (family, wheel)
    incomplete: list[str]  # why a family was not written for a platform tag (a member is missing)


def write_family_wheels(
    dist: Path, families: Mapping[str, tuple[str, ...]], *, version: str, epoch: int
) -> FamilyOutcome:
    """Every family wheel that the member wheels of `version` in `dist` allow, per platform tag."""
    present: dict[str, dict[str, str]] = {}  # platform -> normalised name -> its wheel's tag
    for path in sorted(dist.glob("*.whl")) if dist.is_dir() else ():
        match = _WHEEL_NAME.match(path.name)
        if match and match["version"] == version:
            present.setdefault(_platform(match["tag"])[0], {})[match["name"]] = match["tag"]
    written: list[tuple[str, Path]] = []
    incomplete: list[str] = []
    for family, members in families.items():
        for platform, tags in sorted(present.items()):
            missing = [member for member in members if normalise(member) not in tags]
            if len(missing) == len(members):
                continue
            if missing:
                incomplete.append(f"{family} {version} not written for {platform}: {', '.join(missing)} not in dist/")
                continue
            tag = max((tags[normalise(member)] for member in members), key=lambda found: _platform(found)[1])
            written.append((family, write_wheel(dist, _spec(family, members, version, tag), {}, epoch=epoch)))
    return FamilyOutcome(written, incomplete)


def _spec(family: str, members: tuple[str, ...], version: str, tag: str) -> WheelSpec:
    listed = "\n".join(f"- `{member}`" for member in members)
    description = (
        f"Installs every wheel of the family, so that any supported GPU finds its code:\n\n{listed}\n\n"
        "The binding loads the one module that serves the GPUs present (their compute capability) and "
        "reports the others as not chosen. Installing a single member instead saves the download.\n"
    )
    return WheelSpec(
        distribution=family,
        version=version,
        tag=tag,
        description=description,
        summary=f"Every architecture family of {family.removeprefix('llama-cpp-runtime-')} for llama-cpp-runtime",
        requires=[f"{member}=={version}" for member in members],
    )
