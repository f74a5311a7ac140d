"""Moving the pin in vendoring.toml keeps the maintainer's file as it was, except the pin."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from buildsys.errors import ConfigError
from buildsys.upkeep.pin_file import rewrite_pin, write_pin

OLD = "d3cf1f14a2e16fbd7ebad34b12cb71b8af345c43"
NEW = "8599e0ea3756c4bac4ef813af2241cb1a8bbfb0b"
FILE = f"""# What is vendored.

[upstream]
url = "https://github.com/ggml-org/llama.cpp.git"   # overridable
commit = "{OLD}"  # the pin

[sync]
destination = "vendor/llama.cpp"
"""


def test_commit_is_replaced_in_place_and_ref_added_after_it() -> None:
    rewritten = rewrite_pin(FILE, NEW, "b6000")

    assert rewritten == FILE.replace(f'commit = "{OLD}"  # the pin\n', f'commit = "{NEW}"  # the pin\nref = "b6000"\n')


def test_a_ref_is_replaced_or_removed_when_the_target_names_none() -> None:
    with_ref = rewrite_pin(FILE, NEW, "b6000")

    assert rewrite_pin(with_ref, OLD, "b6001") == FILE.replace(
        f'commit = "{OLD}"  # the pin\n', f'commit = "{OLD}"  # the pin\nref = "b6001"\n'
    )
    assert rewrite_pin(with_ref, OLD, None) == FILE


def test_a_file_without_upstream_table_gets_one_and_other_tables_are_left_alone() -> None:
    bare = '[sync]\ndestination = "vendor/llama.cpp"\n'

    assert rewrite_pin(bare, NEW, None) == f'[upstream]\ncommit = "{NEW}"\n\n' + bare
    assert (
        rewrite_pin('[upstream]\nurl = "x"\n\n[sync]\n', NEW, None)
        == f'[upstream]\nurl = "x"\ncommit = "{NEW}"\n\n[sync]\n'
    )


def test_a_layout_it_cannot_rewrite_safely_is_an_error_not_a_guess() -> None:
    inline = f'upstream = {{ commit = "{OLD}" }}\n'

    with pytest.raises(ConfigError) as refused:
        rewrite_pin(inline, NEW, None)

    assert "edit it by hand" in refused.value.problems[0]


def test_a_file_with_windows_line_endings_keeps_them(tmp_path: Path) -> None:
    path = tmp_path / "vendoring.toml"
    path.write_bytes(FILE.replace("\n", "\r\n").encode())

    write_pin(path, NEW, "b6000")

    expected = FILE.replace(f'commit = "{OLD}"  # the pin\n', f'commit = "{NEW}"  # the pin\nref = "b6000"\n')
    assert path.read_bytes() == expected.replace("\n", "\r\n").encode()


def test_a_ref_with_a_quote_is_written_as_a_valid_toml_string() -> None:
    ref = 'release"candidate'  # git allows '"' in a ref name; TOML needs it escaped

    rewritten = rewrite_pin(FILE, NEW, ref)

    assert tomllib.loads(rewritten)["upstream"]["ref"] == ref
