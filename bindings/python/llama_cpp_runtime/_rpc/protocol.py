"""The first words of ggml's RPC protocol, spoken here in Python before ggml is let near a server.

ggml-rpc's client aborts the process when a server answers HELLO with anything it does not expect (a port
that is not an RPC server, a server of an older protocol that closes the connection): `RPC_STATUS_ASSERT`
is a `GGML_ABORT`. So a server is asked here first, with a timeout, and refused with a message; ggml only
ever connects (in a child process, see client.py) to a server that answered as one of its own protocol.

Wire format (ggml/src/ggml-rpc/ggml-rpc.cpp at the pin): a request is | cmd (1 byte) | size (u64) | data |,
a reply | size (u64) | data |, little-endian. A server serves one client at a time.

Which protocol "ours" is comes from the build, never from this file: the three `RPC_PROTO_*_VERSION` defines
of the `include/ggml-rpc.h` the core stage installs beside lib/ (the header the RPC module was compiled
against, from the same patched tree), read when a server is first asked (read_version), not at import or
load() time. A header that is missing or says no version refuses every server: a guessed version would
either refuse the servers of this very release or let ggml's client abort on one of another.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from .._errors import RpcError

Version = tuple[int, int, int]

HEADER = "include/ggml-rpc.h"  # under the layout's root (the package, or a stage): the build's own record
VERSION_PARTS = ("MAJOR", "MINOR", "PATCH")
# `#define RPC_PROTO_MAJOR_VERSION    5`, as ggml-rpc.h says it (a directive may be indented, `# define` too)
_DEFINE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+RPC_PROTO_(MAJOR|MINOR|PATCH)_VERSION(?![\w(])(.*)$", re.MULTILINE)
_NUMBER = re.compile(r"(\()?\s*(\d+)[uU]?\s*(?(1)\))")  # 5, 5u, (5)
_COMMENT = re.compile(r"//.*|/\*.*?(\*/|$)")
UNKNOWN = "the ggml RPC protocol of this build is unknown"
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
    version: Version
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


def version_text(version: Version) -> str:
    return ".".join(str(part) for part in version)


def parse_version(text: str, source: Path | str) -> Version:
    """(major, minor, patch) of the RPC_PROTO_*_VERSION defines in a ggml-rpc.h's text; RpcError naming
    `source` when one is absent, is not a plain number, or is defined twice with different values."""
    found: dict[str, int] = {}
    for part, rest in _DEFINE.findall(text):
        name = f"RPC_PROTO_{part}_VERSION"
        value = _COMMENT.sub("", rest).strip()
        number = _NUMBER.fullmatch(value)
        if number is None:
            raise RpcError(f"{UNKNOWN}: {source} defines {name} as {value!r}, not a number")
        if found.setdefault(part, int(number[2])) != int(number[2]):
            raise RpcError(f"{UNKNOWN}: {source} defines {name} twice, as {found[part]} and {number[2]}")
    missing = [f"RPC_PROTO_{part}_VERSION" for part in VERSION_PARTS if part not in found]
    if missing:
        raise RpcError(
            f"{UNKNOWN}: {source} has no #define {', '.join(missing)} (a ggml older than the RPC handshake, "
            "or a damaged file)"
        )
    return found["MAJOR"], found["MINOR"], found["PATCH"]


def read_version(root: Path) -> Version:
    """The protocol the build at root (the package, or a stage) speaks: its include/ggml-rpc.h's defines.
    RpcError naming the file when it is missing, unreadable or says no version. Reads the file each call:
    the Runtime keeps the answer."""
    path = root / HEADER
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise RpcError(
            f"{UNKNOWN}: {path} is missing (it comes with the libraries: reinstall llama-cpp-runtime, "
            "or rebuild the stage)"
        ) from None
    except OSError as error:
        raise RpcError(f"{UNKNOWN}: {path} cannot be read: {error.strerror or error}") from None
    return parse_version(text, path)


def compatible(version: Version, ours: Version) -> bool:
    """ggml's own rule (negotiate_hello): the same major, a minor no newer than ours."""
    return version[0] == ours[0] and version[1] <= ours[1]


def probe(endpoint: str, ours: Version, timeout: float = DEFAULT_TIMEOUT) -> ServerInfo:
    """Ask the server at endpoint for its protocol version and its devices (with their memory), as ggml's
    client would, and close the connection; RpcError when it is not a ggml RPC server of protocol `ours`
    (read_version's), cannot be reached, or does not answer within `timeout` seconds (one that serves another
    client does not)."""
    host, port = parse_endpoint(endpoint)
    deadline = time.monotonic() + timeout
    try:
        connection = socket.create_connection((host, port), timeout=timeout)
    except OSError as error:
        raise RpcError(f"RPC server {endpoint}: cannot connect: {error.strerror or error}") from None
    with connection:
        channel = _Channel(connection, endpoint, ours, deadline, timeout)
        reply = channel.ask(CMD_HELLO, bytes(CONN_CAPS_SIZE), HELLO_REPLY_SIZE, "HELLO")
        version = (reply[0], reply[1], reply[2])
        if not compatible(version, ours):
            raise RpcError(
                f"RPC server {endpoint} speaks ggml RPC protocol {version_text(version)}; this build speaks "
                f"{version_text(ours)} (run the same llama-cpp-runtime release on every machine)"
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

    def __init__(
        self, connection: socket.socket, endpoint: str, ours: Version, deadline: float, timeout: float
    ) -> None:
        self.connection = connection
        self.endpoint = endpoint
        self.ours = version_text(ours)
        self.deadline = deadline
        self.timeout = timeout

    def ask(self, command: int, data: bytes, reply_size: int, name: str) -> bytes:
        try:
            self.connection.sendall(struct.pack("<BQ", command, len(data)) + data)
            size = struct.unpack("<Q", self._read(8, name))[0]
            if size != reply_size:
                raise RpcError(
                    f"{self.endpoint} is not a ggml RPC server of protocol {self.ours}: it answered "
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
                    + f": not a ggml RPC server of protocol {self.ours} (an older or newer server "
                    "closes the connection on a HELLO it does not know)"
                )
            data += chunk
        return data


def _shown(data: bytes) -> str:
    """Bytes as a reader can judge them: text when they are printable (an HTTP server's answer), else hex."""
    text = data.decode("ascii", errors="replace")
    return repr(text) if text.isprintable() else data.hex(" ")
