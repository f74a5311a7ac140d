"""`build`: from the synced tree to staged backend modules, one CMake preset at a time.

For each preset that applies to this platform (or each one asked for): detect its toolchains, then
configure, build and install it into `build/stage/<preset>/`. Everything CMake is told comes from the
preset; the driver adds only locations (source and build directories, the Ninja it found, toolchains
CMake would not find alone) and `-D` definitions given explicitly on the command line. A failure in one
preset never hides the others' results.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from .. import cmake_tool, ui
from ..cmake_tool import RunOutcome, Tools
from ..config import LOGS_FOLDER, STAGE_FOLDER, Config
from ..errors import BuildFailed, BuildsysError, ConfigError, OutOfDate, UsageError
from ..vendoring.manifest import Manifest, read_incomplete_marker, read_manifest, staleness
from ..vendoring.patchqueue import read_series, series_hash
from ..vendoring.tracking import TrackingRepo
from ..vendoring.upstream_tree import tree_entries
from . import ccache, reach_record
from .buildlog import FailureSummary, summarise_failure
from .cross import UNBUILDABLE_RECORD, read_unbuildable, toolchain_file
from .platforms import CROSS_PRESETS, NOT_CROSS_BUILT, CrossTarget, resolve
from .presets import CMAKE_DIR, Matrix, Preset, host_system, load_matrix
from .stage import StagedFile, scan_stage, write_stage_record
from .toolchains import Found, Host, Missing, detect

# What CMake says when a changed compiler variable made it delete the cache before configuring again.
CACHE_RESET = "You have changed variables that require your cache to be deleted"
Status = Literal["built", "configured", "failed", "skipped", "planned"]
CONFIGURE_TIMEOUT = 30 * 60.0
BUILD_TIMEOUT = 6 * 3600.0  # one CUDA architecture of real ggml takes ~35 min on 2 cores
INSTALL_TIMEOUT = 10 * 60.0


class SubsetMissing(OutOfDate):
    """The synced CMake needs paths the sync subset lacks (exit 5, like a stale input): syncing again cannot help,
    [sync] include has to change."""


@dataclass(frozen=True, kw_only=True)
class BuildRequest:
    presets: tuple[str, ...] = ()  # empty: every preset that applies here, skipping what cannot be built
    jobs: int = 0  # 0: the cores available
    definitions: Mapping[str, str] = field(default_factory=dict)
    dry_run: bool = False
    fresh: bool = False
    configure_only: bool = False  # e.g. to check a CUDA preset where building it would take hours
    platform: str = ""  # a platform of the wheel matrix to cross-build for ("": this host's own)


@dataclass(kw_only=True)
class PresetResult:
    preset: Preset
    status: Status
    seconds: float = 0.0
    reason: str = ""
    hint: str = ""
    options: dict[str, str] = field(default_factory=dict)
    files: list[StagedFile] = field(default_factory=list)
    toolchain: list[str] = field(default_factory=list)
    cache: str = ""
    log: Path | None = None
    stage: Path | None = None  # build/stage/<preset>, once built
    not_built: dict[str, str] = field(default_factory=dict)  # modules the compiler cannot build, with its words
    toolchain_file: tuple[Path, str] | None = None  # a cross build's: where the driver writes it, and what


@dataclass(frozen=True)
class BuildReport:
    results: tuple[PresetResult, ...]
    requested: tuple[str, ...]
    provenance: Mapping[str, str]  # the synced tree's upstream commit and patch-series hash
    platform: str = ""  # the cross platform built for ("" for this host's own)

    @property
    def failed(self) -> list[PresetResult]:
        return [r for r in self.results if r.status == "failed"]


@dataclass(frozen=True)
class _Layout:
    """Where a preset's build tree, stage and log go: build/<preset>/, or build/<preset>-<platform>/ and so on
    for a cross build, beside the native ones and never in their place."""

    root: Path
    cross: CrossTarget | None = None

    def _name(self, preset: str) -> str:
        return self.cross.suffix(preset) if self.cross else preset

    def binary_dir(self, preset: str) -> Path:
        return self.root / self._name(preset)

    def stage(self, preset: str) -> Path:
        return self.root / STAGE_FOLDER / self._name(preset)

    def log(self, preset: str) -> Path:
        return self.root / LOGS_FOLDER / f"{self._name(preset)}.log"


def report_file(build_dir: Path, report: BuildReport) -> Path:
    """build/build-report.json, or build/build-report-<platform>.json for a cross build."""
    return build_dir / (f"build-report-{report.platform}.json" if report.platform else "build-report.json")


def default_jobs() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def run_build(config: Config, request: BuildRequest, *, env: Mapping[str, str] | None = None) -> BuildReport:
    environment = dict(os.environ if env is None else env)
    matrix = load_matrix()
    cross = resolve(request.platform) if request.platform else None
    system = cross.system if cross else host_system()
    host = Host(env=environment, system=system, definitions=request.definitions, cross=cross)
    if cross is not None:  # nothing can be cross-built without the target's compiler: say which, and its package
        missing = [d for d in detect(["c-compiler"], host) if isinstance(d, Missing)]
        if missing:
            raise BuildFailed(missing[0].reason, hint=missing[0].hint)
    request = replace(request, presets=_preset_names(matrix, request.presets))
    selected = _select(matrix, request.presets, host.system, cross)
    manifest = current_manifest(config)
    provenance = _provenance(manifest)
    if config.llama_cpp_python:  # recorded with the commit: `info` and use_for() name the release served
        provenance["llama_cpp_python"] = config.llama_cpp_python
    defined = [replace(p, cache_variables={**p.cache_variables, **request.definitions}) for p, no in selected if not no]
    refuse_unsynced_paths(config, manifest, defined, fresh=request.fresh)
    tools = cmake_tool.find_tools(environment)
    layout = _Layout(config.build_dir, cross)
    results = []
    for preset, refusal in selected:
        if refusal:
            # a cross build is of the cpu preset: the others are skipped unless asked for by name
            status: Status = "skipped" if cross and refusal == NOT_CROSS_BUILT and not request.presets else "failed"
            results.append(PresetResult(preset=preset, status=status, reason=refusal))
            continue
        results.append(_plan(preset, host, request, layout))
    report = BuildReport(tuple(results), request.presets, provenance, cross.name if cross else "")
    if request.dry_run:
        return report
    cache_env = ccache.environment(tools.ccache, config.root, config.build_dir, environment)
    for result in results:
        if result.status == "planned":
            _build_one(result, config, tools, layout, {**environment, **cache_env}, request, provenance)
    return report


def require_current_vendor(config: Config) -> dict[str, str]:
    """The synced tree's provenance (upstream commit, patch-series hash); refuses as current_manifest does."""
    return _provenance(current_manifest(config))


