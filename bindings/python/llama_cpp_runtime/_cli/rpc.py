"""`rpc-server`: this machine's devices served to other machines with ggml's own RPC server; and
`_rpc_model`, the child process in which a model with layers on RPC devices runs (see _rpc/client.py)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from .._errors import LlamaRuntimeError, RpcError
from .._rpc import protocol
from .._runtime import Runtime, load
from .arguments import INT32_MAX, CommandError, integer, positive

# Upstream's words (tools/rpc/rpc-server.cpp), for a server bound to anything but the loopback.
WARNING = """\
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
WARNING: Host ('{host}') is != '127.0.0.1'
         Never expose the RPC server to an open network!
         This is an experimental feature and is not secure!
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
The ggml RPC protocol has no authentication and no encryption: whoever reaches this port can run
computations on these devices and read what they hold."""


def add_rpc_server(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    server = commands.add_parser("rpc-server", help="serve this machine's devices to others (ggml RPC)")
    server.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    server.add_argument(
        "--port", type=integer(1, 65535), default=protocol.DEFAULT_PORT, help="default 50052, as upstream"
    )
    server.add_argument(
        "--device", action="append", default=None, help="serve these devices (repeatable; default: the GPUs, else CPU)"
    )
    server.add_argument("--cache", type=Path, help="a folder where the server keeps large tensors it was sent")
    server.add_argument(
        "--threads", type=positive(int, INT32_MAX), help="CPU threads (default: every CPU of this process)"
    )
    server.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow an address other than the loopback (the protocol has no authentication or encryption)",
    )
    child = commands.add_parser("_rpc_model")
    child.add_argument("endpoint", nargs="*")


def rpc_server(arguments: argparse.Namespace) -> int:
    """Serve until Ctrl-C (exit 130) or SIGTERM (143); exit 1 when ggml's server stops by itself (it said why)."""
    host = arguments.host
    if not protocol.is_loopback(host) and not arguments.allow_remote:
        raise CommandError(
            f"--host {host} is not this machine's loopback: the ggml RPC protocol has no authentication or "
            "encryption, so anyone who reaches the port can use these devices; add --allow-remote to serve on "
            "a network you trust",
            2,
        )
    if not protocol.is_loopback(host):
        print(WARNING.format(host=host), file=sys.stderr, flush=True)
    runtime = load()
    from .._rpc.ggml_side import registration, start_server

    registration(runtime._loaded.ggml)  # the module is loaded, or RpcError says why not
    devices = _served(runtime, arguments.device)
    cache = None
    if arguments.cache is not None:
        try:
            arguments.cache.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CommandError(f"--cache {arguments.cache}: {error.strerror or error}", 2) from None
        cache = str(arguments.cache.resolve())
    endpoint = f"{host}:{arguments.port}"
    _refuse_taken(host, arguments.port)
    threads = int(arguments.threads or _cpus())
    stopped: list[BaseException] = []

    def serve() -> None:
        try:
            start_server(runtime._loaded.ggml, endpoint, cache, threads, [d._handle for d in devices])
        except BaseException as error:  # said by the main thread
            stopped.append(error)

    names = ", ".join(d.name for d in devices)
    server = threading.Thread(target=serve, name="ggml-rpc-server", daemon=True)
    try:  # the build's own record; ggml's server does not need it (it prints its own version on stdout)
        speaks = f"ggml RPC protocol {protocol.version_text(runtime._rpc_protocol())}"
    except RpcError as unknown:
        speaks = str(unknown)
    print(f"serving {names} on {endpoint} ({speaks}); Ctrl-C stops it", file=sys.stderr, flush=True)
    server.start()
    try:
        while server.is_alive():
            server.join(0.2)  # a short wait, so that Ctrl-C is seen at once
    except KeyboardInterrupt as interruption:
        # ggml's server thread is inside accept() or serving a client and has no way to be stopped; the process
        # ends here (the operating system closes its sockets), before the interpreter would tear down what
        # that thread still uses.
        sys.stdout.flush()
        print("interrupted", file=sys.stderr, flush=True)
        code = 143 if type(interruption).__name__ == "_Terminated" else 130
        os._exit(code)
    if stopped and isinstance(stopped[0], LlamaRuntimeError):
        raise stopped[0]
    raise CommandError(f"the RPC server on {endpoint} stopped: {stopped[0] if stopped else 'ggml said why above'}")


