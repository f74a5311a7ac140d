"""The `[project]` table of wheels/pyproject.toml: the one place that says what every published wheel
declares about the project (licence, authors, keywords, classifiers, links), parsed once, validated
completely and frozen. The wheel writers take their metadata from here, never from a second list."""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, UsageError

PROJECT_FILE = Path(__file__).resolve().parents[2] / "wheels" / "pyproject.toml"
# This project's licence (MIT, as `license` says): the binding and the plugin packages are its code.
PROJECT_LICENSE = Path(__file__).resolve().parents[2] / "LICENSE"
PROJECT_NAME = "llama-cpp-runtime"
# The core metadata specification caps a Project-URL label at 32 characters.
URL_LABEL_LIMIT = 32
# PEP 639: with License-Expression, a `License ::` classifier is a second, conflicting statement (PyPI refuses it).
_LICENSE_CLASSIFIER = "License ::"
_CLASSIFIER = re.compile(r"^[A-Za-z0-9][^:]*( :: [^:]+)+$")
_SPDX = re.compile(r"^[A-Za-z0-9.+-]+( (AND|OR|WITH) [A-Za-z0-9.+-]+)*$")
_URL = re.compile(r"^https://[^\s/]+(/\S*)?$")
# The keys this table may hold, and what each must be. Everything else is refused: a key the wheel writer
# does not read would look as if it said something on PyPI while saying nothing.
_KEYS: dict[str, type] = {
    "name": str,
    "requires-python": str,
    "dynamic": list,
    "license": str,
    "authors": list,
    "keywords": list,
    "classifiers": list,
    "urls": dict,
}
_PERSON_KEYS = ("name", "email")


@dataclass(frozen=True)
class Person:
    name: str
    email: str = ""


@dataclass(frozen=True, kw_only=True)
class ProjectTable:
    name: str
    requires_python: str
    license: str  # an SPDX expression (PEP 639)
    authors: tuple[Person, ...]
    keywords: tuple[str, ...]
    classifiers: tuple[str, ...]
    urls: tuple[tuple[str, str], ...]  # (label, URL), in the table's order: the order PyPI shows them in

    def url(self, label: str) -> str:
        return dict(self.urls).get(label, "")

    def wheel_metadata(self) -> dict[str, Any]:
        """What every wheel's METADATA says about the project: WheelSpec's fields of the same names."""
        return {
            "requires_python": self.requires_python,
            "license": self.license,
            "authors": [(person.name, person.email) for person in self.authors],
            "keywords": self.keywords,
            "classifiers": self.classifiers,
            "urls": self.urls,
        }


def load_project_table(path: Path = PROJECT_FILE) -> ProjectTable:
    """Read and validate `[project]` of `path`; ConfigError lists every problem, each naming its key."""
    label = f"{path.parent.name}/{path.name}"
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such file (the wheel project of this checkout)"], source=label) from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError([f"invalid TOML: {error}"], source=label) from None
    table = document.get("project")
    if not isinstance(table, dict):
        raise ConfigError(["[project]: missing (it names the distribution and its metadata)"], source=label)
    problems: list[str] = []
    parsed = _parse(table, problems)
    if problems:
        raise ConfigError(problems, source=label)
    assert parsed is not None
    return parsed


def project_license() -> dict[str, bytes]:
    """This project's licence text, as the wheels carry it under .dist-info/licenses/."""
    try:
        return {"LICENSE": PROJECT_LICENSE.read_bytes()}
    except FileNotFoundError:
        raise UsageError(
            f"{PROJECT_LICENSE} is missing: every wheel carries this project's licence",
            hint="run from a complete checkout of this repository",
        ) from None


def _closest(name: str, candidates: list[str]) -> str:
    match = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else f"; valid: {', '.join(candidates)}"


def _type_name(value: object) -> str:
    return {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}.get(
        type(value), type(value).__name__
    )


