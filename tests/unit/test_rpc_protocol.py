"""The RPC handshake the binding speaks before ggml may connect: servers of other protocols and ports that
are not RPC servers are refused with a message (ggml's own client would abort the process on them). Which
protocol is this build's comes from the ggml-rpc.h installed with the libraries, read when a server is first
asked: the pin's tree and llama.cpp of 0.3.36 both, each checked against its own."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from helpers.fake_rpc import (
    FakeServer,
    another_major,
    closes_on_hello,
    http_server,
    never_answers,
    rpc_header,
    rpc_server,
)
from llama_cpp_runtime import RpcError
from llama_cpp_runtime._cli.main import main
from llama_cpp_runtime._rpc import protocol

# The three defines of ggml/include/ggml-rpc.h, as each tree writes them (nothing else of the file is quoted).
PIN_DEFINES = """\
#define RPC_PROTO_MAJOR_VERSION    5
#define RPC_PROTO_MINOR_VERSION    0
#define RPC_PROTO_PATCH_VERSION    0
"""  # the pin (llama-cpp-python 0.3.35's tree)
NEWER_DEFINES = """\
#define RPC_PROTO_MAJOR_VERSION    7
#define RPC_PROTO_MINOR_VERSION    0
#define RPC_PROTO_PATCH_VERSION    0
"""  # llama-cpp-python 0.3.36's tree
TREES = pytest.mark.parametrize(("defines", "ours"), [(PIN_DEFINES, (5, 0, 0)), (NEWER_DEFINES, (7, 0, 0))])
UNKNOWN = "the ggml RPC protocol of this build is unknown"


def header_of(defines: str) -> str:
    """A ggml-rpc.h-like text around the defines (our own lines: what is around them in ggml's is not read)."""
    return f'#pragma once\n\n#include "ggml-backend.h"\n\n{defines}\n#define GGML_RPC_MAX_SERVERS       16\n'


@TREES
def test_the_protocol_is_read_from_the_headers_defines(
    defines: str, ours: tuple[int, int, int], tmp_path: Path
) -> None:
    assert protocol.parse_version(header_of(defines), "ggml-rpc.h") == ours
    (tmp_path / "include").mkdir()
    (tmp_path / "include" / "ggml-rpc.h").write_text(header_of(defines))
    assert protocol.read_version(tmp_path) == ours


def test_other_spellings_of_a_define_are_read() -> None:
    text = "  # define RPC_PROTO_MAJOR_VERSION (7u) // major\r\n#define RPC_PROTO_MINOR_VERSION\t1 /* minor */\n"
    text += (
        "#define RPC_PROTO_PATCH_VERSION 2\n#define RPC_PROTO_PATCH_VERSION 2\n// #define RPC_PROTO_MAJOR_VERSION 4\n"
    )
    assert protocol.parse_version(text, "ggml-rpc.h") == (7, 1, 2)


def test_a_missing_header_refuses_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(RpcError) as refused:
        protocol.read_version(tmp_path)
    assert str(refused.value) == (
        f"{UNKNOWN}: {tmp_path / 'include' / 'ggml-rpc.h'} is missing (it comes with the libraries: reinstall "
        "llama-cpp-runtime, or rebuild the stage)"
    )


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("#pragma once\n", "has no #define RPC_PROTO_MAJOR_VERSION, RPC_PROTO_MINOR_VERSION, RPC_PROTO_PATCH_VERSION "
         "(a ggml older than the RPC handshake, or a damaged file)"),
        (PIN_DEFINES.replace("PATCH", "PATCHES"), "has no #define RPC_PROTO_PATCH_VERSION (a ggml older than the RPC "
         "handshake, or a damaged file)"),
        (PIN_DEFINES.replace("    5", " (5 + 1)"), "defines RPC_PROTO_MAJOR_VERSION as '(5 + 1)', not a number"),
        (PIN_DEFINES.replace("    5", ""), "defines RPC_PROTO_MAJOR_VERSION as '', not a number"),
        (PIN_DEFINES + NEWER_DEFINES, "defines RPC_PROTO_MAJOR_VERSION twice, as 5 and 7"),
    ],
)  # fmt: skip
def test_a_header_without_a_clear_version_refuses_naming_the_file(text: str, said: str, tmp_path: Path) -> None:
    header = rpc_header(tmp_path, (5, 0, 0))
    header.write_text(text)
    with pytest.raises(RpcError) as refused:
        protocol.read_version(tmp_path)
    assert str(refused.value) == f"{UNKNOWN}: {header} {said}"
    assert "\n" not in str(refused.value)


