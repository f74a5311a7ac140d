"""`wheels`: the staged matrix as wheels in dist/ — one core wheel (binding, core libraries, every CPU
variant, Metal on macOS) and one plugin wheel per GPU backend — after running whatever earlier stage
is missing or stale (apply-patches, sync, build). Which preset goes into which wheel is read from the
presets (their vendor block), not declared again here.
"""

from __future__ import annotations

import json
import os
import re
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import cmake_tool, ui
from ..builder.driver import (
    BuildReport,
    BuildRequest,
    PresetResult,
    SubsetMissing,
    require_current_vendor,
    run_build,
)
from ..builder.platforms import resolve
from ..builder.presets import Matrix, host_system, load_matrix
from ..builder.summary import size_text
from ..config import STAGE_FOLDER, WHEEL_FOLDER, Config
from ..errors import BuildFailed, OutOfDate, UsageError
from ..vendoring.apply_patches import run_apply_patches
from ..vendoring.sync import run_sync
from . import pages
from .family_wheels import write_family_wheels
from .pages import driver_floor_text
from .project_table import load_project_table, project_license
from .release_record import RECORD_NAME, PatchEntry, patch_entries, preset_coverage, record_bytes, wheel_record
from .sdist import write_sdist
from .wheelfile import ZIP_EPOCH_MINIMUM, WheelFile, WheelSpec, metadata_text, normalise, write_wheel

CORE_DISTRIBUTION = "llama-cpp-runtime"
CORE_PACKAGE = "llama_cpp_runtime"
BINDING_SOURCE = Path(__file__).resolve().parents[2] / "bindings" / "python" / CORE_PACKAGE
ENTRY_POINT_GROUP = "llama_cpp_runtime.backends"
REPAIR_TIMEOUT = 600.0
# Never in a wheel: GPU drivers and loaders, and the GPU runtimes users get from the system or NVIDIA's wheels.
REPAIR_EXCLUDES = (
    "libcuda.so.*",
    "libvulkan.so.*",
    "libOpenCL.so.*",
    "libcudart.so.*",
    "libcublas.so.*",
    "libcublasLt.so.*",
    "libnccl.so.*",
    "libamdhip64.so.*",
    "libhipblas.so.*",
    "librocblas.so.*",
    "libhsa-runtime64.so.*",
)
CORE_SONAMES = ("libggml-base.so.*", "libggml.so.*", "libllama.so.*", "libmtmd.so.*")
# Where llama.cpp keeps the licence texts of what it bundles (e.g. licenses/LICENSE-jsonhpp); ggml alone has none.
UPSTREAM_LICENSES = "licenses"
UPSTREAM_LICENSE_PREFIX = "llama.cpp"  # their folder under .dist-info/licenses/, beside this project's LICENSE


@dataclass(frozen=True, kw_only=True)
class WheelsRequest:
    build: BuildRequest = field(default_factory=BuildRequest)
    version: str = "0.1.0"
    repair: bool = True  # Linux: auditwheel repair (when installed)


@dataclass(frozen=True)
class BuiltWheel:
    path: Path
    distribution: str
    presets: tuple[str, ...]
    files: int
    size: int


def platform_tag(platform: str = "") -> str:
    """The tag before repair: this host's platform, or the one a cross build was for (`--platform`)."""
    cross = resolve(platform) if platform else None
    if cross is not None:
        return f"py3-none-{cross.wheel_platform}"
    return "py3-none-" + sysconfig.get_platform().replace("-", "_").replace(".", "_")


def prepare_stages(config: Config, request: WheelsRequest) -> BuildReport:
    """Whatever earlier stage is missing or stale (apply-patches, sync), then the build."""
    try:
        return run_build(config, request.build)  # refuses a stale vendor/ before building anything
    except SubsetMissing:
        raise  # the subset lacks what the CMake needs: syncing the same subset again would refuse the same
    except OutOfDate as stale:
        ui.info(f"{stale.message}: running apply-patches and sync first")
    run_apply_patches(config)
    run_sync(config)
    return run_build(config, request.build)


