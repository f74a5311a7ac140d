from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.real_llama_cpp import DEFAULT_VERSIONS, RealTreeError, locked, make_repository
from helpers.real_projects import project_at, tagged_commit
from helpers.support import Project, apply_our_two_patches, fresh_project, hermetic_env, make_upstream

INTEGRATION = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under integration/ drives real subprocesses: `-m "not integration"` is the fast path."""
    for item in items:
        if INTEGRATION in item.path.parents:
            item.add_marker(pytest.mark.integration)


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
    apply_our_two_patches(project)
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


@pytest.fixture(scope="session")
def real_llama_cpp() -> Path:
    named = os.environ.get("BUILDSYS_REAL_LLAMA_CPP")
    if named:
        return Path(named)
    try:
        return make_repository(DEFAULT_VERSIONS)
    except RealTreeError as error:
        message = f"REAL LLAMA.CPP NOT TESTED: the llama-cpp-python sdists could not be had: {error}"
        if "real-llama.cpp" in os.environ.get("BUILDSYS_REQUIRE_TOOLCHAINS", "").split(","):
            pytest.fail(message)
        print(f"\n{'!' * 100}\n{message}\n{'!' * 100}", file=sys.stderr)
        pytest.skip(message)


@pytest.fixture(scope="session")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory for every test worker of this run: the pin is built once, whichever worker asks.
    Under xdist each worker's base is a folder of the run's; without it the base is the run's own (its
    parent holds every earlier run, whose builds must not be taken for this one's)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def _real_project_built_once(shared: Path, real_llama_cpp: Path, name: str, make: Callable[[Project], None]) -> Project:
    """A project of this repository's configuration and patches on the real tree at the pin, made by `make`
    once per test run (whichever worker asks first; the others wait on the lock and reuse it)."""
    root = shared / name
    with locked(shared / f"{name}.lock"):
        done = root / "built"
        (root / "home").mkdir(parents=True, exist_ok=True)
        project = project_at(
            root / "project", real_llama_cpp, "0.3.35", hermetic_env(root / "home"), existing=done.exists()
        )
        if not done.exists():
            make(project)
            done.touch()
    return project


@pytest.fixture(scope="session")
def pinned(real_llama_cpp: Path, shared: Path) -> Project:
    """This repository's configuration and patches at the pin, with its core wheel built."""
    return _real_project_built_once(
        shared, real_llama_cpp, "pinned-runtime", lambda p: p.run("wheels", "--backend", "cpu", timeout=60 * 60)
    )


@pytest.fixture(scope="session")
def pinned_server(real_llama_cpp: Path, shared: Path) -> Project:
    """The llama-server wheel at the pin, in a project of its own (the core wheel it runs on is `pinned`'s: the
    same pin and patches)."""
    return _real_project_built_once(
        shared, real_llama_cpp, "pinned-server", lambda p: p.run("wheels", "--backend", "server", timeout=60 * 60)
    )


@pytest.fixture(scope="session")
def pinned_aarch64(real_llama_cpp: Path, shared: Path) -> Project:
    """The same at the pin, its core wheel cross-built for linux-aarch64 (a project of its own: its dist/ holds
    only the aarch64 wheel; the ccache of the real builds is shared)."""
    return _real_project_built_once(
        shared,
        real_llama_cpp,
        "pinned-aarch64",
        lambda p: p.run("wheels", "--platform", "linux-aarch64", "--backend", "cpu", timeout=60 * 60),
    )


@pytest.fixture(scope="session")
def newer(real_llama_cpp: Path, shared: Path) -> Project:
    """This repository's configuration and patches bumped to the newer tree (0.3.36, whose llama_model_params
    has a field the pin's lacks), with its core wheel built: one CPU variant, enough to run the same binding."""

    def bump_and_build(project: Project) -> None:
        project.run("apply-patches")
        project.run("sync")
        project.run("bump", tagged_commit(project.upstream, "0.3.36"))
        project.run("wheels", "--backend", "cpu", "-D", "GGML_CPU_ALL_VARIANTS=OFF", timeout=60 * 60)

    return _real_project_built_once(shared, real_llama_cpp, "newer-runtime", bump_and_build)


@pytest.fixture
def stage(built: Project, tmp_path: Path) -> Path:
    """A private copy of the cpu stage (tests add modules to it), away from the working directory."""
    copy = tmp_path / "site" / "stage"
    shutil.copytree(built.root / "build/stage/cpu", copy, symlinks=True)
    return copy
