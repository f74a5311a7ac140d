"""Command line: parse arguments, run one command, turn typed errors into messages and exit codes."""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__, ui
from .config import CONFIG_NAME, PUBLIC_VERSION, UPSTREAM_URL_VARIABLE, Config, load_config
from .errors import BuildsysError, ConfigError, Terminated, UsageError, exit_status, from_os_error
from .project_lock import WRITING_COMMANDS, project_lock

if TYPE_CHECKING:
    from .builder.driver import BuildReport, BuildRequest


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m buildsys", description="Vendor llama.cpp with a patch queue.")
    parser.add_argument("--version", action="version", version=f"buildsys {__version__}")
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"path to {CONFIG_NAME} (default: $BUILDSYS_CONFIG, else ./{CONFIG_NAME})",
    )
    parser.add_argument("--upstream", metavar="URL", help=f"upstream URL or path (overrides {UPSTREAM_URL_VARIABLE})")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only warnings and errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        command.add_arguments(commands.add_parser(name, help=command.help, description=command.help))
    return parser


def _add_bump_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("target", nargs="?", help="upstream commit (full or abbreviated), tag or branch")
    sub.add_argument(
        "--continue",
        dest="resume",
        action="store_true",
        help="go on after a conflict was resolved (`git am --continue`) or skipped (`git am --skip`)",
    )
    sub.add_argument("--abort", action="store_true", help="abandon the bump: back to the pinned commit + patches/")


def _run_bump_command(arguments: argparse.Namespace, config: Config) -> None:
    from .upkeep.bump import abort_bump, continue_bump, run_bump

    given = [bool(arguments.target), arguments.resume, arguments.abort]
    if sum(given) != 1:
        raise UsageError("bump takes exactly one of: a commit/tag/branch, --continue, --abort")
    if arguments.abort:
        abort_bump(config)
        return
    result = continue_bump(config) if arguments.resume else run_bump(config, arguments.target)
    if result is not None:
        print(result.summary, end="", flush=True)
        if result.summary_path:
            ui.info(f"  summary for the pull request: {config.relative(result.summary_path)}")


def _add_build_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--backend",
        "--preset",
        dest="presets",
        action="append",
        default=[],
        metavar="NAMES",
        help="comma-separated presets to build, failing if one cannot be (default: all that apply, skipping "
        "those without a toolchain)",
    )
    sub.add_argument("-j", "--jobs", type=int, default=0, help="parallel compile jobs (default: the cores available)")
    sub.add_argument(
        "-D",
        dest="definitions",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra CMake definition, on top of the preset (shown in the report)",
    )
    sub.add_argument("--dry-run", action="store_true", help="show what would be built or skipped, and why")
    sub.add_argument("--fresh", action="store_true", help="configure from an empty CMake cache")
    sub.add_argument("--configure-only", action="store_true", help="stop after configuring each preset")
    sub.add_argument(
        "--platform",
        default="",
        metavar="NAME",
        help="a platform of the wheel matrix to build for (default: this host's); linux-aarch64 is cross-built "
        "on linux-x86_64 (the cpu preset, with Debian's g++-aarch64-linux-gnu), into build/<preset>-<platform>/",
    )


def _build_request(arguments: argparse.Namespace) -> BuildRequest:
    from .builder.driver import BuildRequest

    presets = tuple(name.strip() for value in arguments.presets for name in value.split(",") if name.strip())
    if arguments.presets and not presets:
        raise UsageError("--backend names no preset", hint="e.g. --backend cpu,vulkan; leave it out to build them all")
    definitions = {}
    for definition in arguments.definitions:
        name, equals, value = definition.partition("=")
        if not equals or not name:
            raise UsageError(f"-D {definition!r} is not NAME=VALUE")
        definitions[name.split(":", 1)[0]] = value
    if arguments.jobs < 0:
        raise UsageError(f"--jobs {arguments.jobs} is negative")
    return BuildRequest(
        presets=presets,
        jobs=arguments.jobs,
        definitions=definitions,
        dry_run=arguments.dry_run,
        fresh=arguments.fresh,
        configure_only=arguments.configure_only,
        platform=arguments.platform,
    )


def _run_wheels_command(arguments: argparse.Namespace, config: Config) -> None:
    from .builder.platforms import resolve
    from .packaging.wheels import (
        CORE_DISTRIBUTION,
        WheelsRequest,
        package,
        package_families,
        package_sdist,
        prepare_stages,
        render_wheels,
        source_date_epoch,
        warn_other_wheels,
    )

    if arguments.dry_run or arguments.configure_only:
        raise UsageError("wheels needs built stages: --dry-run and --configure-only belong to `build`")
    _checked_version(arguments)
    if arguments.families_only:
        if arguments.presets or arguments.definitions:
            raise UsageError("--families-only builds nothing: it takes no --backend or -D")
        families = package_families(config, arguments.wheel_version, source_date_epoch())
        print("\n".join(render_wheels(families, config.root)), flush=True)
        warn_other_wheels(config, families, arguments.wheel_version)
        return
    request = WheelsRequest(
        build=_build_request(arguments), version=arguments.wheel_version, repair=not arguments.no_repair
    )
    report = prepare_stages(config, request)
    _show_build(report, config, record=True)
    wheels = package(config, report, request)
    # The sdist is one for every platform, and its page names the host's CPU variants: written by a native run.
    native = not request.build.platform or resolve(request.build.platform) is None
    if native and not arguments.no_sdist and any(w.distribution == CORE_DISTRIBUTION for w in wheels):
        with ui.step("sdist llama-cpp-runtime"):
            wheels.append(package_sdist(config, request.version))
    print("\n".join(render_wheels(wheels, config.root)), flush=True)
    warn_other_wheels(config, wheels, request.version)


