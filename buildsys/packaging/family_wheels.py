"""Family wheels: a distribution such as llama-cpp-runtime-cuda13 that holds no file and requires its
member wheels (one per GPU architecture family, each under PyPI's 100 MB file limit) at the same version.

A family wheel is written for a platform only when every member of that version is in dist/ for it, so
it never requires a wheel that was not built. Members of one platform may carry different tags: auditwheel
gives each the oldest glibc it allows (manylinux_2_34 and manylinux_2_35 from one build here). The family
wheel then takes the newest of them, so that pip installs it only where every member installs. The
members may come from separate CI jobs: a CI job writes the family wheels from what the build jobs uploaded.

A family wheel carries what a wheel says of itself (METADATA with this project's licence, its page, the
release record of .dist-info/release.json, made from its members' records) and no other file: that is
what check-wheel-contents calls W007 "library is empty" and W008 "wheel is empty", ignored for family
wheels only, with the reason, in lint_exceptions.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import pages
from .project_table import load_project_table, project_license
from .release_record import RECORD_NAME, PatchEntry, find_wheel_record, record_bytes, wheel_record
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
    paths: dict[tuple[str, str], Path] = {}  # (platform, normalised name) -> the wheel
    for path in sorted(dist.glob("*.whl")) if dist.is_dir() else ():
        match = _WHEEL_NAME.match(path.name)
        if match and match["version"] == version:
            platform = _platform(match["tag"])[0]
            present.setdefault(platform, {})[match["name"]] = match["tag"]
            paths[platform, match["name"]] = path
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
            records = {member: find_wheel_record(paths[platform, normalise(member)]) for member in members}
            pins = {_pin(record) for record in records.values() if record is not None}
            if len(pins) > 1:
                incomplete.append(
                    f"{family} {version} not written for {platform}: its members were built from different "
                    f"upstream commits or patch series ({', '.join(sorted(pin[0][:12] for pin in pins))})"
                )
                continue
            tag = max((tags[normalise(member)] for member in members), key=lambda found: _platform(found)[1])
            written.append((family, write_wheel(dist, _spec(family, records, version, tag), {}, epoch=epoch)))
    return FamilyOutcome(written, incomplete)


def _pin(record: Mapping[str, Any]) -> tuple[str, str]:
    return str(record.get("upstream_commit", "")), str(record.get("patch_series", {}).get("sha256", ""))


def _spec(family: str, records: Mapping[str, Mapping[str, Any] | None], version: str, tag: str) -> WheelSpec:
    """The family wheel: its members required at `version`; its record and page made from their records
    (each member wheel says what it covers; a member written without a record leaves the pin unsaid)."""
    members = list(records)
    known = [record for record in records.values() if record is not None]
    first = known[0] if len(known) == len(records) else {}
    upstream = {"commit": first.get("upstream_commit", ""), "llama_cpp_python": first.get("llama_cpp_python") or ""}
    upstream["patch_series_sha256"] = first.get("patch_series", {}).get("sha256", "")
    patches = [PatchEntry(p["name"], p["sha256"]) for p in first.get("patch_series", {}).get("patches", [])]
    record = wheel_record(
        distribution=family,
        version=version,
        kind="family",
        upstream=upstream,
        patches=patches,
        presets=[preset for member in known for preset in member.get("presets", [])],
        members=members,
    )
    build = [f"Requires {', '.join(f'`{m}=={version}`' for m in members)}."]
    if upstream["commit"]:
        build.append(
            f"Its members were built from upstream commit `{upstream['commit']}` with patch series sha256 "
            f"`{upstream['patch_series_sha256']}` (their `{RECORD_NAME}`, and this wheel's)."
        )
    table = load_project_table()
    return WheelSpec(
        distribution=family,
        version=version,
        tag=tag,
        description=pages.family_page(
            table=table, family=family, members=list(records.items()), build="\n\n".join(build) + "\n"
        ),
        summary=f"Every architecture family of {family.removeprefix('llama-cpp-runtime-')} for llama-cpp-runtime",
        requires=[f"{member}=={version}" for member in members],
        # no code of llama.cpp's in it: this project's licence for what it is, the packaging
        license_files=project_license(),
        dist_info_files={RECORD_NAME: record_bytes(record)},
        **table.wheel_metadata(),
    )
