"""`release-manifest`: dist/release-manifest.json, what a release publishes and what it was built from.

Every file's name, sha256 and size; the pin (upstream commit), the patch series (each patch's name and
sha256) and the llama-cpp-python release served; per wheel its distribution, version, tags, kind,
requirements and what it covers (per preset: backend, CPU variants, CUDA architectures, ROCm targets,
driver floor). All of it is read from the files themselves (each wheel's METADATA, WHEEL and
.dist-info/release.json), never from this checkout, so that it describes wheels downloaded from several
CI jobs as well as the ones built here; and it refuses a dist/ that mixes versions or pins.
"""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..fileops import write_atomically
from .release_record import read_wheel_record
from .wheelfile import normalise

MANIFEST_NAME = "release-manifest.json"
FORMAT = 1
_SDIST = re.compile(r"^(?P<name>[a-z0-9_]+)-(?P<version>[^-]+)\.tar\.gz$")
_CHUNK = 1 << 20


def write_release_manifest(dist: Path) -> Path:
    """Write dist/release-manifest.json (atomically) and return its path."""
    manifest = build_manifest(dist)
    target = dist / MANIFEST_NAME
    write_atomically(target, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode())
    return target


def build_manifest(dist: Path) -> dict[str, Any]:
    if not dist.is_dir():
        raise UsageError(f"{dist} is not a folder", hint="name the folder that holds the wheels (default: dist/)")
    files = sorted(p for p in dist.iterdir() if p.is_file() and not p.name.startswith(".") and p.name != MANIFEST_NAME)
    strays = [p.name for p in files if not (p.name.endswith(".whl") or _SDIST.match(p.name))]
    if strays:
        raise UsageError(
            f"{dist} holds {', '.join(strays)}: neither a wheel nor an sdist",
            hint="a release publishes everything in that folder: move the other files away",
        )
    if not any(p.name.endswith(".whl") for p in files):
        raise UsageError(f"{dist} holds no wheel", hint="run `nox -s wheels`, or download the CI's wheels there")
    entries = [_wheel_entry(p) if p.name.endswith(".whl") else _sdist_entry(p) for p in files]
    versions = sorted({entry["version"] for entry in entries})
    if len(versions) > 1:
        raise UsageError(
            f"{dist} mixes versions {', '.join(versions)}: one release is one version",
            details="\n".join(f"{e['name']}: {e['version']}" for e in entries),
        )
    pins = {_pin(entry["record"]) for entry in entries if "record" in entry and entry["record"]["upstream_commit"]}
    if len(pins) != 1:
        said = ", ".join(f"{commit[:12]} + series {series[:12]}" for commit, series in sorted(pins)) or "none"
        raise UsageError(
            f"the wheels in {dist} do not name one upstream commit and patch series ({said})",
            details="\n".join(
                f"{e['name']}: {e['record']['upstream_commit'][:12] or '-'}" for e in entries if "record" in e
            ),
        )
    first = next(e["record"] for e in entries if "record" in e and e["record"]["upstream_commit"])
    return {
        "format": FORMAT,
        "version": versions[0],
        "upstream_commit": first["upstream_commit"],
        "patch_series": first["patch_series"],
        "llama_cpp_python": first["llama_cpp_python"],
        "files": [{k: v for k, v in entry.items() if k != "record"} for entry in entries],
    }


def _pin(record: dict[str, Any]) -> tuple[str, str]:
    return record["upstream_commit"], record["patch_series"]["sha256"]


def _digest(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _sdist_entry(path: Path) -> dict[str, Any]:
    match = _SDIST.match(path.name)
    assert match is not None
    sha256, size = _digest(path)
    return {"name": path.name, "sha256": sha256, "size": size, "kind": "sdist", "version": match["version"]}


def _wheel_entry(path: Path) -> dict[str, Any]:
    record = read_wheel_record(path)
    metadata, tags = _wheel_metadata(path)
    name, version = metadata.get("Name", ""), metadata.get("Version", "")
    if normalise(name) != normalise(record["distribution"]) or version != record["version"]:
        raise UsageError(
            f"{path.name}: its METADATA says {name} {version}, its release.json "
            f"{record['distribution']} {record['version']}",
            hint="the wheel was altered after it was written: rebuild it",
        )
    sha256, size = _digest(path)
    requires = [r for r in metadata.get_all("Requires-Dist", []) if "extra ==" not in r]
    return {
        "name": path.name,
        "sha256": sha256,
        "size": size,
        "distribution": name,
        "version": version,
        "tags": tags,
        "kind": record["kind"],
        "requires": requires,
        "members": record["members"],
        "presets": record["presets"],
        "record": record,
    }


def _wheel_metadata(path: Path) -> tuple[Any, list[str]]:
    """The wheel's METADATA (as email headers) and the tags its WHEEL file declares."""
    with zipfile.ZipFile(path) as archive:
        dist_infos = {n.split("/")[0] for n in archive.namelist() if n.split("/")[0].endswith(".dist-info")}
        if len(dist_infos) != 1:
            raise UsageError(f"{path.name}: {len(dist_infos)} .dist-info folders, a wheel has one")
        [dist_info] = dist_infos
        try:
            metadata = HeaderParser().parsestr(archive.read(f"{dist_info}/METADATA").decode("utf-8"))
            wheel = HeaderParser().parsestr(archive.read(f"{dist_info}/WHEEL").decode("utf-8"))
        except KeyError as missing:  # zipfile's word for a member that is not there
            raise UsageError(f"{path.name}: no {missing.args[0]}") from None
    return metadata, sorted(wheel.get_all("Tag", []))
