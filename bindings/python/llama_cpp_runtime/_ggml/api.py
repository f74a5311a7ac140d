"""ggml's C API as ctypes sees it: the subset the binding calls, with ggml's signatures."""

from __future__ import annotations

import ctypes
from typing import Any

VOID_P = ctypes.c_void_p
LOG_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)

GGML_TYPE_F32 = 0
GGML_TYPE_F16 = 1
GGML_TYPE_Q4_0 = 2
GGML_TYPE_Q8_0 = 8
GGML_TYPE_Q4_K = 12
GGML_TYPE_I32 = 26
GGML_PREC_F32 = 10
GGML_STATUS_SUCCESS = 0
DEVICE_TYPES = {0: "CPU", 1: "GPU", 2: "IGPU", 3: "ACCEL", 4: "META"}


class InitParams(ctypes.Structure):
    _fields_ = [("mem_size", ctypes.c_size_t), ("mem_buffer", VOID_P), ("no_alloc", ctypes.c_bool)]


class Feature(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("value", ctypes.c_char_p)]


class DeviceProps(ctypes.Structure):
    """ggml_backend_dev_props, then room to spare: a ggml whose struct grew writes into the spare bytes,
    never past the buffer."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        ("description", ctypes.c_char_p),
        ("memory_free", ctypes.c_size_t),
        ("memory_total", ctypes.c_size_t),
        ("type", ctypes.c_int),
        ("device_id", ctypes.c_char_p),
        ("caps", ctypes.c_bool * 5),
        ("_spare", ctypes.c_char * 256),
    ]


GET_FEATURES = ctypes.CFUNCTYPE(ctypes.POINTER(Feature), VOID_P)

_SIZE = ctypes.c_size_t
_SIGNATURES: dict[str, tuple[object, list[object]]] = {
    # ggml-base: logging, contexts, tensors, graphs
    "ggml_log_set": (None, [LOG_CALLBACK, VOID_P]),
    "ggml_init": (VOID_P, [InitParams]),
    "ggml_free": (None, [VOID_P]),
    "ggml_tensor_overhead": (_SIZE, []),
    "ggml_graph_overhead": (_SIZE, []),
    "ggml_new_tensor_2d": (VOID_P, [VOID_P, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]),
    "ggml_mul_mat": (VOID_P, [VOID_P, VOID_P, VOID_P]),
    "ggml_norm": (VOID_P, [VOID_P, VOID_P, ctypes.c_float]),
    "ggml_rms_norm": (VOID_P, [VOID_P, VOID_P, ctypes.c_float]),
    "ggml_new_graph": (VOID_P, [VOID_P]),
    "ggml_build_forward_expand": (None, [VOID_P, VOID_P]),
    "ggml_backend_alloc_ctx_tensors": (VOID_P, [VOID_P, VOID_P]),
    "ggml_backend_buffer_free": (None, [VOID_P]),
    "ggml_backend_tensor_set": (None, [VOID_P, VOID_P, _SIZE, _SIZE]),
    "ggml_backend_tensor_get": (None, [VOID_P, VOID_P, _SIZE, _SIZE]),
    "ggml_backend_graph_compute": (ctypes.c_int, [VOID_P, VOID_P]),
    "ggml_backend_supports_op": (ctypes.c_bool, [VOID_P, VOID_P]),
    "ggml_backend_free": (None, [VOID_P]),
    # devices and registrations
    "ggml_backend_dev_get_props": (None, [VOID_P, ctypes.POINTER(DeviceProps)]),
    "ggml_backend_dev_backend_reg": (VOID_P, [VOID_P]),
    "ggml_backend_dev_init": (VOID_P, [VOID_P, ctypes.c_char_p]),
    "ggml_backend_reg_name": (ctypes.c_char_p, [VOID_P]),
    "ggml_backend_reg_dev_count": (_SIZE, [VOID_P]),
    "ggml_backend_reg_dev_get": (VOID_P, [VOID_P, _SIZE]),
    "ggml_backend_reg_get_proc_address": (VOID_P, [VOID_P, ctypes.c_char_p]),
    "ggml_backend_reg_by_name": (VOID_P, [ctypes.c_char_p]),
    "ggml_threadpool_params_init": (None, [VOID_P, ctypes.c_int]),
    # the registry and loader (libggml)
    "ggml_backend_load": (VOID_P, [ctypes.c_char_p]),
    "ggml_backend_reg_count": (_SIZE, []),
    "ggml_backend_reg_get": (VOID_P, [_SIZE]),
    "ggml_backend_dev_count": (_SIZE, []),
    "ggml_backend_dev_get": (VOID_P, [_SIZE]),
}

# What `check` builds beyond MUL_MAT and NORM: declared where the library has them (an older or a miniature
# ggml may lack some; the operation is then reported as not in this ggml, not run).
_FLOATS_6: list[object] = [ctypes.c_float] * 6  # rope's freq_base ... beta_slow
_OPTIONAL: dict[str, tuple[object, list[object]]] = {
    "ggml_new_tensor_1d": (VOID_P, [VOID_P, ctypes.c_int, ctypes.c_int64]),
    "ggml_new_tensor_2d": (VOID_P, [VOID_P, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]),
    "ggml_new_tensor_3d": (VOID_P, [VOID_P, ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64]),
    "ggml_mul_mat": (VOID_P, [VOID_P, VOID_P, VOID_P]),
    "ggml_norm": (VOID_P, [VOID_P, VOID_P, ctypes.c_float]),
    "ggml_rms_norm": (VOID_P, [VOID_P, VOID_P, ctypes.c_float]),
    "ggml_nelements": (ctypes.c_int64, [VOID_P]),
    "ggml_row_size": (_SIZE, [ctypes.c_int, ctypes.c_int64]),
    "ggml_quantize_chunk": (
        _SIZE,
        [ctypes.c_int, VOID_P, VOID_P, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, VOID_P],
    ),
    "ggml_get_rows": (VOID_P, [VOID_P, VOID_P, VOID_P]),
    "ggml_soft_max_ext": (VOID_P, [VOID_P, VOID_P, VOID_P, ctypes.c_float, ctypes.c_float]),
    "ggml_rope_ext": (
        VOID_P,
        [VOID_P, VOID_P, VOID_P, VOID_P, ctypes.c_int, ctypes.c_int, ctypes.c_int, *_FLOATS_6],
    ),
    "ggml_flash_attn_ext": (
        VOID_P,
        [VOID_P, VOID_P, VOID_P, VOID_P, VOID_P, ctypes.c_float, ctypes.c_float, ctypes.c_float],
    ),
    "ggml_flash_attn_ext_set_prec": (None, [VOID_P, ctypes.c_int]),
    "ggml_backend_buft_name": (ctypes.c_char_p, [VOID_P]),
    "ggml_backend_alloc_ctx_tensors_from_buft": (VOID_P, [VOID_P, VOID_P]),
}

GET_EXTRA_BUFTS = ctypes.CFUNCTYPE(ctypes.POINTER(VOID_P), VOID_P)


def optional(ggml: ctypes.CDLL, name: str) -> Any:
    """One of _OPTIONAL's functions with its signature, None when this ggml does not export it."""
    restype, argtypes = _OPTIONAL[name]
    try:
        function = getattr(ggml, name)
    except AttributeError:
        return None
    function.restype = restype
    function.argtypes = argtypes
    return function


def ggml_commit(ggml: ctypes.CDLL) -> str | None:
    """The commit compiled into ggml-base (`ggml_commit()`), None where ggml predates it."""
    try:
        function = ggml.ggml_commit
    except AttributeError:
        return None
    function.restype = ctypes.c_char_p
    function.argtypes = []
    value = function()
    return value.decode("utf-8", errors="replace") if value else None


def backend_function(ggml: ctypes.CDLL, registration: int | None, name: str, prototype: Any) -> Any:
    """A function a backend module exports through its registry (not by symbol: a module is opened
    privately), given its C type; None when the backend has no such function."""
    address = ggml.ggml_backend_reg_get_proc_address(registration, name.encode()) if registration else None
    return prototype(address) if address else None


def declare(ggml: ctypes.CDLL) -> ctypes.CDLL:
    """Give every function its signature. Looked up through libggml, whose dependency ggml-base
    holds the tensor API: dlsym on a handle searches the library's dependencies too."""
    for name, (restype, argtypes) in _SIGNATURES.items():
        function = getattr(ggml, name)
        function.restype = restype
        function.argtypes = argtypes
    return ggml
