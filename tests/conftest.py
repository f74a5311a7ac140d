from __future__ import annotations

from pathlib import Path

import pytest
from support import Project, fresh_project, hermetic_env, make_upstream


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return hermetic_env(home)


@pytest.fixture
def project(tmp_path: Path, env: dict[str, str]) -> Project:
    upstream, commits = make_upstream(tmp_path / "upstream", env)
    root = tmp_path / "project"
    root.mkdir()
    made = Project(root, upstream, commits, env)
    made.configure(commits[2])
    return made


@pytest.fixture
def patched_project(project: Project) -> Project:
    """Pinned at the third upstream commit, two patches of ours applied, exported and synced."""
    project.run("apply-patches")
    project.add_patch_commits(
        ("ggml: mark our accumulator", "ggml/src/ggml.c", "float sum = 0.0f;", "float sum = 0.0f; /* ours */"),
        (
            "llama: declare llama_patched",
            "include/llama.h",
            "int llama_version(void);",
            "int llama_version(void);\nint llama_patched(void);",
        ),
    )
    project.run("create-patches")
    project.run("sync")
    return project


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """The fixture's latest commit, synced and built with the cpu preset once per test worker.
    Tests must not change it (copy build/stage/cpu to alter anything)."""
    project = fresh_project(tmp_path_factory.mktemp("built"))
    project.run("sync")
    project.run("build", "--backend", "cpu")
    return project


FIRST_PATCH = "0001-ggml-mark-our-accumulator.patch"
SECOND_PATCH = "0002-llama-declare-llama_patched.patch"

__all__ = ["FIRST_PATCH", "SECOND_PATCH"]
