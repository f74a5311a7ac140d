"""The fault census: one row per bad input or fault, against a copy of one patched, synced project (and the
fixture's build stage for the binding). Each row says how to produce the fault, the exit code, a fragment
of the one-line message, and what must be byte-identical afterwards. No row may print a traceback.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import SECOND_PATCH
from helpers.census import BINDING, Row, Scene, run_row
from helpers.support import PATCH_DAMAGE, Project, apply_our_two_patches
from test_config_errors import CASES, pinned


def _edit(path: str, text: str) -> Callable[[Scene], object]:
    return lambda scene: scene.tracking.write(path, scene.tracking.read(path) + text)


def _commit(path: str, text: str) -> Callable[[Scene], object]:
    def prepare(scene: Scene) -> None:
        scene.tracking.write(path, scene.tracking.read(path) + text)
        scene.tracking.commit("a commit not yet exported")

    return prepare


def _damage_patch(kind: str) -> Callable[[Scene], object]:
    def prepare(scene: Scene) -> None:
        patch = scene.project.patches / SECOND_PATCH
        patch.write_bytes(PATCH_DAMAGE[kind][0](patch.read_bytes()))

    return prepare


def _mid_am(scene: Scene) -> None:
    """A conflict left mid-`git am`: the pin's file changed under the second patch."""
    tracking = scene.tracking
    tracking.git("reset", "--hard", "HEAD~1")
    tracking.write("include/llama.h", "/* rewritten */\n")
    tracking.commit("conflict")
    tracking.git("am", "--3way", str(scene.project.patches / SECOND_PATCH), check=False)


def _model_row(name: str, kind: str, says: str) -> Row:
    return Row(f"model: {name}", (BINDING, "run", f"@model:{kind}", "--prompt", "x"), 2, says)


