"""The workflow on real ggml history, from the local mirror named by BUILDSYS_REAL_UPSTREAM."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support import GitRepo, Project

pytestmark = [pytest.mark.integration, pytest.mark.real_upstream]

MIRROR = os.environ.get("BUILDSYS_REAL_UPSTREAM")
# ggml-org/ggml's mirror of the pinned llama.cpp ggml/ tree (its scripts/sync-llama.last).
GGML_AT_PIN = "8599e0ea3756c4bac4ef813af2241cb1a8bbfb0b"
GGML_LAYOUT = (
    '[sync]\ndestination = "vendor/ggml"\n'
    'include = ["CMakeLists.txt", "LICENSE", "ggml.pc.in", "cmake/", "include/", "src/"]\n'
)


@pytest.fixture
def real_project(tmp_path: Path, env: dict[str, str]) -> Project:
    if not MIRROR:
        pytest.skip("set BUILDSYS_REAL_UPSTREAM to a local mirror of ggml-org/ggml")
    root = tmp_path / "project"
    root.mkdir()
    project = Project(root, GitRepo(Path(MIRROR), env), [GGML_AT_PIN], env)
    project.configure(GGML_AT_PIN, GGML_LAYOUT)
    return project


def test_patch_round_trip_sync_and_check_on_real_ggml(real_project: Project) -> None:
    project = real_project
    project.run("apply-patches")
    tracking = project.tracking
    cmake = tracking.read("src/CMakeLists.txt")
    tracking.write("src/CMakeLists.txt", cmake + "# buildsys: real-upstream round trip\n")
    tracking.commit("cmake: mark the tree as vendored")
    project.run("create-patches")
    exported = project.patch_bytes()

    project.run("apply-patches")
    project.run("create-patches")
    project.run("sync")

    assert project.patch_bytes() == exported
    vendor = project.root / "vendor" / "ggml"
    assert (vendor / "src/CMakeLists.txt").read_text().endswith("# buildsys: real-upstream round trip\n")
    assert (vendor / "include/ggml-backend.h").is_file()
    assert not (vendor / "examples").exists() and not (vendor / "README.md").exists()
    assert "no drift" in project.run("check").stderr
