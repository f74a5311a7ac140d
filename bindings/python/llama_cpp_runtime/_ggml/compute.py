"""A minimal compute surface over ggml's graph API: one matrix multiply and one normalisation on a
chosen device, with inputs and outputs as `array('f')` (or anything exposing float32 buffers)."""

from __future__ import annotations

import ctypes
import threading
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from .._errors import ComputeError, Unsupported
from .._handle import Handle
from .._platform import thread_count
from .._report import Device
from . import api as _api

# array('f'), NumPy float32 arrays, lists of floats (a string: array is generic only from Python 3.12)
FloatData: TypeAlias = "Sequence[float] | memoryview | array[float]"


def as_float32(values: Any, expected: int, what: str) -> array[float]:
    data = array("f", values) if not isinstance(values, array) or values.typecode != "f" else values
    if len(data) != expected:
        raise ValueError(f"{what} has {len(data)} values, the shape needs {expected}")
    return data


@dataclass(frozen=True)
class Input:
    """One input tensor of `Backend.graph`: ggml type, shape (ne0 first) and data in that type's layout."""

    type: int
    shape: tuple[int, ...]
    data: bytes
    weight: bool = False  # a model's weight: placed in the weights' buffer type when one is given


_SET_N_THREADS = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int)


class Backend(Handle):
    """A ggml backend initialised on one device. Close it (or use `with`); using it afterwards raises
    ClosedError instead of touching freed memory."""

    def __init__(self, ggml: ctypes.CDLL, device: Device, *, n_threads: int | None = None) -> None:
        threads = thread_count(n_threads, ValueError)
        super().__init__(threading.Lock())
        self._ggml = ggml
        self.device = device
        handle = ggml.ggml_backend_dev_init(device._handle, None)
        if not handle:
            raise ComputeError(f"{device.name} ({device.description}): the device could not be initialised")
        self._handle = handle
        # ggml's own default is 4 threads whatever the machine; a model context uses every CPU it may
        registration = ggml.ggml_backend_dev_backend_reg(device._handle)
        set_threads = _api.backend_function(ggml, registration, "ggml_backend_set_n_threads", _SET_N_THREADS)
        if set_threads is not None:
            set_threads(handle, threads)

    @property
    def library(self) -> ctypes.CDLL:
        """The ggml library the backend computes with (its tensor and graph API)."""
        return self._ggml

    def _free(self, handle: int) -> None:
        self._ggml.ggml_backend_free(handle)

    def _describe(self) -> str:
        return f"{self.device.name} backend"

    def mul_mat(self, a: FloatData, b: FloatData, *, m: int, n: int, k: int) -> array[float]:
        """ggml's MUL_MAT: a is m rows of k, b is n rows of k; the result is n rows of m,
        result[j][i] = sum over t of a[i][t] * b[j][t]."""
        a32, b32 = as_float32(a, m * k, "a"), as_float32(b, n * k, "b")

        def build(ctx: int) -> tuple[list[tuple[int, array[float]]], int, int]:
            ta = self._ggml.ggml_new_tensor_2d(ctx, _api.GGML_TYPE_F32, k, m)
            tb = self._ggml.ggml_new_tensor_2d(ctx, _api.GGML_TYPE_F32, k, n)
            return [(ta, a32), (tb, b32)], self._ggml.ggml_mul_mat(ctx, ta, tb), m * n

        return self._run("mul_mat", build)

    def norm(self, x: FloatData, *, rows: int, cols: int, eps: float = 1e-5, rms: bool = False) -> array[float]:
        """ggml's NORM (or RMS_NORM): each row scaled to zero mean (unless rms) and unit variance."""
        x32 = as_float32(x, rows * cols, "x")

        def build(ctx: int) -> tuple[list[tuple[int, array[float]]], int, int]:
            tx = self._ggml.ggml_new_tensor_2d(ctx, _api.GGML_TYPE_F32, cols, rows)
            operation = self._ggml.ggml_rms_norm if rms else self._ggml.ggml_norm
            return [(tx, x32)], operation(ctx, tx, ctypes.c_float(eps)), rows * cols

        return self._run("rms_norm" if rms else "norm", build)

    def graph(
        self, inputs: Sequence[Input], build: Callable[[int, list[int]], int], *, weights_in: int | None = None
    ) -> array[float]:
        """One graph: `inputs` (raw bytes of ggml's layout) become tensors, `build(ctx, tensors)` makes the
        output node (float32) in that context. With `weights_in` (a buffer type, e.g. one of the device's extra
        buffer types: the CPU backend's repacked or AMX weights), the inputs marked `weight` live in a buffer of
        that type, as a model's weights would; Unsupported when the device declines the node so placed."""
        with self._held():
            handle = self._live()
            ggml = self._ggml
            size = ggml.ggml_tensor_overhead() * (len(inputs) + 8) + ggml.ggml_graph_overhead()
            contexts = [ggml.ggml_init(_api.InitParams(size, None, True)) for _ in range(2)]
            buffers: list[int] = []
            try:
                if not all(contexts):
                    raise ComputeError("ggml_init failed")
                tensors = [self._new_tensor(contexts[int(i.weight and weights_in is not None)], i) for i in inputs]
                output = build(contexts[0], tensors)
                if weights_in is not None and any(i.weight for i in inputs):
                    # placed before asking: whether an extra buffer type takes a node depends on its weights' buffer
                    from_buft = _api.optional(ggml, "ggml_backend_alloc_ctx_tensors_from_buft")
                    if from_buft is None:
                        raise Unsupported("this ggml cannot place tensors in a buffer type")
                    buffers.append(self._allocate(from_buft, contexts[1], weights_in))
                if not ggml.ggml_backend_supports_op(handle, output):
                    raise Unsupported(f"not supported on {self.device.name}")
                graph = ggml.ggml_new_graph(contexts[0])
                ggml.ggml_build_forward_expand(graph, output)
                buffers.append(self._allocate(ggml.ggml_backend_alloc_ctx_tensors, contexts[0], handle))
                for tensor, given in zip(tensors, inputs, strict=True):
                    ggml.ggml_backend_tensor_set(tensor, given.data, 0, len(given.data))
                status = ggml.ggml_backend_graph_compute(handle, graph)
                if status != _api.GGML_STATUS_SUCCESS:
                    raise ComputeError(f"failed on {self.device.name} (ggml status {status})")
                count = _api.optional(ggml, "ggml_nelements")(output)
                result = array("f", bytes(count * 4))
                ggml.ggml_backend_tensor_get(output, result.buffer_info()[0], 0, count * 4)
                return result
            finally:
                for buffer in buffers:
                    ggml.ggml_backend_buffer_free(buffer)
                for ctx in contexts:
                    if ctx:
                        ggml.ggml_free(ctx)

    def extra_buffer_types(self) -> list[tuple[str, int]]:
        """The device's extra buffer types for weights (ggml_backend_dev_get_extra_bufts: the CPU backend's
        CPU_REPACK, AMX, KleidiAI ... where this variant has them), as (name, handle); [] without that function."""
        ggml, device = self._ggml, self.device._handle
        registration = ggml.ggml_backend_dev_backend_reg(device)
        get = _api.backend_function(ggml, registration, "ggml_backend_dev_get_extra_bufts", _api.GET_EXTRA_BUFTS)
        name_of = _api.optional(ggml, "ggml_backend_buft_name")
        listed = get(device) if get is not None and name_of is not None else None
        found: list[tuple[str, int]] = []
        while listed and listed[len(found)]:
            handle = listed[len(found)]
            found.append((name_of(handle).decode("utf-8", errors="replace"), handle))
        return found

    def _new_tensor(self, ctx: int, given: Input) -> int:
        new = _api.optional(self._ggml, f"ggml_new_tensor_{len(given.shape)}d")
        if new is None:
            raise Unsupported(f"this ggml has no ggml_new_tensor_{len(given.shape)}d")
        tensor: int = new(ctx, given.type, *given.shape)
        return tensor

    def _allocate(self, allocate: Callable[[int, int], int | None], ctx: int, where: int) -> int:
        buffer = allocate(ctx, where)
        if not buffer:
            raise ComputeError(f"could not allocate the tensors on {self.device.name}")
        return buffer

    def _run(self, what: str, build: Callable[[int], tuple[list[tuple[int, array[float]]], int, int]]) -> array[float]:
        with self._held():
            handle = self._live()
            ggml = self._ggml
            size = ggml.ggml_tensor_overhead() * 8 + ggml.ggml_graph_overhead()
            ctx = ggml.ggml_init(_api.InitParams(size, None, True))
            if not ctx:
                raise ComputeError(f"{what}: ggml_init failed")
            buffer = None
            try:
                inputs, output, count = build(ctx)
                if not ggml.ggml_backend_supports_op(handle, output):
                    # asking first: ggml's BLAS backend, and Metal without simdgroup reductions, abort instead
                    raise Unsupported(f"{what.upper()} is not supported on {self.device.name}")
                graph = ggml.ggml_new_graph(ctx)
                ggml.ggml_build_forward_expand(graph, output)
                buffer = ggml.ggml_backend_alloc_ctx_tensors(ctx, handle)
                if not buffer:
                    raise ComputeError(f"{what} on {self.device.name}: could not allocate the tensors")
                for tensor, values in inputs:
                    address, _ = values.buffer_info()
                    ggml.ggml_backend_tensor_set(tensor, address, 0, len(values) * 4)
                status = ggml.ggml_backend_graph_compute(handle, graph)
                if status != _api.GGML_STATUS_SUCCESS:
                    raise ComputeError(f"{what} on {self.device.name} failed (ggml status {status})")
                result = array("f", bytes(count * 4))
                ggml.ggml_backend_tensor_get(output, result.buffer_info()[0], 0, count * 4)
                return result
            finally:
                if buffer:
                    ggml.ggml_backend_buffer_free(buffer)
                ggml.ggml_free(ctx)