BUILDSYS_ROWS = [
    # the command line
    Row("cli: unknown command", ("aply-patches",), 2, "invalid choice: 'aply-patches'"),
    Row("cli: --config missing", ("--config", "/nonexistent/vendoring.toml", "status"), 2, "no such file"),
    Row("cli: --backend empty", ("build", "--backend", ""), 2, "--backend"),
    Row("cli: --backend unknown", ("build", "--backend", "nosuch"), 2, "nosuch"),
    Row("cli: --jobs negative", ("build", "--jobs", "-3"), 2, "--jobs -3 is negative"),
    Row("cli: --platform unknown", ("build", "--platform", "linux-riscv64"), 2, "linux-x86_64, linux-aarch64"),
    Row(
        "build: no cross compiler",
        ("build", "--platform", "linux-aarch64"),
        7,
        "aarch64-linux-gnu-gcc is not on PATH\n  hint: apt-get install g++-aarch64-linux-gnu",
        env={"PATH": "/nonexistent"},
    ),
    Row("cli: --wheel-version", ("wheels", "--wheel-version", "not a version!"), 2, "not a version!"),
    Row("cli: bump without target", ("bump",), 2, "bump"),
    Row("cli: bump --continue, no bump", ("bump", "--continue"), 2, "no bump is in progress"),
    Row("cli: bump --abort, no bump", ("bump", "--abort"), 2, "no bump is in progress"),
    Row("cli: bump to an unknown commit", ("bump", "0123456789abcdef0123456789abcdef01234567"), 1, "0123456789ab"),
    Row("cli: bump to an unknown branch", ("bump", "no-such-branch"), 1, "no-such-branch"),
    Row(
        "cli: --upstream unreachable",
        ("--upstream", "/nonexistent/upstream.git", "bump", "main"),
        1,
        "cannot fetch /nonexistent/upstream.git",
    ),
    Row("env: BUILDSYS_CONFIG empty", ("status",), 2, "BUILDSYS_CONFIG is set but empty", env={"BUILDSYS_CONFIG": ""}),
    Row("env: BUILDSYS_UPSTREAM_URL empty", ("status",), 2, "BUILDSYS_UPSTREAM_URL", env={"BUILDSYS_UPSTREAM_URL": ""}),
    Row(
        "env: BUILDSYS_LOCK_TIMEOUT text",
        ("sync",),
        2,
        "is not a number of seconds",
        env={"BUILDSYS_LOCK_TIMEOUT": "soon"},
    ),
    Row("env: BUILDSYS_LOCK_TIMEOUT negative", ("sync",), 2, "is below zero", env={"BUILDSYS_LOCK_TIMEOUT": "-1"}),
    # patch files
    Row("patch: empty", ("apply-patches",), 4, "is not a patch git can apply: it is empty", _damage_patch("empty")),
    Row(
        "patch: CRLF",
        ("apply-patches",),
        4,
        "has CRLF line endings",
        _damage_patch("crlf"),
    ),
    Row(
        "patch: garbage",
        ("apply-patches",),
        4,
        "not git format-patch output",
        _damage_patch("garbage"),
    ),
    Row(
        "patch: no diff",
        ("apply-patches",),
        4,
        "no `diff --git` section",
        _damage_patch("no-diff"),
    ),
    Row(
        "patch: corrupt hunk",
        ("apply-patches",),
        4,
        "corrupt patch",
        _damage_patch("corrupt-hunk"),
        keep=("patches", "vendoring.toml", "vendor"),
    ),
    Row("patch: empty, check", ("check",), 6, "it is empty", _damage_patch("empty")),
    Row(
        "patch: garbage, bump",
        ("bump", "main"),
        4,
        "not git format-patch output",
        _damage_patch("garbage"),
    ),
    Row("patch: CRLF, sync", ("sync",), 5, "patch", _damage_patch("crlf")),
    # work that would be lost
    Row(
        "work: uncommitted edit, apply-patches",
        ("apply-patches",),
        3,
        "uncommitted file(s)",
        _edit("ggml/src/ggml.c", "/* mine */\n"),
    ),
    Row(
        "work: unexported commit, apply-patches",
        ("apply-patches",),
        3,
        "not exported",
        _commit("ggml/src/ggml.c", "/* mine */\n"),
    ),
    Row(
        "work: uncommitted edit, bump", ("bump", "main"), 3, "uncommitted file(s)", _edit("ggml/src/ggml.c", "/*x*/\n")
    ),
    Row(
        "work: hand edit in vendor, sync",
        ("sync",),
        3,
        "edited or added by hand",
        lambda s: s.write("vendor/llama.cpp/ggml/src/ggml.c", "/* by hand */\n"),
    ),
    Row(
        "work: hand edit in vendor, bump",
        ("bump", "main"),
        3,
        "--force",
        lambda s: s.write("vendor/llama.cpp/ggml/src/ggml.c", "/* by hand */\n"),
    ),
    Row("work: mid-am, sync", ("sync",), 3, "in the middle of `git am`", _mid_am, keep=("patches", "vendoring.toml")),
    Row(
        "work: mid-am, create-patches",
        ("create-patches",),
        3,
        "in the middle of `git am`",
        _mid_am,
        keep=("patches", "vendoring.toml"),
    ),
    Row(
        "work: mid-am, apply-patches",
        ("apply-patches",),
        3,
        "in the middle of `git am`",
        _mid_am,
        keep=("patches", "vendoring.toml"),
    ),
    Row(
        "work: damaged HEAD",
        ("apply-patches",),
        3,
        "is a damaged git repository",
        lambda s: (s.tracking.path / ".git/HEAD").unlink(),
    ),
    Row(
        "work: damaged branch",
        ("create-patches",),
        3,
        "does not name a commit",
        lambda s: (s.tracking.path / ".git/refs/heads/patched").write_text("nonsense\n"),
    ),
    Row(
        "work: damaged state file",
        ("status",),
        3,
        "buildsys-state.json",
        lambda s: (s.tracking.path / ".git/buildsys-state.json").write_text('{"base": 12}'),
    ),
    # out of date
    Row(
        "stale: never synced",
        ("build", "--dry-run"),
        5,
        "has not been synced",
        lambda s: shutil.rmtree(s.project.vendor),
        keep=("patches", "vendoring.toml", "tracking"),
    ),
    Row(
        "stale: interrupted sync",
        ("build", "--dry-run"),
        5,
        "interrupted sync",
        lambda s: s.write("vendor/llama.cpp/.buildsys-sync-incomplete.json", "{}"),
        keep=("patches", "vendoring.toml", "tracking"),
    ),
    Row(
        "stale: subset changed",
        ("build", "--dry-run"),
        5,
        "[sync] exclude (+ggml/src/ggml.c ",
        lambda s: s.write(
            "vendoring.toml",
            s.project.root.joinpath("vendoring.toml").read_text() + '[sync]\nexclude = ["ggml/src/ggml.c"]\n',
        ),
    ),
    Row("drift: hand edit", ("check",), 6, "modified", lambda s: s.write("vendor/llama.cpp/ggml/src/ggml.c", "x\n")),
    Row("drift: extra file", ("check",), 6, "extra", lambda s: s.write("vendor/llama.cpp/extra.c", "x\n")),
    Row(
        "stale: no tracking repository",
        ("create-patches",),
        5,
        "no tracking repository at build/upstream",
        lambda s: shutil.rmtree(s.tracking.path),
        keep=("patches", "vendoring.toml", "vendor"),
    ),
    Row(
        "stale: hand edits shown by status",
        ("status",),
        0,
        "1 file(s) edited or added by hand: ggml/src/ggml.c",
        lambda s: s.write("vendor/llama.cpp/ggml/src/ggml.c", "/* by hand */\n"),
    ),
    # the file system
    Row(
        "fs: vendor is a file",
        ("sync",),
        1,
        "a file is where a directory belongs",
        lambda s: s.replace_with_file("vendor/llama.cpp"),
        keep=("patches", "vendoring.toml", "tracking"),
    ),
    Row(
        "fs: patches is a file",
        ("create-patches",),
        1,
        "a file is where a directory belongs",
        lambda s: (s.replace_with_file("patches"), _commit("ggml/src/ggml.c", "/* x */\n")(s)),
        keep=("vendoring.toml", "vendor"),
    ),
    Row(
        "fs: build is a file",
        ("apply-patches",),
        1,
        "a file is where a directory belongs",
        lambda s: s.replace_with_file("build"),
        keep=("patches", "vendoring.toml", "vendor"),
    ),
    Row(
        "fs: vendoring.toml is a directory",
        ("status",),
        2,
        "cannot be read",
        lambda s: ((s.project.root / "vendoring.toml").unlink(), (s.project.root / "vendoring.toml").mkdir()),
        keep=("patches", "tracking", "vendor"),
    ),
    Row(
        "fs: tracking path is a file",
        ("apply-patches",),
        2,
        "exists and is not a git repository",
        lambda s: s.replace_with_file("build/upstream"),
        keep=("patches", "vendoring.toml", "vendor"),
    ),
    Row(
        "fs: patches immutable",
        ("create-patches",),
        1,
        "Operation not permitted",
        lambda s: (_commit("ggml/src/ggml.c", "/* x */\n")(s), s.immutable("patches")),
        keep=("patches", "vendoring.toml", "vendor"),
    ),
    Row(
        "fs: vendor source folder immutable",
        ("sync",),
        1,
        "chattr -i",
        lambda s: (
            s.write(
                "vendoring.toml",
                s.project.root.joinpath("vendoring.toml").read_text() + '[sync]\nexclude = ["ggml/src/ggml.c"]\n',
            ),
            s.immutable("vendor/llama.cpp/ggml/src"),
        ),
        keep=("patches", "tracking"),  # a sync stopped half-way is marked, and the next one completes it
    ),
    # another command at work
    Row("lock: sync", ("sync",), 8, "`sync` (pid", lambda s: s.hold_lock("sync")),
    Row("lock: apply-patches", ("apply-patches",), 8, "`bump` (pid", lambda s: s.hold_lock("bump")),
    Row("lock: create-patches", ("create-patches",), 8, "`wheels` (pid", lambda s: s.hold_lock("wheels")),
    Row("lock: bump", ("bump", "main"), 8, "`build` (pid", lambda s: s.hold_lock("build")),
    Row("lock: build", ("build", "--dry-run"), 8, "`sync` (pid", lambda s: s.hold_lock("sync")),
]

