"""Servers on 127.0.0.1 that are not (quite) ggml RPC servers of this build: what answers HELLO with another
protocol version (as llama.cpp 0.3.36's server, protocol 7.0.0, would to the pin's 5.0.0: its HELLO has the
same size), what closes the connection on HELLO (as a server of another HELLO size does), an HTTP server, one
that never answers (a real server busy with another client). Each runs in a thread, every wait in it bounded.

"This build's" protocol is never written here: the binding reads it from the ggml-rpc.h installed with the
libraries (protocol.read_version), and so do the tests, from the build they run on (or from the header text
they give; rpc_header writes one of our own)."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

Handler = Callable[[socket.socket], None]


class FakeServer:
    def __init__(self, handler: Handler) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self.endpoint = f"127.0.0.1:{self.port}"
        self._handler = handler
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with connection:
                connection.settimeout(20)
                with contextlib.suppress(OSError):
                    self._handler(connection)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._listener.close()

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def _read(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


def _request(connection: socket.socket) -> tuple[int, bytes]:
    command, size = struct.unpack("<BQ", _read(connection, 9))
    return command, _read(connection, size)


def rpc_header(root: Path, version: tuple[int, int, int]) -> Path:
    """root/include/ggml-rpc.h saying only that protocol, as the three defines of ggml's header do."""
    header = root / "include" / "ggml-rpc.h"
    header.parent.mkdir(parents=True, exist_ok=True)
    parts = zip(("MAJOR", "MINOR", "PATCH"), version, strict=True)
    defines = "".join(f"#define RPC_PROTO_{part}_VERSION    {number}\n" for part, number in parts)
    header.write_text(f"#pragma once\n\n{defines}")
    return header


def another_major(ours: tuple[int, int, int]) -> tuple[int, int, int]:
    """A protocol whose HELLO has the same size but that ggml refuses: two majors on (the pin's 5.0.0 -> 7.0.0,
    what llama.cpp of 0.3.36 speaks)."""
    return (ours[0] + 2, 0, 0)


def rpc_server(version: tuple[int, int, int], memory: tuple[int, int] = (1 << 30, 2 << 30)) -> Handler:
    """Answers HELLO with `version`, then DEVICE_COUNT (one device) and GET_DEVICE_MEMORY, as ggml's server does."""

    def handle(connection: socket.socket) -> None:
        while True:
            command, _ = _request(connection)
            if command == 14:
                reply = bytes([*version, 0]) + bytes(24)
            elif command == 15:
                reply = struct.pack("<I", 1)
            elif command == 11:
                reply = struct.pack("<QQ", *memory)
            else:
                return
            connection.sendall(struct.pack("<Q", len(reply)) + reply)

    return handle


def closes_on_hello(connection: socket.socket) -> None:
    """Reads the HELLO and closes without a word, as a server whose HELLO is of another size does."""
    _request(connection)


def http_server(connection: socket.socket) -> None:
    connection.recv(1024)
    connection.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")


def never_answers(connection: socket.socket) -> None:
    """Takes the connection and says nothing for a while (a real server serving another client does not even
    accept it)."""
    connection.settimeout(5)
    try:
        connection.recv(1024)
        connection.recv(1024)
    except OSError:
        pass
