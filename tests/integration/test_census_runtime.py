"""The binding's rows of the second fault census (issue #30): model metadata llama.cpp asserts on, numbers
past their C type, arguments that are not UTF-8, Ctrl-C, another libggml already in the process, an install
that differs from what shipped, and messages that missed the cause. Each row runs the binding's command
line (or a short program) against the fixture's cpu build stage, as test_census.py's rows do: an exit code,
a fragment of the one-line message, no traceback. Every row failed before its fix.

The defects that need real llama.cpp (a model file changed under a loaded model, fork() after a load) are
tested in test_model_runtime.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import tiny_models
from helpers.census import BINDING, Row, Scene
from helpers.cpu_features import elf_linux, x86_linux
from test_binding import MISBEHAVING_PLUGIN, PLUGIN_MODULE, compile_module
from test_census import _resolve, scene, template

__all__ = ["scene", "template"]  # the census's fixtures, used here by name

PYTHON = "python"  # args[0] of a row that runs a short program instead of the command line
LIBRARY_DIR = "LLAMA_CPP_RUNTIME_LIBRARY_DIR"
CACHE_DIR = "LLAMA_CPP_RUNTIME_CACHE_DIR"
PLUGIN_DIRS = "LLAMA_CPP_RUNTIME_PLUGIN_DIRS"
INTERRUPTED = 130


@dataclass(frozen=True)
class RuntimeRow(Row):
    absent: str = ""  # must not be in the output
    interrupt_on: str = ""  # Ctrl-C (SIGINT to the command's process group) once its stderr shows this
    marks: tuple[pytest.MarkDecorator, ...] = ()  # the platform the row needs


# ---- model metadata llama.cpp asserts on (GGML_ASSERT in load_hparams, or in a norm kernel at the first token)

METADATA: dict[str, dict[str, tiny_models.MetadataValue]] = {
    "layers-0": {"llama.block_count": 0},
    "layers-513": {"llama.block_count": 513},
    "experts-unused": {"llama.expert_count": 4},
    "used-no-experts": {"llama.expert_used_count": 2},
    "experts-too-many": {"llama.expert_count": 1025, "llama.expert_used_count": 2},
    "expert-groups": {"llama.expert_count": 4, "llama.expert_used_count": 2, "llama.expert_group_count": 4},
    "rms-eps-negative": {"llama.attention.layer_norm_rms_epsilon": -1e-5},
    "rms-eps-nan": {"llama.attention.layer_norm_rms_epsilon": float("nan")},
    "norm-eps-negative": {"llama.attention.layer_norm_epsilon": -0.5},
    "rope-scaling": {"llama.rope.scaling.type": "bogus"},
    "nextn-layers": {"llama.nextn_predict_layers": 3},
}


def _metadata_row(name: str, says: str) -> RuntimeRow:
    return RuntimeRow(f"model: {name}", (BINDING, "run", f"@meta:{name}", "--prompt", "x"), 2, says)


METADATA_ROWS = [
    _metadata_row("layers-0", "llama.block_count is 0: llama.cpp allows 1 to 512 layers (LLAMA_MAX_LAYERS)"),
    _metadata_row("layers-513", "llama.block_count is 513: llama.cpp allows 1 to 512 layers"),
    _metadata_row("experts-unused", "llama.expert_count is 4 but llama.expert_used_count is missing or 0"),
    _metadata_row("used-no-experts", "llama.expert_used_count is 2, more than llama.expert_count (0)"),
    _metadata_row("experts-too-many", "llama.expert_count is 1025: llama.cpp allows at most 1024"),
    _metadata_row("expert-groups", "llama.expert_group_count is 4, not fewer than llama.expert_count (4)"),
    _metadata_row("rms-eps-negative", "llama.attention.layer_norm_rms_epsilon is -1e-05: a norm's epsilon must be"),
    _metadata_row("rms-eps-nan", "llama.attention.layer_norm_rms_epsilon is NaN"),
    _metadata_row("norm-eps-negative", "llama.attention.layer_norm_epsilon is -0.5"),
    _metadata_row("rope-scaling", "llama.rope.scaling.type is 'bogus', not one of none, linear, yarn, longrope"),
    _metadata_row("nextn-layers", "llama.nextn_predict_layers is 3, more than llama.block_count (1)"),
]

# ---- numbers past their C type (ctypes wraps them silently; 2**31 threads segfaulted)

RUN = (BINDING, "run", "@model:good", "--prompt", "x")
NUMBER_ROWS = [
    RuntimeRow(
        "number: run --threads 2**31", (*RUN, "--threads", "2147483648"), 2, "2147483648 is more than 2147483647"
    ),
    RuntimeRow(
        "number: run --ctx-size 2**32+5", (*RUN, "--ctx-size", "4294967301"), 2, "4294967301 is more than 4294967295"
    ),
    RuntimeRow(
        "number: run --n-gpu-layers 2**31", (*RUN, "--n-gpu-layers", "2147483648"), 2, "is not from -2147483648"
    ),
    RuntimeRow(
        "number: run --n-gpu-layers -2**31-1", (*RUN, "--n-gpu-layers", "-2147483649"), 2, "is not from -2147483648"
    ),
    RuntimeRow(
        "number: bench --model --threads 2**31",
        (BINDING, "bench", "--model", "@model:good", "--threads", "2147483648"),
        2,
        "2147483648 is more than 2147483647",
    ),
    RuntimeRow(
        "number: bench --model -p 2**32",
        (BINDING, "bench", "--model", "@model:good", "-p", "4294967296"),
        2,
        "4294967296 is not from 0 to 2147483647",
    ),
    RuntimeRow("number: check --timeout nan", (BINDING, "check", "--timeout", "nan"), 2, "nan is not a finite number"),
    RuntimeRow("number: check --timeout inf", (BINDING, "check", "--timeout", "inf"), 2, "inf is not a finite number"),
    RuntimeRow(
        "number: bench --timeout 1e300", (BINDING, "bench", "--timeout", "1e300"), 2, "1e300 is more than 604800"
    ),
]

# ---- what reaches the command line: bytes that are not UTF-8, Ctrl-C


def _hanging_plugin(scene: Scene) -> None:
    """A plugin whose device Hangy0 never finishes initialising: a command on it runs until interrupted."""
    (scene.scratch / "plugins").mkdir()
    compile_module(MISBEHAVING_PLUGIN, scene.scratch / "plugins" / "libggml-misbehaving.so")


ARGUMENT_ROWS = [
    RuntimeRow("argv: --prompt not UTF-8", (*RUN[:-1], "ab\udcffc"), 2, "--prompt is not valid UTF-8: byte 0xff"),
    RuntimeRow(
        "ctrl-c: check",
        (BINDING, "check", "--device", "Hangy0", "--timeout", "600"),
        INTERRUPTED,
        "interrupted",
        _hanging_plugin,
        env={PLUGIN_DIRS: "@plugins"},
        interrupt_on="… check Hangy0",
        marks=(elf_linux,),
    ),
    RuntimeRow(
        "ctrl-c: bench",
        (BINDING, "bench", "--device", "Hangy0", "--timeout", "600"),
        INTERRUPTED,
        "interrupted",
        _hanging_plugin,
        env={PLUGIN_DIRS: "@plugins"},
        interrupt_on="… bench Hangy0",
        marks=(elf_linux,),
    ),
]

# ---- another libggml already in the process

FOREIGN_FIRST = """
    import ctypes, os, sys
    for name in ("libggml-base.so.0", "libggml.so.0"):  # what another binding does, from its own folder
        ctypes.CDLL(os.path.join(sys.argv[1], name), mode=os.RTLD_GLOBAL)
    from llama_cpp_runtime._cli.main import main
    sys.exit(main(["info"]))
