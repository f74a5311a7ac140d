"""Malformed vendoring.toml: one line per problem naming the TOML path, exit 2, never a traceback."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from helpers.support import Project

SHA = "d3cf1f14a2e16fbd7ebad34b12cb71b8af345c43"

CASES = [
    ("toml syntax", "[upstream\n", ["error: vendoring.toml: invalid TOML: "]),
    ("unknown table", "[upstrem]\n", ["[upstrem]: unknown table; did you mean 'upstream'?"]),
    ("unknown key", f'[upstream]\ncomit = "{SHA}"\n', ["[upstream] comit: unknown key; did you mean 'commit'?"]),
    (
        "unknown key, no close match",
        "[sync]\nzzz = 1\n",
        ["[sync] zzz: unknown key; valid: destination, include, exclude"],
    ),
    (
        "short commit",
        '[upstream]\ncommit = "d3cf1f1"\n',
        ["[upstream] commit: 'd3cf1f1' is not a full 40-hex commit SHA"],
    ),
    ("branch as commit", '[upstream]\ncommit = "master"\n', ["(a branch or tag name belongs in [upstream] ref)"]),
    ("41 hex", f'[upstream]\ncommit = "{SHA}0"\n', ["is not a full 40-hex commit SHA"]),
    ("commit not a string", "[upstream]\ncommit = 12345\n", ["[upstream] commit: expected string, got integer"]),
    ("url not a string", "[upstream]\nurl = true\n", ["[upstream] url: expected string, got boolean"]),
    ("empty url", '[upstream]\nurl = ""\n', ["[upstream] url: must not be empty"]),
    ("empty ref", '[upstream]\nref = " "\n', ["[upstream] ref: must not be empty"]),
    (
        "served release",
        '[downstream]\nllama-cpp-python = "v0.3"\n',
        ["[downstream] llama-cpp-python: 'v0.3' is not a release version, e.g. \"0.3.35\""],
    ),
    ("served key", '[downstream]\nllama_cpp_python = "0.3.35"\n', ["did you mean 'llama-cpp-python'?"]),
    ("table as value", 'upstream = "x"\n', ["upstream: expected a table [upstream], got string"]),
    (
        "absolute tracking",
        '[tracking]\npath = "/tmp/upstream"\n',
        ["[tracking] path: '/tmp/upstream' must be relative"],
    ),
    ("escaping patches", '[patches]\npath = "../patches"\n', ["[patches] path: '../patches' escapes the project root"]),
    ("root destination", '[sync]\ndestination = "."\n', ["[sync] destination: '.' is the project root itself"]),
    (
        "inside .git",
        '[tracking]\npath = ".git/upstream"\n',
        ["[tracking] path: '.git/upstream' is inside the project's .git"],
    ),
    ("same folders", '[patches]\npath = "vendor/llama.cpp"\n', ["[sync] destination: same folder as [patches] path"]),
    (
        "nested folders",
        '[sync]\ndestination = "build/upstream/vendor"\n',
        ["[sync] destination: overlaps [tracking] path"],
    ),
    # folders the build writes (issue #30): the build's own files would count as unsaved work or hand edits
    ("tracking is build/", '[tracking]\npath = "build"\n', ["[tracking] path: 'build' is the build's output folder"]),
    ("tracking is build/, spelt ./build/", '[tracking]\npath = "./build/"\n', ["is the build's output folder"]),
    (
        "destination is the stage",
        '[sync]\ndestination = "build/stage"\n',
        ["[sync] destination: 'build/stage' is where `build` stages every preset"],
    ),
    (
        "destination is dist/",
        '[sync]\ndestination = "dist"\n',
        ["[sync] destination: 'dist' is where `wheels` writes the wheels"],
    ),
    ("destination inside dist/", '[sync]\ndestination = "dist/vendor"\n', ["'dist/vendor' overlaps dist/"]),
    (
        "patches in a preset's build tree",
        '[patches]\npath = "build/cpu/patches"\n',
        ["[patches] path: 'build/cpu/patches' overlaps build/cpu/, the CMake build tree of preset `cpu`"],
    ),
    ("tracking in the stage", '[tracking]\npath = "build/stage/upstream"\n', ["overlaps build/stage/"]),
    (
        "byte-order mark",
        f'\ufeff[upstream]\ncommit = "{SHA}"\n',
        ["byte-order mark, which TOML does not allow (an editor added it): save it as UTF-8 without BOM"],
    ),
    ("include not a list", '[sync]\ninclude = "ggml/"\n', ["[sync] include: expected array, got string"]),
    ("include empty", "[sync]\ninclude = []\n", ["[sync] include: must list at least one pattern"]),
    ("include item type", '[sync]\ninclude = ["ggml/", 3]\n', ["[sync] include[1]: expected string, got integer"]),
    (
        "absolute glob",
        '[sync]\ninclude = ["/ggml"]\n',
        ["[sync] include[0]: '/ggml' must be relative to the upstream root"],
    ),
    (
        "dotdot glob",
        '[sync]\nexclude = ["ggml/../src"]\n',
        ["[sync] exclude[0]: 'ggml/../src' must not contain '.' or '..'"],
    ),
    ("backslash glob", '[sync]\nexclude = ["ggml\\\\src"]\n', ["[sync] exclude[0]: 'ggml\\\\src' must use '/'"]),
    ("bracket glob", '[sync]\nexclude = ["ggml/[ab"]\n', ["[sync] exclude[0]: 'ggml/[ab' has an unbalanced"]),
    (
        "bracket order",
        '[sync]\ninclude = ["src/]["]\n',
        ["[sync] include[0]: 'src/][' has a '[' without a closing ']'"],
    ),
    ("empty set", '[sync]\ninclude = ["src/[]"]\n', ["[sync] include[0]: 'src/[]' has an invalid '[...]' set"]),
    (
        "bad range",
        '[sync]\nexclude = ["src/[z-a].cpp"]\n',
        ["[sync] exclude[0]: 'src/[z-a].cpp' has an invalid '[...]' set: bad character range z-a"],
    ),
    (
        "no pin",
        '[upstream]\n# the commit is forgotten\nurl = "https://example.invalid/llama.cpp.git"\n',
        ["[upstream] commit: missing; the pin is a full 40-hex SHA"],
    ),
    (
        "several at once",
        '[upstream]\ncommit = "abc"\nbranch = "x"\n[tracking]\npath = "/abs"\n',
        [
            "[upstream] branch: unknown key; did you mean 'ref'?",
            "[upstream] commit: 'abc'",
            "[tracking] path: '/abs' must be relative",
        ],
    ),
]


def pinned(text: str) -> str:
    """The case's text with a valid pin where it has none: only the problem under test is reported."""
    if "commit" in text or text.startswith("upstream ="):
        return text
    if "[upstream]\n" in text:
        return text.replace("[upstream]\n", f'[upstream]\ncommit = "{SHA}"\n', 1)
    return f'[upstream]\ncommit = "{SHA}"\n' + text


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in CASES], ids=[c[0] for c in CASES])
def test_malformed_config_gives_one_line_per_problem_and_exit_2(
    project: Project, text: str, expected: list[str]
) -> None:
    (project.root / "vendoring.toml").write_text(pinned(text))
    before = sorted(p.name for p in project.root.iterdir())

    result = project.run("status", expect=2)

    lines = result.stderr.strip().splitlines()
    assert len(lines) == len(expected), result.stderr
    for line, fragment in zip(lines, expected, strict=True):
        assert line.startswith("error: vendoring.toml: "), line
        assert fragment in line, (fragment, line)
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in project.root.iterdir()) == before  # nothing created


def test_missing_config_file(tmp_path: Path, project: Project) -> None:
    result = project.run("--config", str(tmp_path / "nowhere.toml"), "status", expect=2)
    assert "no such file" in result.stderr and "Traceback" not in result.stderr


def test_unknown_command_is_a_usage_error(project: Project) -> None:
    result = project.run("aply-patches", expect=2)
    assert "invalid choice: 'aply-patches'" in result.stderr


def test_empty_environment_overrides_are_errors_alike(project: Project) -> None:
    for variable in ("BUILDSYS_CONFIG", "BUILDSYS_UPSTREAM_URL"):
        empty = dataclasses.replace(project, env={**project.env, variable: ""})
        result = empty.run("status", expect=2)
        assert variable in result.stderr and "empty" in result.stderr and "Traceback" not in result.stderr


def test_the_config_file_is_named_once_per_error(project: Project) -> None:
    (project.root / "vendoring.toml").write_bytes(b"[upstream\n")
    assert project.run("status", expect=2).stderr.startswith("error: vendoring.toml: invalid TOML: ")
    (project.root / "vendoring.toml").write_bytes(b"\xff\xfe")
    assert project.run("status", expect=2).stderr.strip() == "error: vendoring.toml: not UTF-8 text"