BINDING_ROWS = [
    Row("binding: no command", (BINDING,), 2, "required"),
    Row("binding: unknown command", (BINDING, "nosuch"), 2, "invalid choice"),
    Row(
        "binding: library dir missing",
        (BINDING, "info"),
        2,
        "/nonexistent",
        env={"LLAMA_CPP_RUNTIME_LIBRARY_DIR": "/nonexistent"},
    ),
    Row(
        "binding: library dir empty",
        (BINDING, "info"),
        2,
        "no core libraries in",
        env={"LLAMA_CPP_RUNTIME_LIBRARY_DIR": "@empty"},
    ),
    Row("binding: library dir a file", (BINDING, "info"), 2, "error:", env={"LLAMA_CPP_RUNTIME_LIBRARY_DIR": "@file"}),
    Row(
        "binding: forced variant unknown",
        (BINDING, "info"),
        0,
        "no such variant in the package",
        env={"LLAMA_CPP_RUNTIME_CPU_VARIANT": "nosuch"},
    ),
    Row(
        "binding: backends exclude all",
        (BINDING, "info"),
        0,
        "not in LLAMA_CPP_RUNTIME_BACKENDS=nosuch",
        env={"LLAMA_CPP_RUNTIME_BACKENDS": "nosuch"},
    ),
    Row(
        "binding: plugin dir missing",
        (BINDING, "info"),
        0,
        "core: ggml-base",
        env={"LLAMA_CPP_RUNTIME_PLUGIN_DIRS": "/nonexistent"},
    ),
    Row("binding: bench --size negative", (BINDING, "bench", "--size", "-4"), 2, "-4 is not above zero"),
    Row("binding: bench --size zero", (BINDING, "bench", "--size", "0"), 2, "0 is not above zero"),
    Row("binding: bench --size text", (BINDING, "bench", "--size", "big"), 2, "'big' is not a number"),
    Row("binding: check --timeout negative", (BINDING, "check", "--timeout", "-5"), 2, "-5 is not above zero"),
    Row("binding: check --device unknown", (BINDING, "check", "--device", "NOSUCH"), 2, "no device NOSUCH"),
    Row("binding: bench --device unknown", (BINDING, "bench", "--device", "NOSUCH"), 2, "no device NOSUCH"),
    Row(
        "binding: run -n negative",
        (BINDING, "run", "@model:good", "--prompt", "x", "-n", "-1"),
        2,
        "-1 is not above zero",
    ),
    Row(
        "binding: run --threads zero",
        (BINDING, "run", "@model:good", "--prompt", "x", "--threads", "0"),
        2,
        "0 is not above zero",
    ),
    Row("binding: run without --prompt", (BINDING, "run", "@model:good"), 2, "--prompt"),
    Row(
        "binding: run --device unknown",
        (BINDING, "run", "@model:good", "--prompt", "x", "--device", "NOSUCH"),
        2,
        "no device 'NOSUCH'",
    ),
    Row(
        "binding: a libllama without the model API",
        (BINDING, "run", "@model:good", "--prompt", "x"),
        2,
        "lacks a function the model runtime calls",
    ),
    Row("binding: bench --model missing", (BINDING, "bench", "--model", "/nonexistent.gguf"), 2, "no such file"),
    Row(
        "binding: bench --model -p 0 -n 0",
        (BINDING, "bench", "--model", "@model:good", "-p", "0", "-n", "0"),
        2,
        "one of them above 0",
    ),
    Row(
        "binding: bench --model -r 0", (BINDING, "bench", "--model", "@model:good", "-r", "0"), 2, "0 is not above zero"
    ),
    _model_row("missing", "missing", "no such file"),
    _model_row("a directory", "directory", "is a directory"),
    _model_row("text", "text", "not a GGUF file"),
    _model_row("empty", "empty", "not a GGUF file"),
    _model_row("tensor data cut", "truncated", "truncated: tensor"),
    _model_row("header cut", "header-cut", "truncated or corrupt"),
    _model_row("two tokens alike", "duplicate", "twice"),
    _model_row("GGUF version 99", "version-99", "GGUF version 99 is not supported"),
    _model_row("array longer than the file", "huge-array", "claims 1099511627776 items"),
    _model_row("a FIFO", "fifo", "is not a regular file"),
]