"""


def _foreign_copy(scene: Scene) -> None:
    shutil.copytree(scene.stage / "lib", scene.scratch / "other", symlinks=True)


PROCESS_ROWS = [
    RuntimeRow(
        "process: another libggml loaded globally first",
        (PYTHON, "-c", textwrap.dedent(FOREIGN_FIRST), "@other"),
        2,
        "another ggml-base is already loaded in this process, with global symbols, from",
        _foreign_copy,
        absent="CPU variant:",
        marks=(elf_linux,),
    ),
]

# ---- what is installed, checked against what shipped


def _stage(scene: Scene) -> Path:
    """A copy of the stage the row may change (the census's own stage is shared)."""
    copy = scene.scratch / "stage"
    if not copy.exists():
        shutil.copytree(scene.stage, copy, symlinks=True)
    return copy


def _delete_variant(scene: Scene) -> None:
    (_stage(scene) / "modules" / "libggml-cpu-sse42.so").unlink()


def _add_module(scene: Scene) -> None:
    modules = _stage(scene) / "modules"
    shutil.copy(modules / "libggml-cpu-x64.so", modules / "libggml-cpu-mine.so")


def _entry_point_plugin(scene: Scene) -> None:
    """A plugin distribution as pip installs it, but without the stage.json its wheel carries."""
    site = scene.scratch / "site"
    package = site / "llama_cpp_runtime_fake"
    (package / "modules").mkdir(parents=True)
    (package / "__init__.py").write_text(
        "from pathlib import Path\nmodule_dir = str(Path(__file__).parent / 'modules')\n"
    )
    compile_module(PLUGIN_MODULE, package / "modules" / "libggml-fake.so")
    info = site / "llama_cpp_runtime_fake-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: llama-cpp-runtime-fake\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[llama_cpp_runtime.backends]\nfake = llama_cpp_runtime_fake:module_dir\n")