def _run_sdist_command(arguments: argparse.Namespace, config: Config) -> None:
    from .packaging.wheels import package_sdist, render_wheels

    with ui.step("sdist llama-cpp-runtime"):
        written = package_sdist(config, _checked_version(arguments))
    print("\n".join(render_wheels([written], config.root)), flush=True)


def _run_build_command(arguments: argparse.Namespace, config: Config) -> None:
    from .builder.driver import run_build

    _show_build(run_build(config, _build_request(arguments)), config, record=not arguments.dry_run)


def _show_build(report: BuildReport, config: Config, *, record: bool) -> None:
    """The matrix table on stdout, the same as JSON for CI, and the exit status it implies."""
    from .builder.driver import raise_if_failed, report_file
    from .builder.summary import render, write_json

    print("\n".join(render(report)), flush=True)
    if record:
        write_json(report, report_file(config.build_dir, report))
    raise_if_failed(report)


def _add_sync_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--force", action="store_true", help="discard hand edits in the destination")


def _add_tags_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--pattern", help="a glob over the tag names (default: [upstream] release-tags)")
    sub.add_argument("--newest", action="store_true", help="print only the newest")


def _add_matrix_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--github-output", action="store_true", help="also append the outputs to $GITHUB_OUTPUT")


def _add_wheels_arguments(sub: argparse.ArgumentParser) -> None:
    _add_build_arguments(sub)
    sub.add_argument("--no-repair", action="store_true", help="skip auditwheel (Linux)")
    sub.add_argument(
        "--no-sdist", action="store_true", help="write no source distribution beside the core wheel (`sdist` writes it)"
    )
    sub.add_argument(
        "--families-only",
        action="store_true",
        help="build nothing: write the family wheels (llama-cpp-runtime-cuda13, ...) that the member "
        "wheels already in dist/ complete",
    )
    _add_version_argument(sub)


def _add_version_argument(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--wheel-version",
        default=os.environ.get("LLAMA_CPP_RUNTIME_VERSION", "0.1.0"),
        help="the version of every wheel and the sdist (default: $LLAMA_CPP_RUNTIME_VERSION or 0.1.0)",
    )


def _checked_version(arguments: argparse.Namespace) -> str:
    version: str = arguments.wheel_version
    if not PUBLIC_VERSION.fullmatch(version):
        raise UsageError(
            f"--wheel-version {version!r} is not a PEP 440 version in normal form",
            hint="e.g. 0.3.35, 1.0.0rc1, 0.3.35.post1 (LLAMA_CPP_RUNTIME_VERSION sets the default)",
        )
    return version


def _no_arguments(sub: argparse.ArgumentParser) -> None:
    del sub


# Each command imports its own modules when it runs: a no-op `build` need not load bump, wheels or check.


def _run_apply_patches(arguments: argparse.Namespace, config: Config) -> None:
    from .vendoring.apply_patches import run_apply_patches

    run_apply_patches(config)


def _run_create_patches(arguments: argparse.Namespace, config: Config) -> None:
    from .vendoring.create_patches import run_create_patches

    run_create_patches(config)


def _run_sync(arguments: argparse.Namespace, config: Config) -> None:
    from .vendoring.sync import run_sync

    run_sync(config, force=arguments.force)


def _run_check(arguments: argparse.Namespace, config: Config) -> None:
    from .vendoring.check import run_check

    run_check(config)


def _run_status(arguments: argparse.Namespace, config: Config) -> None:
    from .vendoring.status import status_lines

    print("\n".join(status_lines(config)))


def _run_tags(arguments: argparse.Namespace, config: Config) -> None:
    from .upkeep.upstream_tags import matching_tags, tag_pattern

    tags = matching_tags(config, tag_pattern(config, arguments.pattern))
    print("\n".join(tags[:1] if arguments.newest else tags), flush=True)


def _run_matrix(arguments: argparse.Namespace, config: Config) -> None:
    from .ci.matrix import run_matrix

    output = os.environ.get("GITHUB_OUTPUT", "") if arguments.github_output else None
    print(run_matrix(config, github_output=output))


def _add_release_manifest_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "dist", nargs="?", type=Path, help="the folder of the release's files (default: the project's dist/)"
    )


