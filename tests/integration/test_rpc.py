"""ggml's RPC backend on real llama.cpp, loopback only: the pin's core wheel (the build the other real-tree
tests make, GGML_RPC=ON in the cpu preset) in a fresh venv; two `rpc-server` processes on 127.0.0.1; a tiny
model split across the local CPU and both servers gives the CPU's greedy tokens; a server killed during a
generation is an RpcError in the client within seconds, its interpreter alive; a port that is not an RPC
server and a server of another protocol version are refused by name. The protocol "this build" speaks is the
wheel's own include/ggml-rpc.h's (what a real server of it answers, what the vendored tree says); an install
without it refuses every server by the file's name. Every wait is bounded."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from helpers import tiny_models
from helpers.fake_rpc import FakeServer, another_major, closes_on_hello, http_server, rpc_server
from helpers.real_llama_cpp import locked
from helpers.server_process import answering, free_port
from helpers.support import Project
from helpers.venvs import in_venv, pip, venv, wheels_of
from llama_cpp_runtime import RpcError
from llama_cpp_runtime._rpc import protocol

pytestmark = [
    pytest.mark.real_upstream,
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="real llama.cpp trees are tested on Linux"),
]
START_TIMEOUT = 60.0  # seconds for a server to answer after it was started


@pytest.fixture(scope="module")
def python(pinned: Project, tmp_path_factory: pytest.TempPathFactory) -> Path:
    interpreter = venv(tmp_path_factory.mktemp("rpc-venv"))
    with locked(pinned.root.parent.parent / "pinned-runtime.lock"):
        pip(interpreter, "install", "--no-index", str(wheels_of(pinned)["llama_cpp_runtime"]))
    return interpreter


@pytest.fixture(scope="module")
def package(python: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The llama_cpp_runtime folder the wheel installed (lib/, modules/, include/, stage.json)."""
    found = in_venv(
        python, "-c", "import llama_cpp_runtime, os; print(os.path.dirname(llama_cpp_runtime.__file__))",
        cwd=tmp_path_factory.mktemp("rpc-where"),
    )  # fmt: skip
    assert found.returncode == 0, found.stderr
    return Path(found.stdout.strip())


@pytest.fixture(scope="module")
def ours(package: Path) -> tuple[int, int, int]:
    """The protocol this build speaks, as the binding reads it: the installed ggml-rpc.h's defines."""
    return protocol.read_version(package)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four layers: one stays on the CPU, three are split across the servers."""
    return tiny_models.write_llama_model(tmp_path_factory.mktemp("rpc-models") / "four.gguf", n_layer=4, seed=7)


def clean_env(python: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLAMA_CPP_", "PYTHON", "GGML_", "MTMD_"))}
    return {**env, "XDG_CACHE_HOME": str(python.parent.parent.parent / "cache"), "GGML_NO_BACKTRACE": "1"}


@contextmanager
def rpc_server_process(
    python: Path, tmp_path: Path, ours: tuple[int, int, int], *extra: str, env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`python -m llama_cpp_runtime rpc-server` on a free loopback port, answering as a server of protocol
    `ours`; killed afterwards."""
    port = free_port()
    endpoint = f"127.0.0.1:{port}"

    def answers() -> bool:
        try:
            protocol.probe(endpoint, ours, timeout=5)
        except RpcError:
            return False
        return True

    command = [str(python), "-m", "llama_cpp_runtime", "rpc-server", "--port", str(port), *extra]
    log = tmp_path / f"server-{port}.log"
    with answering(command, log, answers, timeout=START_TIMEOUT, env={**clean_env(python), **(env or {})}) as process:
        yield process, endpoint