def _plugin_dir(scene: Scene) -> None:
    (scene.scratch / "plugins").mkdir()
    compile_module(PLUGIN_MODULE, scene.scratch / "plugins" / "libggml-fake.so")


def _wrong_cache(scene: Scene) -> None:
    """A cache entry that looks right (valid JSON, every module named) but says only x64 runs here."""
    env = {**scene.project.env, LIBRARY_DIR: str(scene.stage), CACHE_DIR: str(scene.scratch / "cache")}
    command = [sys.executable, "-m", "llama_cpp_runtime", "info"]
    subprocess.run(command, env=env, capture_output=True, check=True, timeout=120)
    [entry] = (scene.scratch / "cache").glob("cpu-variants-*.json")
    record = json.loads(entry.read_text())
    record["scores"] = {name: int(name == "ggml-cpu-x64") for name in record["scores"]}
    entry.write_text(json.dumps(record))


INSTALL_ROWS = [
    RuntimeRow(
        "install: a shipped CPU variant deleted, check",
        (BINDING, "check"),
        1,
        "cannot be used: missing: the package shipped it (stage.json lists modules/libggml-cpu-sse42.so)",
        _delete_variant,
        env={LIBRARY_DIR: "@stage"},
        marks=(x86_linux,),
    ),
    RuntimeRow(
        "install: a shipped CPU variant deleted, info",
        (BINDING, "info"),
        0,
        "(stage.json lists modules/libggml-cpu-sse42.so) but it is not in",
        _delete_variant,
        env={LIBRARY_DIR: "@stage"},
        marks=(x86_linux,),
    ),
    RuntimeRow(
        "install: a module the package did not ship",
        (BINDING, "info"),
        0,
        "stage.json does not list it (added after the build?)",
        _add_module,
        env={LIBRARY_DIR: "@stage"},
        marks=(x86_linux,),
    ),
    RuntimeRow(
        "install: a plugin package without its stage.json",
        (BINDING, "info"),
        0,
        "unverified: no stage.json beside",
        _entry_point_plugin,
        env={"PYTHONPATH": "@site"},
        absent="0 device(s)",
        marks=(elf_linux,),
    ),
    RuntimeRow(
        "install: a plugin folder without a stage.json",
        (BINDING, "info"),
        0,
        "0 device(s): the backend found no device; unverified: no stage.json beside",
        _plugin_dir,
        env={PLUGIN_DIRS: "@plugins"},
        marks=(elf_linux,),
    ),
    RuntimeRow(
        "install: cache folder relative",
        (BINDING, "info"),
        2,
        "LLAMA_CPP_RUNTIME_CACHE_DIR=cache: not an absolute path",
        env={CACHE_DIR: "cache"},
    ),
    RuntimeRow(
        "install: a wrong remembered score, info",
        (BINDING, "info"),
        0,
        "CPU variant:",
        _wrong_cache,
        env={CACHE_DIR: "@cache"},
        absent="CPU variant: x64 (score 1)",
        marks=(x86_linux,),
    ),
    RuntimeRow(
        "install: a wrong remembered score, check",
        (BINDING, "check"),
        0,
        "CPU (sse42)",
        _wrong_cache,
        env={CACHE_DIR: "@cache"},
        marks=(x86_linux,),
    ),
]

