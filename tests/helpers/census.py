"""The fault census's shared pieces: the copy a row works on (Scene), a row (Row), what a row must leave
byte-identical, and the run of one row with the checks every census makes (test_census, test_census_upkeep;
test_census_runtime shares Scene and Row)."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from helpers import tiny_models
from helpers.support import GitRepo, Project, hold_project_lock, snapshot

BINDING = "python -m llama_cpp_runtime"
KEEP_ALL = ("patches", "vendoring.toml", "tracking", "vendor")


@dataclass
class Scene:
    """The copy a row works on."""

    project: Project
    stage: Path  # the fixture's cpu build stage, for the binding
    scratch: Path
    env: dict[str, str] = field(default_factory=dict)
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    @property
    def tracking(self) -> GitRepo:
        return self.project.tracking

    def write(self, relative: str, data: bytes | str) -> Path:
        path = self.project.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    def replace_with_file(self, relative: str) -> None:
        path = self.project.root / relative
        if path.is_dir():
            shutil.rmtree(path)
        path.write_text("a file where a directory belongs\n")

    def model(self, kind: str) -> Path:
        made = self.scratch / f"{kind}.gguf"
        good = tiny_models.write_llama_model(
            self.scratch / "good.gguf", n_layer=1, n_embd=32, n_head=2, n_head_kv=1, n_ff=64, n_ctx=64
        )
        writers: dict[str, Callable[[], object]] = {
            "text": lambda: tiny_models.write_not_gguf(made),
            "empty": lambda: made.write_bytes(b""),
            "truncated": lambda: tiny_models.write_truncated(made, good),
            "header-cut": lambda: tiny_models.write_truncated(made, good, n_bytes=600),
            "duplicate": lambda: tiny_models.write_duplicate_token_vocab(made),
            "version-99": lambda: made.write_bytes(b"GGUF" + struct.pack("<IQQ", 99, 0, 0)),
            "huge-array": lambda: made.write_bytes(
                b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1) + b"k" + struct.pack("<IIQ", 9, 4, 2**40)
            ),
            "fifo": lambda: os.mkfifo(made),
        }
        if kind == "good":
            return good
        writers[kind]()
        return made

    def immutable(self, relative: str) -> None:
        """chattr +i: not even root may change the folder (root ignores permission bits)."""
        path = self.project.root / relative
        if not shutil.which("chattr") or subprocess.run(["chattr", "+i", str(path)], check=False).returncode:
            pytest.skip("chattr +i is not available here")
        self.cleanups.append(lambda: subprocess.run(["chattr", "-i", str(path)], check=False))

    def hold_lock(self, command: str) -> None:
        holder = hold_project_lock(self.project, command)
        self.cleanups.append(lambda: (holder.kill(), holder.wait()))


@dataclass(frozen=True)
class Row:
    name: str
    args: tuple[str, ...]  # buildsys's arguments, or the binding's after BINDING
    exit: int
    says: str  # in the output; on a failure, in the first `error:` line or the lines after it
    prepare: Callable[[Scene], object] = lambda scene: None
    env: dict[str, str] = field(default_factory=dict)
    keep: tuple[str, ...] = KEEP_ALL


def kept(scene: Scene, keep: tuple[str, ...]) -> dict[str, object]:
    root = scene.project.root
    parts: dict[str, object] = {}
    if "patches" in keep and (root / "patches").is_dir():
        parts["patches"] = snapshot(root / "patches")
    if "vendoring.toml" in keep:
        parts["vendoring.toml"] = (root / "vendoring.toml").read_bytes()
    if "tracking" in keep:
        parts["tracking"] = snapshot(scene.tracking.path, skip=(".git",))
    if "vendor" in keep and scene.project.vendor.is_dir():
        parts["vendor"] = snapshot(scene.project.vendor)
    return parts


def run_row(
    scene: Scene,
    row: Row,
    command: Sequence[str],
    env: Mapping[str, str],
    *,
    timeout: float = 120,
    one_error_line: bool = False,
) -> str:
    """Run a prepared row's command on the scene and make the checks every census makes: no traceback, the
    exit code, an `error:` line on failure (`one_error_line`: exactly one), the fragment said, and what the
    row keeps byte-identical. Returns the output, for the row's own checks."""
    before = kept(scene, row.keep)
    result = subprocess.run(
        list(command),
        cwd=scene.project.root,
        env=dict(env),
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
        check=False,
    )
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == row.exit, f"exit {result.returncode}, expected {row.exit}\n{output}"
    if row.exit:
        ours = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        if one_error_line:
            assert ours, output
            assert not ours[1:], output
        else:  # ours start with "error:"; argparse's with "<prog>: error:", after its usage lines
            assert ours or any(": error: " in line for line in result.stderr.splitlines()), output
    assert row.says in output, (row.says, output)
    assert kept(scene, row.keep) == before, "something the row must not touch changed"
    return output
