"""`sdist`: the core's source distribution from a synced project, without building anything. Building it
with pip and uv from a package index is in test_index_rehearsal.py."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from helpers.support import Project, fresh_project
from helpers.wheel_checks import tool_versions, twine_check

SDIST = "llama_cpp_runtime-0.3.0.tar.gz"


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Project:
    project = fresh_project(tmp_path_factory.mktemp("sdist"))
    project.run("sync")
    return project


def members(archive: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(archive) as opened:
        return {info.name: info for info in opened.getmembers()}


def test_the_sdist_holds_the_synced_tree_the_toolkit_and_the_binding_and_passes_twine(synced: Project) -> None:
    result = synced.run("sdist", "--wheel-version", "0.3.0")
    archive = synced.root / "dist" / SDIST
    assert f"dist/{SDIST}" in result.stdout
    names = members(archive)
    top = "llama_cpp_runtime-0.3.0"
    for expected in (
        "PKG-INFO",
        "pyproject.toml",
        "vendoring.toml",
        "wheels/wheel_backend.py",
        "buildsys/cli.py",
        "bindings/python/llama_cpp_runtime/__init__.py",
        "vendor/llama.cpp/.buildsys-manifest.json",
        "vendor/llama.cpp/CMakeLists.txt",
        "vendor/llama.cpp/LICENSE",
    ):
        assert f"{top}/{expected}" in names, expected
    vendored = {n.removeprefix(f"{top}/vendor/llama.cpp/") for n in names if n.startswith(f"{top}/vendor/llama.cpp/")}
    synced_files = {p.relative_to(synced.vendor).as_posix() for p in synced.vendor.rglob("*")}
    assert vendored == synced_files  # the tree as synced: nothing left out, nothing of the tracking clone added
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or "/.git/" in n or "/build/" in n]
    assert {info.uid for info in names.values()} == {0} and {info.uname for info in names.values()} == {""}
    with tarfile.open(archive) as opened:
        pyproject = opened.extractfile(f"{top}/pyproject.toml")
        assert pyproject is not None
        text = pyproject.read().decode()
    assert 'build-backend = "wheel_backend"' in text and 'backend-path = ["wheels"]' in text
    checked = twine_check([archive])
    assert checked.returncode == 0, f"{tool_versions()}\n{checked.stdout}{checked.stderr}"


def test_the_sdist_is_the_same_bytes_when_written_again(synced: Project) -> None:
    synced.run("sdist", "--wheel-version", "0.3.0")
    first = (synced.root / "dist" / SDIST).read_bytes()
    (synced.root / "dist" / SDIST).unlink()
    synced.run("sdist", "--wheel-version", "0.3.0")
    assert (synced.root / "dist" / SDIST).read_bytes() == first


def test_an_unsynced_project_gets_no_sdist_and_one_line_saying_why(tmp_path: Path) -> None:
    project = fresh_project(tmp_path)  # applied, never synced
    result = project.run("sdist", expect=5)
    assert "has not been synced" in result.stderr and "Traceback" not in result.stderr
    assert not list((project.root / "dist").glob("*.tar.gz"))
    bad = project.run("sdist", "--wheel-version", "one", expect=2)
    assert "is not a PEP 440 version" in bad.stderr
