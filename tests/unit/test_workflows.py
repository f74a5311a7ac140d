"""The GitHub workflows: linted, pinned, least-privileged, and fed by the one matrix (buildsys.ci.matrix).

Nothing here reaches the network: actionlint, zizmor (--offline) and shellcheck come from the `test` dependency group.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers.support import REPO_ROOT

from buildsys.builder.presets import Matrix, Preset, load_matrix
from buildsys.ci import matrix as ci_matrix
from buildsys.cli import main
from buildsys.errors import ConfigError
from buildsys.vendoring.patchqueue import read_series, series_hash

WORKFLOWS = REPO_ROOT / ".github" / "workflows"
WORKFLOW_NAMES = tuple(sorted(p.name for p in WORKFLOWS.glob("*.y*ml")))  # every workflow is linted and checked
BEFORE_ALL = REPO_ROOT / "wheels" / "manylinux_before_all.sh"
PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[A-Za-z0-9_./-]+)?@[0-9a-f]{40}$")
USES_LINE = re.compile(r"^\s*(?:-\s*)?uses:\s*(\S+)\s*(#.*)?$")
VERSION_COMMENT = re.compile(r"^# v\d+\.\d+\.\d+(\s|$)")

# What the issue asks for, per platform: distribution -> presets in that wheel. CUDA is one wheel per
# architecture family (each under PyPI's file limit); the family wheel requiring them is written at publish.
CUDA_PRESETS = ("cuda12-sm61", "cuda12-sm86", "cuda13-sm75", "cuda13-sm90")
CUDA_WHEELS = {f"llama-cpp-runtime-{name}": (name,) for name in CUDA_PRESETS}
SERVER = {"llama-cpp-runtime-server": ("server",)}
EXPECTED = {
    "linux-x86_64": {
        "llama-cpp-runtime": ("cpu",),
        **CUDA_WHEELS,
        "llama-cpp-runtime-vulkan": ("vulkan",),
        "llama-cpp-runtime-rocm": ("hip",),
        **SERVER,
    },
    "linux-aarch64": {
        "llama-cpp-runtime": ("cpu",),
        **CUDA_WHEELS,
        "llama-cpp-runtime-vulkan": ("vulkan",),
        **SERVER,
    },
    "macos-arm64": {"llama-cpp-runtime": ("cpu", "metal"), **SERVER},
    "windows-x86_64": {
        "llama-cpp-runtime": ("cpu",),
        **CUDA_WHEELS,
        "llama-cpp-runtime-vulkan": ("vulkan",),
        **SERVER,
    },
}


# The only jobs that may write, and what: everything else reads at most.
ALLOWED_WRITES = {
    ("wheels.yml", "publish"): {"id-token"},
    ("wheels.yml", "release"): {"contents"},  # the GitHub release of the tag, and release-manifest.json on it
    ("bump.yml", "pull-request"): {"contents", "pull-requests"},
    ("bump.yml", "conflict-issue"): {"issues"},
}


def _load(name: str) -> dict[Any, Any]:
    document = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def _triggers(document: dict[Any, Any]) -> dict[str, Any]:
    triggers = document.get("on", document.get(True))  # YAML 1.1 reads a bare `on` as true
    assert isinstance(triggers, dict)
    return triggers


def _steps(document: dict[Any, Any]) -> list[dict[str, Any]]:
    return [step for job in document["jobs"].values() for step in job.get("steps", [])]


def _step(job: dict[str, Any], action: str) -> dict[str, Any]:
    """The job's step that uses `action` (owner/name)."""
    return next(step for step in job["steps"] if str(step.get("uses", "")).startswith(f"{action}@"))


