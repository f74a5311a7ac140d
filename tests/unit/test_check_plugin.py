"""wheels/check_plugin.py, the test cibuildwheel runs on every plugin wheel: a missing driver is this
runner's business, a missing runtime library is a broken package."""

from __future__ import annotations

import sys

from helpers.support import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "wheels"))
from check_plugin import problems

CUDA = "llama-cpp-runtime-cuda13"


def _module(status: str, reason: str) -> dict[str, str]:
    return {"name": "ggml-cuda", "status": status, "reason": reason, "source": CUDA}


def test_no_driver_passes_and_a_missing_runtime_library_fails() -> None:
    no_driver = "cannot be loaded: libcuda.so.1: cannot open shared object file: No such file or directory"
    assert problems([_module("skipped", no_driver)], CUDA) == []
    assert problems([_module("skipped", "cannot be loaded: nvcuda.dll could not be found")], CUDA) == []
    runtime = "cannot be loaded: libcublas.so.13: cannot open shared object file: No such file or directory"
    assert problems([_module("skipped", runtime)], CUDA) == [
        f"ggml-cuda needs a library that is not the driver and was not found: {runtime}"
    ]
    assert problems([_module("skipped", "cannot be loaded: cublas64_13.dll could not be found")], CUDA)
    assert problems([_module("loaded", "0 device(s): no CUDA-capable device is detected")], CUDA) == []
    assert problems([], CUDA) == [f"no module of {CUDA} was found by the loader"]
