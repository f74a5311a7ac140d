"""The RPC handshake the binding speaks before ggml may connect: servers of other protocols and ports that
are not RPC servers are refused with a message (ggml's own client would abort the process on them)."""

from __future__ import annotations

import socket
import time

import pytest
from helpers.fake_rpc import FakeServer, closes_on_hello, http_server, never_answers, rpc_server
from llama_cpp_runtime import RpcError
from llama_cpp_runtime._cli.main import main
from llama_cpp_runtime._rpc import protocol


def test_a_server_of_this_protocol_is_described() -> None:
    with FakeServer(rpc_server(protocol.PROTOCOL, (123, 456))) as server:
        info = protocol.probe(server.endpoint, timeout=5)
    assert info.version == protocol.PROTOCOL
    assert info.endpoint == server.endpoint
    assert [(d.index, d.memory_free, d.memory_total) for d in info.devices] == [(0, 123, 456)]


@pytest.mark.parametrize("version", [(7, 0, 0), (4, 0, 0), (5, 1, 0)])
def test_a_server_of_another_protocol_version_is_refused(version: tuple[int, int, int]) -> None:
    with FakeServer(rpc_server(version)) as server, pytest.raises(RpcError) as refused:
        protocol.probe(server.endpoint, timeout=5)
    said = ".".join(map(str, version))
    assert str(refused.value) == (
        f"RPC server {server.endpoint} speaks ggml RPC protocol {said}; this build speaks 5.0.0 "
        "(run the same llama-cpp-runtime release on every machine)"
    )


def test_a_newer_patch_of_the_protocol_is_accepted_as_ggml_does() -> None:
    with FakeServer(rpc_server((5, 0, 3))) as server:
        assert protocol.probe(server.endpoint, timeout=5).version == (5, 0, 3)


def test_a_server_that_closes_on_hello_is_refused() -> None:
    with FakeServer(closes_on_hello) as server, pytest.raises(RpcError, match="closed the connection") as refused:
        protocol.probe(server.endpoint, timeout=5)
    assert "without an answer: not a ggml RPC server of protocol 5.0.0" in str(refused.value)


def test_a_port_that_is_not_an_rpc_server_is_refused() -> None:
    with FakeServer(http_server) as server, pytest.raises(RpcError) as refused:
        protocol.probe(server.endpoint, timeout=5)
    assert str(refused.value) == (
        f"{server.endpoint} is not a ggml RPC server of protocol 5.0.0: it answered HELLO with 'HTTP/1.1' "
        "where a 28-byte reply was due"
    )


def test_a_silent_server_is_refused_within_the_timeout() -> None:
    start = time.monotonic()
    with FakeServer(never_answers) as server, pytest.raises(RpcError, match="did not answer ggml RPC HELLO within"):
        protocol.probe(server.endpoint, timeout=0.5)
    assert time.monotonic() - start < 10


def test_a_closed_port_and_bad_endpoints_are_refused() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
    with pytest.raises(RpcError, match=f"RPC server 127.0.0.1:{port}: cannot connect"):
        protocol.probe(f"127.0.0.1:{port}", timeout=5)
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