def package(config: Config, report: BuildReport, request: WheelsRequest) -> list[BuiltWheel]:
    """Wheels in dist/ from the presets the report says were built."""
    built = [r for r in report.results if r.status == "built"]
    if not any(r.preset.wheel == CORE_DISTRIBUTION for r in built) and not request.build.presets:
        raise UsageError("nothing to package: the cpu preset was not built")
    epoch = source_date_epoch()
    wheels: list[BuiltWheel] = []
    for distribution in dict.fromkeys(r.preset.wheel for r in built):
        results = [r for r in built if r.preset.wheel == distribution]
        with ui.step(f"wheel {distribution}"):
            wheel = _write(config, distribution, results, report.provenance, request.version, epoch, report.platform)
        if request.repair and sys.platform.startswith("linux"):
            wheel = repair_linux_wheel(wheel, epoch, config)
        wheels.append(wheel)
    return wheels + package_families(config, request.version, epoch)


def source_date_epoch() -> int:
    """Every wheel entry's timestamp: without SOURCE_DATE_EPOCH 1980-01-01, the same bytes on every build."""
    return int(os.environ.get("SOURCE_DATE_EPOCH", ZIP_EPOCH_MINIMUM))


def package_families(config: Config, version: str, epoch: int) -> list[BuiltWheel]:
    """The family wheels (llama-cpp-runtime-cuda13: every architecture family) that dist/ completes."""
    families = load_matrix().family_members()
    outcome = write_family_wheels(config.root / WHEEL_FOLDER, families, version=version, epoch=epoch)
    for reason in outcome.incomplete:
        ui.info(reason)
    return [BuiltWheel(path, family, (), 0, path.stat().st_size) for family, path in outcome.written]


def repair_linux_wheel(wheel: BuiltWheel, epoch: int, config: Config) -> BuiltWheel:
    """auditwheel: check the wheel against the manylinux policies and retag it, never bundling a GPU
    driver, loader or runtime (those come from the system or from NVIDIA's wheels) nor, for plugins,
    the core libraries (they come from the llama-cpp-runtime wheel)."""
    exclusions = [*REPAIR_EXCLUDES, *([] if wheel.distribution == CORE_DISTRIBUTION else CORE_SONAMES)]
    excluded = [option for pattern in exclusions for option in ("--exclude", pattern)]
    args = [sys.executable, "-m", "auditwheel", "repair", *excluded, "-w", str(wheel.path.parent), str(wheel.path)]
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch)}
    with ui.step(f"auditwheel repair {wheel.distribution}"):
        outcome = cmake_tool.run(args, env=env, timeout=REPAIR_TIMEOUT)
        written = re.search(r"Fixed-up wheel written to (\S+\.whl)", "\n".join(outcome.stdout + outcome.stderr))
        if not outcome.ok or not written:
            if "No module named auditwheel" in "\n".join(outcome.stderr):
                ui.warn("auditwheel is not installed: the wheel keeps its linux tag (nox -s wheels installs it)")
                return wheel
            for line in outcome.stderr[-15:]:
                ui.replay(line)
            raise BuildFailed(f"auditwheel could not repair {wheel.path.name}")
    repaired = Path(written[1])
    if repaired != wheel.path:
        wheel.path.unlink()
    return BuiltWheel(repaired, wheel.distribution, wheel.presets, wheel.files, repaired.stat().st_size)


def _stage_files(result: PresetResult, package: str) -> dict[str, WheelFile]:
    """The stage under the package directory, each library once: a SONAME link becomes the file."""
    stage = result.stage
    assert stage is not None, f"{result.preset.name} was not built"
    files: dict[str, WheelFile] = {}
    replaced: set[str] = set()
    for staged in result.files:
        path = stage / staged.path
        if staged.symlink_to:
            target = path.resolve()
            replaced.add(target.relative_to(stage.resolve()).as_posix())
            files[f"{package}/{staged.path}"] = WheelFile(target.read_bytes(), executable=True)
    for staged in result.files:
        if staged.symlink_to or staged.path in replaced:
            continue
        files[f"{package}/{staged.path}"] = WheelFile(
            (stage / staged.path).read_bytes(), executable=staged.kind in {"core", "module", "program"}
        )
    files[f"{package}/stage.json"] = WheelFile((stage / "stage.json").read_bytes())
    return files


