"""Run in a subprocess by the build tests: load a staged tree with ctypes and report what it does.

    python ggml_probe.py scores <stage>            -> {"ggml-cpu-haswell": 127, ...}
    python ggml_probe.py compute <stage> <module>  -> {"backend", "status", "features", "mul_mat", "norm"}

A separate process because a module compiled for instructions this CPU lacks must only be scored,
never run, and a crash must fail one test, not the run.
"""

from __future__ import annotations

import ctypes
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bindings" / "python"))
from llama_cpp_runtime._ggml import api as _api

SHAPE = {"k": 37, "m": 5, "n": 3}  # odd sizes: every vector path also runs its scalar tail


def scores(stage: Path) -> dict[str, int]:
    found = {}
    for module in sorted((stage / "modules").glob("libggml-cpu-*")):
        library = ctypes.CDLL(str(module), mode=ctypes.RTLD_LOCAL)
        found[module.name.split(".")[0].removeprefix("lib")] = int(library.ggml_backend_score())
    return found


def inputs() -> tuple[list[float], list[float]]:
    k, m, n = SHAPE["k"], SHAPE["m"], SHAPE["n"]
    a = [((i * 7) % 11 - 5) / 4.0 for i in range(m * k)]
    b = [((i * 5) % 13 - 6) / 8.0 for i in range(n * k)]
    return a, b


def compute(stage: Path, module: str) -> dict[str, object]:
    ggml = ctypes.CDLL(str(next((stage / "lib").glob("libggml.so.*"))), mode=ctypes.RTLD_GLOBAL)
    _api.declare(ggml)
    reg = ggml.ggml_backend_load(str(stage / "modules" / f"lib{module}.so").encode())
    if not reg:
        return {"error": "ggml_backend_load returned NULL"}
    features = {}
    get_features = ggml.ggml_backend_reg_get_proc_address(reg, b"ggml_backend_get_features")
    if get_features:
        listing = _api.GET_FEATURES(get_features)(reg)
        index = 0
        while listing[index].name:
            features[listing[index].name.decode()] = (listing[index].value or b"").decode()
            index += 1
    backend = ggml.ggml_backend_dev_init(ggml.ggml_backend_reg_dev_get(reg, 0), None)
    k, m, n = SHAPE["k"], SHAPE["m"], SHAPE["n"]
    ctx = ggml.ggml_init(_api.InitParams(ggml.ggml_tensor_overhead() * 8 + ggml.ggml_graph_overhead(), None, True))
    a = ggml.ggml_new_tensor_2d(ctx, 0, k, m)
    b = ggml.ggml_new_tensor_2d(ctx, 0, k, n)
    product = ggml.ggml_mul_mat(ctx, a, b)
    normed = ggml.ggml_norm(ctx, a, ctypes.c_float(1e-5))
    graph = ggml.ggml_new_graph(ctx)
    ggml.ggml_build_forward_expand(graph, product)
    ggml.ggml_build_forward_expand(graph, normed)
    ggml.ggml_backend_alloc_ctx_tensors(ctx, backend)
    a_values, b_values = inputs()
    ggml.ggml_backend_tensor_set(a, (ctypes.c_float * len(a_values))(*a_values), 0, 4 * len(a_values))
    ggml.ggml_backend_tensor_set(b, (ctypes.c_float * len(b_values))(*b_values), 0, 4 * len(b_values))
    status = ggml.ggml_backend_graph_compute(backend, graph)
    product_out = (ctypes.c_float * (m * n))()
    normed_out = (ctypes.c_float * (m * k))()
    ggml.ggml_backend_tensor_get(product, product_out, 0, 4 * m * n)
    ggml.ggml_backend_tensor_get(normed, normed_out, 0, 4 * m * k)
    return {
        "backend": ggml.ggml_backend_reg_name(reg).decode(),
        "status": status,
        "features": features,
        "mul_mat": list(product_out),
        "norm": list(normed_out),
    }


if __name__ == "__main__":
    mode, stage_dir = sys.argv[1], Path(sys.argv[2])
    result = scores(stage_dir) if mode == "scores" else compute(stage_dir, sys.argv[3])
    print(json.dumps(result))
