"""A child's answer is the last line of its stdout, whatever a driver printed before it; its timeout is
checked once, in run_child, for every caller (doctor, inspect_model, the command line)."""

from __future__ import annotations

import math
from pathlib import Path

import llama_cpp_runtime as lcr
import pytest
from llama_cpp_runtime._child import MAX_TIMEOUT, ChildResult, check_timeout, run_child
from llama_cpp_runtime._cli.arguments import MAX_TIMEOUT as CLI_MAX_TIMEOUT


def test_the_answer_is_the_last_line_after_any_chatter() -> None:
    chatter = ChildResult('ggml_cuda_init: found 1 device\n{"ok": true, "n": [1, 2]}\n', "", 0.1)
    assert chatter.json() == {"ok": True, "n": [1, 2]}
    assert ChildResult("[1]\n", "", 0.1).json() == [1]
    assert ChildResult("not json\n", "", 0.1).json() is None
    assert ChildResult("", "", 0.1).json() is None
    assert ChildResult("", "timed out after 1s", 1.0, None).returncode is None


@pytest.mark.parametrize("timeout", [0, -1, math.nan, math.inf, 1e300, MAX_TIMEOUT * 2, "30", True])
def test_a_timeout_outside_what_the_timers_take_is_a_value_error(timeout: object) -> None:
    with pytest.raises(ValueError, match=r"^timeout="):
        check_timeout(timeout)
    with pytest.raises(ValueError, match=r"^timeout="):
        run_child(["info"], {}, timeout)  # type: ignore[arg-type]
    assert check_timeout(MAX_TIMEOUT) == MAX_TIMEOUT == CLI_MAX_TIMEOUT


def test_doctor_and_inspect_model_refuse_a_huge_timeout_with_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^timeout=1e\+300: expected a finite number of seconds above zero"):
        lcr.doctor(timeout=1e300)
    with pytest.raises(ValueError, match=r"^timeout=10000000.0: expected a finite number of seconds above zero"):
        lcr.inspect_model(tmp_path / "model.gguf", timeout=1e7)
