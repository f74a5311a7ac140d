"""The release as users meet it: the wheels of two releases on a package index on 127.0.0.1, installed by
pip and by uv into fresh environments by name and extra, then run. Release 0.1.0 is complete (core,
Vulkan plugin, the CUDA families); 0.2.0 adds a patch and publishes only the core, as when a plugin's
build lags behind. `INDEX_REHEARSAL_REPORT=<file>` writes what each install did and took (`nox -s
index-rehearsal`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.cpu_features import elf_linux
from helpers.package_index import Index, build_requirement_wheels, path_without, serving, write_simple_index
from helpers.release_wheels import nvidia_wheels, standin_wheels
from helpers.support import Project, fresh_project
from helpers.toolchains_present import vulkan
from helpers.venvs import in_venv, runtime
from test_binding import PLUGIN_MODULE, compile_module

from buildsys.builder.presets import host_system, load_matrix

pytestmark = [pytest.mark.slow, elf_linux, vulkan]

CORE = "llama-cpp-runtime"
REPORT_VARIABLE = "INDEX_REHEARSAL_REPORT"
INSTALL_TIMEOUT = 300


@dataclass(frozen=True)
class Releases:
    complete: str  # the index of release 0.1.0
    core_ahead: str  # the same, plus the core of 0.2.0 (its plugins not yet published)
    index: Index


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Releases]:
    base = tmp_path_factory.mktemp("releases")
    project = fresh_project(base)
    project.run("wheels", "--backend", "cpu,vulkan,server", timeout=1200)
    # what a CUDA or ROCm module is on a machine without such a GPU: a backend with no device
    names = {"cuda": "CUDA", "hip": "ROCm"}
    no_device = {
        backend: compile_module(PLUGIN_MODULE.replace('return "Fake"', f'return "{name}"'), base / f"{backend}.so")
        for backend, name in names.items()
    }
    standin_wheels(project, no_device, "0.1.0")
    dist = project.root / "dist"
    first = [*sorted(dist.glob("*.whl")), dist / "llama_cpp_runtime-0.1.0.tar.gz"]
    first += [*nvidia_wheels(), *build_requirement_wheels()]
    _new_patch(project)
    project.run("wheels", "--wheel-version", "0.2.0", "--backend", "cpu", timeout=1200)
    second = sorted(dist.glob("*-0.2.0*"))
    assert [p.name.split("-")[0] for p in second] == ["llama_cpp_runtime"] * 2, second  # the wheel, the sdist
    root = base / "www"
    write_simple_index(first, root / "complete")
    write_simple_index(first + second, root / "core-ahead")
    with serving(root) as index:
        yield Releases(f"{index.base}/complete/simple/", f"{index.base}/core-ahead/simple/", index)


def _new_patch(project: Project) -> None:
    """A new patch in the queue: the next release's libraries come from another patch series."""
    project.add_patch_commits(
        ("ggml: mark our accumulator", "ggml/src/ggml.c", "double sum = 0.0;", "double sum = 0.0; /* ours */")
    )
    project.run("create-patches")


@dataclass(frozen=True)
class Installer:
    name: str

    def environment(self, where: Path) -> Path:
        """A fresh virtual environment as this installer's users make one; its Python."""
        if self.name == "uv":
            _run([_uv(), "venv", "--quiet", "--python", sys.executable, str(where)], where.parent)
        else:
            _run([sys.executable, "-m", "venv", str(where)], where.parent)
        return where / "bin" / "python"

    def install(
        self, python: Path, index: str, *arguments: str, path: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """`pip install` / `uv pip install` from `index` only, no cache, no user configuration."""
        if self.name == "uv":
            command = [_uv(), "pip", "install", "--python", str(python), "--index-url", index, *arguments]
        else:
            command = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "--index-url", index]
            command += arguments
        cache = python.parent.parent.parent / f"{self.name}-cache"
        env = {
            **_clean_environment(),
            "PIP_CONFIG_FILE": os.devnull,
            "PIP_NO_CACHE_DIR": "1",
            "PIP_NO_INPUT": "1",
            "UV_NO_CONFIG": "1",
            "UV_CACHE_DIR": str(cache),
            **({"PATH": path} if path else {}),
        }
        return subprocess.run(
            command, cwd=python.parent, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
        )


