"""The fault census, continued (issue #30): the vendoring and upkeep commands on inputs and faults the second
census found accepted silently, answered with a false or unclear word, or with a traceback. Each row says how
to make the fault, the exit code, a fragment of what buildsys must say, and what must stay byte-identical;
`after` checks what the row is about when that is more than a message (a restored file, a removed scratch).

The rows share the census's Row, Scene and runner (helpers/census.py); their template project is the same
patched, synced one, made here without the fixture's build stage (no row runs the binding).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.census import Row, Scene, run_row
from helpers.support import Project, apply_our_two_patches, hermetic_env, make_upstream

NOT_UTF8 = os.fsdecode(b"caf\xe9-\xff")  # a folder name no UTF-8 decoder accepts


@dataclass(frozen=True)
class UpkeepRow(Row):
    launcher: Callable[[Scene], list[str]] = lambda scene: []  # e.g. a private mount namespace
    after: Callable[[Scene, str], object] = lambda scene, output: None  # checks beyond the message
    timeout: float = 60


@pytest.fixture(scope="module")
def upkeep_template(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A project pinned at the fixture's third commit with two patches applied, exported and synced."""
    base = tmp_path_factory.mktemp("census-upkeep")
    (base / "home").mkdir()
    env = hermetic_env(base / "home")
    upstream, commits = make_upstream(base / "upstream", env)
    upstream.git("checkout", "-q", "-b", "ahead", commits[2])  # a bump target our patches cross cleanly
    upstream.write("src/llama-core.c", upstream.read("src/llama-core.c") + "\n/* upstream moved on */\n")
    upstream.commit("llama: a comment upstream")
    upstream.git("checkout", "-q", "master")
    (base / "project").mkdir()
    project = Project(base / "project", upstream, commits, env)
    project.configure(commits[2])
    apply_our_two_patches(project)
    return project


@pytest.fixture
def scene(upkeep_template: Project, tmp_path: Path) -> Iterator[Scene]:
    root = tmp_path / "project"
    shutil.copytree(upkeep_template.root, root, symlinks=True)
    copy = Project(root, upkeep_template.upstream, upkeep_template.commits, dict(upkeep_template.env))
    made = Scene(copy, tmp_path / "no-stage", tmp_path / "scratch", env={"template": str(upkeep_template.root)})
    made.scratch.mkdir()
    yield made
    for cleanup in made.cleanups:
        cleanup()


# -- preparations --------------------------------------------------------------------------------------

LINUX_PROC = Path("/proc/self/stat").exists()  # the hooks below find buildsys through /proc
REAL_GIT = shutil.which("git") or "git"


def _move_project(name: str) -> Callable[[Scene], object]:
    """The project, as it is, under a folder of another name (a copy, a clone to another place)."""

    def prepare(scene: Scene) -> None:
        moved = scene.project.root.parent / name
        try:
            moved.mkdir()
        except (OSError, UnicodeEncodeError):  # APFS and NTFS take UTF-8 names only
            pytest.skip(f"this file system refuses the folder name {name!r}")
        moved.rmdir()
        shutil.move(scene.project.root, moved)
        scene.project.root = moved

    return prepare


def _resolve(scene: Scene, value: str) -> str:
    if value == "@tree":
        return scene.project.upstream.out("rev-parse", "ahead^{tree}")
    if value == "@blob":
        return scene.project.upstream.out("rev-parse", "ahead:CMakeLists.txt")[:10]
    return value.replace("@scratch", str(scene.scratch)).replace("@root", str(scene.project.root))


def _template(scene: Scene) -> Path:
    return Path(scene.env["template"])


def _append_config(text: str) -> Callable[[Scene], object]:
    return lambda scene: scene.write("vendoring.toml", (scene.project.root / "vendoring.toml").read_text() + text)


def _ahead(scene: Scene) -> str:
    return scene.project.upstream.out("rev-parse", "ahead")


# Installed as a hook of the tracking repository, each removes itself, finds buildsys (the parent of the
# `git am` that runs the hook) and does to it what a user, a CI runner or the kernel would.
KILL_DURING_AM = """#!/bin/sh
rm -f -- "$0"
buildsys=$(cut -d' ' -f4 /proc/$PPID/stat)
kill -9 "$buildsys" "$PPID"
"""
SIGNAL_DURING_AM = """#!/bin/sh
rm -f -- "$0"
buildsys=$(cut -d' ' -f4 /proc/$PPID/stat)
kill -{signal} "$buildsys"
sleep 5
"""
# On PATH ahead of git: SIGKILLs buildsys at its first `git $KILL_AT` (`any`: its first git command of any
# kind) once `$KILL_FILE` holds `$KILL_WHEN`.
KILL_AT_GIT = """#!/bin/sh
if grep -q "$KILL_WHEN" "$KILL_FILE" 2>/dev/null; then
    for arg in any "$@"; do
        if [ "$arg" = "$KILL_AT" ]; then kill -9 "$PPID"; exit 1; fi
    done
fi
exec {git} "$@"
"""


