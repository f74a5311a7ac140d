"""Writing a wheel byte-for-byte reproducibly: sorted entries, one timestamp (SOURCE_DATE_EPOCH),
fixed permissions and compression, and a RECORD of every file's sha256.

METADATA is core metadata 2.4: the licence as an SPDX `License-Expression` and each licence text as a
`License-File` under `.dist-info/licenses/` (PEP 639). pip 23.2 (Python 3.11's ensurepip) and uv install
such wheels; tests/unit/test_wheelfile.py installs one with both."""

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
    license: str = "MIT"  # an SPDX expression
    # path under .dist-info/licenses/ -> the text (PEP 639); each is named by a License-File line
    license_files: Mapping[str, bytes] = field(default_factory=dict)
    authors: Sequence[tuple[str, str]] = ()  # (name, email), either may be ""
    keywords: Sequence[str] = ()
    classifiers: Sequence[str] = ()
    urls: Sequence[tuple[str, str]] = ()  # (label, URL), in the order PyPI shows them
    # other files of the .dist-info folder, by name (e.g. release.json): metadata about this wheel
    dist_info_files: Mapping[str, bytes] = field(default_factory=dict)
    # an sdist's fields that the wheels built from it may fill differently (PEP 643); a wheel has none
    dynamic: Sequence[str] = ()

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


METADATA_VERSION = "2.4"  # the first with License-Expression and License-File (PEP 639)
LICENSES_FOLDER = "licenses"  # under .dist-info, where PEP 639 puts the licence texts
_DIST_INFO_OWN = frozenset({"METADATA", "WHEEL", "RECORD", "entry_points.txt"})


def metadata_text(spec: WheelSpec) -> str:
    lines = [
        f"Metadata-Version: {METADATA_VERSION}",
        f"Name: {spec.distribution}",
        f"Version: {spec.version}",
        f"Summary: {spec.summary}",
    ]
    if spec.keywords:
        lines.append(f"Keywords: {','.join(spec.keywords)}")
    names = [name for name, email in spec.authors if name and not email]
    addresses = [f"{name} <{email}>" if name else email for name, email in spec.authors if email]
    lines += [f"Author: {', '.join(names)}"] if names else []
    lines += [f"Author-email: {', '.join(addresses)}"] if addresses else []
    lines.append(f"License-Expression: {spec.license}")
    lines += [f"License-File: {path}" for path in sorted(spec.license_files)]
    lines += [f"Classifier: {classifier}" for classifier in spec.classifiers]
    lines.append(f"Requires-Python: {spec.requires_python}")
    lines += [f"Dynamic: {name}" for name in spec.dynamic]
    lines += [f"Project-URL: {label}, {url}" for label, url in spec.urls]
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
    for path, text in spec.license_files.items():
        contents[f"{spec.dist_info}/{LICENSES_FOLDER}/{path}"] = WheelFile(text)
    for name, data in spec.dist_info_files.items():
        # a caller's mistake, never the user's input: the writer makes these itself
        assert name not in _DIST_INFO_OWN and name.split("/")[0] != LICENSES_FOLDER, name
        contents[f"{spec.dist_info}/{name}"] = WheelFile(data)
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
