from __future__ import annotations

import base64
import ensurepip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from buildsys.config import DEFAULT_COMMIT, load_config
from buildsys.errors import UsageError
from buildsys.packaging.project_table import PROJECT_LICENSE
from buildsys.packaging.wheelfile import WheelFile, WheelSpec, metadata_text, write_wheel
from buildsys.packaging.wheels import license_files

SPEC = WheelSpec(
    distribution="llama-cpp-runtime-vulkan",
    version="1.2.3",
    tag="py3-none-linux_x86_64",
    summary="test",
    requires=["llama-cpp-runtime==1.2.3"],
    extras={"x": ["other==1"]},
    entry_points={"llama_cpp_runtime.backends": {"vulkan": "llama_cpp_runtime_vulkan:module_dir"}},
)
FILES = {"pkg/b.so": WheelFile(b"\x7fELF...", executable=True), "pkg/a.py": WheelFile(b"print(1)\n")}


def test_the_same_inputs_give_the_same_bytes(tmp_path: Path) -> None:
    first = write_wheel(tmp_path / "one", SPEC, FILES, epoch=1_700_000_000).read_bytes()
    second = write_wheel(tmp_path / "two", SPEC, dict(reversed(FILES.items())), epoch=1_700_000_000).read_bytes()
    assert first == second
    assert write_wheel(tmp_path / "three", SPEC, FILES, epoch=1_700_086_400).read_bytes() != first


def test_record_names_every_file_with_its_hash_and_dist_info_comes_last(tmp_path: Path) -> None:
    wheel = write_wheel(tmp_path, SPEC, FILES, epoch=0)
    assert wheel.name == "llama_cpp_runtime_vulkan-1.2.3-py3-none-linux_x86_64.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert names[:2] == ["pkg/a.py", "pkg/b.so"] and names[-1].endswith(".dist-info/RECORD")
        record = archive.read(names[-1]).decode().splitlines()
        for line in record[:-1]:
            name, digest, size = line.split(",")
            data = archive.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert digest == f"sha256={expected}" and int(size) == len(data)
        assert {line.split(",")[0] for line in record} == set(names)
        assert archive.getinfo("pkg/b.so").external_attr >> 16 == 0o100755
        assert archive.getinfo("pkg/a.py").date_time == (1980, 1, 1, 0, 0, 0)
        entry_points = archive.read("llama_cpp_runtime_vulkan-1.2.3.dist-info/entry_points.txt").decode()
        assert "[llama_cpp_runtime.backends]\nvulkan = llama_cpp_runtime_vulkan:module_dir\n" in entry_points


def test_metadata_declares_requirements_and_extras() -> None:
    text = metadata_text(SPEC)
    assert "Name: llama-cpp-runtime-vulkan\nVersion: 1.2.3\n" in text
    assert "Requires-Dist: llama-cpp-runtime==1.2.3\n" in text
    assert 'Provides-Extra: x\nRequires-Dist: other==1; extra == "x"\n' in text


LICENSED = WheelSpec(
    distribution="llama-cpp-runtime-vulkan",
    version="1.2.3",
    tag="py3-none-any",
    summary="test",
    description="# A page\n\nFor **users**.\n",
    license="MIT",
    license_files={"LICENSE": b"MIT License (ours)\n", "llama.cpp/licenses/LICENSE-jsonhpp": b"MIT License (json)\n"},
    authors=[("llama-cpp-runtime contributors", ""), ("A. Person", "a@example.org")],
    keywords=["llama.cpp", "ggml"],
    classifiers=["Typing :: Typed", "Operating System :: POSIX :: Linux"],
    urls=[("Homepage", "https://example.org/x"), ("Issues", "https://example.org/x/issues")],
    dist_info_files={"release.json": b'{"format": 1}\n'},
)


def test_metadata_is_2_4_with_an_spdx_licence_and_its_files_under_dist_info_licenses(tmp_path: Path) -> None:
    text = metadata_text(LICENSED)
    assert text.startswith("Metadata-Version: 2.4\n")
    headers = text.split("\n\n", 1)[0].splitlines()
    assert "License-Expression: MIT" in headers and not [h for h in headers if h.startswith("License:")]
    assert [h for h in headers if h.startswith("License-File:")] == [
        "License-File: LICENSE",
        "License-File: llama.cpp/licenses/LICENSE-jsonhpp",
    ]
    assert "Author: llama-cpp-runtime contributors" in headers
    assert "Author-email: A. Person <a@example.org>" in headers and "Keywords: llama.cpp,ggml" in headers
    assert headers.index("Project-URL: Homepage, https://example.org/x") < headers.index(
        "Project-URL: Issues, https://example.org/x/issues"
    )  # the table's order is the order PyPI shows
    assert text.endswith("\n\n# A page\n\nFor **users**.\n\n")
    with zipfile.ZipFile(write_wheel(tmp_path, LICENSED, FILES, epoch=0)) as archive:
        dist_info = "llama_cpp_runtime_vulkan-1.2.3.dist-info"
        assert archive.read(f"{dist_info}/licenses/LICENSE") == b"MIT License (ours)\n"
        assert archive.read(f"{dist_info}/licenses/llama.cpp/licenses/LICENSE-jsonhpp") == b"MIT License (json)\n"
        assert archive.read(f"{dist_info}/release.json") == b'{"format": 1}\n'
        recorded = {line.split(",")[0] for line in archive.read(f"{dist_info}/RECORD").decode().splitlines()}
        assert f"{dist_info}/licenses/LICENSE" in recorded and f"{dist_info}/release.json" in recorded