# ---- messages that missed the cause


def _copy_of_sse42(scene: Scene) -> None:
    (scene.scratch / "copies").mkdir()
    shutil.copy(scene.stage / "modules" / "libggml-cpu-sse42.so", scene.scratch / "copies")


CAUSE_ROWS = [
    RuntimeRow(
        "cause: no CPU backend after LLAMA_CPP_RUNTIME_BACKENDS, run",
        RUN,
        2,
        "cannot be loaded without a CPU backend, and none is: LLAMA_CPP_RUNTIME_BACKENDS=vulkan leaves out cpu",
        env={"LLAMA_CPP_RUNTIME_BACKENDS": "vulkan"},
    ),
    RuntimeRow(
        "cause: no CPU backend after LLAMA_CPP_RUNTIME_CPU_EXCLUDE, run",
        RUN,
        2,
        "LLAMA_CPP_RUNTIME_CPU_EXCLUDE=alderlake,haswell,icelake,sandybridge,skylakex,sse42,x64 excludes every",
        env={"LLAMA_CPP_RUNTIME_CPU_EXCLUDE": "x64,sse42,sandybridge,haswell,skylakex,icelake,alderlake"},
        marks=(x86_linux,),
    ),
    RuntimeRow(
        "cause: no CPU backend, check",
        (BINDING, "check"),
        1,
        "no device to run on (no CPU backend: LLAMA_CPP_RUNTIME_BACKENDS=vulkan leaves out cpu)",
        env={"LLAMA_CPP_RUNTIME_BACKENDS": "vulkan"},
    ),
    RuntimeRow(
        "cause: no CPU backend, check --device CPU",
        (BINDING, "check", "--device", "CPU"),
        2,
        "devices here: none (no CPU backend: LLAMA_CPP_RUNTIME_BACKENDS=cuda leaves out cpu)",
        env={"LLAMA_CPP_RUNTIME_BACKENDS": "cuda"},
    ),
    RuntimeRow(
        "cause: no CPU backend, info",
        (BINDING, "info"),
        0,
        "CPU variant: none: LLAMA_CPP_RUNTIME_BACKENDS=nosuch leaves out cpu",
        env={"LLAMA_CPP_RUNTIME_BACKENDS": "nosuch"},
    ),
    RuntimeRow(
        "cause: a plugin folder repeating the package's modules",
        (BINDING, "info"),
        0,
        "a duplicate: the same file as ggml-cpu-x64 from llama-cpp-runtime",
        env={PLUGIN_DIRS: "@stage-modules"},
        absent="score 1 < 1 ",
        marks=(x86_linux,),
    ),
    RuntimeRow(
        "cause: a plugin folder with another copy of the loaded variant",
        (BINDING, "info"),
        0,
        "a duplicate: another copy of ggml-cpu-sse42 from llama-cpp-runtime",
        _copy_of_sse42,
        env={PLUGIN_DIRS: "@copies", "LLAMA_CPP_RUNTIME_CPU_VARIANT": "sse42"},
        absent="score 3 < 3 ",
        marks=(x86_linux,),
    ),
]

# ---- rpc-server: an address beyond the loopback, numbers, devices (the fixture has no ggml-rpc module)

