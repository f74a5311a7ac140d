"""inspect_model(): load a model in a child process and report what it is, or why it cannot be used.

For files from untrusted places: whatever llama.cpp does with the file (an abort on an assertion no
header check knows about, a fault in a kernel, a hang) happens to the child, and the caller gets a
typed error with the child's last words instead.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from .._child import run_child
from .._errors import InvalidModel, LlamaRuntimeError, ModelLoadError, ModelNotFound


@dataclass(frozen=True)
class ModelInfo:
    path: Path
    architecture: str
    description: str
    n_params: int
    size: int
    n_vocab: int
    n_embd: int
    n_ctx_train: int
    metadata: dict[str, str] = field(repr=False)


_ERRORS: dict[str, type[LlamaRuntimeError]] = {
    "ModelNotFound": ModelNotFound,
    "InvalidModel": InvalidModel,
}


def inspect_model(path: str | os.PathLike[str], *, timeout: float = 120.0) -> ModelInfo:
    """Load the model in a child process (the same libraries and environment as load() would use), run
    one token through it, and report it; raise ModelNotFound, InvalidModel or ModelLoadError otherwise
    (a crash of the child is an InvalidModel naming the signal)."""
    if not 0 < timeout < math.inf:  # NaN too
        raise ValueError(f"timeout={timeout!r}: expected a number of seconds above zero")
    location = Path(path).resolve()
    child = run_child(["_inspect", str(location)], None, timeout)
    if child.failure.startswith(("crashed", "timed out")):
        raise InvalidModel(f"{location}: loading it in a child process failed: {child.failure}")
    if child.failure:
        raise ModelLoadError(f"{location}: {child.failure}")
    answer = json.loads(child.stdout)
    if "error" in answer:
        raise _ERRORS.get(answer["error"], ModelLoadError)(answer["message"])
    return ModelInfo(path=location, **answer)
