"""cmake_reach: the CMake walk that finds paths the sync subset lacks, on small trees written here."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from buildsys.builder.cmake_reach import UpstreamFiles, evaluate, parse, unsynced_paths


def tree(files: Mapping[str, str], synced: set[str] | None = None) -> UpstreamFiles:
    chosen = frozenset(files if synced is None else synced)
    return UpstreamFiles(chosen, frozenset(files), lambda path: files[path])


def missing(files: UpstreamFiles, **cache: str) -> list[str]:
    return [str(m) for m in unsynced_paths(files, [cache], [""])]


def test_parse_splits_arguments_like_cmake_and_counts_lines() -> None:
    text = 'project(x)\n#[[ block\ncomment ]]\nset(A "b c" [=[d]=] e) # tail\nif (NOT (X AND Y))\nendif()\n'
    commands = parse(text)
    assert [(c.name, c.line) for c in commands] == [("project", 1), ("set", 4), ("if", 5), ("endif", 6)]
    assert commands[1].args == ("A", "b c", "d", "e")
    assert commands[2].args == ("NOT", "(", "X", "AND", "Y", ")")


@pytest.mark.parametrize(
    ("condition", "variables", "expected"),
    [
        ("A", {"A": "ON"}, True),
        ("A", {"A": "OFF"}, False),
        ("A", {}, None),  # unknown: not ours to decide
        ("NOT A", {"A": "OFF"}, True),
        ("A AND B", {"A": "OFF"}, False),  # false whatever B is
        ("A OR B", {"B": "ON"}, True),
        ("A AND NOT (B AND C)", {"A": "ON", "B": "OFF"}, True),
        ("NOT TARGET ggml AND NOT SYS", {"SYS": "OFF"}, None),
        ('CMAKE_SYSTEM_NAME STREQUAL "iOS"', {}, None),
        ("${A}", {"A": "TRUE"}, True),
        ("0", {}, False),
    ],
)
def test_conditions_are_decided_only_by_known_variables(
    condition: str, variables: dict[str, str], expected: bool | None
) -> None:
    command = parse(f"if ({condition})\n")[0]
    assert evaluate(command.args, command.quoted, variables) is expected


def test_an_unconditional_subdirectory_outside_the_subset_is_named_with_its_line() -> None:
    files = {"CMakeLists.txt": "project(x)\n\nadd_subdirectory(src)\nadd_subdirectory(vendor)\n",
             "src/CMakeLists.txt": "add_library(a a.c)\n", "src/a.c": "", "vendor/CMakeLists.txt": ""}  # fmt: skip
    found = missing(tree(files, {"CMakeLists.txt", "src/CMakeLists.txt", "src/a.c"}))
    assert found == ["CMakeLists.txt:4 add_subdirectory(vendor): vendor/ is not synced; add it to [sync] include"]


def test_branches_the_preset_turns_off_are_not_followed_and_else_branches_are() -> None:
    files = {
        "CMakeLists.txt": (
            'option(BUILD_TOOLS "tools" ON)\n'
            "if (BUILD_TOOLS)\n  add_subdirectory(tools)\nelseif (LIB_ONLY)\n  add_subdirectory(lib)\n"
            "else()\n  add_subdirectory(other)\nendif()\n"
        ),
    }
    subset = tree(files, {"CMakeLists.txt"})
    assert [m.split(":")[1].split(" ")[0] for m in missing(subset)] == ["3"]  # the option's default: ON
    folders = [m.split(": ")[1].split(" ")[0] for m in missing(subset, BUILD_TOOLS="OFF")]
    assert folders == ["lib/", "other/"]  # unknown LIB_ONLY: either branch may run
    assert [m.split(": ")[1] for m in missing(subset, BUILD_TOOLS="OFF", LIB_ONLY="ON")] == [
        "lib/ is not synced; add it to [sync] include"
    ]


def test_included_files_and_modules_sources_include_dirs_and_globs_are_checked() -> None:
    files = {
        "CMakeLists.txt": (
            'list(APPEND CMAKE_MODULE_PATH "${CMAKE_CURRENT_SOURCE_DIR}/cmake/")\n'
            "include(CheckCSourceCompiles)\n"  # CMake's own module
            "include(git-vars)\n"
            "include(${CMAKE_CURRENT_SOURCE_DIR}/cmake/info.cmake)\n"
            "add_subdirectory(lib)\n"
        ),
        "cmake/git-vars.cmake": "",
        "cmake/info.cmake": "configure_file(${CMAKE_CURRENT_LIST_DIR}/info.h.in info.h)\n",
        "cmake/info.h.in": "",
        "lib/CMakeLists.txt": (
            "set(SOURCES a.c extra/b.c generated.c)\n"
            "add_library(lib ${SOURCES})\n"
            "target_include_directories(lib PRIVATE ../third_party $<BUILD_INTERFACE:x>)\n"
            'file(GLOB MODELS "models/*.c")\n'
        ),
        "lib/a.c": "", "lib/extra/b.c": "", "lib/models/m1.c": "", "lib/models/m2.c": "",
        "third_party/h.h": "",
    }  # fmt: skip
    synced = {"CMakeLists.txt", "cmake/info.cmake", "lib/CMakeLists.txt", "lib/a.c", "lib/models/m1.c"}
    assert missing(tree(files, synced)) == [
        "CMakeLists.txt:3 include(git-vars): cmake/git-vars.cmake is not synced; add it to [sync] include",
        "cmake/info.cmake:1 configure_file(${CMAKE_CURRENT_LIST_DIR}/info.h.in info.h): cmake/info.h.in is not synced;"
        " add it to [sync] include",
        "lib/CMakeLists.txt:2 add_library(lib ${SOURCES}): lib/extra/ is not synced; add it to [sync] include",
        "lib/CMakeLists.txt:3 target_include_directories(lib PRIVATE ../third_party $<BUILD_INTERFACE:x>): "
        "third_party/ is not synced; add it to [sync] include",
        "lib/CMakeLists.txt:4 file(GLOB MODELS models/*.c): lib/models/m2.c is not synced; add it to [sync] include",
    ]
    assert missing(tree(files)) == []


def test_functions_run_where_they_are_called_and_report_the_call() -> None:
    files = {
        "CMakeLists.txt": (
            'option(USE_GPU "gpu" OFF)\n'
            "function(add_backend name)\n"
            '  string(TOUPPER "USE_${name}" enabled)\n'
            '  if (${enabled})\n    string(TOLOWER "backend-${name}" folder)\n    add_subdirectory(${folder})\n'
            "  endif()\nendfunction()\n"
            "add_backend(CPU)\nadd_backend(GPU)\n"
        ),
        "backend-cpu/CMakeLists.txt": "add_library(cpu a.c b.c)\n", "backend-cpu/a.c": "", "backend-cpu/b.c": "",
        "backend-gpu/CMakeLists.txt": "",
    }  # fmt: skip
    subset = tree(files, {"CMakeLists.txt", "backend-cpu/CMakeLists.txt", "backend-cpu/a.c"})
    assert missing(subset, USE_CPU="ON") == [
        "CMakeLists.txt:9 add_backend(CPU): backend-cpu/b.c is not synced; add it to [sync] include"
    ]
    assert missing(subset, USE_CPU="ON", USE_GPU="ON")[1] == (
        "CMakeLists.txt:10 add_backend(GPU): backend-gpu/ is not synced; add it to [sync] include"
    )


def test_function_bodies_and_unknown_variables_are_not_guessed() -> None:
    files = {
        "CMakeLists.txt": (
            "function(add_backend name)\n  add_subdirectory(${name})\n  add_subdirectory(never)\nendfunction()\n"
            "add_subdirectory(${SOMEWHERE})\ninclude(${CMAKE_SOURCE_DIR}/x.cmake)\n"
        ),
    }
    assert missing(tree(files)) == []
