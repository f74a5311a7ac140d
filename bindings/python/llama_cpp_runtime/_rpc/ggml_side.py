"""ggml's own RPC functions, found through the RPC module's registry (`ggml_backend_reg_get_proc_address`):
`ggml_backend_rpc_add_server` (a server's devices into this process's registry) and
`ggml_backend_rpc_start_server` (serve devices until the process ends). Only a server that answered
protocol.probe() is ever given to ggml: its client aborts the process on any other answer."""

from __future__ import annotations

import ctypes

from .._errors import RpcError
from .._ggml import api as _api

_ADD_SERVER = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_char_p)
# void (const char * endpoint, const char * cache_dir, size_t n_threads, size_t n_devices, ggml_backend_dev_t * devices)
_START_SERVER = ctypes.CFUNCTYPE(
    None, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p)
)
NOT_LOADED = "the RPC backend (ggml-rpc) is not loaded: `python -m llama_cpp_runtime info` says why"


def registration(ggml: ctypes.CDLL) -> int:
    """The RPC module's registration ("RPC"); RpcError when the module is not loaded."""
    found = ggml.ggml_backend_reg_by_name(b"RPC")
    if not found:
        raise RpcError(NOT_LOADED)
    return int(found)


def add_server(ggml: ctypes.CDLL, endpoint: str) -> int:
    """Register the server's devices in ggml (named RPC<n>, numbered across servers in the order added);
    the number of devices it added."""
    add = _api.backend_function(ggml, registration(ggml), "ggml_backend_rpc_add_server", _ADD_SERVER)
    if add is None:
        raise RpcError("this ggml-rpc has no ggml_backend_rpc_add_server")
    added = add(endpoint.encode())
    if not added:
        raise RpcError(f"ggml could not add the RPC server {endpoint}")
    register = ggml.ggml_backend_register
    register.argtypes, register.restype = [ctypes.c_void_p], None
    register(added)
    return int(ggml.ggml_backend_reg_dev_count(added))


def start_server(ggml: ctypes.CDLL, endpoint: str, cache_dir: str | None, n_threads: int, devices: list[int]) -> None:
    """ggml's server on those device handles; returns only when it fails (it says why on stderr)."""
    start = _api.backend_function(ggml, registration(ggml), "ggml_backend_rpc_start_server", _START_SERVER)
    if start is None:
        raise RpcError("this ggml-rpc has no ggml_backend_rpc_start_server")
    handles = (ctypes.c_void_p * len(devices))(*devices)
    start(endpoint.encode(), cache_dir.encode() if cache_dir else None, n_threads, len(devices), handles)