def _installed_metadata(python: Path) -> dict[str, object]:
    script = (
        "import importlib.metadata as m, json; d = m.distribution('llama-cpp-runtime-vulkan'); "
        "print(json.dumps({'version': d.metadata['Metadata-Version'], 'license': d.metadata['License-Expression'], "
        "'files': sorted(str(f) for f in d.files if '/licenses/' in str(f)), "
        "'text': d.read_text('licenses/llama.cpp/licenses/LICENSE-jsonhpp')}))"
    )
    result = subprocess.run([str(python), "-c", script], capture_output=True, text=True, check=True, timeout=60)
    found: dict[str, object] = json.loads(result.stdout)
    return found


EXPECTED_INSTALL = {
    "version": "2.4",
    "license": "MIT",
    "files": [
        "llama_cpp_runtime_vulkan-1.2.3.dist-info/licenses/LICENSE",
        "llama_cpp_runtime_vulkan-1.2.3.dist-info/licenses/llama.cpp/licenses/LICENSE-jsonhpp",
    ],
    "text": "MIT License (json)\n",
}


def test_the_pip_of_a_fresh_venv_installs_a_metadata_2_4_wheel_without_a_word(tmp_path: Path) -> None:
    """The oldest installer a user is likely to have: the pip that `python -m venv` bundles (ensurepip)."""
    wheel = write_wheel(tmp_path / "dist", LICENSED, FILES, epoch=0)
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True, timeout=300)
    python = tmp_path / "venv" / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    version = subprocess.run([str(python), "-m", "pip", "--version"], capture_output=True, text=True, check=True)
    bundled = ensurepip.version()
    assert version.stdout.startswith(f"pip {bundled} "), version.stdout  # the bundled one, not upgraded
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "install", "--no-index", str(wheel)]
    result = subprocess.run(pip, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning" not in result.stderr.lower() and "error" not in result.stderr.lower(), result.stderr
    assert _installed_metadata(python) == EXPECTED_INSTALL


def test_uv_installs_a_metadata_2_4_wheel(tmp_path: Path) -> None:
    uv = shutil.which("uv", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if uv is None:
        pytest.fail("uv is not installed: nox -s tests installs it (the `test` dependency group)")
    wheel = write_wheel(tmp_path / "dist", LICENSED, FILES, epoch=0)
    environment = tmp_path / "uv-venv"
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(environment)], check=True, timeout=300)
    python = environment / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    install = [uv, "pip", "install", "--python", str(python), "--offline", "--no-index", str(wheel)]
    result = subprocess.run(install, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "warning" not in result.stderr.lower(), result.stderr
    assert _installed_metadata(python) == EXPECTED_INSTALL


def test_a_built_wheel_carries_llama_cpps_licence_and_every_text_of_its_licenses_folder(tmp_path: Path) -> None:
    (tmp_path / "vendoring.toml").write_text(f'[upstream]\ncommit = "{DEFAULT_COMMIT}"\n')
    config = load_config(tmp_path / "vendoring.toml", env={})
    vendored = tmp_path / "vendor" / "llama.cpp"
    vendored.mkdir(parents=True)
    with pytest.raises(UsageError, match=r"vendor/llama.cpp/LICENSE is missing"):
        license_files(config)
    (vendored / "LICENSE").write_bytes(b"MIT License (llama.cpp)\n")
    assert license_files(config) == {  # a tree without licenses/ (ggml alone, the miniature upstream)
        "LICENSE": PROJECT_LICENSE.read_bytes(),
        "llama.cpp/LICENSE": b"MIT License (llama.cpp)\n",
    }
    (vendored / "licenses").mkdir()
    (vendored / "licenses" / "LICENSE-jsonhpp").write_bytes(b"json\n")
    (vendored / "licenses" / "LICENSE-curl").write_bytes(b"curl\n")
    assert list(license_files(config))[1:] == [
        "llama.cpp/LICENSE",
        "llama.cpp/licenses/LICENSE-curl",
        "llama.cpp/licenses/LICENSE-jsonhpp",
    ]