def _parse(table: dict[str, Any], problems: list[str]) -> ProjectTable | None:
    kept: dict[str, Any] = {}
    for key, value in table.items():
        if key not in _KEYS:
            problems.append(f"[project] {key}: unknown key{_closest(key, list(_KEYS))}")
        elif not isinstance(value, _KEYS[key]) or isinstance(value, bool):
            hint = ' (PEP 639: an SPDX expression string, e.g. license = "MIT")' if key == "license" else ""
            problems.append(f"[project] {key}: expected {_type_name(_KEYS[key]())}, got {_type_name(value)}{hint}")
        else:
            kept[key] = value
    for key in ("name", "requires-python", "license"):
        if key not in table:
            problems.append(f"[project] {key}: missing")
    name = kept.get("name", "")
    if name and name != PROJECT_NAME:
        problems.append(f"[project] name: {name!r}; the core distribution is {PROJECT_NAME!r}")
    license_expression = kept.get("license", "")
    if license_expression and not _SPDX.fullmatch(license_expression):
        problems.append(f"[project] license: {license_expression!r} is not an SPDX expression, e.g. 'MIT'")
    authors = _authors(kept.get("authors", []), problems)
    keywords = _strings("keywords", kept.get("keywords", []), problems)
    classifiers = _classifiers(kept.get("classifiers", []), problems)
    urls = _urls(kept.get("urls", {}), problems)
    if problems:
        return None
    return ProjectTable(
        name=name,
        requires_python=kept["requires-python"],
        license=license_expression,
        authors=authors,
        keywords=keywords,
        classifiers=classifiers,
        urls=urls,
    )


def _strings(key: str, values: list[Any], problems: list[str]) -> tuple[str, ...]:
    bad = [value for value in values if not isinstance(value, str) or not value.strip()]
    if bad:
        problems.append(f"[project] {key}: every entry must be a non-empty string, not {bad[0]!r}")
    duplicates = sorted({value for value in values if isinstance(value, str) and values.count(value) > 1})
    if duplicates:
        problems.append(f"[project] {key}: {duplicates[0]!r} is listed twice")
    return tuple(value for value in values if isinstance(value, str))


def _authors(values: list[Any], problems: list[str]) -> tuple[Person, ...]:
    people = []
    for index, value in enumerate(values):
        where = f"[project] authors[{index}]"
        if not isinstance(value, dict):
            problems.append(f"{where}: expected a table {{ name = ..., email = ... }}, got {_type_name(value)}")
            continue
        for key, field in value.items():
            if key not in _PERSON_KEYS:
                problems.append(f"{where} {key}: unknown key{_closest(key, list(_PERSON_KEYS))}")
            elif not isinstance(field, str) or not field.strip():
                problems.append(f"{where} {key}: expected a non-empty string")
        if not ({"name", "email"} & value.keys()):
            problems.append(f"{where}: needs a name or an email")
        people.append(Person(str(value.get("name", "")), str(value.get("email", ""))))
    return tuple(people)


def _classifiers(values: list[Any], problems: list[str]) -> tuple[str, ...]:
    classifiers = _strings("classifiers", values, problems)
    for classifier in classifiers:
        if classifier.startswith(_LICENSE_CLASSIFIER):
            problems.append(
                f"[project] classifiers: {classifier!r}: the licence is `license` (an SPDX expression); "
                "PEP 639 forbids a License classifier beside it"
            )
        elif not _CLASSIFIER.fullmatch(classifier):
            problems.append(f"[project] classifiers: {classifier!r} is not of the form 'Topic :: Subtopic'")
    return classifiers


def _urls(values: dict[str, Any], problems: list[str]) -> tuple[tuple[str, str], ...]:
    urls = []
    for label, url in values.items():
        where = f"[project.urls] {label!r}"
        if len(label) > URL_LABEL_LIMIT:
            problems.append(f"{where}: a label is at most {URL_LABEL_LIMIT} characters (core metadata)")
        if "," in label or not label.strip():
            problems.append(f"{where}: a label is non-empty and has no comma (Project-URL is `label, URL`)")
        if not isinstance(url, str) or not _URL.fullmatch(url):
            problems.append(f"{where}: {url!r} is not an https:// URL")
            continue
        urls.append((label, url))
    return tuple(urls)