@TREES
def test_a_server_of_this_protocol_is_described(defines: str, ours: tuple[int, int, int]) -> None:
    assert protocol.parse_version(defines, "ggml-rpc.h") == ours
    with FakeServer(rpc_server(ours, (123, 456))) as server:
        info = protocol.probe(server.endpoint, ours, timeout=5)
    assert info.version == ours
    assert info.endpoint == server.endpoint
    assert [(d.index, d.memory_free, d.memory_total) for d in info.devices] == [(0, 123, 456)]


@TREES
def test_a_server_of_another_protocol_version_is_refused(defines: str, ours: tuple[int, int, int]) -> None:
    """The other tree's, another major either way, a newer minor: what ggml's own negotiate_hello refuses."""
    assert protocol.parse_version(defines, "ggml-rpc.h") == ours
    other_tree = (5, 0, 0) if ours[0] == 7 else (7, 0, 0)
    for version in (other_tree, another_major(ours), (ours[0] - 1, 0, 0), (ours[0], ours[1] + 1, 0)):
        with FakeServer(rpc_server(version)) as server, pytest.raises(RpcError) as refused:
            protocol.probe(server.endpoint, ours, timeout=5)
        assert str(refused.value) == (
            f"RPC server {server.endpoint} speaks ggml RPC protocol {protocol.version_text(version)}; this build "
            f"speaks {protocol.version_text(ours)} (run the same llama-cpp-runtime release on every machine)"
        )


@TREES
def test_a_newer_patch_of_the_protocol_is_accepted_as_ggml_does(defines: str, ours: tuple[int, int, int]) -> None:
    newer_patch = (ours[0], ours[1], ours[2] + 3)
    with FakeServer(rpc_server(newer_patch)) as server:
        assert protocol.probe(server.endpoint, ours, timeout=5).version == newer_patch


@TREES
def test_a_server_that_closes_on_hello_is_refused(defines: str, ours: tuple[int, int, int]) -> None:
    with FakeServer(closes_on_hello) as server, pytest.raises(RpcError, match="closed the connection") as refused:
        protocol.probe(server.endpoint, ours, timeout=5)
    said = protocol.version_text(ours)
    assert f"without an answer: not a ggml RPC server of protocol {said}" in str(refused.value)


@TREES
def test_a_port_that_is_not_an_rpc_server_is_refused(defines: str, ours: tuple[int, int, int]) -> None:
    with FakeServer(http_server) as server, pytest.raises(RpcError) as refused:
        protocol.probe(server.endpoint, ours, timeout=5)
    assert str(refused.value) == (
        f"{server.endpoint} is not a ggml RPC server of protocol {protocol.version_text(ours)}: it answered HELLO "
        "with 'HTTP/1.1' where a 28-byte reply was due"
    )


def test_a_silent_server_is_refused_within_the_timeout() -> None:
    start = time.monotonic()
    with FakeServer(never_answers) as server, pytest.raises(RpcError, match="did not answer ggml RPC HELLO within"):
        protocol.probe(server.endpoint, (5, 0, 0), timeout=0.5)
    assert time.monotonic() - start < 10


def test_a_closed_port_and_bad_endpoints_are_refused() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
    with pytest.raises(RpcError, match=f"RPC server 127.0.0.1:{port}: cannot connect"):
        protocol.probe(f"127.0.0.1:{port}", (5, 0, 0), timeout=5)
    for bad in ("localhost", "127.0.0.1:0", "127.0.0.1:70000", ":50052", "[::1]:50052", "host:port"):
        with pytest.raises(RpcError, match="expected 'host:port'"):
            protocol.parse_endpoint(bad)


