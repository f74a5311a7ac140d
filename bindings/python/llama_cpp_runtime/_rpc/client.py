"""A model whose layers are on RPC devices runs in a child process; here is its handle.

ggml-rpc's client ends the whole process when a server goes away (every request it sends asserts with
`RPC_STATUS_ASSERT`, a `GGML_ABORT`: "Remote RPC server crashed or returned malformed response"; newer
trees abort even when a server cannot be reached). A patch could not make that an error: the buffer
functions that fail (`set_tensor`, `get_tensor`) return void, and llama.cpp would carry on with what was
not copied. So the model, its contexts and ggml's RPC client live in a child (`python -m llama_cpp_runtime
_rpc_model`), and this process keeps handles that ask it over a pipe. When the child ends, the call waiting
on it raises RpcError with ggml's own last words; every later call raises it again. Each answer is awaited
at most `timeout` seconds (a server that hangs instead of going away), then the child is killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from array import array
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from .. import _errors
from .._child import last_words
from .._errors import ClosedError, LlamaRuntimeError, RpcError
from .._settings import LIBRARY_DIR, QUIET_GPU

CHILD_COMMAND = "_rpc_model"
_BUILTIN_ERRORS: dict[str, type[Exception]] = {"ValueError": ValueError, "TypeError": TypeError}


def error_from(reply: Mapping[str, Any]) -> Exception:
    """The exception the child raised, as its type (one of the binding's, ValueError, TypeError) or RpcError."""
    name, message = str(reply.get("error")), str(reply.get("message", ""))
    kind = getattr(_errors, name, None) or _BUILTIN_ERRORS.get(name)
    if isinstance(kind, type) and issubclass(kind, LlamaRuntimeError | ValueError | TypeError):
        return kind(message)
    return RpcError(f"{name}: {message}")


class _Worker:
    """The child process and the pipe to it: one request, one reply, in order, under a lock."""

    def __init__(self, library_dir: Path, endpoints: Sequence[str], timeout: float) -> None:
        self.endpoints = tuple(endpoints)
        self.timeout = timeout
        self._lock = threading.Lock()
        self._log: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - kept for the child's life
        env = {**os.environ, LIBRARY_DIR: str(library_dir), QUIET_GPU: "1", "GGML_NO_BACKTRACE": "1"}
        self._process = subprocess.Popen(  # noqa: S603 - this very interpreter, a fixed module, our arguments
            [sys.executable, "-m", "llama_cpp_runtime", CHILD_COMMAND, *self.endpoints],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            start_new_session=True,  # Ctrl-C at the terminal is this process's to handle; the child ends at EOF
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._requests = self._process.stdin
        self._replies: queue.Queue[bytes | None] = queue.Queue()
        threading.Thread(target=self._read, args=(self._process.stdout,), daemon=True).start()
        self._lost = ""  # why the child is gone ("" while it runs)

    def _read(self, stream: IO[bytes]) -> None:
        for line in stream:
            self._replies.put(line)
        self._replies.put(None)  # the child closed its end: it ended

    def call(self, op: str, **args: Any) -> Any:
        with self._lock:
            if self._lost:
                raise RpcError(self._lost)
            try:
                self._requests.write(json.dumps({"op": op, **args}).encode() + b"\n")
                self._requests.flush()
            except OSError:
                pass  # it ended: the reader says so next
            try:
                line = self._replies.get(timeout=self.timeout)
            except queue.Empty:
                self._end(f"no answer to {op} within {self.timeout:g}s (an RPC server that hangs?)")
                raise RpcError(self._lost) from None
            except BaseException:  # Ctrl-C: the answer would come to the next call; the child goes instead
                self._end(f"interrupted during {op}")
                raise
            if line is None:
                self._end("")
                raise RpcError(self._lost)
        reply = json.loads(line)
        if "error" in reply:
            raise error_from(reply)
        return reply.get("ok")

    def _end(self, why: str) -> None:
        """Kill the child (if it still runs) and say why it is gone, with ggml's last words."""
        if self._process.poll() is None:
            self._process.kill()
        try:
            code = self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            code = None
        self._log.seek(0)
        said = last_words(self._log.read().decode(errors="replace"))
        self._log.close()
        if not why:
            how = f"ended by {signal.Signals(-code).name}" if code and code < 0 else f"exited {code}"
            why = f"it {how}" + (f": {said}" if said else "")
        elif said:
            why += f"; it said: {said}"
        servers = ", ".join(self.endpoints)
        self._lost = f"the process running the model on RPC servers {servers} is gone: {why}; load the model again"

    def close(self) -> None:
        with self._lock:
            if self._lost:
                return
            try:
                self._requests.close()  # the child's loop ends at end of input
                self._process.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self._process.kill()
            self._lost = "the model was closed"
            self._log.close()


class RemoteModel:
    """A model with layers on RPC devices (`Runtime.load_model(..., rpc=[...])`): the methods of Model, run in a
    child process. Use as a context manager or call close()."""

    def __init__(self, worker: _Worker, path: Path, loaded: Mapping[str, Any]) -> None:
        self._worker = worker
        self.path = path
        self.metadata: dict[str, str] = dict(loaded["metadata"])
        self.load_log: tuple[str, ...] = tuple(loaded["load_log"])
        self.n_embd = int(loaded["n_embd"])
        self.n_ctx_train = int(loaded["n_ctx_train"])
        self.n_params = int(loaded["n_params"])
        self.size = int(loaded["size"])
        self.n_vocab = int(loaded["n_vocab"])
        self.description = str(loaded["description"])
        self.servers = worker.endpoints
        self._closed = False

    @classmethod
    def load(
        cls, library_dir: Path, endpoints: Sequence[str], path: Path, options: Mapping[str, Any], timeout: float
    ) -> RemoteModel:
        """Start the model's process (it adds the servers in order) and load the model there."""
        worker = _Worker(library_dir, endpoints, timeout)
        try:
            loaded = worker.call("load", path=str(path), **options)
        except BaseException:
            worker.close()
            raise
        return cls(worker, path, loaded)

    def _call(self, op: str, **args: Any) -> Any:
        if self._closed:
            raise ClosedError(f"{self!r} is closed")
        return self._worker.call(op, **args)

    def __repr__(self) -> str:
        return f"<RemoteModel {self.path.name} on {', '.join(self.servers)}>"

    def tokenize(self, text: str | bytes, *, add_special: bool = True, parse_special: bool = False) -> list[int]:
        """Model.tokenize, in the model's process."""
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="surrogateescape")
        return list(self._call("tokenize", text=text, add_special=add_special, parse_special=parse_special))

    def detokenize(self, ids: Sequence[int], *, remove_special: bool = False, unparse_special: bool = False) -> str:
        """Model.detokenize, in the model's process."""
        return str(
            self._call("detokenize", ids=list(ids), remove_special=remove_special, unparse_special=unparse_special)
        )

    def token_to_piece(self, token: int, *, special: bool = False) -> bytes:
        """Model.token_to_piece, in the model's process."""
        return bytes.fromhex(self._call("token_to_piece", token=token, special=special))

    def is_end_of_generation(self, token: int) -> bool:
        """Model.is_end_of_generation, in the model's process."""
        return bool(self._call("is_end_of_generation", token=token))

    def context(
        self, n_ctx: int = 512, n_threads: int | None = None, n_batch: int | None = None, embeddings: bool = False
    ) -> RemoteContext:
        """A RemoteContext: Model.context's parameters, in the model's process."""
        number = self._call("context", n_ctx=n_ctx, n_threads=n_threads, n_batch=n_batch, embeddings=embeddings)
        return RemoteContext(self, int(number))

    def close(self) -> None:
        """Ends the model's process; idempotent."""
        if not self._closed:
            self._closed = True
            self._worker.close()

    def __enter__(self) -> RemoteModel:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter exit anything may be gone already
            self.close()


class RemoteContext:
    """A context of a RemoteModel: the methods of Context, run in the model's child process."""

    def __init__(self, model: RemoteModel, number: int) -> None:
        self._model = model
        self._number = number
        self._closed = False

    def _call(self, op: str, **args: Any) -> Any:
        if self._closed:
            raise ClosedError(f"context {self._number} of {self._model!r} is closed")
        return self._model._call(op, context=self._number, **args)

    @property
    def n_past(self) -> int:
        """Context.n_past: the tokens in the KV memory."""
        return int(self._call("n_past"))

    def reset(self) -> None:
        """Context.reset: clears the KV memory."""
        self._call("reset")

    def decode(self, ids: Sequence[int]) -> array[float]:
        """Context.decode: the logits of the last position."""
        return array("f", self._call("decode", ids=list(ids)))

    def generate(self, ids: Sequence[int], max_tokens: int = 16, *, reset: bool = True) -> list[int]:
        """Context.generate: greedy, the CPU's tokens; RpcError when a server goes away."""
        return list(self._call("generate", ids=list(ids), max_tokens=max_tokens, reset=reset))

    def stream(self, ids: Sequence[int], max_tokens: int = 16, *, reset: bool = True) -> Iterator[int]:
        """The same tokens as generate(), each asked for when the caller wants it."""
        self._call("stream", ids=list(ids), max_tokens=max_tokens, reset=reset)
        while (token := self._call("next")) is not None:
            yield int(token)

    def embed(self, text: str | Sequence[int], *, normalize: bool = False) -> list[float]:
        """Context.embed: the pooled embedding."""
        given: str | list[int] = text if isinstance(text, str) else list(text)
        return list(self._call("embed", text=given, normalize=normalize))

    def close(self) -> None:
        """Frees the context in the model's process; idempotent."""
        if not self._closed:
            if not self._model._closed and not self._model._worker._lost:
                self._call("close_context")
            self._closed = True

    def __enter__(self) -> RemoteContext:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