def script(python: Path, code: str, *args: str, cwd: Path) -> Any:
    result = in_venv(python, "-c", textwrap.dedent(code), *args, cwd=cwd, env={"GGML_NO_BACKTRACE": "1"})
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_rpc_module_ships_in_the_core_wheel_and_info_lists_it(python: Path, tmp_path: Path) -> None:
    result = in_venv(python, "-m", "llama_cpp_runtime", "info", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if "ggml-rpc" in line)
    assert "loaded" in line, result.stdout
    found = script(
        python,
        """
        import json, llama_cpp_runtime as lcr
        rt = lcr.load()
        module = next(m for m in rt.report().modules if m.name == "ggml-rpc")
        print(json.dumps({"status": module.status, "path": module.path, "devices": [d.name for d in rt.devices()]}))
        """,
        cwd=tmp_path,
    )
    assert found["status"] == "loaded" and found["devices"] == ["CPU"]  # no server added: no RPC device
    print(f"ggml-rpc module: {Path(found['path']).stat().st_size} bytes")


def test_a_model_split_across_the_cpu_and_two_servers_gives_the_cpu_tokens(
    python: Path, model: Path, ours: tuple[int, int, int], tmp_path: Path
) -> None:
    code = """
        import json, sys
        import llama_cpp_runtime as lcr
        rt = lcr.load()
        path, first, second = sys.argv[1:4]
        with rt.load_model(path, devices=["CPU"]) as local:
            prompt = local.tokenize("the model is")
            with local.context(n_ctx=256) as ctx:
                alone = ctx.generate(prompt, max_tokens=32)
        with rt.load_model(path, rpc=[first, second], n_gpu_layers=3) as split:
            devices = [(d.name, d.description, d.backend, d.gpu, d.remote) for d in rt.devices()]
            with split.context(n_ctx=256) as ctx:
                remote = ctx.generate(prompt, max_tokens=32)
                streamed = list(ctx.stream(prompt, 32))
                n_past = ctx.n_past
            text = split.detokenize(remote)
            log = [line for line in split.load_log if "buffer size" in line or "offloaded" in line]
        with rt.load_model(path, devices=["RPC1"], n_gpu_layers=-1) as one:
            with one.context(n_ctx=256) as ctx:
                on_second = ctx.generate(prompt, max_tokens=32)
        print(json.dumps({"alone": alone, "remote": remote, "streamed": streamed, "on_second": on_second,
                          "devices": devices, "log": log, "n_past": n_past, "text": text}))
    """
    started = time.monotonic()
    with (
        rpc_server_process(python, tmp_path, ours) as (_, first),
        rpc_server_process(python, tmp_path, ours, "--cache", str(tmp_path / "cache")) as (_, second),
    ):
        out = script(python, code, str(model), first, second, cwd=tmp_path)
    print(f"CPU alone:          {out['alone']}\nCPU + 2 RPC servers: {out['remote']}")
    print("\n".join(out["log"]), f"\n{time.monotonic() - started:.1f}s")
    assert out["alone"] and out["remote"] == out["alone"] == out["streamed"] == out["on_second"]
    assert out["devices"] == [
        ["CPU", out["devices"][0][1], "CPU", False, False],
        ["RPC0", first, "RPC", False, True],
        ["RPC1", second, "RPC", False, True],
    ]
    log = "\n".join(out["log"])
    assert "offloaded 3/5 layers to GPU" in log
    assert f"[{first}] model buffer size" in log and f"[{second}] model buffer size" in log  # both servers hold layers
    assert "CPU_Mapped model buffer size" in log or "CPU model buffer size" in log
    assert (tmp_path / "cache").is_dir()