def _hook(scene: Scene, name: str, script: str) -> None:
    if not LINUX_PROC:
        pytest.skip("the hook finds buildsys through /proc")
    scene.tracking.write(f".git/hooks/{name}", script, executable=True)


def _killed(scene: Scene, *args: str, env: dict[str, str] | None = None) -> None:
    """Run buildsys as the row's preparation, expecting it to be killed half-way."""
    scene.project.run(*args, env={**scene.project.env, **(env or {})}, timeout=120, expect=-9)


def _am_killed(*args: str) -> Callable[[Scene], object]:
    def prepare(scene: Scene) -> None:
        _hook(scene, "post-applypatch", KILL_DURING_AM)
        _killed(scene, *args)

    return prepare


def _am_signalled(signal: str) -> Callable[[Scene], object]:
    return lambda scene: _hook(scene, "post-applypatch", SIGNAL_DURING_AM.format(signal=signal))


def _bump_killed_in(phase: str) -> Callable[[Scene], object]:
    """`bump ahead` killed at its next git command once its record says it entered `phase` ("export": it
    is about to rewrite patches/ and vendoring.toml; "sync": it has rewritten them, and not yet cleared its
    record). The trigger is the record itself, not the order of git's calls."""

    def prepare(scene: Scene) -> None:
        shim = scene.scratch / f"bin-{phase}"
        shim.mkdir()
        (shim / "git").write_text(KILL_AT_GIT.format(git=REAL_GIT))
        (shim / "git").chmod(0o755)
        trigger = {
            "PATH": f"{shim}{os.pathsep}{scene.project.env['PATH']}",
            "KILL_WHEN": f'"phase": "{phase}"',
            "KILL_FILE": str(scene.tracking.path / ".git" / "buildsys-state.json"),
            "KILL_AT": "any",  # whichever git command comes first: the order of git's calls does not matter
        }
        _killed(scene, "bump", "ahead", env=trigger)

    return prepare


_bump_killed_after_the_pin = _bump_killed_in("sync")


def _bump_still_recorded(scene: Scene, output: str) -> None:
    """The refusal kept the bump's record: --abort still puts everything back."""
    assert "bump" in scene.project.run("status").stdout
    scene.project.run("bump", "--abort")
    _as_before_the_bump(scene, output)


def _then(*steps: Callable[[Scene], object]) -> Callable[[Scene], object]:
    return lambda scene: [step(scene) for step in steps]


def _global_autocrlf(scene: Scene) -> None:
    home = scene.scratch / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[core]\n\tautocrlf = true\n")
    scene.project.env["HOME"] = str(home)


def _global_attributes_and_hooks(scene: Scene) -> None:
    """~/.gitconfig with core.attributesFile (`*.c text eol=crlf`) and core.hooksPath to a hook that leaves a
    mark: neither may reach the tracking repository (only fetches read the user's configuration)."""
    home = scene.scratch / "home"
    (home / "hooks").mkdir(parents=True)
    (home / "attributes").write_text("*.c text eol=crlf\n*.h text eol=crlf\n")
    for hook in ("post-checkout", "post-applypatch", "post-commit"):
        (home / "hooks" / hook).write_text(f"#!/bin/sh\ntouch {home / 'hook-ran'}\n")
        (home / "hooks" / hook).chmod(0o755)
    (home / ".gitconfig").write_text(
        f"[core]\n\tattributesFile = {home / 'attributes'}\n\thooksPath = {home / 'hooks'}\n"
    )
    scene.project.env["HOME"] = str(home)


def _no_crlf_and_no_hook(scene: Scene, output: str) -> None:
    assert b"\r\n" not in (scene.tracking.path / "ggml/src/ggml.c").read_bytes()
    assert b"\r\n" not in (scene.project.root / "vendor/llama.cpp/ggml/src/ggml.c").read_bytes()
    assert not (scene.scratch / "home" / "hook-ran").exists()