INSTALLERS = [Installer("pip"), Installer("uv")]


def _uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    assert found, "uv is in the test dependency group"
    return found


def _clean_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "VIRTUAL_ENV", "PYTHON"))}


def _run(command: list[str], cwd: Path) -> None:
    subprocess.run(command, cwd=cwd, env=_clean_environment(), check=True, timeout=300, capture_output=True)


def installed(python: Path) -> dict[str, str]:
    """Every distribution in the environment (normalised name -> version), the installer's own aside."""
    code = (
        "import importlib.metadata as m, json; "
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
    )
    listing = subprocess.run(
        [str(python), "-c", code],
        cwd=python.parent,
        env=_clean_environment(),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    listed = json.loads(listing.stdout)
    names = {name.lower().replace("_", "-"): version for name, version in listed.items()}
    return {name: version for name, version in names.items() if name not in {"pip", "setuptools"}}


def modules(python: Path, cwd: Path) -> dict[str, tuple[str, str, str]]:
    """`info --json`'s modules: name -> (status, source, reason)."""
    result = runtime(python, "info", "--json", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return {m["name"]: (m["status"], m["source"], m["reason"]) for m in json.loads(result.stdout)["modules"]}


_REPORT: list[str] = []


def record(installer: Installer, what: str, seconds: float, outcome: str) -> None:
    _REPORT.append(f"| {installer.name} | `{what}` | {seconds:.1f} s | {outcome} |")
    target = os.environ.get(REPORT_VARIABLE)
    if target:
        header = "| installer | install | time | outcome |\n|---|---|---|---|\n"
        Path(target).write_text(header + "\n".join(sorted(_REPORT)) + "\n", encoding="utf-8")


def timed_install(
    installer: Installer, python: Path, index: str, *arguments: str, path: str | None = None
) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = installer.install(python, index, *arguments, path=path)
    return result, time.monotonic() - started


def loaded(report: dict[str, tuple[str, str, str]]) -> set[str]:
    return {name for name, (status, _, _) in report.items() if status == "loaded"}


def _extras() -> dict[str, set[str]]:
    """Every extra the core declares (one per plugin wheel, one per family) -> the distributions it must bring
    besides the core: the plugin or the family's members, and NVIDIA's runtime wheels they require."""
    matrix = load_matrix()
    extras: dict[str, set[str]] = {}
    for preset in matrix.presets:
        if preset.wheel == CORE or not preset.applies_to(host_system()):
            continue
        brings = {preset.wheel, *(re.split(r"[<>=!~ ;]", d, maxsplit=1)[0] for d in preset.dependencies)}
        extras.setdefault(preset.wheel.removeprefix(f"{CORE}-"), set()).update(brings)
        if preset.family:
            extras.setdefault(preset.family.removeprefix(f"{CORE}-"), {preset.family}).update(brings)
    return extras


# requirement -> the distributions it must bring besides the core, all at 0.1.0 (NVIDIA's at their own)
CASES = {
    CORE: set(),
    f"{CORE}-vulkan": {f"{CORE}-vulkan"},
    **{f"{CORE}[{extra}]": brings for extra, brings in sorted(_extras().items())},
}
GPU_SOURCES = {"cuda": f"{CORE}-cuda", "rocm": f"{CORE}-rocm"}  # extra word -> its plugins' distribution prefix


@pytest.mark.parametrize("installer", INSTALLERS, ids=lambda i: i.name)
@pytest.mark.parametrize("requirement", list(CASES))
def test_a_user_installs_by_name_and_extra_and_gets_the_matching_wheels(
    releases: Releases, installer: Installer, requirement: str, tmp_path: Path
) -> None:
    python = installer.environment(tmp_path / "env")
    result, seconds = timed_install(installer, python, releases.complete, requirement)
    assert result.returncode == 0, result.stdout + result.stderr
    got = installed(python)
    expected = {CORE, *CASES[requirement]}
    assert expected <= set(got) and all(name.startswith("nvidia-") for name in set(got) - expected), got
    ours = {name: version for name, version in got.items() if name.startswith(CORE)}
    assert set(ours.values()) == {"0.1.0"}, ours  # one release: every wheel of ours at its version

    report = modules(python, tmp_path)
    assert any(name.startswith("ggml-cpu") for name in loaded(report)), report
    if "vulkan" in requirement:
        assert report["ggml-vulkan"][:2] == ("loaded", f"{CORE}-vulkan"), report["ggml-vulkan"]
        check = runtime(python, "check", cwd=tmp_path)  # lavapipe: a Vulkan device on the CPU
        assert check.returncode == 0, check.stdout + check.stderr
    if "server" in requirement:  # the console script starts upstream's program (the fixture's stand-in)
        served = in_venv(python.parent / "llama-server", "--exit", "0", cwd=tmp_path)
        assert served.returncode == 0 and "llama-server stand-in" in served.stdout, served.stdout + served.stderr
    said = []
    for word, prefix in GPU_SOURCES.items():
        rows = {name: row for name, row in report.items() if row[1].startswith(prefix)}
        assert bool(rows) == (word in requirement), report  # a member's module is reported, loaded or why not
        said += [f"{name} {status} ({source}): {reason}" for name, (status, source, reason) in sorted(rows.items())]
    outcome = ", ".join(f"{n} {v}" for n, v in sorted(got.items())) + "".join(f"; info: {row}" for row in said)
    record(installer, requirement, seconds, outcome)
    shutil.rmtree(tmp_path / "env")  # NVIDIA's libraries: 1-3 GB an environment


@pytest.mark.parametrize("installer", INSTALLERS, ids=lambda i: i.name)
def test_a_plugin_of_another_version_than_the_core_is_refused_by_the_resolver(
    releases: Releases, installer: Installer, tmp_path: Path
) -> None:
    python = installer.environment(tmp_path / "env")
    wanted = (f"{CORE}==0.2.0", f"{CORE}-vulkan")
    result, seconds = timed_install(installer, python, releases.core_ahead, *wanted)
    assert result.returncode != 0, result.stdout
    said = result.stdout + result.stderr
    assert f"{CORE}-vulkan" in said and "0.2.0" in said, said
    assert set(installed(python)) == set(), "a refused install installs nothing"
    record(installer, " ".join(wanted), seconds, f"refused: {_last_line(said)}")


@pytest.mark.parametrize("installer", INSTALLERS, ids=lambda i: i.name)
def test_the_extra_picks_the_newest_release_whose_plugin_exists(
    releases: Releases, installer: Installer, tmp_path: Path
) -> None:
    python = installer.environment(tmp_path / "env")
    result, seconds = timed_install(installer, python, releases.core_ahead, f"{CORE}[vulkan]")
    assert result.returncode == 0, result.stdout + result.stderr
    got = installed(python)
    assert got == {CORE: "0.1.0", f"{CORE}-vulkan": "0.1.0"}, got  # not 0.2.0: its vulkan wheel does not exist
    record(installer, f"{CORE}[vulkan] (core 0.2.0 published alone)", seconds, "core 0.1.0 + vulkan 0.1.0")


@pytest.mark.parametrize("installer", INSTALLERS, ids=lambda i: i.name)
def test_upgrading_the_core_past_its_plugin_leaves_the_plugin_unloaded_and_named(
    releases: Releases, installer: Installer, tmp_path: Path
) -> None:
    python = installer.environment(tmp_path / "env")
    first, _ = timed_install(installer, python, releases.complete, f"{CORE}[vulkan]")
    assert first.returncode == 0, first.stdout + first.stderr
    upgrade, seconds = timed_install(installer, python, releases.core_ahead, "--upgrade", CORE)
    got = installed(python)
    said = upgrade.stdout + upgrade.stderr
    if got[CORE] == "0.1.0":  # the installer kept the pair: nothing to run mismatched
        assert got[f"{CORE}-vulkan"] == "0.1.0"
        outcome = f"kept core 0.1.0 (exit {upgrade.returncode}): {_last_line(said)}"
    else:
        assert got == {CORE: "0.2.0", f"{CORE}-vulkan": "0.1.0"}, got
        report = modules(python, tmp_path)
        status, source, reason = report["ggml-vulkan"]
        assert status != "loaded" and source == f"{CORE}-vulkan", report["ggml-vulkan"]
        assert f"{CORE}-vulkan 0.1.0 was built from" in reason and "(llama-cpp-runtime 0.2.0)" in reason, reason
        outcome = f"core 0.2.0 beside vulkan 0.1.0 (exit {upgrade.returncode}; {_warning(said)}); info: {reason}"
    record(installer, f"--upgrade {CORE} (vulkan 0.1.0 installed)", seconds, outcome)


@pytest.mark.parametrize("installer", INSTALLERS, ids=lambda i: i.name)
def test_a_mismatched_pair_forced_in_without_dependencies_does_not_run_together(
    releases: Releases, installer: Installer, tmp_path: Path
) -> None:
    python = installer.environment(tmp_path / "env")
    wanted = ("--no-deps", f"{CORE}==0.2.0", f"{CORE}-vulkan==0.1.0")
    result, seconds = timed_install(installer, python, releases.core_ahead, *wanted)
    assert result.returncode == 0, result.stdout + result.stderr
    status, source, reason = modules(python, tmp_path)["ggml-vulkan"]
    assert (status, source) == ("skipped", f"{CORE}-vulkan"), (status, source, reason)
    assert f"{CORE}-vulkan" in reason and "0.1.0" in reason and "0.2.0" in reason, reason
    record(installer, " ".join(wanted), seconds, f"info: ggml-vulkan {status}: {reason}")


@pytest.mark.parametrize("installer", INSTALLERS, ids=lambda i: i.name)
def test_the_sdist_builds_from_the_index_without_git_into_the_install_the_wheel_gives(
    releases: Releases, installer: Installer, tmp_path: Path
) -> None:
    """What a platform without a wheel gets: pip (or uv) builds the sdist in an isolated environment whose
    CMake and Ninja come from the same index; no git on PATH, nothing else reachable."""
    from_source = installer.environment(tmp_path / "source")
    no_git = path_without("git", tmp_path / "bin")
    wanted = ("--no-binary", CORE, f"{CORE}==0.1.0")
    result, seconds = timed_install(installer, from_source, releases.complete, *wanted, path=no_git)
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed(from_source) == {CORE: "0.1.0"}
    built = json.loads(runtime(from_source, "info", "--json", cwd=tmp_path).stdout)
    from_wheel = installer.environment(tmp_path / "wheel")
    assert installer.install(from_wheel, releases.complete, f"{CORE}==0.1.0").returncode == 0
    shipped = json.loads(runtime(from_wheel, "info", "--json", cwd=tmp_path).stdout)
    assert built["cpu_variant"] == shipped["cpu_variant"] and built["upstream"] == shipped["upstream"]
    assert sorted(m["name"] for m in built["modules"]) == sorted(m["name"] for m in shipped["modules"])
    check = runtime(from_source, "check", cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    record(installer, " ".join(wanted), seconds, f"built and installed; cpu variant {built['cpu_variant']}, check ok")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _warning(text: str) -> str:
    found = [line.strip() for line in text.splitlines() if "requires" in line or "incompatible" in line]
    return found[0] if found else "no warning"
