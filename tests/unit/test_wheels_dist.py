"""What `wheels` says about dist/ (moved here from test_queue_words, which is about the patch queue)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from buildsys import ui
from buildsys.config import DEFAULT_COMMIT, load_config
from buildsys.packaging.wheels import BuiltWheel, warn_other_wheels


def test_wheels_this_run_did_not_write_are_listed_not_removed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "vendoring.toml").write_text(f'[upstream]\ncommit = "{DEFAULT_COMMIT}"\n')
    config = load_config(tmp_path / "vendoring.toml", env={})
    dist = tmp_path / "dist"
    dist.mkdir()
    for name in (
        "llama_cpp_runtime-0.2.0-py3-none-linux_x86_64.whl",
        "llama_cpp_runtime-0.1.0-py3-none-linux_x86_64.whl",
        "llama_cpp_runtime_vulkan-0.2.0-py3-none-linux_x86_64.whl",
    ):
        (dist / name).write_bytes(b"")
    monkeypatch.setattr(ui._settings, "stream", sys.stderr)  # capsys's, for this test only
    written = BuiltWheel(
        dist / "llama_cpp_runtime-0.2.0-py3-none-linux_x86_64.whl", "llama-cpp-runtime", ("cpu",), 1, 0
    )
    warn_other_wheels(config, [written], "0.2.0")
    said = capsys.readouterr().err
    assert "dist/ also holds 2 wheel(s) this run did not write" in said
    assert "llama_cpp_runtime-0.1.0-py3-none-linux_x86_64.whl (version 0.1.0, not 0.2.0)" in said
    assert "llama_cpp_runtime_vulkan-0.2.0-py3-none-linux_x86_64.whl\n" in said + "\n"
    assert len(list(dist.iterdir())) == 3
