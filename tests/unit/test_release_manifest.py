"""`release-manifest`: dist/release-manifest.json from the files themselves, and the publish jobs that
check the wheels, upload them with attestations and attach the manifest to the release."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers.support import REPO_ROOT

from buildsys.cli import main
from buildsys.config import DEFAULT_COMMIT
from buildsys.errors import UsageError
from buildsys.packaging.release_manifest import MANIFEST_NAME, build_manifest, write_release_manifest
from buildsys.packaging.release_record import PatchEntry, record_bytes, wheel_record
from buildsys.packaging.wheelfile import WheelFile, WheelSpec, write_wheel

TAG = "py3-none-manylinux_2_28_x86_64"
PATCHES = [PatchEntry("0001-a.patch", "a" * 64)]
CPU = {"preset": "cpu", "backend": "cpu", "cpu_variants": ["haswell", "x64"], "cuda_architectures": []}


def wheel(dist: Path, name: str, *, version: str = "0.3.35", commit: str = "c" * 40, record: bool = True) -> Path:
    kind = "core" if name == "llama-cpp-runtime" else "plugin"
    written = wheel_record(
        distribution=name,
        version=version,
        kind=kind,
        upstream={"commit": commit, "patch_series_sha256": "5" * 64, "llama_cpp_python": "0.3.35"},
        patches=PATCHES,
        presets=[CPU] if kind == "core" else [{"preset": "vulkan", "backend": "vulkan"}],
    )
    spec = WheelSpec(
        distribution=name,
        version=version,
        tag=TAG,
        summary="x",
        requires=[] if kind == "core" else [f"llama-cpp-runtime=={version}"],
        extras={"vulkan": [f"llama-cpp-runtime-vulkan=={version}"]} if kind == "core" else {},
        dist_info_files={"release.json": record_bytes(written)} if record else {},
    )
    return write_wheel(dist, spec, {f"{name.replace('-', '_')}/a.txt": WheelFile(name.encode())}, epoch=0)


def test_the_manifest_lists_every_file_with_its_hash_and_what_each_wheel_covers(tmp_path: Path) -> None:
    core = wheel(tmp_path, "llama-cpp-runtime")
    plugin = wheel(tmp_path, "llama-cpp-runtime-vulkan")
    sdist = tmp_path / "llama_cpp_runtime-0.3.35.tar.gz"
    sdist.write_bytes(b"an sdist")

    written = write_release_manifest(tmp_path)

    manifest: dict[str, Any] = json.loads(written.read_text())
    assert written == tmp_path / MANIFEST_NAME
    assert manifest["version"] == "0.3.35" and manifest["upstream_commit"] == "c" * 40
    assert manifest["patch_series"] == {"sha256": "5" * 64, "patches": [{"name": "0001-a.patch", "sha256": "a" * 64}]}
    assert manifest["llama_cpp_python"] == "0.3.35"
    files = {entry["name"]: entry for entry in manifest["files"]}
    assert list(files) == sorted(p.name for p in (core, plugin, sdist))
    for path in (core, plugin, sdist):
        data = path.read_bytes()
        assert files[path.name]["sha256"] == hashlib.sha256(data).hexdigest()
        assert files[path.name]["size"] == len(data)
    assert files[core.name]["presets"] == [CPU] and files[core.name]["kind"] == "core"
    assert files[core.name]["tags"] == [TAG] and files[core.name]["requires"] == []  # extras are not requirements
    assert files[plugin.name]["requires"] == ["llama-cpp-runtime==0.3.35"]
    assert files[sdist.name]["kind"] == "sdist" and "presets" not in files[sdist.name]
    assert written.read_bytes() == (json.dumps(build_manifest(tmp_path), indent=1, sort_keys=True) + "\n").encode()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: (wheel(d, "llama-cpp-runtime"), wheel(d, "llama-cpp-runtime-vulkan", version="0.3.34")), "mixes"),
        (
            lambda d: (wheel(d, "llama-cpp-runtime"), wheel(d, "llama-cpp-runtime-vulkan", commit="d" * 40)),
            "do not name one upstream commit",
        ),
        (lambda d: (wheel(d, "llama-cpp-runtime"), (d / "notes.txt").write_text("x")), "neither a wheel nor an sdist"),
        (lambda d: wheel(d, "llama-cpp-runtime", record=False), "has no .dist-info/release.json"),
        (lambda d: (d / "llama_cpp_runtime-1.0.tar.gz").write_bytes(b"x"), "holds no wheel"),
    ],
    ids=["two versions", "two pins", "a stray file", "a wheel without a record", "no wheel"],
)
def test_a_dist_that_is_not_one_release_is_refused_by_name(tmp_path: Path, setup: Any, message: str) -> None:
    setup(tmp_path)
    with pytest.raises(UsageError, match=message):
        build_manifest(tmp_path)
    assert not (tmp_path / MANIFEST_NAME).exists()


def test_the_command_writes_it_and_refuses_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "vendoring.toml").write_text(f'[upstream]\ncommit = "{DEFAULT_COMMIT}"\n')
    config = ["--config", str(tmp_path / "vendoring.toml")]
    (tmp_path / "dist").mkdir()

    assert main([*config, "release-manifest"]) == 2
    assert capsys.readouterr().err.splitlines()[0] == f"error: {tmp_path / 'dist'} holds no wheel"

    wheel(tmp_path / "dist", "llama-cpp-runtime")
    assert main([*config, "release-manifest"]) == 0  # the project's dist/ by default
    assert capsys.readouterr().out.strip() == str(tmp_path / "dist" / MANIFEST_NAME)
    assert main([*config, "release-manifest", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err


# ---- the publish jobs -------------------------------------------------------------------------------


def _jobs() -> dict[str, Any]:
    document = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "wheels.yml").read_text(encoding="utf-8"))
    jobs: dict[str, Any] = document["jobs"]
    return jobs


def _runs(job: dict[str, Any]) -> str:
    return "\n".join(step.get("run", "") for step in job["steps"])


def test_the_wheels_are_checked_and_the_manifest_written_before_anything_is_published() -> None:
    jobs = _jobs()
    manifest = jobs["manifest"]
    assert manifest["permissions"] == {"contents": "read"} and set(manifest["needs"]) == {
        "build",
        "test-plugins",
        "families",
    }
    script = _runs(manifest)
    assert "python -m buildsys release-manifest dist" in script and "twine check --strict dist/*.whl" in script
    assert "lint_exceptions import ignored_codes" in script
    assert 'check-wheel-contents --ignore "$codes" "${wheels[@]}"' in script and "core plugin family" in script
    uploaded = next(s for s in manifest["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact@"))
    assert uploaded["with"] == {
        "name": "release-manifest",
        "path": f"dist/{MANIFEST_NAME}",
        "if-no-files-found": "error",
    }


def test_pypi_gets_exactly_the_manifests_files_with_pep_740_attestations() -> None:
    publish = _jobs()["publish"]
    assert "manifest" in publish["needs"] and publish["permissions"] == {"id-token": "write"}
    action = next(s for s in publish["steps"] if str(s.get("uses", "")).startswith("pypa/gh-action-pypi-publish@"))
    assert action["with"]["attestations"] is True and "password" not in action["with"]  # trusted publishing
    assert "sha256sum --check --strict" in _runs(publish)  # what was checked is what is uploaded
    assert publish["steps"].index(action) == len(publish["steps"]) - 1


def test_the_manifest_is_attached_to_the_github_release_after_publishing() -> None:
    release = _jobs()["release"]
    assert release["needs"] == ["publish"] and release["permissions"] == {"contents": "write"}
    assert "refs/tags/v" in release["if"]
    script = _runs(release)
    assert f'gh release upload "$TAG" manifest/{MANIFEST_NAME}' in script and "--verify-tag" in script
