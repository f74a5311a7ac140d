"""Writing a wheel byte-for-byte reproducibly: sorted entries, one timestamp (SOURCE_DATE_EPOCH),
fixed permissions and compression, and a RECORD of every file's sha256."""

from __future__ import annotations

import base64
import hashlib
import re
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

GENERATOR = "buildsys"
ZIP_EPOCH_MINIMUM = 315532800  # 1980-01-01, the earliest time a zip entry can carry


@dataclass(frozen=True)
class WheelFile:
    data: bytes
    executable: bool = False


@dataclass(frozen=True, kw_only=True)
class WheelSpec:
    distribution: str  # llama-cpp-runtime-vulkan
    version: str
    tag: str  # py3-none-linux_x86_64
    summary: str
    description: str = ""
    requires_python: str = ">=3.11"
    requires: Sequence[str] = ()
    extras: Mapping[str, Sequence[str]] = field(default_factory=dict)
    entry_points: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    license: str = "MIT"
    urls: Mapping[str, str] = field(default_factory=dict)

    @property
    def file_name(self) -> str:
        return f"{normalise(self.distribution)}-{self.version}-{self.tag}.whl"

    @property
    def dist_info(self) -> str:
        return f"{normalise(self.distribution)}-{self.version}.dist-info"


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def metadata_text(spec: WheelSpec) -> str:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {spec.distribution}",
        f"Version: {spec.version}",
        f"Summary: {spec.summary}",
        f"License: {spec.license}",
        f"Requires-Python: {spec.requires_python}",
    ]
    lines += [f"Project-URL: {label}, {url}" for label, url in spec.urls.items()]
    lines += [f"Requires-Dist: {requirement}" for requirement in spec.requires]
    for extra, requirements in sorted(spec.extras.items()):
        lines.append(f"Provides-Extra: {extra}")
        lines += [f'Requires-Dist: {requirement}; extra == "{extra}"' for requirement in requirements]
    if spec.description:
        lines += ["Description-Content-Type: text/markdown", "", spec.description]
    return "\n".join(lines) + "\n"


def _entry_points_text(entry_points: Mapping[str, Mapping[str, str]]) -> str:
    sections = []
    for group, entries in sorted(entry_points.items()):
        sections.append(f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in sorted(entries.items())))
    return "\n".join(sections)


def write_wheel(directory: Path, spec: WheelSpec, files: Mapping[str, WheelFile], *, epoch: int) -> Path:
    """Write the wheel into `directory`; the same spec, files and epoch always give the same bytes."""
    contents = dict(files)
    contents[f"{spec.dist_info}/METADATA"] = WheelFile(metadata_text(spec).encode())
    wheel_text = f"Wheel-Version: 1.0\nGenerator: {GENERATOR}\nRoot-Is-Purelib: false\nTag: {spec.tag}\n"
    contents[f"{spec.dist_info}/WHEEL"] = WheelFile(wheel_text.encode())
    if spec.entry_points:
        contents[f"{spec.dist_info}/entry_points.txt"] = WheelFile(_entry_points_text(spec.entry_points).encode())
    record_name = f"{spec.dist_info}/RECORD"
    record = "".join(f"{name},{record_hash(f.data)},{len(f.data)}\n" for name, f in sorted(contents.items()))
    contents[record_name] = WheelFile((record + f"{record_name},,\n").encode())

    stamp = time.gmtime(max(epoch, ZIP_EPOCH_MINIMUM))[:6]
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / spec.file_name
    partial = target.with_name(target.name + ".partial")
    # dist-info last, as the wheel specification recommends; everything else in sorted order.
    order = sorted(contents, key=lambda name: (name.startswith(spec.dist_info), name == record_name, name))
    with zipfile.ZipFile(partial, "w") as archive:
        for name in order:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.external_attr = (0o100755 if contents[name].executable else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so that the permissions above are honoured everywhere
            archive.writestr(info, contents[name].data, compresslevel=9)
    partial.replace(target)
    return target