def _tool(name: str) -> str:
    """A linter from the `test` group: beside this Python first (a venv need not be on PATH), else on PATH."""
    found = shutil.which(name, path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if found is None:
        pytest.fail(f"{name} is not installed: nox -s tests installs it (pip >= 25.1: pip install --group test)")
    return found


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    tools = os.pathsep.join([str(Path(argv[0]).parent), str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {k: v for k, v in os.environ.items() if k not in {"GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN"}}
    env.update(PATH=tools, NO_COLOR="1")
    return subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


def _assert_clean(result: subprocess.CompletedProcess[str]) -> None:
    command = shlex.join(result.args)
    assert result.returncode == 0, f"{command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"


# ---- (a) the linters -------------------------------------------------------------------------------


def test_actionlint_accepts_the_workflows_and_their_run_scripts() -> None:
    # shellcheck from the test group is on the PATH actionlint sees, so every `run:` script is checked too.
    _tool("shellcheck")
    _assert_clean(_run([_tool("actionlint"), "-no-color", *(str(WORKFLOWS / n) for n in WORKFLOW_NAMES)]))


def test_zizmor_finds_nothing_offline() -> None:
    # --strict-collection: a workflow zizmor cannot parse is an error, not a skipped file.
    _assert_clean(_run([_tool("zizmor"), "--offline", "--strict-collection", "--no-progress", str(WORKFLOWS)]))


def test_shellcheck_accepts_the_container_toolchain_script_and_ci_run() -> None:
    scripts = [BEFORE_ALL, REPO_ROOT / ".ci" / "run", REPO_ROOT / "benchmarks" / "gpu_check.sh"]
    _assert_clean(_run([_tool("shellcheck"), *map(str, scripts)]))


def test_the_three_workflows_exist() -> None:
    assert {"ci.yml", "wheels.yml", "vendor.yml"} <= set(WORKFLOW_NAMES)


# ---- (b) pinned actions, least privilege ------------------------------------------------------------


def test_every_action_is_pinned_to_a_full_commit_with_its_release_in_a_comment() -> None:
    pins: dict[str, set[str]] = {}
    for name in WORKFLOW_NAMES:
        for number, line in enumerate((WORKFLOWS / name).read_text(encoding="utf-8").splitlines(), start=1):
            match = USES_LINE.match(line)
            if not match:
                continue
            where = f"{name}:{number}: {line.strip()}"
            assert PINNED.match(match[1]), f"{where}: not owner/repo@<40-hex commit>"
            assert match[2] and VERSION_COMMENT.match(match[2]), f"{where}: no `# vX.Y.Z` comment naming the release"
            action, commit = match[1].split("@")
            pins.setdefault(action, set()).add(commit)
    uses = [s["uses"] for n in WORKFLOW_NAMES for s in _steps(_load(n)) if "uses" in s]
    assert uses and all(PINNED.match(u) for u in uses)  # the line scan above saw every step that YAML sees
    assert {a: c for a, c in pins.items() if len(c) > 1} == {}, "one action, one commit across the workflows"


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_least_privilege_and_bounded_jobs(name: str) -> None:
    document = _load(name)
    assert document["permissions"] in ({}, {"contents": "read"})
    assert "group" in document["concurrency"]
    for job_name, job in document["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int), f"{job_name}: no timeout-minutes"
        for step in job["steps"]:
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, f"{job_name}: checkout keeps the token"
            assert "${{" not in step.get("run", ""), f"{job_name}: an expression in a run: script (use env:)"
        writes = {k for k, v in job.get("permissions", {}).items() if v == "write"}
        assert writes <= ALLOWED_WRITES.get((name, job_name), set()), f"{job_name}: writes {writes}"


# ---- (c) the generated matrix -----------------------------------------------------------------------


def _entries() -> list[dict[str, Any]]:
    return ci_matrix.github_matrix()["include"]


def test_the_matrix_is_exactly_the_platforms_and_wheels_asked_for() -> None:
    built: dict[str, dict[str, tuple[str, ...]]] = {}
    for entry in _entries():
        built.setdefault(entry["platform"], {})[entry["distribution"]] = tuple(entry["presets"].split(","))
    assert built == EXPECTED


def test_every_preset_is_built_on_some_platform() -> None:
    covered = {name for entry in _entries() for name in entry["presets"].split(",")}
    assert covered == set(load_matrix().names())


def test_each_entry_installs_the_toolchain_its_presets_require() -> None:
    for entry in _entries():
        presets = set(entry["presets"].split(","))
        cuda = [p.split("-")[0].removeprefix("cuda") for p in presets if p.startswith("cuda")]
        assert entry["cuda"] == next(iter(cuda), ""), entry["name"]
        assert entry["cuda_version"].split(".")[0] == entry["cuda"] or not entry["cuda"]
        assert entry["vulkan"] == ("vulkan" in presets), entry["name"]
        assert entry["rocm"] == ("hip" in presets), entry["name"]
        # The core wheel (CPU, and Metal on macOS) is tested everywhere; GPU plugins only with a reason.
        assert (entry["test_skip"] == "") == ("cpu" in presets), entry["name"]
        assert bool(entry["test_skip_reason"]) == bool(entry["test_skip"])


def test_cibuildwheel_builds_exactly_the_identifier_each_platform_declares() -> None:
    cibuildwheel = _tool("cibuildwheel")
    for platform in ci_matrix.PLATFORMS:
        kind = {"Linux": "linux", "Darwin": "macos", "Windows": "windows"}[platform.system]
        result = _run(
            [
                cibuildwheel,
                "--print-build-identifiers",
                "--platform",
                kind,
                "--archs",
                platform.cibw_archs,
                str(REPO_ROOT / "wheels"),
            ]
        )
        _assert_clean(result)
        assert result.stdout.split() == [platform.cibw_build], platform.name


def test_every_exclusion_has_a_reason_and_hides_a_combination_that_would_otherwise_be_built() -> None:
    for exclusion in ci_matrix.EXCLUSIONS:
        platform = next(p for p in ci_matrix.PLATFORMS if p.name == exclusion.platform)
        assert exclusion.reason and load_matrix().get(exclusion.preset).applies_to(platform.system)
    assert ("linux-aarch64", "hip") in {(e.platform, e.preset) for e in ci_matrix.EXCLUSIONS}


def _preset(name: str, requires: tuple[str, ...], *, wheel: str = "w", condition: Any = None) -> Preset:
    return Preset(
        name=name,
        backend=name,
        wheel=wheel,
        requires=requires,
        dependencies=(),
        cache_variables={},
        build_targets=(),
        condition=condition,
    )


def test_a_requirement_ci_cannot_provide_is_an_error_not_a_silent_gap() -> None:
    with pytest.raises(ConfigError) as unknown:
        ci_matrix.toolchain_for([_preset("sycl", ("c-compiler", "sycl"))])
    assert unknown.value.problems == ("sycl: CI does not know how to provide the requirement 'sycl'",)
    with pytest.raises(ConfigError) as two:
        ci_matrix.toolchain_for([_preset("a", ("nvcc-12",)), _preset("b", ("nvcc-13",))])
    assert two.value.problems == ("a, b: one wheel cannot need CUDA 12 and 13",)
    assert ci_matrix.toolchain_for([_preset("m", ("c-compiler", "xcode-metal"))]) == ci_matrix.Toolchain()


def test_a_preset_no_platform_builds_is_an_error() -> None:
    nowhere = {"type": "equals", "lhs": "${hostSystemName}", "rhs": "FreeBSD"}
    bsd = _preset("bsd", (), condition=nowhere)
    matrix = Matrix(presets=(*load_matrix().presets, bsd))
    with pytest.raises(ConfigError) as raised:
        ci_matrix.entries(matrix)
    assert any(problem.startswith("bsd: built on no platform") for problem in raised.value.problems)


def test_an_exclusion_of_nothing_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    stale = ci_matrix.Exclusion(
        platform="macos-arm64", preset="cuda12-sm61", reason="its condition already excludes it"
    )
    monkeypatch.setattr(ci_matrix, "EXCLUSIONS", (*ci_matrix.EXCLUSIONS, stale))
    with pytest.raises(ConfigError) as raised:
        ci_matrix.entries()
    assert raised.value.problems == ("exclusion of cuda12-sm61 on macos-arm64: its condition already does",)


_COMPARISON = re.compile(r"matrix\.(\w+)\s*(?:==|!=)\s*'([^']*)'|contains\(\s*matrix\.(\w+)\s*,\s*'([^']*)'\s*\)")


def _conditions(document: dict[Any, Any]) -> list[str]:
    jobs = document["jobs"].values()
    return [str(item["if"]) for job in jobs for item in [job, *job.get("steps", [])] if "if" in item]


def test_every_matrix_field_and_name_the_wheel_workflow_refers_to_exists() -> None:
    entries = _entries()
    text = (WORKFLOWS / "wheels.yml").read_text(encoding="utf-8")
    fields = set(re.findall(r"(?<![\w.])matrix\.(\w+)", text))
    assert fields and fields <= set(entries[0]), f"unknown matrix fields: {fields - set(entries[0])}"
    values: dict[str, set[str]] = {field: {str(e[field]) for e in entries} for field in entries[0]}
    values["presets"] = set(load_matrix().names())
    values["distribution"] = {p.wheel for p in load_matrix().presets}
    compared = 0
    for condition in _conditions(_load("wheels.yml")):
        for match in _COMPARISON.finditer(condition):
            field, literal = (match[1], match[2]) if match[1] else (match[3], match[4])
            assert literal in values[field] | {""}, f"`{condition}`: no entry has {field} {literal!r}"
            compared += 1
    assert compared  # the conditions were read


# ---- (d) vendor.yml ---------------------------------------------------------------------------------


def test_vendor_workflow_runs_on_pull_requests_touching_the_pin_or_the_patches_only() -> None:
    document = _load("vendor.yml")
    triggers = _triggers(document)
    assert set(triggers) == {"pull_request"}
    assert sorted(triggers["pull_request"]["paths"]) == sorted(
        ["vendoring.toml", "patches/**", ".github/workflows/vendor.yml"]
    )


def test_vendor_workflow_syncs_before_it_checks() -> None:
    runs = [step.get("run", "") for step in _steps(_load("vendor.yml"))]
    sync = next(i for i, run in enumerate(runs) if "nox -s apply-patches sync" in run)
    check = next(i for i, run in enumerate(runs) if run.strip() == "python -m nox -s check")
    assert sync < check


# ---- (e) the build matrix comes from the plan job ---------------------------------------------------


def test_the_build_job_takes_its_matrix_from_the_plan_job_and_the_plan_from_buildsys() -> None:
    jobs = _load("wheels.yml")["jobs"]
    build, plan = jobs["build"], jobs["plan"]
    assert build["needs"] == "plan"
    assert build["strategy"]["matrix"] == "${{ fromJSON(needs.plan.outputs.matrix) }}"
    step_id = re.fullmatch(r"\$\{\{ steps\.([\w-]+)\.outputs\.matrix \}\}", plan["outputs"]["matrix"])
    assert step_id, plan["outputs"]["matrix"]
    step = next(s for s in plan["steps"] if s.get("id") == step_id[1])
    assert step["run"].strip() == "python -m buildsys matrix --github-output"
    for part in ("upstream-commit", "patch-series"):
        assert plan["outputs"][part] == f"${{{{ steps.{step_id[1]}.outputs.{part} }}}}"


def test_every_plugin_wheel_is_installed_with_its_platforms_core_wheel_and_checked() -> None:
    jobs = _load("wheels.yml")["jobs"]
    job = jobs["test-plugins"]
    assert job["strategy"]["matrix"] == "${{ fromJSON(needs.plan.outputs.plugin-tests) }}"
    assert jobs["plan"]["outputs"]["plugin-tests"] == "${{ steps.matrix.outputs.plugin-tests }}"
    downloads = [s["with"]["name"] for s in job["steps"] if s.get("uses", "").startswith("actions/download-artifact")]
    assert downloads == ["${{ matrix.core_artifact }}", "${{ matrix.artifact }}"]
    assert any("wheels/check_plugin.py" in s.get("run", "") for s in job["steps"])

    entries = _entries()
    tested = ci_matrix.plugin_tests()["include"]
    cores = {e["platform"]: e["artifact"] for e in entries if e["test_skip"] == ""}
    assert [t["artifact"] for t in tested] == [e["artifact"] for e in entries if e["test_skip"] == "*"]
    assert all(t["core_artifact"] == cores[t["platform"]] for t in tested)
    assert {t["distribution"] for t in tested if t["lavapipe"]} == {"llama-cpp-runtime-vulkan"}
    assert {t["platform"] for t in tested if t["lavapipe"]} == {"linux-x86_64", "linux-aarch64"}


def test_the_ccache_is_saved_per_pin_and_series_and_a_new_pin_starts_from_the_nearest_older_one() -> None:
    cache = _step(_load("wheels.yml")["jobs"]["build"], "actions/cache/restore")
    key = cache["with"]["key"]
    for part in (
        "matrix.platform",
        "matrix.distribution",
        "needs.plan.outputs.upstream-commit",
        "needs.plan.outputs.patch-series",
    ):
        assert part in key
    fallbacks = [line.strip() for line in cache["with"]["restore-keys"].splitlines() if line.strip()]
    assert all(key.startswith(prefix) for prefix in fallbacks)
    assert fallbacks == sorted(fallbacks, key=len, reverse=True)  # nearest first
    assert fallbacks[-1] == "ccache-${{ matrix.platform }}-${{ matrix.distribution }}-"  # any older pin
    assert cache["with"]["path"] == "${{ runner.temp }}/ccache"


def test_the_linux_container_sees_the_cache_and_the_toolchain_variables() -> None:
    build = _load("wheels.yml")["jobs"]["build"]
    cibuildwheel = _step(build, "pypa/cibuildwheel")
    assert "--volume=${{ runner.temp }}/ccache:/ccache" in cibuildwheel["env"]["CIBW_CONTAINER_ENGINE"]
    assert "'/ccache'" in cibuildwheel["env"]["CCACHE_DIR"]
    passed = tomllib.loads((REPO_ROOT / "wheels" / "pyproject.toml").read_text())["tool"]["cibuildwheel"]
    passed = set(passed["environment-pass"])
    script = set(re.findall(r"\$\{?(CI_\w+)", BEFORE_ALL.read_text()))
    workflow = {name for name in build["env"] if name.startswith("CI_")}
    assert script == workflow and workflow <= passed and "CCACHE_DIR" in passed
    assert build["env"]["LLAMA_CPP_RUNTIME_DISTRIBUTION"] == "${{ matrix.distribution }}"
    assert build["env"]["LLAMA_CPP_RUNTIME_VERSION"] == "${{ needs.plan.outputs.version }}"


def test_publish_uses_trusted_publishing_on_tags_with_every_artifact() -> None:
    jobs = _load("wheels.yml")["jobs"]
    publish = jobs["publish"]
    assert publish["permissions"] == {"id-token": "write"} and publish["environment"]["name"] == "pypi"
    assert "refs/tags/v" in publish["if"] and publish["needs"] == ["build", "test-plugins", "families", "manifest"]
    assert _triggers(_load("wheels.yml"))["push"] == {"tags": ["v*"]}
    download = _step(publish, "actions/download-artifact")
    assert download["with"]["pattern"] == "wheels-*" and download["with"]["merge-multiple"] is True
    assert all(entry["artifact"].startswith("wheels-") for entry in _entries())
    families = jobs["families"]
    assert _step(families, "actions/upload-artifact")["with"]["name"] == "wheels-families"  # published with them
    assert "--families-only" in next(s["run"] for s in families["steps"] if "run" in s)
    assert _step(publish, "pypa/gh-action-pypi-publish")["with"]["packages-dir"] == download["with"]["path"]


# ---- ci.yml -----------------------------------------------------------------------------------------


def test_ci_installs_what_ci_run_installs_and_requires_it() -> None:
    ci_run = (REPO_ROOT / ".ci" / "run").read_text()
    wanted = re.search(r"--no-install-recommends \\\n\s*(.+?) >/dev/null", ci_run)
    assert wanted
    tests = _load("ci.yml")["jobs"]["tests"]
    apt = next(s["run"] for s in tests["steps"] if "apt-get install" in s.get("run", ""))
    assert wanted[1].split() == apt.split("--no-install-recommends")[1].split("\n")[1].split()
    assert "BUILDSYS_REQUIRE_TOOLCHAINS=vulkan,ccache,openblas,real-llama.cpp" in apt
    assert "BUILDSYS_REQUIRE_TOOLCHAINS=vulkan,ccache,openblas" in ci_run and "real-llama.cpp" in ci_run
    assert tests["strategy"]["matrix"]["os"] == ["ubuntu-24.04", "macos-15", "windows-2022"]
    pythons = {tests["strategy"]["matrix"]["python"][0], *(i["python"] for i in tests["strategy"]["matrix"]["include"])}
    assert pythons == {"3.11", "3.x"}  # the oldest supported and the newest release
    real = [s["run"] for s in tests["steps"] if "tests/helpers/real_llama_cpp.py" in s.get("run", "")]
    assert len(real) == 1 and "BUILDSYS_REAL_LLAMA_CPP=" in real[0] and "tests/helpers/real_llama_cpp.py" in ci_run
    runs = [s.get("run", "") for job in _load("ci.yml")["jobs"].values() for s in job["steps"]]
    assert sum("nox -s lint" in r for r in runs) == 1 and sum("nox -s tests" in r for r in runs) == 1


# ---- the CLI ----------------------------------------------------------------------------------------


def test_matrix_command_prints_the_matrix_and_appends_the_step_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "github_output"
    output.write_text("earlier=kept\n")
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    assert main(["--config", str(REPO_ROOT / "vendoring.toml"), "matrix", "--github-output"]) == 0
    assert json.loads(capsys.readouterr().out) == ci_matrix.github_matrix()
    lines = dict(line.split("=", 1) for line in output.read_text().splitlines())
    assert lines["earlier"] == "kept"
    assert json.loads(lines["matrix"]) == ci_matrix.github_matrix()
    assert re.fullmatch(r"[0-9a-f]{40}", lines["upstream-commit"])
    assert lines["patch-series"] == series_hash(read_series(REPO_ROOT / "patches"))


def test_matrix_command_refuses_github_output_outside_actions(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    assert main(["--config", str(REPO_ROOT / "vendoring.toml"), "matrix", "--github-output"]) == 2
    assert "GITHUB_OUTPUT is not set" in capsys.readouterr().err


def test_delvewheel_analyses_the_dlls_the_wheels_carry() -> None:
    """Without --analyze-existing delvewheel looks only at .pyd files: on our wheels (ctypes, no extension
    module) it would do nothing, and MSVC's OpenMP and C++ runtimes would never be bundled."""
    config = tomllib.loads((REPO_ROOT / "wheels" / "pyproject.toml").read_text())
    command = config["tool"]["cibuildwheel"]["windows"]["repair-wheel-command"]
    assert command.startswith("delvewheel repair --analyze-existing ")
    excluded = command.split("--exclude ", 1)[1].split(" ", 1)[0].split(";")
    assert "vcomp140.dll" not in excluded and "msvcp140.dll" not in excluded  # bundled, not excluded


def test_the_ccache_is_saved_even_when_the_build_fails_or_times_out() -> None:
    build = _load("wheels.yml")["jobs"]["build"]
    restore = _step(build, "actions/cache/restore")
    save = _step(build, "actions/cache/save")
    cibuildwheel = _step(build, "pypa/cibuildwheel")
    assert save["if"].startswith("always() && github.ref_type != 'tag'")
    assert save["with"]["key"] == f"${{{{ steps.{restore['id']}.outputs.cache-primary-key }}}}"
    assert save["with"]["path"] == restore["with"]["path"]
    steps = build["steps"]
    assert steps.index(save) > steps.index(cibuildwheel)
    assert cibuildwheel["timeout-minutes"] < build["timeout-minutes"]  # time left to save after a timeout


# ---- bump.yml ---------------------------------------------------------------------------------------


def _runs(job: dict[str, Any]) -> str:
    return "\n".join(str(step.get("run", "")) for step in job["steps"])


def test_the_bump_runs_weekly_and_by_hand_towards_the_newest_release_tag() -> None:
    document = _load("bump.yml")
    triggers = _triggers(document)
    assert len(triggers["schedule"]) == 1 and "workflow_dispatch" in triggers
    assert document["permissions"] == {}
    bump = document["jobs"]["bump"]
    runs = _runs(bump)
    assert "python -m buildsys tags --newest" in runs and 'python -m nox -s bump -- "$TARGET"' in runs
    assert '"$status" -eq 4' in runs  # bump's exit code for a patch conflict
    # a bump that completes is built (the cpu preset), installed, checked and tested before any pull request
    assert "nox -s wheels -- --backend cpu" in runs and "llama_cpp_runtime check" in runs
    assert "python -m nox -s tests" in runs and "real_llama_cpp.py" in runs


def test_the_bump_opens_one_pull_request_or_one_conflict_issue() -> None:
    jobs = _load("bump.yml")["jobs"]
    pull_request, issue = jobs["pull-request"], jobs["conflict-issue"]
    assert pull_request["needs"] == "bump" and "outcome == 'ready'" in pull_request["if"]
    assert issue["needs"] == "bump" and "outcome == 'conflict'" in issue["if"]
    pr_runs = _runs(pull_request)
    assert "gh pr list --head" in pr_runs and "gh pr edit" in pr_runs and "gh pr create" in pr_runs
    assert pr_runs.count('--body-file "$REPORT/bump-summary.md"') == 2
    issue_runs = _runs(issue)
    assert "gh issue list --label" in issue_runs and "gh issue edit" in issue_runs and "bump.log" in issue_runs