def test_a_server_killed_during_a_generation_is_a_typed_error(
    python: Path, model: Path, ours: tuple[int, int, int], tmp_path: Path
) -> None:
    code = """
        import json, os, signal, sys, time
        import llama_cpp_runtime as lcr
        rt = lcr.load()
        path, first, second, pid = sys.argv[1:5]
        model = rt.load_model(path, rpc=[first, second], n_gpu_layers=3)
        ctx = model.context(n_ctx=256)
        got, error, seconds = [], None, None
        try:
            for token in ctx.stream(model.tokenize("the model is"), 200):
                got.append(token)
                if len(got) == 3:
                    os.kill(int(pid), signal.SIGKILL)
                    killed = time.monotonic()
        except lcr.RpcError as raised:
            error, seconds = str(raised), time.monotonic() - killed
        try:
            ctx.generate([1, 2], 4)
            again = None
        except lcr.RpcError as raised:
            again = str(raised)
        model.close()
        with rt.load_model(path, devices=["CPU"]) as local, local.context(n_ctx=64) as alive:
            after = alive.generate(local.tokenize("the model is"), 4)  # this interpreter is alive and well
        print(json.dumps({"got": got, "error": error, "seconds": seconds, "again": again, "after": after}))
    """
    with (
        rpc_server_process(python, tmp_path, ours) as (_, first),
        rpc_server_process(python, tmp_path, ours) as (doomed, second),
    ):
        out = script(python, code, str(model), first, second, str(doomed.pid), cwd=tmp_path)
        doomed.wait(timeout=30)
    print(f"after {len(out['got'])} tokens, {out['seconds']:.2f}s after the kill: {out['error']}")
    assert 3 <= len(out["got"]) < 200 and out["after"]
    assert out["seconds"] < 30
    assert out["error"].startswith(f"the process running the model on RPC servers {first}, {second} is gone: it ")
    assert "Remote RPC server crashed or returned malformed response" in out["error"]
    assert out["again"] == out["error"]


def test_a_port_that_is_not_an_rpc_server_and_another_protocol_are_refused(
    python: Path, ours: tuple[int, int, int], tmp_path: Path
) -> None:
    code = """
        import json, sys
        import llama_cpp_runtime as lcr
        rt = lcr.load()
        said = {}
        for name, endpoint in zip(("http", "other", "closes", "nobody"), sys.argv[1:]):
            try:
                rt.add_rpc_server(endpoint, timeout=5)
                said[name] = None
            except lcr.RpcError as refused:
                said[name] = str(refused)
        print(json.dumps({"said": said, "devices": [d.name for d in rt.devices()]}))
    """
    with (
        FakeServer(http_server) as http,
        FakeServer(rpc_server(another_major(ours))) as other,  # the pin's 5.0.0 -> 7.0.0, llama.cpp 0.3.36's
        FakeServer(closes_on_hello) as closes,
    ):
        nobody = f"127.0.0.1:{free_port()}"
        out = script(python, code, http.endpoint, other.endpoint, closes.endpoint, nobody, cwd=tmp_path)
    said = out["said"]
    print("\n".join(f"{k}: {v}" for k, v in said.items()))
    speaks = protocol.version_text(ours)
    assert said["http"] == (
        f"{http.endpoint} is not a ggml RPC server of protocol {speaks}: it answered HELLO with 'HTTP/1.1' where "
        "a 28-byte reply was due"
    )
    assert said["other"] == (
        f"RPC server {other.endpoint} speaks ggml RPC protocol {protocol.version_text(another_major(ours))}; this "
        f"build speaks {speaks} (run the same llama-cpp-runtime release on every machine)"
    )
    assert said["closes"].startswith(f"{closes.endpoint} closed the connection on ggml RPC HELLO without an answer")
    assert said["nobody"].startswith(f"RPC server {nobody}: cannot connect: ")
    assert out["devices"] == ["CPU"]  # nothing was added, and the interpreter lived


def test_rpc_server_stops_on_ctrl_c_and_refuses_a_taken_port(
    python: Path, ours: tuple[int, int, int], tmp_path: Path
) -> None:
    with rpc_server_process(python, tmp_path, ours) as (process, endpoint):
        port = endpoint.rpartition(":")[2]
        taken = in_venv(python, "-m", "llama_cpp_runtime", "rpc-server", "--port", port, cwd=tmp_path)
        assert taken.returncode == 2 and taken.stderr.strip().startswith(f"error: cannot listen on 127.0.0.1:{port}")
        # Any address of this machine with --allow-remote: upstream's warning, then the taken port refused
        # (nothing ever listens beyond the loopback here).
        warned = in_venv(
            python, "-m", "llama_cpp_runtime", "rpc-server", "--host", "0.0.0.0", "--allow-remote", "--port", port,
            cwd=tmp_path,
        )  # fmt: skip
        assert warned.returncode == 2, warned.stderr
        assert "WARNING: Host ('0.0.0.0') is != '127.0.0.1'" in warned.stderr
        assert "Never expose the RPC server to an open network!" in warned.stderr
        assert "no authentication and no encryption" in warned.stderr
        assert warned.stderr.strip().endswith(f"error: cannot listen on 0.0.0.0:{port}: Address already in use")
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 130
        print(f"stopped {time.monotonic() - started:.2f}s after Ctrl-C")
    said = (tmp_path / f"server-{port}.log").read_text()
    assert "interrupted" in said and "Traceback" not in said
    assert f"serving CPU on {endpoint} (ggml RPC protocol {protocol.version_text(ours)})" in said
    with socket.create_server(("127.0.0.1", int(port))):  # the port is free again
        pass


