"""inspect_model(): load a model in a child process and report what it is, or why it cannot be used.

For files from untrusted places: whatever llama.cpp does with the file (an abort on an assertion no
header check knows about, a fault in a kernel, a hang) happens to the child, and the caller gets a
typed error with the child's last words instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .._child import check_timeout, run_child
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
    check_timeout(timeout)  # a ValueError before the path is looked at, as before
    location = Path(path).resolve()
    child = run_child(["_inspect", str(location)], None, timeout)
    if child.returncode is None or child.returncode < 0:  # timed out, or ended by a signal
        raise InvalidModel(f"{location}: loading it in a child process failed: {child.failure}")
    if child.failure:
        raise ModelLoadError(f"{location}: {child.failure}")
    answer = child.json()
    if not isinstance(answer, dict):
        raise ModelLoadError(f"{location}: the child process answered no JSON: {child.stdout.strip()[:120]!r}")
    if "error" in answer:
        raise _ERRORS.get(answer["error"], ModelLoadError)(answer["message"])
    return ModelInfo(path=location, **answer)
