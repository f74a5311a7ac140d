"""The first words of ggml's RPC protocol, spoken here in Python before ggml is let near a server.

ggml-rpc's client aborts the process when a server answers HELLO with anything it does not expect (a port
that is not an RPC server, a server of an older protocol that closes the connection): `RPC_STATUS_ASSERT`
is a `GGML_ABORT`. So a server is asked here first, with a timeout, and refused with a message; ggml only
ever connects (in a child process, see client.py) to a server that answered as one of its own protocol.

Wire format (ggml/src/ggml-rpc/ggml-rpc.cpp at the pin): a request is | cmd (1 byte) | size (u64) | data |,
a reply | size (u64) | data |, little-endian. A server serves one client at a time.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import time
from dataclasses import dataclass

from .._errors import RpcError

# RPC_PROTO_{MAJOR,MINOR,PATCH}_VERSION of ggml-rpc.h at the pin; a real server of the same build is asked in
# the tests, so a bump that changes it fails there until this follows.
PROTOCOL = (5, 0, 0)
CMD_GET_DEVICE_MEMORY = 11
CMD_HELLO = 14  # "RPC_CMD_HELLO must be always 14": every version of the protocol starts with it
CMD_DEVICE_COUNT = 15
CONN_CAPS_SIZE = 24  # rpc_msg_hello_req: the transport's capabilities (zeros: plain TCP, no RDMA)
HELLO_REPLY_SIZE = 4 + CONN_CAPS_SIZE  # major, minor, patch, padding, conn_caps
MAX_SERVERS = 16  # GGML_RPC_MAX_SERVERS
DEFAULT_PORT = 50052  # upstream's rpc-server default
DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class RemoteDevice:
    index: int  # the device's number on its server
    memory_free: int
    memory_total: int


@dataclass(frozen=True)
class ServerInfo:
    endpoint: str  # "host:port", as ggml is given it
    version: tuple[int, int, int]
    devices: tuple[RemoteDevice, ...]


def parse_endpoint(text: str) -> tuple[str, int]:
    """(host, port) of "host:port" (an IPv6 address in brackets); RpcError naming what is wrong."""
    if not isinstance(text, str):
        raise RpcError(f"RPC server {text!r}: expected a string 'host:port'")
    host, sep, port = text.partition(":")  # ggml splits at the first colon: no IPv6 address
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise RpcError(
            f"RPC server {text!r}: expected 'host:port' (an IPv4 address or a host name, a port from 1 to 65535)"
        )
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Whether the address is this machine's loopback (127.0.0.0/8, ::1, "localhost")."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def version_text(version: tuple[int, int, int]) -> str:
    return ".".join(str(part) for part in version)


def compatible(version: tuple[int, int, int]) -> bool:
    """ggml's own rule (negotiate_hello): the same major, a minor no newer than ours."""
    return version[0] == PROTOCOL[0] and version[1] <= PROTOCOL[1]


def probe(endpoint: str, timeout: float = DEFAULT_TIMEOUT) -> ServerInfo:
    """Ask the server at endpoint for its protocol version and its devices (with their memory), as ggml's
    client would, and close the connection; RpcError when it is not a ggml RPC server of this protocol,
    cannot be reached, or does not answer within `timeout` seconds (one that serves another client does not)."""
    host, port = parse_endpoint(endpoint)
    deadline = time.monotonic() + timeout
    try:
        connection = socket.create_connection((host, port), timeout=timeout)
    except OSError as error:
        raise RpcError(f"RPC server {endpoint}: cannot connect: {error.strerror or error}") from None
    with connection:
        channel = _Channel(connection, endpoint, deadline, timeout)
        reply = channel.ask(CMD_HELLO, bytes(CONN_CAPS_SIZE), HELLO_REPLY_SIZE, "HELLO")
        version = (reply[0], reply[1], reply[2])
        if not compatible(version):
            raise RpcError(
                f"RPC server {endpoint} speaks ggml RPC protocol {version_text(version)}; this build speaks "
                f"{version_text(PROTOCOL)} (run the same llama-cpp-runtime release on every machine)"
            )
        (count,) = struct.unpack("<I", channel.ask(CMD_DEVICE_COUNT, b"", 4, "DEVICE_COUNT"))
        devices = []
        for index in range(count):
            answer = channel.ask(CMD_GET_DEVICE_MEMORY, struct.pack("<I", index), 16, "GET_DEVICE_MEMORY")
            free, total = struct.unpack("<QQ", answer)
            devices.append(RemoteDevice(index, free, total))
    if not devices:
        raise RpcError(f"RPC server {endpoint} offers no device")
    return ServerInfo(f"{host}:{port}", version, tuple(devices))


class _Channel:
    """One connection's requests and replies, each read within what is left of the deadline."""

    def __init__(self, connection: socket.socket, endpoint: str, deadline: float, timeout: float) -> None:
        self.connection = connection
        self.endpoint = endpoint
        self.deadline = deadline
        self.timeout = timeout

    def ask(self, command: int, data: bytes, reply_size: int, name: str) -> bytes:
        try:
            self.connection.sendall(struct.pack("<BQ", command, len(data)) + data)
            size = struct.unpack("<Q", self._read(8, name))[0]
            if size != reply_size:
                raise RpcError(
                    f"{self.endpoint} is not a ggml RPC server of protocol {version_text(PROTOCOL)}: it answered "
                    f"{name} with {_shown(size.to_bytes(8, 'little'))} where a {reply_size}-byte reply was due"
                )
            return self._read(reply_size, name)
        except TimeoutError:
            raise RpcError(
                f"{self.endpoint} did not answer ggml RPC {name} within {self.timeout:g}s: not an RPC server, "
                f"or one serving another client (a ggml RPC server serves one client at a time)"
            ) from None
        except OSError as error:
            raise RpcError(f"{self.endpoint}: the connection failed during {name}: {error.strerror or error}") from None

    def _read(self, size: int, name: str) -> bytes:
        data = b""
        while len(data) < size:
            self.connection.settimeout(max(0.001, self.deadline - time.monotonic()))
            chunk = self.connection.recv(size - len(data))
            if not chunk:
                raise RpcError(
                    f"{self.endpoint} closed the connection on ggml RPC {name}"
                    + (f" after {_shown(data)}" if data else " without an answer")
                    + f": not a ggml RPC server of protocol {version_text(PROTOCOL)} (an older or newer server "
                    "closes the connection on a HELLO it does not know)"
                )
            data += chunk
        return data


def _shown(data: bytes) -> str:
    """Bytes as a reader can judge them: text when they are printable (an HTTP server's answer), else hex."""
    text = data.decode("ascii", errors="replace")
    return repr(text) if text.isprintable() else data.hex(" ")
