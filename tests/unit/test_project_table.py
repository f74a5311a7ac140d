"""wheels/pyproject.toml's [project] table: the one place of the licence, authors, classifiers and links
every wheel declares; parsed once, refused whole with every problem named (and the closest valid key)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import trove_classifiers

from buildsys.errors import ConfigError
from buildsys.packaging.project_table import PROJECT_FILE, load_project_table

VALID = """
[project]
name = "llama-cpp-runtime"
requires-python = ">=3.11"
dynamic = ["version"]
license = "MIT"
authors = [{ name = "someone" }]
classifiers = ["Typing :: Typed"]
[project.urls]
Homepage = "https://example.org/"
"""


def problems(tmp_path: Path, text: str) -> tuple[str, ...]:
    (tmp_path / "pyproject.toml").write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_project_table(tmp_path / "pyproject.toml")
    return raised.value.problems


def test_the_repositorys_table_loads_frozen_and_every_classifier_is_one_pypi_accepts() -> None:
    table = load_project_table()
    assert table.name == "llama-cpp-runtime" and table.license == "MIT" and table.requires_python == ">=3.11"
    unknown = [c for c in table.classifiers if c not in trove_classifiers.classifiers]
    assert unknown == []  # PyPI refuses an upload with a classifier it does not know
    assert [label for label, _ in table.urls][:2] == ["Homepage", "Documentation"]
    assert all(url.startswith("https://") for _, url in table.urls)
    with pytest.raises(dataclasses.FrozenInstanceError):
        table.license = "GPL-3.0-only"  # type: ignore[misc]


def test_a_valid_table_is_read_as_written(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(VALID)
    table = load_project_table(tmp_path / "pyproject.toml")
    assert table.urls == (("Homepage", "https://example.org/"),) and table.authors[0].name == "someone"
    assert table.wheel_metadata()["authors"] == [("someone", "")]


def test_an_unknown_key_is_named_with_the_closest_valid_one(tmp_path: Path) -> None:
    said = problems(tmp_path, VALID.replace("classifiers =", "classifier =").replace("[project.urls]", "[project.url]"))
    assert said == (
        "[project] classifier: unknown key; did you mean 'classifiers'?",
        "[project] url: unknown key; did you mean 'urls'?",
    )


def test_every_problem_is_listed_at_once(tmp_path: Path) -> None:
    text = (
        VALID.replace('license = "MIT"', 'license = { text = "MIT" }')
        .replace('"Typing :: Typed"', '"Typing :: Typed", "License :: OSI Approved :: MIT License", "Typed"')
        .replace("https://example.org/", "http://example.org/")
        .replace('{ name = "someone" }', '{ nmae = "someone" }')
    )
    assert problems(tmp_path, text) == (
        '[project] license: expected string, got table (PEP 639: an SPDX expression string, e.g. license = "MIT")',
        "[project] authors[0] nmae: unknown key; did you mean 'name'?",
        "[project] authors[0]: needs a name or an email",
        "[project] classifiers: 'License :: OSI Approved :: MIT License': the licence is `license` (an SPDX "
        "expression); PEP 639 forbids a License classifier beside it",
        "[project] classifiers: 'Typed' is not of the form 'Topic :: Subtopic'",
        "[project.urls] 'Homepage': 'http://example.org/' is not an https:// URL",
    )


def test_a_missing_file_or_table_is_one_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load_project_table(tmp_path / "nowhere" / "pyproject.toml")
    assert raised.value.source == "nowhere/pyproject.toml" and "no such file" in raised.value.problems[0]
    assert problems(tmp_path, "[tool.x]\ny = 1\n") == (
        "[project]: missing (it names the distribution and its metadata)",
    )
    assert PROJECT_FILE.is_file()
