"""The llama-server wheel on the miniature upstream: `wheels --backend server` builds upstream's program (the
fixture's stand-in loads backends as llama.cpp's programs do and says what it got) into its own wheel, without a
second copy of the core libraries; its `llama-server` command runs it on what load() chose."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers.support import Project, fresh_project, readelf_dynamic
from helpers.venvs import in_venv, pip, runtime, venv, wheels_of

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the server wheel is tested on Linux"),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Project:
    project = fresh_project(tmp_path_factory.mktemp("served"))
    presets = "cpu,server,vulkan" if shutil.which("glslc") else "cpu,server"
    project.run("wheels", "--backend", presets)
    return project


@pytest.fixture(scope="module")
def installed(served: Project, tmp_path_factory: pytest.TempPathFactory) -> Path:
    python = venv(tmp_path_factory.mktemp("server-venv"))
    pip(python, "install", "--no-index", *map(str, wheels_of(served).values()))
    return python


def llama_server(
    python: Path, *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return in_venv(python.parent / "llama-server", *args, cwd=cwd, env=env)


def test_the_default_build_leaves_the_server_out_and_says_how_to_build_it(tmp_path: Path) -> None:
    project = fresh_project(tmp_path)
    project.run("sync")
    result = project.run("build", "--dry-run")
    assert "built only when named: server (--backend server)" in result.stdout + result.stderr
    assert not re.search(r"^server\s", result.stdout, re.MULTILINE), result.stdout


def test_the_server_wheel_holds_the_program_and_its_own_libraries_never_the_core(served: Project) -> None:
    wheel = wheels_of(served)["llama_cpp_runtime_server"]
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        entry_points = archive.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    package = sorted(n for n in names if n.startswith("llama_cpp_runtime_server/"))
    assert "llama_cpp_runtime_server/bin/llama-server" in package
    assert any(re.fullmatch(r"llama_cpp_runtime_server/bin/libllama-common\.so[.\d]*", n) for n in package), package
    assert not [n for n in names if re.search(r"lib(ggml|ggml-base|llama|mtmd)\.so", n)], names  # the core's
    assert "Requires-Dist: llama-cpp-runtime==0.1.0" in metadata
    assert "llama-server = llama_cpp_runtime_server:main" in entry_points


def test_the_program_finds_the_core_libraries_in_the_core_package(served: Project, tmp_path: Path) -> None:
    stage = served.root / "build/stage/server/bin"
    dynamic = readelf_dynamic(stage / "llama-server")
    assert dynamic["RUNPATH"] == ["$ORIGIN:$ORIGIN/../../llama_cpp_runtime/lib"], dynamic
    assert {"libggml.so.0", "libggml-base.so.0"} <= set(dynamic["NEEDED"]), dynamic


def test_llama_server_runs_on_the_variant_and_plugins_load_chose(installed: Path, tmp_path: Path) -> None:
    info = runtime(installed, "info", "--json", cwd=tmp_path)
    assert info.returncode == 0, info.stderr
    report = json.loads(info.stdout)
    chosen = {m["backend"] for m in report["modules"] if m["status"] == "loaded"}

    result = llama_server(installed, "--exit", "0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "llama-server stand-in on miniggml common" in result.stdout
    assert f"VARIANT={report['cpu_variant']} " in result.stdout, result.stdout
    # every backend registered once, each one load() chose: the program's own search adds nothing
    registered = re.findall(r"^backend (\S+):", result.stdout, re.MULTILINE)
    assert sorted(name.lower() for name in registered) == sorted(chosen), (result.stdout, chosen)

    forced = llama_server(installed, cwd=tmp_path, env={"LLAMA_CPP_RUNTIME_CPU_VARIANT": "x64"})
    assert forced.returncode == 0, forced.stderr
    assert "VARIANT=x64 " in forced.stdout, forced.stdout


def test_the_program_exit_status_is_the_commands(installed: Path, tmp_path: Path) -> None:
    assert llama_server(installed, "--exit", "7", cwd=tmp_path).returncode == 7


def test_a_module_that_will_not_load_stops_the_program(installed: Path, tmp_path: Path) -> None:
    program = installed.parent.parent / "lib"
    target = next(program.glob("python3*/site-packages/llama_cpp_runtime_server/bin/llama-server"))
    broken = tmp_path / "libggml-broken.so"
    broken.write_bytes(b"not a library")
    result = in_venv(target, cwd=tmp_path, env={"LLAMA_CPP_RUNTIME_MODULES": str(broken)})
    assert result.returncode == 1
    assert f"llama-cpp-runtime: the backend module {broken} (listed in LLAMA_CPP_RUNTIME_MODULES) did not load" in (
        result.stderr
    )


def test_a_server_wheel_of_another_build_than_the_core_is_refused_by_name(installed: Path, tmp_path: Path) -> None:
    record = next(installed.parent.parent.glob("lib/python3*/site-packages/llama_cpp_runtime_server/stage.json"))
    kept = record.read_text()
    document = json.loads(kept)
    document["upstream"]["patch_series_sha256"] = "0" * 64  # as a server wheel of another release would say
    record.write_text(json.dumps(document))
    try:
        result = llama_server(installed, "--exit", "0", cwd=tmp_path)
    finally:
        record.write_text(kept)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("llama-server: error: llama-cpp-runtime-server 0.1.0 was built "), result.stderr
    assert 'pip install "llama-cpp-runtime-server==0.1.0"' in result.stderr and "Traceback" not in result.stderr
    assert "stand-in" not in result.stdout  # the program never started