def _old_git(scene: Scene) -> None:
    """A git that says it is 2.31 (it would ignore GIT_CONFIG_GLOBAL): everything else is the real one."""
    shim = scene.scratch / "bin-old-git"
    shim.mkdir()
    (shim / "git").write_text(
        f'#!/bin/sh\nif [ "$1" = version ]; then echo "git version 2.31.8"; exit 0; fi\nexec {REAL_GIT} "$@"\n'
    )
    (shim / "git").chmod(0o755)
    scene.project.env["PATH"] = f"{shim}{os.pathsep}{scene.project.env['PATH']}"


def _link(relative: str, target: str) -> Callable[[Scene], object]:
    return lambda scene: (scene.project.root / relative).symlink_to(target)


def _loop(relative: str) -> Callable[[Scene], object]:
    """`relative` replaced by a symbolic link to itself."""

    def prepare(scene: Scene) -> None:
        path = scene.project.root / relative
        shutil.rmtree(path)
        path.symlink_to(path.name)

    return prepare


def _commit_in_tracking(path: str, text: str, *, allow_empty: bool = False) -> Callable[[Scene], object]:
    def prepare(scene: Scene) -> None:
        if allow_empty:
            scene.tracking.git("commit", "-q", "--allow-empty", "-m", "an empty commit")
            return
        scene.tracking.write(path, scene.tracking.read(path) + text)
        scene.tracking.commit(f"a change to {path}")

    return prepare


def _patch_behind_a_link(scene: Scene) -> None:
    """patches/0001-... is a link to a file outside patches/, and its commit changed since it was exported."""
    shared = scene.scratch / "shared"
    shared.mkdir()
    name = "0001-ggml-mark-our-accumulator.patch"
    shutil.move(scene.project.patches / name, shared / name)
    (scene.project.patches / name).symlink_to(shared / name)
    tracking = scene.tracking
    first, second = tracking.out("rev-parse", "HEAD~1"), tracking.head()
    tracking.git("reset", "-q", "--hard", "HEAD~2")
    tracking.git("cherry-pick", first)
    tracking.write("ggml/src/ggml.c", tracking.read("ggml/src/ggml.c") + "/* and more */\n")
    tracking.git("commit", "-q", "-a", "--amend", "--no-edit")
    tracking.git("cherry-pick", second)


def _pin(spec: str) -> Callable[[Scene], object]:
    def prepare(scene: Scene) -> None:
        path = scene.project.root / "vendoring.toml"
        pinned = scene.project.commits[2]
        path.write_text(path.read_text().replace(pinned, scene.project.upstream.out("rev-parse", spec)))

    return prepare


# -- what the rows check beyond the message --------------------------------------------------------------


def _as_before_the_bump(scene: Scene, output: str) -> None:
    template = _template(scene)
    assert (scene.project.root / "vendoring.toml").read_bytes() == (template / "vendoring.toml").read_bytes()
    assert scene.project.patch_bytes() == {p.name: p.read_bytes() for p in sorted((template / "patches").iterdir())}
    assert "bump" not in scene.project.run("status").stdout
    scene.project.run("check")


def _bumped(scene: Scene, output: str) -> None:
    assert _ahead(scene) in (scene.project.root / "vendoring.toml").read_text()
    assert "applied cleanly" in output or "finishing it" in output, output
    scene.project.run("check")


def _no_am_left(then: tuple[str, ...]) -> Callable[[Scene, str], object]:
    def after(scene: Scene, output: str) -> None:
        assert not (scene.tracking.path / ".git" / "rebase-apply").exists()
        scene.project.run(*then)

    return after


def _no_scratch_left(scene: Scene, output: str) -> None:
    left = [p.name for p in (scene.scratch / "tmp").iterdir()]  # lock files too: none is made any more
    assert left == [], left
    assert len(scene.tracking.out("worktree", "list").splitlines()) == 1
    assert not list((scene.tracking.path / ".git").glob("buildsys-index-*")), "a killed check's index was kept"


def _index_left_by_a_killed_check(scene: Scene) -> list[Path]:
    return list((scene.tracking.path / ".git").glob("buildsys-index-*"))


def _scratch_held_no_checkout(scene: Scene, output: str) -> None:
    """A killed check left no checkout anywhere: not in $TMPDIR (nothing at all there), and in the tracking
    clone's git folder only the throwaway index it applied the queue in (cleared by the next check)."""
    assert [p.name for p in (scene.scratch / "tmp").iterdir()] == []
    folders = _index_left_by_a_killed_check(scene)
    assert len(folders) == 1, folders
    inside = {p.name for p in folders[0].rglob("*")}
    assert inside <= {"index", "index.lock"} and not inside & {"ggml", "src", "include", "common"}, inside


_BACKGROUND: dict[int, subprocess.Popen[bytes]] = {}