CONFIG_ROWS = [
    Row(
        f"config: {name}",
        ("status",),
        2,
        expected[0],
        lambda s, text=text: s.write("vendoring.toml", pinned(text)),
        keep=("patches", "tracking", "vendor"),
    )
    for name, text, expected in CASES
]

ROWS = CONFIG_ROWS + BUILDSYS_ROWS + BINDING_ROWS


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, built: Project) -> Project:
    """A project pinned at the fixture's third commit with our two patches applied, exported and synced."""
    from helpers.support import hermetic_env, make_upstream

    base = tmp_path_factory.mktemp("census")
    (base / "home").mkdir()
    env = hermetic_env(base / "home")
    upstream, commits = make_upstream(base / "upstream", env)
    (base / "project").mkdir()
    project = Project(base / "project", upstream, commits, env)
    project.configure(commits[2])
    apply_our_two_patches(project)
    return project


@pytest.fixture
def scene(template: Project, built: Project, tmp_path: Path) -> Iterator[Scene]:
    root = tmp_path / "project"
    shutil.copytree(template.root, root, symlinks=True)
    copy = Project(root, template.upstream, template.commits, template.env)
    made = Scene(copy, built.root / "build" / "stage" / "cpu", tmp_path / "scratch")
    made.scratch.mkdir()
    yield made
    for cleanup in made.cleanups:
        cleanup()


def _resolve(scene: Scene, value: str) -> str:
    if value.startswith("@model:"):
        kind = value.removeprefix("@model:")
        if kind == "missing":
            return str(scene.scratch / "missing.gguf")
        if kind == "directory":
            return str(scene.scratch)
        return str(scene.model(kind))
    if value == "@empty":
        (scene.scratch / "empty").mkdir(exist_ok=True)
        return str(scene.scratch / "empty")
    if value == "@file":
        (scene.scratch / "a-file").write_text("x\n")
        return str(scene.scratch / "a-file")
    return value


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_census(scene: Scene, row: Row) -> None:
    row.prepare(scene)
    env = {**scene.project.env, **{k: _resolve(scene, v) for k, v in row.env.items()}}
    if row.args[:1] == (BINDING,):
        env.setdefault("LLAMA_CPP_RUNTIME_LIBRARY_DIR", str(scene.stage))
        command = [sys.executable, "-m", "llama_cpp_runtime", *(_resolve(scene, a) for a in row.args[1:])]
    else:
        command = [sys.executable, "-m", "buildsys", *row.args]
    run_row(scene, row, command, env)


def test_the_census_is_large_enough() -> None:
    assert len(ROWS) >= 100, len(ROWS)
    assert len({row.name for row in ROWS}) == len(ROWS)