def _binding_files() -> dict[str, WheelFile]:
    if not BINDING_SOURCE.is_dir():
        raise UsageError(f"the binding is not at {BINDING_SOURCE}", hint="run from a checkout of this repository")
    return {
        f"{CORE_PACKAGE}/{path.relative_to(BINDING_SOURCE).as_posix()}": WheelFile(path.read_bytes())
        for path in sorted(BINDING_SOURCE.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def _description(
    results: list[PresetResult], provenance: Mapping[str, str], *, patches: Sequence[PatchEntry] = ()
) -> str:
    """The "Build" section of a page: the pin, the patches, each preset's GGML_ options, the driver floor."""
    lines = [
        f"Built from upstream commit `{provenance['commit']}` with patch series sha256 "
        f"`{provenance['patch_series_sha256']}`.",
        "",
    ]
    if provenance.get("llama_cpp_python"):
        lines[1:1] = [
            "",
            f"Serves llama-cpp-python {provenance['llama_cpp_python']} (the release that vendors that "
            'llama.cpp): `llama_cpp_runtime.use_for("llama_cpp")`.',
        ]
    if patches:
        lines += [f"Patches: {', '.join(f'`{p.name}`' for p in patches)}.", ""]
    lines += [
        f"The same record, with each patch's sha256 and what this wheel covers, is `{RECORD_NAME}` in its "
        ".dist-info folder; every file of a release is listed with its sha256 in `release-manifest.json` on "
        "the release page.",
        "",
    ]
    for result in results:
        options = " ".join(f"{k}={v}" for k, v in sorted(result.options.items()) if k.startswith("GGML_"))
        lines.append(f"- preset `{result.preset.name}`: {options}")
    floors = dict.fromkeys(text for result in results if (text := driver_floor_text(result.preset.driver_floor)))
    for text in floors:
        lines += ["", f"Needs {text}: the binding skips its module, naming both versions, under an older one."]
    return "\n".join(lines) + "\n"


def license_files(config: Config) -> dict[str, bytes]:
    """The licence texts a built wheel carries (PEP 639): this project's (the binding, the plugin packages),
    llama.cpp's own LICENSE, and every third-party text in the vendored tree's licenses/ folder."""
    vendored = config.sync.destination
    upstream = vendored / "LICENSE"
    if not upstream.is_file():
        raise UsageError(
            f"{config.relative(upstream)} is missing: a wheel must carry the licence of what it ships",
            hint='add "LICENSE" (and "licenses/") to [sync] include in vendoring.toml, then run sync',
        )
    files = {**project_license(), f"{UPSTREAM_LICENSE_PREFIX}/LICENSE": upstream.read_bytes()}
    bundled = vendored / UPSTREAM_LICENSES
    for path in sorted(bundled.rglob("*")) if bundled.is_dir() else ():
        if path.is_file():
            files[f"{UPSTREAM_LICENSE_PREFIX}/{path.relative_to(vendored).as_posix()}"] = path.read_bytes()
    return files


def _stage_record(result: PresetResult) -> dict[str, Any]:
    assert result.stage is not None, f"{result.preset.name} was not built"
    document: dict[str, Any] = json.loads((result.stage / "stage.json").read_text(encoding="utf-8"))
    return document


def _write(
    config: Config,
    distribution: str,
    results: list[PresetResult],
    provenance: Mapping[str, str],
    version: str,
    epoch: int,
    platform: str = "",
) -> BuiltWheel:
    table = load_project_table()
    matrix = load_matrix()
    patches = patch_entries(config.patches, provenance["patch_series_sha256"])
    coverage = [preset_coverage(_stage_record(result)) for result in results]
    build = _description(results, provenance, patches=patches)
    kind = "core" if distribution == CORE_DISTRIBUTION else "program" if results[0].preset.ships_program else "plugin"
    record = wheel_record(
        distribution=distribution, version=version, kind=kind, upstream=provenance, patches=patches, presets=coverage
    )
    common = {
        **table.wheel_metadata(),
        "license_files": license_files(config),
        "dist_info_files": {RECORD_NAME: record_bytes(record)},
    }
    if kind == "core":
        files = _binding_files()
        for result in results:
            files.update(_stage_files(result, CORE_PACKAGE))
        served = provenance.get("llama_cpp_python", "")
        page = pages.core_page(table=table, matrix=matrix, coverage=coverage, llama_cpp_python=served, build=build)
        spec = _core_spec(matrix, version, platform_tag(platform), page, common)
    elif any(result.preset.ships_program for result in results):
        package = normalise(distribution)
        files = {f"{package}/__init__.py": WheelFile(_PROGRAM_INIT.format(distribution=distribution).encode())}
        for result in results:
            files.update(_stage_files(result, package))
        spec = WheelSpec(
            distribution=distribution,
            version=version,
            tag=platform_tag(platform),
            summary="llama.cpp's llama-server, run on llama-cpp-runtime's libraries and backend plugins",
            description=pages.server_page(table=table, distribution=distribution, build=build),
            requires=[f"{CORE_DISTRIBUTION}=={version}"],
            entry_points={"console_scripts": {PROGRAM: f"{package}:main"}},
            **common,
        )
    else:
        package = normalise(distribution)
        files = {f"{package}/__init__.py": WheelFile(_PLUGIN_INIT.encode())}
        for result in results:
            files.update(_stage_files(result, package))
        preset = results[0].preset
        runtime = dict.fromkeys(dependency for r in results for dependency in r.preset.dependencies)
        spec = WheelSpec(
            distribution=distribution,
            version=version,
            tag=platform_tag(platform),
            summary=f"The ggml {preset.backend} backend for llama-cpp-runtime",
            description=pages.plugin_page(
                table=table, distribution=distribution, presets=[r.preset for r in results], build=build
            ),
            requires=[f"{CORE_DISTRIBUTION}=={version}", *runtime],
            entry_points={ENTRY_POINT_GROUP: {preset.backend: f"{package}:module_dir"}},
            **common,
        )
    path = write_wheel(config.root / WHEEL_FOLDER, spec, files, epoch=epoch)
    return BuiltWheel(path, distribution, tuple(r.preset.name for r in results), len(files), path.stat().st_size)


_PLUGIN_INIT = '''"""A llama-cpp-runtime backend plugin: its module is found through the llama_cpp_runtime.backends
entry point, which calls module_dir()."""

from pathlib import Path


def module_dir() -> str:
    return str(Path(__file__).resolve().parent / "modules")
'''


PROGRAM = "llama-server"
_PROGRAM_INIT = '''"""llama.cpp's llama-server, run by llama-cpp-runtime: the `llama-server` command starts it on the
core libraries, the CPU variant and the backend plugins that llama_cpp_runtime.load() chooses here."""

import sys
from pathlib import Path

DISTRIBUTION = "{distribution}"


def program() -> Path:
    return Path(__file__).resolve().parent / "bin" / ("llama-server.exe" if sys.platform == "win32" else "llama-server")


def main() -> None:
    from llama_cpp_runtime._launch import run_program

    sys.exit(run_program(program(), DISTRIBUTION, sys.argv[1:]))
'''


def warn_other_wheels(config: Config, written: list[BuiltWheel], version: str) -> None:
    """Name the wheels in dist/ that this run did not write. They are listed, never removed: dist/ may hold
    wheels on purpose (members from other jobs that the family wheels complete, another platform's), but
    one of another version beside the new one makes `pip install dist/*.whl` fail on two versions."""
    dist = config.root / WHEEL_FOLDER
    ours = {wheel.path.resolve() for wheel in written}
    others = sorted(p for p in dist.glob("*.whl") if p.resolve() not in ours) if dist.is_dir() else []
    if not others:
        return
    lines = [f"{p.name}{_version_note(p.name, version)}" for p in others]
    ui.warn(
        f"{config.relative(dist)}/ also holds {len(others)} wheel(s) this run did not write "
        "(`pip install dist/*.whl` would install them too; remove those you do not need):\n  "
        + "\n  ".join(ui.bounded(lines))
    )


def _version_note(name: str, version: str) -> str:
    parts = name.split("-")
    return f" (version {parts[1]}, not {version})" if len(parts) >= 5 and parts[1] != version else ""


def render_wheels(wheels: list[BuiltWheel], root: Path) -> list[str]:
    rows = [("wheel", "presets", "files", "size")]
    rows += [
        (w.path.relative_to(root).as_posix(), ",".join(w.presets), str(w.files), size_text(w.size)) for w in wheels
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) for row in rows]


def _core_spec(matrix: Matrix, version: str, tag: str, page: str, common: Mapping[str, Any]) -> WheelSpec:
    """The core's metadata, for its wheel and its sdist: one extra per plugin and per family."""
    plugins = sorted({p.wheel for p in matrix.presets if p.wheel != CORE_DISTRIBUTION} | {*matrix.family_members()})
    extras = {name.removeprefix(f"{CORE_DISTRIBUTION}-"): [f"{name}=={version}"] for name in plugins}
    summary = "ggml and llama.cpp shared libraries with every CPU variant, chosen at run time"
    return WheelSpec(
        distribution=CORE_DISTRIBUTION,
        version=version,
        tag=tag,
        extras=extras,
        summary=summary,
        description=page,
        **common,
    )


# What the wheel an sdist builds may say differently: the page names the CPU variants of the machine that built
# it, and the licence files sit under .dist-info/licenses/ in the wheel, under their own paths in the sdist.
SDIST_DYNAMIC = ("Description", "License-File")


def package_sdist(config: Config, version: str) -> BuiltWheel:
    """dist/llama_cpp_runtime-<version>.tar.gz, whose PKG-INFO is the core wheel's metadata (PEP 643), with the
    page of the core presets last staged here (their CPU variants; none listed when nothing was built)."""
    provenance = require_current_vendor(config)
    if config.llama_cpp_python:
        provenance["llama_cpp_python"] = config.llama_cpp_python
    patches = patch_entries(config.patches, provenance["patch_series_sha256"])
    matrix = load_matrix()
    core_presets = [p for p in matrix.presets if p.wheel == CORE_DISTRIBUTION and p.applies_to(host_system())]
    stages = [config.build_dir / STAGE_FOLDER / p.name / "stage.json" for p in core_presets]
    coverage = [preset_coverage(json.loads(path.read_text(encoding="utf-8"))) for path in stages if path.is_file()]
    table = load_project_table()
    page = pages.core_page(
        table=table,
        matrix=matrix,
        coverage=coverage,
        llama_cpp_python=provenance.get("llama_cpp_python", ""),
        build=_sdist_build_text(provenance, patches),
    )
    destination = config.relative(config.sync.destination)
    licences = {
        name.replace(f"{UPSTREAM_LICENSE_PREFIX}/", f"{destination}/", 1): text
        for name, text in license_files(config).items()
    }
    common = {**table.wheel_metadata(), "license_files": licences, "dynamic": SDIST_DYNAMIC}
    metadata = metadata_text(_core_spec(matrix, version, "", page, common))
    built = write_sdist(
        config, distribution=CORE_DISTRIBUTION, version=version, metadata=metadata, epoch=source_date_epoch()
    )
    return BuiltWheel(built.path, CORE_DISTRIBUTION, ("sdist",), built.files, built.size)


def _sdist_build_text(provenance: Mapping[str, str], patches: Sequence[PatchEntry]) -> str:
    names = ", ".join(f"`{p.name}`" for p in patches) or "none"
    return (
        f"The source of the wheels: upstream commit `{provenance['commit']}` with our patches applied "
        f"(patch series sha256 `{provenance['patch_series_sha256']}`; patches: {names}), the build system and "
        "the binding. `pip install --no-binary llama-cpp-runtime llama-cpp-runtime` builds the `cpu` preset "
        "from it with CMake and Ninja from the package index and the machine's C and C++ compilers; it needs "
        "neither git nor the network beyond the index.\n"
    )