RPC_ROWS = [
    RuntimeRow(
        "rpc: rpc-server --host 0.0.0.0 without --allow-remote",
        (BINDING, "rpc-server", "--host", "0.0.0.0"),
        2,
        "--host 0.0.0.0 is not this machine's loopback: the ggml RPC protocol has no authentication",
    ),
    RuntimeRow("rpc: rpc-server --port 0", (BINDING, "rpc-server", "--port", "0"), 2, "0 is not from 1 to 65535"),
    RuntimeRow(
        "rpc: rpc-server without the RPC module",
        (BINDING, "rpc-server"),
        2,
        "the RPC backend (ggml-rpc) is not loaded: `python -m llama_cpp_runtime info` says why",
    ),
]

ROWS = METADATA_ROWS + NUMBER_ROWS + ARGUMENT_ROWS + PROCESS_ROWS + INSTALL_ROWS + CAUSE_ROWS + RPC_ROWS


def _resolve_here(scene: Scene, value: str) -> str:
    scratch = scene.scratch
    if value.startswith("@meta:"):
        name = value.removeprefix("@meta:")
        shape = {"n_layer": 1, "n_embd": 32, "n_head": 2, "n_head_kv": 1, "n_ff": 64, "n_ctx": 64}
        return str(tiny_models.write_llama_model(scratch / f"{name}.gguf", **shape, metadata=METADATA[name]))
    places: dict[str, Callable[[], Path]] = {
        "@stage": lambda: _stage(scene),
        "@stage-modules": lambda: scene.stage / "modules",
        "@plugins": lambda: scratch / "plugins",
        "@copies": lambda: scratch / "copies",
        "@cache": lambda: scratch / "cache",
        "@other": lambda: scratch / "other",
    }
    if value in places:
        return str(places[value]())
    if value == "@site":
        return os.pathsep.join([scene.project.env["PYTHONPATH"], str(scratch / "site")])
    return _resolve(scene, value)


def _run(command: list[str], env: dict[str, str], cwd: Path, interrupt_on: str) -> tuple[int, str, str]:
    """The command's exit code, stdout and stderr; Ctrl-C (to its whole process group, as a terminal sends
    it) once its stderr shows `interrupt_on`. Every wait is bounded."""
    process = subprocess.Popen(
        command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    said: dict[str, list[str]] = {"stdout": [], "stderr": []}

    def read(name: str) -> None:
        for line in getattr(process, name):
            said[name].append(line)
            if name == "stderr" and interrupt_on and interrupt_on in line:
                os.killpg(process.pid, signal.SIGINT)

    readers = [threading.Thread(target=read, args=(name,), daemon=True) for name in said]
    for reader in readers:
        reader.start()
    try:
        process.wait(timeout=120)
    finally:
        # The whole session: a child the command left behind (a device that hangs) goes with it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    for reader in readers:
        reader.join(timeout=30)
    return process.returncode, "".join(said["stdout"]), "".join(said["stderr"])


@pytest.mark.parametrize("row", [pytest.param(row, id=row.name, marks=row.marks) for row in ROWS])
def test_census_runtime(scene: Scene, row: RuntimeRow) -> None:
    row.prepare(scene)
    env = {**scene.project.env, **{k: _resolve_here(scene, v) for k, v in row.env.items()}}
    env.setdefault(LIBRARY_DIR, str(scene.stage))
    if row.args[:1] == (PYTHON,):
        command = [sys.executable, *(_resolve_here(scene, a) for a in row.args[1:])]
    else:
        command = [sys.executable, "-m", "llama_cpp_runtime", *(_resolve_here(scene, a) for a in row.args[1:])]

    code, stdout, stderr = _run(command, env, scene.project.root, row.interrupt_on)

    output = stdout + stderr
    assert "Traceback" not in output, output
    assert code == row.exit, f"exit {code}, expected {row.exit}\n{output}"
    if row.exit not in {0, INTERRUPTED}:
        assert any(line.startswith("error:") or ": error: " in line for line in stderr.splitlines()), output
    if row.exit == INTERRUPTED:
        assert stderr.strip().splitlines()[-1] == "interrupted", output
    assert row.says in output, (row.says, output)
    assert not row.absent or row.absent not in output, (row.absent, output)


def test_the_runtime_census_covers_the_issue() -> None:
    assert len(ROWS) >= 30, len(ROWS)
    assert len({row.name for row in ROWS}) == len(ROWS)