def _provenance(manifest: Manifest) -> dict[str, str]:
    return {"commit": manifest.commit, "patch_series_sha256": manifest.patch_series_sha256}


def current_manifest(config: Config) -> Manifest:
    """The synced tree's manifest; refuses when it is missing, half-written, or behind the configuration."""
    destination = config.sync.destination
    where = config.relative(destination)
    if read_incomplete_marker(destination) is not None:
        raise OutOfDate(f"{where} holds an interrupted sync", hint="run: nox -s sync")
    manifest = read_manifest(destination)
    if manifest is None:
        raise OutOfDate(f"{where} has not been synced", hint="run: nox -s apply-patches sync")
    current_series = series_hash(read_series(config.patches))
    changes = staleness(manifest, config.upstream.commit, current_series, config.sync.include, config.sync.exclude)
    if changes:
        only_subset = all(change.startswith("[sync]") for change in changes)
        raise OutOfDate(
            f"{where} is stale: {'; '.join(changes)} changed since it was synced",
            hint="run: nox -s sync" if only_subset else "run: nox -s apply-patches sync",
        )
    return manifest


def refuse_unsynced_paths(config: Config, manifest: Manifest, presets: list[Preset], *, fresh: bool = False) -> None:
    """Refuse (exit 5) when the synced CMake reaches a path the sync subset lacks, naming each one. The walk sees
    what CMake will: the presets' cache variables with the `-D` definitions in them and, unless the build starts
    from a fresh cache, what an earlier configure left in each preset's cache. The tracking repository, when
    there is one, says which paths upstream has beyond the subset. Only presets whose check is not remembered
    for these inputs are walked."""
    build_dir = config.build_dir
    if not fresh:
        layout = _Layout(build_dir)
        presets = [_as_configured(p, layout.binary_dir(p.name)) for p in presets]
    presets = reach_record.unchecked(build_dir, config.sync.destination, presets)
    if not presets:
        return
    from . import cmake_reach  # a third of the driver's import time; a remembered check does not need it

    tracking = TrackingRepo(config.tracking)
    upstream = None
    with contextlib.suppress(BuildsysError):  # building needs neither git nor a tracking repository
        if tracking.exists():
            upstream = frozenset(e.path for e in tree_entries(tracking.git, "HEAD") if e.kind == "blob")
    from ..vendoring.upstream_tree import unmatched_includes  # sync's words for it, said once

    typos = [
        f"{unmatched.text}: fix it, then: nox -s sync"
        for unmatched in (unmatched_includes(config.sync.filter, upstream) if upstream is not None else [])
        if unmatched.closest  # a near miss is a typo; a folder some trees lack (licenses/) is only warned about by sync
    ]
    if typos:  # building from a subset that silently lost a folder is refused
        raise ConfigError(typos, source=config.source.name)
    files = cmake_reach.synced_files(config.sync.destination, manifest.files, upstream)
    missing = cmake_reach.missing_for_presets(files, presets)
    if missing:
        raise SubsetMissing(
            f"the synced CMake {cmake_reach.needs(missing)} that {config.relative(config.source)} does not sync",
            details="\n".join(str(m) for m in missing),
            hint="add them to [sync] include, then run: nox -s sync",
        )
    reach_record.remember_checked(build_dir, config.sync.destination, presets)


