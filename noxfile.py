"""Every task of the project. Maintainer sessions call `python -m buildsys`; nothing else is done here."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import nox

# nox.project.dependency_groups (PEP 735) arrived in 2025.02.09; nox.options.reuse_venv in 2024.03.02.
nox.needs_version = ">=2025.02.09"
nox.options.sessions = ["lint", "tests"]
nox.options.reuse_venv = "yes"
# Sessions that need a virtualenv make it with the Python nox runs on (any >= 3.11): no version is pinned,
# so `pip install nox && nox -s wheels` works on 3.12, 3.13 and newer as it does on 3.11.


ROOT = Path(__file__).resolve().parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")


def _groups(*names: str) -> tuple[str, ...]:
    """The requirements of pyproject.toml's [dependency-groups] (PEP 735), for session.install."""
    return nox.project.dependency_groups(PYPROJECT, *names)


def _buildsys(session: nox.Session, command: str) -> None:
    # buildsys has no dependencies beyond the standard library, so it runs from the checkout.
    session.run(sys.executable, "-m", "buildsys", command, *session.posargs, external=True)


def _cublas_for_this_nvcc() -> list[str]:
    """cuBLAS from NVIDIA's PyPI wheel of the CUDA major that nvcc compiles for, found as the build finds
    it (buildsys's toolchain detection): the CUDA presets need it, and the toolkit alone may lack it."""
    sys.path.insert(0, str(ROOT))  # buildsys, from this checkout
    from buildsys.builder.toolchains import Host, cublas_wheel_for_nvcc

    requirement = cublas_wheel_for_nvcc(Host(env=os.environ, system=platform.system()))
    return [requirement] if requirement else []


@nox.session(name="apply-patches", venv_backend="none")
def apply_patches(session: nox.Session) -> None:
    """Fetch the pinned upstream commit into the tracking repository and apply patches/."""
    _buildsys(session, "apply-patches")


@nox.session(name="create-patches", venv_backend="none")
def create_patches(session: nox.Session) -> None:
    """Export the tracking repository's commits into patches/."""
    _buildsys(session, "create-patches")


@nox.session(venv_backend="none")
def sync(session: nox.Session) -> None:
    """Materialise the filtered, patched upstream into vendor/ with its manifest."""
    _buildsys(session, "sync")


@nox.session(venv_backend="none")
def check(session: nox.Session) -> None:
    """Prove vendor/ and patches/ are pinned upstream + patches; non-zero on drift."""
    _buildsys(session, "check")


@nox.session(venv_backend="none")
def status(session: nox.Session) -> None:
    """Where the tracking repository and vendor/ stand."""
    _buildsys(session, "status")


@nox.session(venv_backend="none")
def bump(session: nox.Session) -> None:
    """Move the pin: `nox -s bump -- <commit|tag|branch>`, then `-- --continue` or `-- --abort` after a conflict."""
    if not session.posargs:
        session.error("name the upstream commit, tag or branch: nox -s bump -- <target> (or -- --continue / --abort)")
    _buildsys(session, "bump")


@nox.session
def build(session: nox.Session) -> None:
    """Configure, build and stage every backend this machine can build. Extra arguments go to `build`
    (e.g. `nox -s build -- --backend cpu,vulkan`). CMake and Ninja come from PyPI, into this session."""
    session.install("-e", ".", *_cublas_for_this_nvcc())
    session.run("python", "-m", "buildsys", "build", *session.posargs)


@nox.session
def wheels(session: nox.Session) -> None:
    """The main job: wheels in dist/ (core + one per GPU backend built here), running apply-patches, sync
    and build first when they are missing or stale. Extra arguments go to `wheels` (e.g. `--backend cpu`).
    On Linux the wheels are then checked and retagged by auditwheel (driver and loader libraries excluded)."""
    session.install("-e", ".[wheels]", *_cublas_for_this_nvcc())
    session.run("python", "-m", "buildsys", "wheels", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Measured comparisons, never run by the tests:
    `nox -s bench -- build|wheels|bump|cpu_speed|load_time|first_token [options]` (benchmarks/<name>.py)."""
    if not session.posargs:
        session.error("name a benchmark: nox -s bench -- build|wheels|bump|cpu_speed|load_time|first_token [options]")
    # cpu_speed writes its models with the tests' generator (gguf); the wheels benchmark repairs wheels
    session.install("-e", ".[wheels]", *_groups("test"))
    session.run("python", f"benchmarks/{session.posargs[0]}.py", *session.posargs[1:])


@nox.session(name="bump-bench")
def bump_bench(session: nox.Session) -> None:
    """Is the new pin slower? `nox -s bump-bench -- <old-project> <new-project> [--report FILE] [options]` builds
    each project's cpu stage and benchmarks both with this checkout's binding, interleaved; a table with a
    mark below 0.95x (critical below 0.85x) and a verdict. Exit 0 when slower; non-zero when it cannot run."""
    if len(session.posargs) < 2:
        session.error("name two projects: nox -s bump-bench -- <old-project> <new-project> [--report FILE]")
    session.install("-e", ".", *_groups("models"))  # CMake and Ninja for the builds, gguf for the generated models
    session.run("python", "benchmarks/bump_bench.py", *session.posargs)


@nox.session
def tests(session: nox.Session) -> None:
    """Unit and integration tests (real git, real subprocesses). Extra arguments go to pytest.

    Fast path, the unit tests only (no builds, seconds): `nox -s tests -- -m "not integration"`; every test
    under tests/integration/ carries the `integration` marker (tests/conftest.py applies it)."""
    session.install("-e", ".[wheels]", *_groups("test"))  # the wheel tests repair with the extra's auditwheel
    session.run("pytest", "-n", "auto", "-p", "no:cacheprovider", *session.posargs)


@nox.session(name="index-rehearsal")
def index_rehearsal(session: nox.Session) -> None:
    """The release as users meet it: the wheels and sdist of two releases of the miniature upstream on a
    package index on 127.0.0.1, installed by pip and uv by name and extra, then run. The table of what each
    install did and took goes to build/index-rehearsal.md. Extra arguments go to pytest."""
    session.install("-e", ".[wheels]", *_groups("test"))
    report = ROOT / "build" / "index-rehearsal.md"
    report.parent.mkdir(exist_ok=True)
    session.run(
        "pytest",
        "-p",
        "no:cacheprovider",
        "tests/integration/test_index_rehearsal.py",
        *session.posargs,
        env={"INDEX_REHEARSAL_REPORT": str(report)},
    )
    session.log(f"what each install did: {report}")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint + format check) and mypy --strict on buildsys and the binding."""
    session.install("-e", ".", *_groups("lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