def _check_in_background(scene: Scene) -> None:
    """A check that holds its throwaway index for seconds (a slow disk): started, left running."""
    shim = scene.scratch / "bin-slow"
    shim.mkdir()
    (shim / "git").write_text(f'#!/bin/sh\ncase " $* " in *" apply "*) sleep 4;; esac\nexec {REAL_GIT} "$@"\n')
    (shim / "git").chmod(0o755)
    env = {**scene.project.env, "PATH": f"{shim}{os.pathsep}{scene.project.env['PATH']}"}
    command = [sys.executable, "-m", "buildsys", "check"]
    first = subprocess.Popen(command, cwd=scene.project.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    scene.env["first-check"] = str(first.pid)
    scene.cleanups.append(lambda: (first.kill(), first.wait()))
    deadline = time.monotonic() + 30
    while not _index_left_by_a_killed_check(scene) and time.monotonic() < deadline:  # it is applying the queue
        time.sleep(0.05)
    _BACKGROUND[id(scene)] = first


def _both_checks_passed(scene: Scene, output: str) -> None:
    first = _BACKGROUND.pop(id(scene))
    said = first.communicate(timeout=60)[0].decode("utf-8", "replace")
    assert first.returncode == 0 and "no drift" in said, said
    assert not _index_left_by_a_killed_check(scene)


def _check_killed_at_apply(scene: Scene) -> None:
    """`check` killed (SIGKILL) while it applies the queue."""
    (scene.scratch / "tmp").mkdir()
    shim = scene.scratch / "bin-apply"
    shim.mkdir()
    (shim / "git").write_text(KILL_AT_GIT.format(git=REAL_GIT))
    (shim / "git").chmod(0o755)
    trigger = {
        "PATH": f"{shim}{os.pathsep}{scene.project.env['PATH']}",
        "KILL_WHEN": "commit",
        "KILL_FILE": str(scene.project.root / "vendoring.toml"),
        "KILL_AT": "apply",
        "TMPDIR": str(scene.scratch / "tmp"),
    }
    _killed(scene, "check", env=trigger)


def _without_tracking(scene: Scene) -> None:
    shutil.rmtree(scene.tracking.path)


def _in_full_tmpfs(relative: str, size: str) -> Callable[[Scene], list[str]]:
    """As _in_tmpfs(keep=True), and then filled to the last byte."""
    inner = _in_tmpfs(relative, size, keep=True)

    def launcher(scene: Scene) -> list[str]:
        command = inner(scene)
        command[4] = command[4].replace(
            "; shift;", '; dd if=/dev/zero of="$1"/filler bs=1024 2>/dev/null || true; shift;'
        )
        return command

    return launcher


def _still_a_link(scene: Scene, output: str) -> None:
    assert (scene.project.patches / "0001-ggml-mark-our-accumulator.patch").is_symlink()


def _short(scene: Scene, output: str) -> None:
    assert len(output.splitlines()) < 10, output


def _in_tmpfs(relative: str, size: str, *, keep: bool = False) -> Callable[[Scene], list[str]]:
    """Run the command in a private mount namespace where `relative` is a tmpfs of `size` (emptied, or with
    its files copied in): a full disk without root, where user namespaces are allowed."""

    def launcher(scene: Scene) -> list[str]:
        if not shutil.which("unshare") or subprocess.run(["unshare", "-rm", "true"], check=False).returncode:
            pytest.skip("no user and mount namespaces here (unshare -rm) to make a small file system")
        folder = scene.project.root / relative
        folder.mkdir(parents=True, exist_ok=True)
        copy = 'tmp=$(mktemp -d) && cp -a "$1"/. "$tmp"/ && ' if keep else ""
        back = ' && cp -a "$tmp"/. "$1"/' if keep else ""
        script = f'set -e; {copy}mount -t tmpfs -o size={size} tmpfs "$1"{back}; shift; exec "$@"'
        return ["unshare", "-rm", "sh", "-c", script, "sh", str(folder)]

    return launcher


# -- the rows, one group of issue #30 at a time ----------------------------------------------------------

NON_UTF8_ROWS = [
    UpkeepRow(
        f"utf8: a folder name that is not UTF-8, {' '.join(args)}",
        args,
        0,
        says,
        _move_project(NOT_UTF8),
        keep=keep,
    )
    for args, says, keep in [
        (("apply-patches",), "on branch `patched`", ("patches", "vendoring.toml", "vendor")),
        (("create-patches",), "2 unchanged", ("patches", "vendoring.toml", "tracking", "vendor")),
        (("sync",), "53 unchanged", ("patches", "vendoring.toml", "tracking", "vendor")),
        (("sync", "--force"), "53 unchanged", ("patches", "vendoring.toml", "tracking", "vendor")),
        (("bump", "ahead"), "applied cleanly", ()),
    ]
]

BUMP_ROWS = [
    UpkeepRow(
        "bump: killed after it rewrote patches/ and vendoring.toml, --abort",
        ("bump", "--abort"),
        0,
        "put back as they were before it",
        _bump_killed_after_the_pin,
        keep=(),
        after=_as_before_the_bump,
    ),
    UpkeepRow(
        "bump: killed after it rewrote patches/ and vendoring.toml, --continue",
        ("bump", "--continue"),
        0,
        "interrupted while syncing the destination: finishing it",
        _bump_killed_after_the_pin,
        keep=(),
        after=_bumped,
    ),
    UpkeepRow(
        "bump: killed after it rewrote patches/ and vendoring.toml, status",
        ("status",),
        0,
        "(interrupted while syncing the destination)",
        _bump_killed_after_the_pin,
    ),
    UpkeepRow(
        "bump: killed after it rewrote patches/ and vendoring.toml, create-patches",
        ("create-patches",),
        2,
        "was interrupted while syncing the destination; only it may finish patches/ and vendor/llama.cpp/",
        _bump_killed_after_the_pin,
    ),
    UpkeepRow(
        "bump: killed after it rewrote patches/ and vendoring.toml, apply-patches",
        ("apply-patches",),
        2,
        "was interrupted while syncing the destination; only it may finish patches/ and vendor/llama.cpp/",
        _bump_killed_after_the_pin,
        keep=("patches", "vendoring.toml", "tracking", "vendor"),
        after=_bump_still_recorded,
    ),
    UpkeepRow(
        "bump: killed after it rewrote patches/ and vendoring.toml, wheels",
        ("wheels",),
        2,
        "was interrupted while syncing the destination; only it may finish patches/ and vendor/llama.cpp/",
        _bump_killed_after_the_pin,
        keep=("patches", "vendoring.toml", "tracking", "vendor"),
        after=_bump_still_recorded,
    ),
    UpkeepRow(
        "bump: killed as it began rewriting patches/, apply-patches",
        ("apply-patches",),
        2,
        "was interrupted while rewriting patches/ and vendoring.toml; only it may finish",
        _bump_killed_in("export"),
        keep=("patches", "vendoring.toml", "tracking", "vendor"),
        after=_bump_still_recorded,
    ),
    UpkeepRow(
        "bump: killed as it began rewriting patches/, --abort",
        ("bump", "--abort"),
        0,
        "put back as they were before it",
        _bump_killed_in("export"),
        keep=(),
        after=_as_before_the_bump,
    ),
    UpkeepRow(
        "bump: killed as it began rewriting patches/, --continue",
        ("bump", "--continue"),
        0,
        "interrupted while rewriting patches/ and vendoring.toml: finishing it",
        _bump_killed_in("export"),
        keep=(),
        after=_bumped,
    ),
    UpkeepRow(
        "bump: killed after the pin, vendoring.toml edited since, --abort",
        ("bump", "--abort"),
        3,
        "changed since the bump was interrupted",
        _then(_bump_killed_after_the_pin, _append_config("# mine\n")),
    ),
    UpkeepRow(
        "bump: killed during its git am, --continue",
        ("bump", "--continue"),
        0,
        "applied cleanly",
        _am_killed("bump", "ahead"),
        keep=(),
        after=_bumped,
    ),
    UpkeepRow(
        "bump: killed during its git am, --abort",
        ("bump", "--abort"),
        0,
        "its session is aborted",
        _am_killed("bump", "ahead"),
        keep=(),
        after=_as_before_the_bump,
    ),
    UpkeepRow(
        "bump: killed during its git am, status",
        ("status",),
        0,
        "(not a conflict)",
        _am_killed("bump", "ahead"),
    ),
    UpkeepRow(
        "bump: killed during its git am, sync",
        ("sync",),
        3,
        "not a conflict to resolve",
        _am_killed("bump", "ahead"),
    ),
    UpkeepRow(
        "bump: Ctrl-C during its git am",
        ("bump", "ahead"),
        130,
        "was interrupted at patch 1; it is recorded",
        _am_signalled("INT"),
        keep=("patches", "vendoring.toml", "vendor"),
        after=_no_am_left(("bump", "--continue")),
    ),
    UpkeepRow(
        "bump: SIGTERM during its git am",
        ("bump", "ahead"),
        143,
        "`nox -s bump -- --continue` goes on from there",
        _am_signalled("TERM"),
        keep=("patches", "vendoring.toml", "vendor"),
        after=_no_am_left(("bump", "--abort")),
    ),
]

AM_ROWS = [
    UpkeepRow(
        "am: apply-patches killed during git am, apply-patches",
        ("apply-patches",),
        0,
        "its session is aborted",
        _am_killed("apply-patches"),
        keep=("patches", "vendoring.toml", "vendor"),
    ),
    UpkeepRow(
        "am: apply-patches killed during git am, sync",
        ("sync",),
        3,
        "not a conflict to resolve",
        _am_killed("apply-patches"),
        keep=("patches", "vendoring.toml", "vendor"),
    ),
    UpkeepRow(
        "am: apply-patches killed during git am, create-patches",
        ("create-patches",),
        3,
        "`nox -s apply-patches` goes on from there",
        _am_killed("apply-patches"),
        keep=("patches", "vendoring.toml", "vendor"),
    ),
    UpkeepRow(
        "am: apply-patches killed during git am, status",
        ("status",),
        0,
        "(not a conflict)",
        _am_killed("apply-patches"),
    ),
    UpkeepRow(
        "am: Ctrl-C during apply-patches",
        ("apply-patches",),
        130,
        "the `git am` apply-patches started was aborted",
        _am_signalled("INT"),
        keep=("patches", "vendoring.toml", "vendor"),
        after=_no_am_left(("apply-patches",)),
    ),
    UpkeepRow(
        "am: SIGTERM during apply-patches",
        ("apply-patches",),
        143,
        "the `git am` apply-patches started was aborted",
        _am_signalled("TERM"),
        keep=("patches", "vendoring.toml", "vendor"),
        after=_no_am_left(("apply-patches",)),
    ),
    UpkeepRow(
        "am: a full disk during git am",
        ("apply-patches",),
        1,
        "`git am` could not write (No space left on device)",
        lambda s: s.tracking.write(
            ".git/hooks/post-checkout",
            '#!/bin/sh\nrm -f -- "$0"\ndd if=/dev/zero of=.git/filler bs=1024 2>/dev/null\nexit 0\n',
            executable=True,
        ),
        keep=("patches", "vendoring.toml", "vendor"),
        launcher=_in_tmpfs("build/upstream/.git", "4m", keep=True),
    ),
    UpkeepRow(
        "autocrlf: a global core.autocrlf=true, a fresh apply-patches",
        ("apply-patches",),
        0,
        "on branch `patched`",
        _then(_global_autocrlf, lambda s: shutil.rmtree(s.tracking.path)),
        keep=("patches", "vendoring.toml", "vendor"),
    ),
    UpkeepRow(
        "attributes: a global core.attributesFile eol=crlf and core.hooksPath, a fresh apply-patches",
        ("apply-patches",),
        0,
        "on branch `patched`",
        _then(_global_attributes_and_hooks, lambda s: shutil.rmtree(s.tracking.path)),
        keep=("patches", "vendoring.toml", "vendor"),
        after=_no_crlf_and_no_hook,
    ),
    UpkeepRow(
        "attributes: a global core.attributesFile eol=crlf and core.hooksPath, check",
        ("check",),
        0,
        "no drift",
        _global_attributes_and_hooks,
        after=_no_crlf_and_no_hook,
    ),
    UpkeepRow(
        "attributes: a global core.attributesFile eol=crlf and core.hooksPath, bump",
        ("bump", "ahead"),
        0,
        "applied cleanly",
        _global_attributes_and_hooks,
        keep=(),
        after=_no_crlf_and_no_hook,
    ),
    UpkeepRow(
        "autocrlf: a global core.autocrlf=true, check",
        ("check",),
        0,
        "no drift",
        _global_autocrlf,
    ),
    UpkeepRow(
        "autocrlf: a global core.autocrlf=true, bump",
        ("bump", "ahead"),
        0,
        "applied cleanly",
        _global_autocrlf,
        keep=(),
    ),
]

# check applies the queue in a throwaway index in the tracking clone's git folder: it makes no checkout,
# no scratch folder and no lock in $TMPDIR any more. Those rows now check where it still writes (a clone of
# the pin in $TMPDIR when there is no tracking clone; the index otherwise), and that nothing is left.
SCRATCH_ROWS = [
    UpkeepRow(
        "nospace: check with a small TMPDIR and no tracking clone",
        ("check",),
        1,
        "check's scratch clone of the pin",
        _without_tracking,
        env={"TMPDIR": "@scratch/tiny"},
        launcher=_in_tmpfs("../scratch/tiny", "64k"),
        after=_short,
    ),
    UpkeepRow(
        "nospace: check with a full tracking clone",
        ("check",),
        1,
        "build/upstream: `git status` could not write (Out of diskspace)",
        launcher=_in_full_tmpfs("build/upstream/.git", "4m"),
        after=_short,
    ),
    UpkeepRow(
        "nospace: sync on a full disk",
        ("sync", "--force"),
        1,
        "no space left in vendor/llama.cpp: ",
        keep=("patches", "vendoring.toml", "tracking"),
        launcher=_in_tmpfs("vendor", "16k"),
    ),
    UpkeepRow(
        "scratch: what a killed check left, the next check clears",
        ("check",),
        0,
        "no drift",
        _check_killed_at_apply,
        env={"TMPDIR": "@scratch/tmp"},
        after=_no_scratch_left,
    ),
    UpkeepRow(
        "scratch: a killed check left no checkout, only its index",
        ("status",),
        0,
        "up to date",
        _check_killed_at_apply,
        after=_scratch_held_no_checkout,
    ),
    UpkeepRow(
        "scratch: two checks at once do not refuse each other",
        ("check",),
        0,
        "no drift",
        _check_in_background,
        after=_both_checks_passed,
    ),
]

LOCK_ROWS = [
    UpkeepRow(
        "lock: a caller with another TMPDIR",
        ("sync",),
        8,
        "`apply-patches` (pid",
        lambda s: s.hold_lock("apply-patches"),
        env={"TMPDIR": "@scratch"},
    ),
    UpkeepRow(
        "lock: another TMPDIR, bump",
        ("bump", "main"),
        8,
        "`sync` (pid",
        lambda s: s.hold_lock("sync"),
        env={"TMPDIR": "@scratch"},
    ),
    UpkeepRow(
        "lock: BUILDSYS_LOCK_TIMEOUT nan, while another command works",
        ("sync",),
        2,
        "'nan' is not a number of seconds",
        lambda s: s.hold_lock("sync"),
        env={"BUILDSYS_LOCK_TIMEOUT": "nan"},
        timeout=30,
    ),
    UpkeepRow(
        "lock: BUILDSYS_LOCK_TIMEOUT NaN, alone",
        ("create-patches",),
        2,
        "`inf` waits",
        env={"BUILDSYS_LOCK_TIMEOUT": "NaN"},
    ),
]

PATTERN_ROWS = [
    UpkeepRow(
        "pattern: an include that matches nothing, sync",
        ("sync",),
        0,
        "[sync] include 'ggm/' matches no upstream path (did you mean 'ggml/'?)",
        _append_config('[sync]\ninclude = ["CMakeLists.txt", "ggm/", "src/", "include/"]\n'),
        keep=("patches", "vendoring.toml", "tracking"),
    ),
    UpkeepRow(
        "pattern: an include that matches nothing, check",
        ("check",),
        6,
        "[sync] include 'includ' matches no upstream path (did you mean 'include'?)",
        _append_config('[sync]\ninclude = ["CMakeLists.txt", "ggml/", "src/", "includ"]\n'),
    ),
    UpkeepRow(
        "pattern: status caps a long list of changed patterns",
        ("status",),
        0,
        "+ggml/src/f5.c and 35 more",
        _append_config("[sync]\ninclude = [" + ", ".join(f'"ggml/src/f{i}.c"' for i in range(30)) + "]\n"),
    ),
]

QUEUE_ROWS = [
    UpkeepRow(
        "queue: an empty commit, create-patches",
        ("create-patches",),
        2,
        "change no file (empty commits), so no patch can carry them; nothing was written",
        _commit_in_tracking("", "", allow_empty=True),
    ),
    UpkeepRow(
        "queue: a commit outside the subset, create-patches",
        ("create-patches",),
        0,
        "changes only files outside the [sync] subset (docs/build.md)",
        _commit_in_tracking("docs/build.md", "ours\n"),
        keep=("vendoring.toml", "tracking", "vendor"),
    ),
    UpkeepRow(
        "queue: a patch outside the subset, apply-patches",
        ("apply-patches",),
        0,
        "0003-a-change-to-docs-build.md.patch changes only files outside the [sync] subset",
        _then(_commit_in_tracking("docs/build.md", "ours\n"), lambda s: s.project.run("create-patches")),
        keep=("patches", "vendoring.toml", "vendor"),
    ),
    UpkeepRow(
        "queue: a patch file that is a symbolic link, create-patches",
        ("create-patches",),
        3,
        "are symbolic links; create-patches would replace them with files",
        _patch_behind_a_link,
        after=_still_a_link,
    ),
    UpkeepRow(
        "queue: a link to no file in patches/, apply-patches",
        ("apply-patches",),
        1,
        "is a symbolic link to /nonexistent.patch, which does not exist",
        _link("patches/0003-gone.patch", "/nonexistent.patch"),
    ),
    UpkeepRow(
        "queue: a link loop in patches/, status",
        ("status",),
        1,
        "0003-loop.patch, which points back at itself",
        _link("patches/0003-loop.patch", "0003-loop.patch"),
    ),
]

CAUSE_ROWS = [
    UpkeepRow(
        "cause: [patches] path a symbolic-link loop, apply-patches",
        ("apply-patches",),
        2,
        "[patches] path: 'patches' is, or passes through, a symbolic link that points back at itself",
        _loop("patches"),
        keep=("vendoring.toml", "tracking", "vendor"),
    ),
    UpkeepRow(
        "cause: the destination a symbolic-link loop, sync",
        ("sync",),
        2,
        "[sync] destination: 'vendor/llama.cpp' is, or passes through, a symbolic link",
        _loop("vendor/llama.cpp"),
        keep=("patches", "vendoring.toml", "tracking"),
    ),
    UpkeepRow(
        "cause: the tracking clone a symbolic-link loop, status",
        ("status",),
        2,
        "[tracking] path: 'build/upstream' is, or passes through, a symbolic link",
        _loop("build/upstream"),
        keep=("patches", "vendoring.toml", "vendor"),
    ),
    UpkeepRow(
        "cause: --config a link to no file",
        ("--config", "@scratch/elsewhere.toml", "status"),
        2,
        "(a symbolic link to nowhere.toml, which does not exist)",
        lambda s: (s.scratch / "elsewhere.toml").symlink_to("nowhere.toml"),
    ),
    UpkeepRow(
        "cause: bump to a tree id",
        ("bump", "@tree"),
        1,
        "is a tree of",
    ),
    UpkeepRow(
        "cause: bump to an abbreviated blob id",
        ("bump", "@blob"),
        1,
        "is a blob of",
    ),
    UpkeepRow(
        "cause: the pin a tree id",
        ("apply-patches",),
        1,
        "is a tree of",
        _pin("ahead^{tree}"),
        keep=("patches", "vendor"),
    ),
    UpkeepRow(
        "git: not on PATH, the version it needs",
        ("status",),
        1,
        "install git >= 2.32",
        env={"PATH": "@scratch/no-git"},
    ),
]

OLD_GIT_ROWS = [
    UpkeepRow(
        f"git: 2.31, {' '.join(args)}",
        args,
        1,
        "git version 2.31.8 is older than 2.32",
        _old_git,
        keep=keep,
    )
    for args, keep in [
        (("apply-patches",), ("patches", "vendoring.toml", "vendor")),
        (("create-patches",), ("patches", "vendoring.toml", "tracking", "vendor")),
        (("check",), ("patches", "vendoring.toml", "tracking", "vendor")),
        (("bump", "ahead"), ("patches", "vendoring.toml", "vendor")),
    ]
]

WHEEL_ROWS = [
    UpkeepRow(
        "wheels: a wheel of another version left in dist/",
        ("wheels", "--families-only", "--wheel-version", "0.2.0"),
        0,
        "llama_cpp_runtime-0.1.0-py3-none-linux_x86_64.whl (version 0.1.0, not 0.2.0)",
        lambda s: s.write("dist/llama_cpp_runtime-0.1.0-py3-none-linux_x86_64.whl", b"a wheel of before"),
    ),
]

ROWS = (
    NON_UTF8_ROWS
    + BUMP_ROWS
    + AM_ROWS
    + SCRATCH_ROWS
    + LOCK_ROWS
    + PATTERN_ROWS
    + QUEUE_ROWS
    + CAUSE_ROWS
    + OLD_GIT_ROWS
    + WHEEL_ROWS
)


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_census_upkeep(scene: Scene, row: UpkeepRow) -> None:
    row.prepare(scene)
    env = {**scene.project.env, **{key: _resolve(scene, value) for key, value in row.env.items()}}
    command = [*row.launcher(scene), sys.executable, "-m", "buildsys", *(_resolve(scene, a) for a in row.args)]
    output = run_row(scene, row, command, env, timeout=row.timeout, one_error_line=True)
    row.after(scene, output)


def test_the_upkeep_census_has_its_rows() -> None:
    assert len({row.name for row in ROWS}) == len(ROWS)