def _cpus() -> int:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _served(runtime: Runtime, names: list[str] | None) -> list[Any]:
    """The devices asked for (UnknownDevice names the ones there are); by default, as upstream, the GPUs
    (one per GPU), else the CPU. Another server's device cannot be served again."""
    if names:
        devices = [runtime.device(name) for name in names]
    else:
        here = [d for d in runtime.devices() if not d.remote]
        devices = [d for d in here if d.gpu and d.preferred] or [d for d in here if d.type == "CPU"]
    relayed = [d.name for d in devices if d.remote]
    if relayed:
        raise CommandError(f"{', '.join(relayed)}: another RPC server's devices cannot be served again", 2)
    if not devices:
        raise CommandError("no device to serve (no CPU backend either: `python -m llama_cpp_runtime info`)")
    return devices


def _refuse_taken(host: str, port: int) -> None:
    """CommandError when the address cannot be listened on (ggml would say only "Failed to create server socket")."""
    import socket

    try:
        with socket.create_server((host, port)):
            pass
    except OSError as error:
        why = os.strerror(error.errno) if error.errno else str(error)  # create_server's own text names the address
        raise CommandError(f"cannot listen on {host}:{port}: {why}", 2) from None


# ---- the child that runs a model on RPC devices -----------------------------------------------------


def rpc_model_child(arguments: argparse.Namespace) -> int:
    """Requests from stdin, one JSON line each; one JSON line of reply each on the original stdout. Whatever
    C code prints on stdout goes to stderr instead (fd 1 becomes a copy of fd 2). Ends at end of input."""
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    runtime = load()
    for endpoint in arguments.endpoint:
        runtime.register_rpc_server(endpoint)
    state = _ChildState(runtime)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            reply: dict[str, Any] = {"ok": state.answer(request)}
        except (LlamaRuntimeError, ValueError, TypeError) as error:
            reply = {"error": type(error).__name__, "message": str(error)}
        _send(replies, reply)
    return 0


def _send(stream: IO[str], reply: dict[str, Any]) -> None:
    stream.write(json.dumps(reply) + "\n")
    stream.flush()


class _ChildState:
    """The model, its contexts (by number) and the generation being streamed of each."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.model: Any = None
        self.contexts: dict[int, Any] = {}
        self.streams: dict[int, Iterator[int]] = {}

    def answer(self, request: dict[str, Any]) -> Any:
        op = request.pop("op")
        if op == "load":
            return self._load(**request)
        if self.model is None:
            raise RpcError("no model is loaded")
        if op in _MODEL_OPS:
            return _MODEL_OPS[op](self.model, request)
        if op == "context":
            number = max(self.contexts, default=0) + 1
            self.contexts[number] = self.model.context(**request)
            return number
        number = request.pop("context", None)
        context = self.contexts.get(number) if isinstance(number, int) else None
        if context is None or not isinstance(number, int):
            raise RpcError(f"no such context ({op})")
        if op in {"stream", "next", "close_context"}:
            return self._generation(op, number, context, request)
        if op not in _CONTEXT_OPS:
            raise RpcError(f"unknown request {op!r}")
        return _CONTEXT_OPS[op](context, request)

    def _generation(self, op: str, number: int, context: Any, request: dict[str, Any]) -> Any:
        """A streamed generation's start and next token; a context's close (its stream goes with it)."""
        if op == "stream":
            self.streams[number] = context.stream(request["ids"], request["max_tokens"], reset=request["reset"])
            return None
        if op == "next":
            return next(self.streams.get(number, iter(())), None)
        self.streams.pop(number, None)
        self.contexts.pop(number).close()
        return None

    def _load(self, path: str, devices: list[str] | None, **options: Any) -> dict[str, Any]:
        model = self.runtime.load_model(path, devices=devices, **options)
        self.model = model
        return {
            "metadata": model.metadata,
            "load_log": list(getattr(model, "load_log", ())),
            "n_embd": model.n_embd,
            "n_ctx_train": model.n_ctx_train,
            "n_params": model.n_params,
            "size": model.size,
            "n_vocab": model.n_vocab,
            "description": model.description,
        }


_Op = Callable[[Any, dict[str, Any]], Any]
_MODEL_OPS: dict[str, _Op] = {
    "tokenize": lambda model, r: model.tokenize(
        r["text"], add_special=r["add_special"], parse_special=r["parse_special"]
    ),
    "detokenize": lambda model, r: model.detokenize(
        r["ids"], remove_special=r["remove_special"], unparse_special=r["unparse_special"]
    ),
    "token_to_piece": lambda model, r: model.token_to_piece(r["token"], special=r["special"]).hex(),
    "is_end_of_generation": lambda model, r: model.is_end_of_generation(r["token"]),
}
_CONTEXT_OPS: dict[str, _Op] = {
    "n_past": lambda context, r: context.n_past,
    "reset": lambda context, r: context.reset(),
    "decode": lambda context, r: list(context.decode(r["ids"])),
    "generate": lambda context, r: context.generate(r["ids"], r["max_tokens"], reset=r["reset"]),
    "embed": lambda context, r: context.embed(r["text"], normalize=r["normalize"]),
}