def test_loopback_addresses() -> None:
    assert all(protocol.is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "::1", "localhost"))
    assert not any(protocol.is_loopback(h) for h in ("0.0.0.0", "192.168.1.2", "example.org", "::"))


def test_rpc_server_refuses_a_network_address_without_allow_remote(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rpc-server", "--host", "0.0.0.0", "--port", "50052"]) == 2
    said = capsys.readouterr().err
    assert said.startswith("error: --host 0.0.0.0 is not this machine's loopback: the ggml RPC protocol has no ")
    assert "add --allow-remote" in said and said.count("\n") == 1


def test_rpc_devices_are_remote_and_never_gpus() -> None:
    """ggml says GPU of every RPC device: it must not satisfy require="gpu" nor be served again."""
    from llama_cpp_runtime import Device

    remote = Device("RPC0", "127.0.0.1:50052", "GPU", 1, 2, "RPC")
    assert remote.remote and not remote.gpu
    assert Device("Vulkan0", "AMD Radeon", "GPU", 1, 2, "Vulkan").gpu


def test_the_childs_errors_come_back_as_their_types() -> None:
    from llama_cpp_runtime import DecodeError
    from llama_cpp_runtime._rpc.client import error_from

    decoded = error_from({"error": "DecodeError", "message": "context full"})
    assert type(decoded) is DecodeError and str(decoded) == "context full"
    assert type(error_from({"error": "ValueError", "message": "x"})) is ValueError
    other = error_from({"error": "KeyError", "message": "'op'"})
    assert type(other) is RpcError and str(other) == "KeyError: 'op'"


def runtime_at(root: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A Runtime of a layout at root whose RPC module counts as loaded and which has no device of its own: the
    RPC path of add_rpc_server and nothing else (no library is loaded)."""
    from llama_cpp_runtime import _runtime
    from llama_cpp_runtime._rpc import ggml_side

    monkeypatch.setattr(ggml_side, "registration", lambda ggml: 1)
    monkeypatch.setattr(_runtime, "enumerate_devices", lambda ggml, order: [])
    loaded = SimpleNamespace(ggml=None, layout=SimpleNamespace(root=root), settings=SimpleNamespace(backend_order=()))
    return _runtime.Runtime(loaded)  # type: ignore[arg-type]


@TREES
def test_the_runtime_reads_the_header_when_a_server_is_first_asked_and_once(
    defines: str, ours: tuple[int, int, int], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = runtime_at(tmp_path, monkeypatch)  # no header yet: making the Runtime (load()) does not read it
    (tmp_path / "include").mkdir()
    (tmp_path / "include" / "ggml-rpc.h").write_text(header_of(defines))
    with FakeServer(rpc_server(ours)) as first, FakeServer(rpc_server(another_major(ours))) as other:
        added = runtime.add_rpc_server(first.endpoint, timeout=5)
        assert [(d.name, d.description, d.backend) for d in added] == [("RPC0", first.endpoint, "RPC")]
        (tmp_path / "include" / "ggml-rpc.h").unlink()  # read once: what it said is kept
        with pytest.raises(RpcError, match=f"speaks ggml RPC protocol {protocol.version_text(another_major(ours))}"):
            runtime.add_rpc_server(other.endpoint, timeout=5)
    assert runtime._rpc_protocol() == ours


def test_a_runtime_without_the_header_refuses_every_server_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = runtime_at(tmp_path, monkeypatch)
    for version in ((5, 0, 0), (7, 0, 0)):  # whichever it is, nothing is guessed
        with FakeServer(rpc_server(version)) as server, pytest.raises(RpcError) as refused:
            runtime.add_rpc_server(server.endpoint, timeout=5)
        assert str(refused.value).startswith(f"{UNKNOWN}: {tmp_path / 'include' / 'ggml-rpc.h'} is missing")
    assert runtime._rpc_servers == []