def _as_configured(preset: Preset, binary_dir: Path) -> Preset:
    """The preset with what its binary folder's CMake cache keeps (nothing from a cache made elsewhere: that
    configure starts from an empty cache)."""
    kept = reach_record.kept_cache_entries(binary_dir)
    return replace(preset, cache_variables={**kept, **preset.cache_variables}) if kept else preset


def _preset_names(matrix: Matrix, requested: tuple[str, ...]) -> tuple[str, ...]:
    """The presets asked for, a family's short name (cuda13) standing for all its members."""
    for name in requested:
        if not matrix.expand(name):
            close = difflib.get_close_matches(name, matrix.names(), n=1)
            suggestion = f" (did you mean {close[0]!r}?)" if close else ""
            raise UsageError(f"no preset named {name!r}{suggestion}", hint=f"presets: {', '.join(matrix.names())}")
    return tuple(dict.fromkeys(name for r in requested for name in matrix.expand(r)))


def _select(
    matrix: Matrix, requested: tuple[str, ...], system: str, cross: CrossTarget | None
) -> list[tuple[Preset, str]]:
    def refusal(preset: Preset) -> str:
        if not preset.applies_to(system):
            return f"this preset does not apply on {cross.name if cross else system}"
        return NOT_CROSS_BUILT if cross and preset.name not in CROSS_PRESETS else ""

    if requested:
        return [(p, refusal(p)) for p in (matrix.get(name) for name in requested)]
    optional = [p.name for p in matrix.presets if not p.default and p.applies_to(system) and not cross]
    if optional:
        ui.info(f"built only when named: {', '.join(optional)} (--backend {','.join(optional)})")
    return [(p, refusal(p)) for p in matrix.presets if p.applies_to(system) and p.default]


