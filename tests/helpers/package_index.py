"""A package index on loopback, as pip and uv meet one: a PEP 503 "simple" tree, with each wheel's metadata
beside it (PEP 658/714, what uv and newer pip read before downloading), served by the standard library's
HTTP server on 127.0.0.1. A static tree behind a plain HTTP server is how many real indexes are served
(a bucket, a CDN, GitHub Pages); the installers see the same protocol as from PyPI's simple API, and
the test sees every request the installers made."""

from __future__ import annotations

import hashlib
import html
import os
import re
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from helpers.real_llama_cpp import cache_root, locked

_WHEEL = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)-")
_SDIST = re.compile(r"^(?P<name>.+)-(?P<version>[^-]+)\.tar\.gz$")


def project_name(file_name: str) -> str:
    """The PEP 503 normalised project of a wheel or sdist file name."""
    match = _WHEEL.match(file_name) if file_name.endswith(".whl") else _SDIST.match(file_name)
    assert match, f"not a distribution file name: {file_name}"
    return re.sub(r"[-_.]+", "-", match["name"]).lower()


def _metadata(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
        return archive.read(name)


def _requires_python(metadata: bytes) -> str:
    found = re.search(rb"^Requires-Python: *(.+?) *$", metadata, re.MULTILINE)
    return found[1].decode() if found else ""


def write_simple_index(files: Iterable[Path], root: Path) -> Path:
    """root/files/<file> and root/simple/<project>/index.html for each file; returns root/simple."""
    (root / "files").mkdir(parents=True, exist_ok=True)
    projects: dict[str, list[str]] = {}
    for source in files:
        target = root / "files" / source.name
        shutil.copyfile(source, target)
        anchor = f'href="../../files/{source.name}#sha256={hashlib.sha256(target.read_bytes()).hexdigest()}"'
        if source.name.endswith(".whl"):
            metadata = _metadata(target)
            (root / "files" / f"{source.name}.metadata").write_bytes(metadata)
            digest = hashlib.sha256(metadata).hexdigest()
            anchor += f' data-dist-info-metadata="sha256={digest}" data-core-metadata="sha256={digest}"'
            if requires := _requires_python(metadata):
                anchor += f' data-requires-python="{html.escape(requires)}"'
        projects.setdefault(project_name(source.name), []).append(f"<a {anchor}>{source.name}</a><br/>")
    simple = root / "simple"
    for project, anchors in projects.items():
        (simple / project).mkdir(parents=True, exist_ok=True)
        (simple / project / "index.html").write_text(_page(f"Links for {project}", anchors), encoding="utf-8")
    listing = [f'<a href="{p}/">{p}</a><br/>' for p in sorted(projects)]
    (simple / "index.html").write_text(_page("Simple index", listing), encoding="utf-8")
    return simple


def _page(title: str, body: list[str]) -> str:
    lines = "\n".join(body)
    return (
        '<!DOCTYPE html>\n<html><head><meta name="pypi:repository-version" content="1.1">'
        f"<title>{title}</title></head>\n<body>\n{lines}\n</body></html>\n"
    )


@dataclass
class Requests:
    """The paths the installers asked for, in order."""

    paths: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def files(self) -> list[str]:
        with self.lock:
            return [p.rsplit("/", 1)[-1] for p in self.paths if p.startswith("/files/") and p.endswith(".whl")]

    def clear(self) -> None:
        with self.lock:
            self.paths.clear()


class _Handler(SimpleHTTPRequestHandler):
    requests: Requests

    def log_message(self, format: str, *args: object) -> None:
        with self.requests.lock:
            self.requests.paths.append(self.path.split("?", 1)[0])


@dataclass(frozen=True)
class Index:
    url: str  # http://127.0.0.1:<port>/simple/ (the root's simple/; other trees under the root by path)
    base: str  # http://127.0.0.1:<port>
    requests: Requests


@contextmanager
def serving(root: Path) -> Iterator[Index]:
    """root over HTTP on 127.0.0.1 (a free port) until the block ends."""
    requests = Requests()
    handler = type("Handler", (_Handler,), {"requests": requests})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        yield Index(f"{base}/simple/", base, requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


BUILD_REQUIREMENTS = ("cmake>=3.25", "ninja>=1.11")  # the sdist's [build-system] requires


def build_requirement_wheels() -> list[Path]:
    """CMake's and Ninja's wheels for this platform, downloaded from PyPI once into the user's cache, so that
    the local index can serve an sdist's build requirements (pip builds it in an isolated environment)."""
    folder = cache_root() / "build-requirements"
    with locked(cache_root() / ".build-requirements.lock"):
        wheels = sorted(folder.glob("*.whl"))
        if {project_name(w.name) for w in wheels} != {"cmake", "ninja"}:
            download = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"]
            subprocess.run(
                [*download, "--only-binary=:all:", "--no-deps", "--dest", str(folder), *BUILD_REQUIREMENTS],
                check=True,
                timeout=600,
                capture_output=True,
            )
            wheels = sorted(folder.glob("*.whl"))
    return wheels


def path_without(tool: str, where: Path) -> str:
    """A PATH with every program of this one except `tool` (and its `tool-*` helpers): links in `where`."""
    where.mkdir(parents=True, exist_ok=True)
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        try:
            names = os.listdir(directory or ".")
        except OSError:
            continue
        for name in names:
            link = where / name
            if name == tool or name.startswith(f"{tool}-") or os.path.lexists(link):
                continue
            target = Path(directory) / name
            if target.is_file() and os.access(target, os.X_OK):
                link.symlink_to(target)
    return str(where)