def test_the_protocol_is_the_builds_own_record(
    pinned: Project, package: Path, ours: tuple[int, int, int], tmp_path: Path, python: Path
) -> None:
    """The wheel's ggml-rpc.h says what the vendored tree says, and a real server of the wheel answers HELLO
    with exactly that version: the binding follows a bump of the pin without an edit."""
    assert (package / protocol.HEADER).is_file()
    assert protocol.read_version(pinned.vendor / "ggml") == ours
    with rpc_server_process(python, tmp_path, ours) as (_, endpoint):
        answered = protocol.probe(endpoint, ours, timeout=10)
    print(f"the wheel's ggml-rpc.h: {protocol.version_text(ours)}; a server of it: {answered.version}")
    assert answered.version == ours


@pytest.mark.parametrize("damage", ["missing", "no defines"])
def test_an_install_without_the_protocols_record_refuses_every_server_by_name(
    damage: str, package: Path, python: Path, ours: tuple[int, int, int], tmp_path: Path
) -> None:
    """A copy of the installed libraries whose include/ggml-rpc.h is gone or says no version: load() works
    (it never reads the header), add_rpc_server and load_model(rpc=) refuse a real server of this very build,
    naming the file; rpc-server (which does not need the version) serves and says it is unknown."""
    damaged = tmp_path / "damaged"
    shutil.copytree(package, damaged, ignore=shutil.ignore_patterns("__pycache__", "*.py", "_*", "ggml-rpc.h"))
    header = damaged / protocol.HEADER
    if damage == "no defines":
        header.write_text("#pragma once\n")  # as a tree older than the RPC handshake, or a truncated file
    code = """
        import json, sys
        import llama_cpp_runtime as lcr
        rt = lcr.load(sys.argv[1])
        module = next(m for m in rt.report().modules if m.name == "ggml-rpc")
        said = []
        for attempt in (lambda: rt.add_rpc_server(sys.argv[2], timeout=5),
                        lambda: rt.load_model(sys.argv[3], rpc=[sys.argv[2]])):
            try:
                attempt()
                said.append(None)
            except lcr.RpcError as refused:
                said.append(str(refused))
        print(json.dumps({"module": module.status, "said": said, "devices": [d.name for d in rt.devices()]}))
    """
    gguf = tiny_models.write_llama_model(tmp_path / "one.gguf", n_layer=1, seed=3)
    served_from = {"LLAMA_CPP_RUNTIME_LIBRARY_DIR": str(damaged)}
    with rpc_server_process(python, tmp_path, ours, env=served_from) as (_, endpoint):
        out = script(python, code, str(damaged), endpoint, str(gguf), cwd=tmp_path)
    unknown = f"the ggml RPC protocol of this build is unknown: {header}"
    print("\n".join(out["said"]))
    assert out["module"] == "loaded" and out["devices"] == ["CPU"]
    if damage == "missing":
        assert (
            out["said"]
            == [
                f"{unknown} is missing (it comes with the libraries: reinstall llama-cpp-runtime, or rebuild the stage)"
            ]
            * 2
        )
    else:
        assert (
            out["said"]
            == [
                f"{unknown} has no #define RPC_PROTO_MAJOR_VERSION, RPC_PROTO_MINOR_VERSION, RPC_PROTO_PATCH_VERSION "
                "(a ggml older than the RPC handshake, or a damaged file)"
            ]
            * 2
        )
    log = next(tmp_path.glob("server-*.log")).read_text()
    assert f"({unknown} " in log and "; Ctrl-C stops it" in log