def _plan(preset: Preset, host: Host, request: BuildRequest, layout: _Layout) -> PresetResult:
    detections = detect(preset.requires, host)
    missing = [d for d in detections if isinstance(d, Missing)]
    found = [d for d in detections if isinstance(d, Found)]
    options = dict(preset.cache_variables)
    for detection in found:
        options.update(detection.cmake_variables)
    options.update(request.definitions)
    result = PresetResult(preset=preset, status="planned", options=options, toolchain=[d.detail for d in found])
    if missing:
        # a cross build that lacks its compiler is a failure: it was asked for by --platform
        result.status = "failed" if preset.name in request.presets or host.cross else "skipped"
        result.reason = "; ".join(m.reason for m in missing)
        result.hint = "; ".join(dict.fromkeys(m.hint for m in missing))
    elif host.cross is not None:
        compilers: dict[str, str] = {
            k: options.pop(k) for k in ("CMAKE_C_COMPILER", "CMAKE_CXX_COMPILER") if k in options
        }
        emulator = host.which(host.cross.emulator)
        path = layout.root / "toolchains" / f"{host.cross.name}.cmake"
        result.toolchain_file = (path, toolchain_file(host.cross, compilers, emulator))  # a location: not an option
        result.toolchain.append(
            f"{emulator} -L {host.cross.sysroot} (runs the build's probe: llama-abi.json)"
            if emulator
            else f"no {host.cross.emulator}: llama-abi.json is not recorded (apt-get install qemu-user)"
        )
    return result


def _build_one(
    result: PresetResult,
    config: Config,
    tools: Tools,
    layout: _Layout,
    env: dict[str, str],
    request: BuildRequest,
    provenance: Mapping[str, str],
) -> None:
    name = result.preset.name
    binary_dir, stage, log = layout.binary_dir(name), layout.stage(name), layout.log(name)
    log.parent.mkdir(parents=True, exist_ok=True)
    if result.toolchain_file is not None:
        path, text = result.toolchain_file
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:  # unchanged: CMake need not look again
            path.write_text(text, encoding="utf-8")
    log.write_text("", encoding="utf-8")
    result.log = log
    before = None if request.configure_only else ccache.statistics(tools.ccache, env)
    steps = [
        ("configure", _configure_args(result, config, tools, binary_dir, request), CONFIGURE_TIMEOUT),
        ("build", _build_args(result, tools, binary_dir, request), BUILD_TIMEOUT),
        ("install", _install_args(tools, binary_dir, stage), INSTALL_TIMEOUT),
    ]
    if not request.configure_only:
        shutil.rmtree(stage, ignore_errors=True)  # a failed build must not leave an older stage looking current
    moved_from = None if request.fresh else _cache_made_elsewhere(binary_dir)
    for step_name, args, timeout in steps[:1] if request.configure_only else steps:
        if step_name == "configure" and moved_from is not None:  # CMake refuses a cache made in another folder
            step = f"configure {name} from an empty cache (its cache was made in {moved_from}: the project moved)"
            outcome = _run_step(step, [*args, "--fresh"], env, timeout, log)
        else:
            outcome = _run_step(f"{step_name} {name}", args, env, timeout, log)
        if step_name == "configure" and CACHE_RESET in "\n".join(outcome.stderr) and "--fresh" not in args:
            # CMake deleted its cache and configured again without the preset's variables or our -D values
            result.seconds += outcome.seconds
            step = f"configure {name} from an empty cache (CMake reset it: a compiler changed)"
            outcome = _run_step(step, [*args, "--fresh"], env, timeout, log)
        result.seconds += outcome.seconds
        if step_name == "configure" and outcome.ok:  # CMake found what it needed with the cache it wrote
            _record_options(binary_dir, {k: v for k, v in result.options.items() if k not in request.definitions})
            defined = replace(result.preset, cache_variables={**result.preset.cache_variables, **request.definitions})
            configured = _as_configured(defined, binary_dir)
            reach_record.remember_checked(config.build_dir, config.sync.destination, [configured])
        if not outcome.ok:
            result.status = "failed"
            summary = summarise_failure(outcome.stdout, outcome.stderr)
            result.reason = f"{step_name} failed" + (" (timed out)" if outcome.timed_out else "")
            if summary.target:
                result.reason += f" at {summary.target.rsplit('/', 1)[-1]}"
            _replay(outcome, summary, log, config)
            return
    if before is None:
        result.status = "configured"
        return
    result.cache = ccache.describe(before, ccache.statistics(tools.ccache, env))
    result.stage = stage
    result.files = scan_stage(stage)
    result.not_built = read_unbuildable(binary_dir / UNBUILDABLE_RECORD)
    write_stage_record(
        stage,
        preset=name,
        backend=result.preset.backend,
        provenance=provenance,
        options=result.options,
        requires=result.preset.requires,
        files=result.files,
        driver_floor=result.preset.driver_floor,
        platform=layout.cross.name if layout.cross else "",
        not_built=result.not_built,
    )
    result.status = "built"


