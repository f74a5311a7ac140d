from __future__ import annotations

import pytest

from buildsys.pathfilter import PathFilter, validate_pattern

FILTER = PathFilter(("CMakeLists.txt", "ggml/", "src/**/*.c", "include/*.h"), ("**/*.md", "**/.github/"))


@pytest.mark.parametrize(
    ("path", "selected"),
    [
        ("CMakeLists.txt", True),
        ("tools/CMakeLists.txt", False),  # anchored at the root
        ("ggml/src/ggml.c", True),
        ("ggml/README.md", False),  # excluded at any depth
        ("ggml/.github/workflows/ci.yml", False),
        ("src/llama.c", True),  # ** spans zero folders
        ("src/models/a/b.c", True),
        ("src/llama.h", False),
        ("include/llama.h", True),
        ("include/sub/x.h", False),  # * stays within one segment
        ("ggmlx/file.c", False),
        ("README.md", False),
    ],
)
def test_selection(path: str, selected: bool) -> None:
    assert FILTER.selects(path) is selected


def test_character_classes() -> None:
    assert PathFilter(("v[0-9].txt", "w[!a].txt")).select(["v1.txt", "va.txt", "wa.txt", "wb.txt"]) == [
        "v1.txt",
        "wb.txt",
    ]


@pytest.mark.parametrize("pattern", ["", "/abs", "a/../b", "./a", "a\\b", "a[b"])
def test_invalid_patterns_have_a_reason(pattern: str) -> None:
    assert validate_pattern(pattern)