def _run_release_manifest(arguments: argparse.Namespace, config: Config) -> None:
    from .config import WHEEL_FOLDER
    from .packaging.release_manifest import write_release_manifest

    written = write_release_manifest(arguments.dist or config.root / WHEEL_FOLDER)
    print(written, flush=True)


@dataclass(frozen=True)
class Command:
    help: str
    run: Callable[[argparse.Namespace, Config], None]
    add_arguments: Callable[[argparse.ArgumentParser], None] = _no_arguments


COMMANDS = {
    "apply-patches": Command(
        "fetch the pinned upstream commit into the tracking repository and apply patches/", _run_apply_patches
    ),
    "create-patches": Command(
        "export the tracking repository's commits into patches/ (normalised)", _run_create_patches
    ),
    "sync": Command(
        "copy the filtered tracking HEAD into the destination and write its manifest", _run_sync, _add_sync_arguments
    ),
    "check": Command("prove from scratch that the destination and patches/ are pinned upstream + patches", _run_check),
    "status": Command("show where the tracking repository and the destination stand", _run_status),
    "build": Command(
        "configure, build and stage the CMake presets (backends) this platform can build",
        _run_build_command,
        _add_build_arguments,
    ),
    "wheels": Command(
        "the staged matrix as wheels in dist/ (runs apply-patches, sync and build when needed)",
        _run_wheels_command,
        _add_wheels_arguments,
    ),
    "sdist": Command(
        "the core distribution as dist/llama_cpp_runtime-<version>.tar.gz: the synced tree with our patches, "
        "built by pip where no wheel fits (no git, no network)",
        _run_sdist_command,
        _add_version_argument,
    ),
    "bump": Command(
        "move the pin to another upstream commit, tag or branch, carrying patches/ across",
        _run_bump_command,
        _add_bump_arguments,
    ),
    "tags": Command(
        "upstream's release tags matching a pattern, newest first (--newest: only that one)",
        _run_tags,
        _add_tags_arguments,
    ),
    "matrix": Command(
        "the GitHub Actions wheel matrix derived from the presets, as JSON", _run_matrix, _add_matrix_arguments
    ),
    "release-manifest": Command(
        "write <dist>/release-manifest.json: each file's sha256 and size, the pin, the patches, what each wheel covers",
        _run_release_manifest,
        _add_release_manifest_arguments,
    ),
}


def run(arguments: argparse.Namespace, config: Config) -> None:
    COMMANDS[arguments.command].run(arguments, config)


def report(error: BuildsysError) -> None:
    if isinstance(error, ConfigError):
        for problem in error.problems:
            print(f"error: {error.source}: {problem}", file=sys.stderr)
        return
    print(f"error: {error.message}", file=sys.stderr)
    for line in error.details.splitlines():
        print(f"    {line}", file=sys.stderr)
    for line in error.hint.splitlines():
        print(f"  hint: {line}", file=sys.stderr)


CONFIG_VARIABLE = "BUILDSYS_CONFIG"


def _config_path(given: Path | None) -> Path:
    """--config, else $BUILDSYS_CONFIG (lets `nox -s <session>` work on another project), else ./vendoring.toml."""
    if given:
        return given
    if CONFIG_VARIABLE in os.environ:  # set but empty is a mistake, as BUILDSYS_UPSTREAM_URL="" is
        if not os.environ[CONFIG_VARIABLE].strip():
            raise UsageError(f"{CONFIG_VARIABLE} is set but empty", hint=f"unset it to use ./{CONFIG_NAME}")
        return Path(os.environ[CONFIG_VARIABLE])
    return Path.cwd() / CONFIG_NAME


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    ui.configure(quiet=arguments.quiet)
    if isinstance(sys.stdout, io.TextIOWrapper):  # a path that is not UTF-8 is shown escaped, not a traceback
        sys.stdout.reconfigure(errors="backslashreplace")
    with _termination_as_interrupt():
        return _run_and_report(arguments)


def _run_and_report(arguments: argparse.Namespace) -> int:
    try:
        config = load_config(_config_path(arguments.config), env=os.environ, upstream_override=arguments.upstream)
        writes = arguments.command in WRITING_COMMANDS
        with project_lock(config.root, arguments.command, os.environ) if writes else contextlib.nullcontext():
            run(arguments, config)
    except BuildsysError as error:
        report(error)
        return error.exit_code
    except OSError as error:  # the file system said no (permissions, full disk, a file for a directory)
        if isinstance(error, BrokenPipeError):  # e.g. `... | head`: the reader left; say nothing more
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 141
        failure = from_os_error(error)
        report(failure)
        return failure.exit_code
    except KeyboardInterrupt as interruption:
        print("interrupted", file=sys.stderr)
        return exit_status(interruption)
    return 0


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


@contextlib.contextmanager
def _termination_as_interrupt() -> Iterator[None]:
    """SIGTERM (a CI job cancelled, `kill`) unwinds like Ctrl-C: the `git am` under way is aborted and
    said so, instead of a death that leaves it for the next command to call a conflict."""
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread: leave signals to whoever runs us
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