def _cache_made_elsewhere(binary_dir: Path) -> str | None:
    """The folder an existing CMake cache was made in, when it is not this one (a copied or moved project)."""
    cache = reach_record.read_cmake_cache(binary_dir)
    return None if cache is None else cache.made_elsewhere(binary_dir)


def _configure_args(
    result: PresetResult, config: Config, tools: Tools, binary_dir: Path, request: BuildRequest
) -> list[str]:
    located = {
        "LLAMA_CPP_RUNTIME_SOURCE_DIR": str(config.sync.destination),
        "CMAKE_MAKE_PROGRAM": str(tools.ninja),
    }
    if result.toolchain_file is not None:
        located["CMAKE_TOOLCHAIN_FILE"] = str(result.toolchain_file[0])
    # The preset's own values come from the preset; only what differs from it is passed.
    differing = {k: v for k, v in result.options.items() if result.preset.cache_variables.get(k) != v}
    definitions = {**located, **differing}
    args = [str(tools.cmake), "--preset", result.preset.name, "-S", str(CMAKE_DIR), "-B", str(binary_dir)]
    if request.fresh:
        args.append("--fresh")
    # A cache entry keeps its value when nothing sets it again: an option the preset no longer sets is removed,
    # so that the tree builds what the report says (GGML_RPC dropped from a preset stayed ON). What the user
    # set with -D is not recorded, and stays as CMake keeps it.
    dropped = [] if request.fresh else sorted(set(_recorded_options(binary_dir)) - set(result.options))
    return args + [f"-U{key}" for key in dropped] + [f"-D{key}={value}" for key, value in sorted(definitions.items())]


OPTIONS_RECORD = "buildsys-options.json"  # in the binary folder: the preset's options at its last configure


def _record_options(binary_dir: Path, options: Mapping[str, str]) -> None:
    (binary_dir / OPTIONS_RECORD).write_text(json.dumps(dict(sorted(options.items())), indent=1), encoding="utf-8")


def _recorded_options(binary_dir: Path) -> dict[str, str]:
    try:
        recorded = json.loads((binary_dir / OPTIONS_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in recorded.items()} if isinstance(recorded, dict) else {}


def _build_args(result: PresetResult, tools: Tools, binary_dir: Path, request: BuildRequest) -> list[str]:
    args = [str(tools.cmake), "--build", str(binary_dir), "--parallel", str(request.jobs or default_jobs())]
    if result.preset.build_targets:
        args += ["--target", *result.preset.build_targets]
    return args


def _install_args(tools: Tools, binary_dir: Path, stage: Path) -> list[str]:
    return [str(tools.cmake), "--install", str(binary_dir), "--component", "stage", "--prefix", str(stage), "--strip"]


def _run_step(name: str, args: list[str], env: Mapping[str, str], timeout: float, log: Path) -> RunOutcome:
    with ui.step(name) as ticker:
        outcome = cmake_tool.run(
            args,
            env=env,
            timeout=timeout,
            log=log,
            cwd=CMAKE_DIR,
            on_progress=lambda done, total: ticker.progress(f"[{done}/{total}]"),
        )
        if not outcome.ok:
            ticker.fail()
    return outcome


def _replay(outcome: RunOutcome, summary: FailureSummary, log: Path, config: Config) -> None:
    """The failing command and the lines that explain it; the whole log stays on disk."""
    if outcome.timed_out:
        ui.warn(f"timed out after {outcome.seconds:.0f}s")
    if summary.target:
        ui.replay(f"FAILED: {summary.target}")
    if summary.command:
        ui.replay(f"$ {summary.command}")
    for line in summary.lines:
        ui.replay(line)
    ui.replay(f"(full log: {config.relative(log)})")


def raise_if_failed(report: BuildReport) -> None:
    if report.failed:
        names = ", ".join(r.preset.name for r in report.failed)
        raise BuildFailed(f"not built: {names}", hint="see the table above; logs are in build/logs/")
