"""The test helpers' own platform assumptions, checked where they can be: on every platform."""

from __future__ import annotations

import tomllib
from pathlib import Path

from helpers.support import GitRepo, hermetic_env, toml_string


def test_a_windows_path_survives_a_toml_basic_string() -> None:
    path = r"C:\Users\runner\AppData\Local\Temp\pytest-0\upstream"  # \U and \A are invalid TOML escapes
    assert tomllib.loads(f"url = {toml_string(path)}\n")["url"] == path
    quoted = '/tmp/a "quoted" name'
    assert tomllib.loads(f"url = {toml_string(quoted)}\n")["url"] == quoted


def test_written_text_keeps_its_line_endings(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    repo = GitRepo(tmp_path / "repo", hermetic_env(tmp_path / "home"))
    written = repo.write("resources.rc", "LINE ONE\r\nLINE 2\r\n")
    assert written.read_bytes() == b"LINE ONE\r\nLINE 2\r\n"  # text mode would give \r\r\n on Windows
    assert repo.read("resources.rc") == "LINE ONE\r\nLINE 2\r\n"
