"""cmake_reach: the CMake walk that finds paths the sync subset lacks, on small trees written here."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import pytest

from buildsys.builder import reach_record
from buildsys.builder.cmake_reach import MissingPath, UpstreamFiles, evaluate, needs, parse, unsynced_paths
from buildsys.builder.driver import SubsetMissing
from buildsys.builder.presets import load_matrix
from buildsys.errors import OutOfDate
from buildsys.packaging import wheels
from buildsys.vendoring.manifest import MANIFEST_NAME


def tree(files: Mapping[str, str], synced: set[str] | None = None) -> UpstreamFiles:
    chosen = frozenset(files if synced is None else synced)
    return UpstreamFiles(chosen, frozenset(files), lambda path: files[path])


def missing(files: UpstreamFiles, *, outer: tuple[str, ...] = (), **cache: str) -> list[str]:
    return [str(m) for m in unsynced_paths(files, [cache], [""], outer=outer)]


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
        ("A", {}, False),  # unset: false, as CMake says
        ("NOT A", {}, True),
        ("NOT A", {"A": "OFF"}, True),
        ("A AND B", {"A": "OFF"}, False),  # false whatever B is
        ("A OR B", {"B": "ON"}, True),
        ("A AND NOT (B AND C)", {"A": "ON", "B": "OFF"}, True),
        ("NOT TARGET ggml AND NOT SYS", {"SYS": "OFF"}, None),  # targets are the walk's to know
        ('CMAKE_SYSTEM_NAME STREQUAL "iOS"', {}, None),  # CMake's own variables are known only to CMake
        ("WIN32 OR APPLE", {}, None),
        ("${A}", {"A": "TRUE"}, True),
        ("${backend_id}", {"backend_id": "GGML_CANN"}, False),  # the name computed, then its variable read
        ("${backend_id}", {"backend_id": "GGML_CANN", "GGML_CANN": "ON"}, True),
        ("${${name}_FOUND}", {"name": "Vulkan", "Vulkan_FOUND": "1"}, True),  # nested references, inside out
        ('"${A}"', {"A": "x86"}, False),  # a quoted string that is no true constant
        ('"${A}"', {"A": "ON"}, True),
        ("0", {}, False),
        ("NOT DEFINED A", {}, True),
        ("DEFINED A", {"A": ""}, True),
        ("DEFINED ENV{A}", {}, None),
        ('A STREQUAL "x86"', {"A": "x86"}, True),
        ('A STREQUAL "x86"', {"A": "ARM"}, False),
        ('A STREQUAL "x86"', {}, False),  # unset: the name itself is compared
        ('A MATCHES "^(x86|AMD64)$"', {"A": "AMD64"}, True),
        ("A VERSION_LESS 3.10", {"A": "3.9.2"}, True),
        ("A EQUAL 0", {"A": "00"}, True),
        ("A LESS B", {"A": "2", "B": "10"}, True),
        ("A STRLESS B", {"A": "2", "B": "10"}, False),
        ("b IN_LIST L", {"L": "a;b"}, True),
        ("c IN_LIST L", {}, False),
        ("A", {"A": "lib-NOTFOUND"}, False),
        ("$ENV{A}", {}, None),
    ],
)
def test_conditions_are_decided_the_way_cmake_decides_them(
    condition: str, variables: dict[str, str], expected: bool | None
) -> None:
    command = parse(f"if ({condition})\n")[0]
    assert evaluate(command.args, command.quoted, variables) is expected


@pytest.mark.parametrize("condition", ["A", "NOT A", 'A STREQUAL "x"', "DEFINED A", "${A}"])
def test_a_variable_the_walk_cannot_know_leaves_the_condition_undecided(condition: str) -> None:
    command = parse(f"if ({condition})\n")[0]
    assert evaluate(command.args, command.quoted, {}, unknown={"A"}) is None


def test_an_unconditional_subdirectory_outside_the_subset_is_named_with_its_line() -> None:
    files = {
        "CMakeLists.txt": "project(x)\n\nadd_subdirectory(src)\nadd_subdirectory(vendor)\n",
        "src/CMakeLists.txt": "add_library(a a.c)\n",
        "src/a.c": "",
        "vendor/CMakeLists.txt": "",
    }
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
    assert folders == ["other/"]  # LIB_ONLY is set by nothing: false
    assert [m.split(": ")[1] for m in missing(subset, BUILD_TOOLS="OFF", LIB_ONLY="ON")] == [
        "lib/ is not synced; add it to [sync] include"
    ]
    undecided = missing(subset, outer=("LIB_ONLY",), BUILD_TOOLS="OFF")  # set where the walk cannot see
    assert [m.split(": ")[1].split(" ")[0] for m in undecided] == ["lib/", "other/"]
    assert all("depends on `LIB_ONLY` (CMakeLists.txt:4)" in m for m in undecided), undecided


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
        "lib/a.c": "",
        "lib/extra/b.c": "",
        "lib/models/m1.c": "",
        "lib/models/m2.c": "",
        "third_party/h.h": "",
    }
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


# ggml's way of adding a backend (ggml/src/CMakeLists.txt): only some backends are options.
GGML_LIKE = {
    "CMakeLists.txt": (
        'option(GGML_CPU "cpu" ON)\noption(GGML_SYCL "sycl" OFF)\n'
        "function(ggml_add_backend backend)\n"
        '  string(TOUPPER "GGML_${backend}" backend_id)\n'
        "  if (${backend_id})\n"
        '    string(TOLOWER "ggml-${backend}" backend_target)\n'
        "    add_subdirectory(${backend_target})\n"
        "  endif()\n"
        "endfunction()\n"
        "ggml_add_backend(CPU)\nggml_add_backend(CANN)\nggml_add_backend(SYCL)\n"
    ),
    "ggml-cpu/CMakeLists.txt": "",
    "ggml-cann/CMakeLists.txt": "",
    "ggml-sycl/CMakeLists.txt": "",
}


def test_a_backend_no_option_declares_is_unset_and_false_until_a_definition_sets_it() -> None:
    subset = tree(GGML_LIKE, {"CMakeLists.txt", "ggml-cpu/CMakeLists.txt"})
    assert missing(subset) == []  # GGML_CANN: no option(), no set(), not in the preset: unset
    assert missing(subset, GGML_CANN="ON") == [
        "CMakeLists.txt:11 ggml_add_backend(CANN): ggml-cann/ is not synced; add it to [sync] include"
    ]
    assert missing(subset, GGML_SYCL="ON") == [
        "CMakeLists.txt:12 ggml_add_backend(SYCL): ggml-sycl/ is not synced; add it to [sync] include"
    ]


def test_a_deprecated_option_sets_the_new_one_in_the_callers_scope() -> None:
    """llama.cpp's llama_option_depr(WARNING LLAMA_CANN GGML_CANN): -DLLAMA_CANN=ON turns GGML_CANN on."""
    files = {
        **GGML_LIKE,
        "CMakeLists.txt": (
            "function(llama_option_depr TYPE OLD)\n"
            "  if (${OLD})\n"
            '    set(NEW "${ARGV2}")\n'
            "    if (NEW)\n      set(${NEW} ON PARENT_SCOPE)\n    endif()\n"
            "  endif()\n"
            "endfunction()\n"
            "llama_option_depr(WARNING LLAMA_CANN GGML_CANN)\n" + GGML_LIKE["CMakeLists.txt"]
        ),
    }
    subset = tree(files, {"CMakeLists.txt", "ggml-cpu/CMakeLists.txt"})
    assert missing(subset) == []
    assert [m.split(": ")[1] for m in missing(subset, LLAMA_CANN="ON")] == [
        "ggml-cann/ is not synced; add it to [sync] include"
    ]


def test_a_condition_only_cmake_can_decide_is_named_instead_of_claiming_the_path_is_needed() -> None:
    files = {
        "CMakeLists.txt": (
            'if (CMAKE_SYSTEM_NAME STREQUAL "Windows")\n  add_subdirectory(win)\nendif()\n'
            "if (UNIX)\n  set(HAVE_POSIX ON)\nendif()\n"
            "if (NOT HAVE_POSIX)\n  add_subdirectory(compat)\nendif()\n"  # may or may not be set: undecided
        ),
    }
    found = missing(tree(files, {"CMakeLists.txt"}))
    assert found == [
        "CMakeLists.txt:2 add_subdirectory(win): win/ is not synced; whether CMake needs it depends on "
        '`CMAKE_SYSTEM_NAME STREQUAL "Windows"` (CMakeLists.txt:1), which cannot be decided before CMake runs: '
        "add it to [sync] include unless that rules it out for every build of this subset",
        "CMakeLists.txt:8 add_subdirectory(compat): compat/ is not synced; whether CMake needs it depends on "
        "`NOT HAVE_POSIX` (CMakeLists.txt:7), which cannot be decided before CMake runs: "
        "add it to [sync] include unless that rules it out for every build of this subset",
    ]


def test_loops_run_once_per_item_and_names_made_from_the_item_are_followed() -> None:
    files = {
        "CMakeLists.txt": (
            "foreach (feat NATIVE AVX)\n  set(USE_${feat} OFF)\nendforeach()\n"
            "foreach (feat ${EXTRA})\n  set(USE_${feat} ON)\nendforeach()\n"
            "foreach (name NATIVE AVX CUDA)\n"
            "  if (USE_${name})\n    add_subdirectory(${name})\n  endif()\n"
            "endforeach()\n"
        ),
    }
    subset = tree(files, {"CMakeLists.txt"})
    assert missing(subset) == []
    assert [m.split(": ")[1].split(" ")[0] for m in missing(subset, EXTRA="AVX;CUDA")] == ["AVX/", "CUDA/"]


def test_what_commands_the_walk_does_not_model_write_is_undecided() -> None:
    files = {
        "CMakeLists.txt": (
            'check_c_source_compiles("int main(void) { return 0; }" HAVE_FEATURE)\n'
            "if (HAVE_FEATURE)\n  add_subdirectory(feature)\nendif()\n"
            "find_package(Foo)\n"
            "if (Foo_FOUND)\n  add_subdirectory(foo)\nendif()\n"
            "if (NEVER_SET)\n  add_subdirectory(never)\nendif()\n"
        ),
    }
    found = missing(tree(files, {"CMakeLists.txt"}))
    assert [m.split(": ")[1].split(" ")[0] for m in found] == ["feature/", "foo/"]
    assert "depends on `Foo_FOUND` (CMakeLists.txt:6)" in found[1]


def test_an_included_file_sets_variables_in_the_scope_that_includes_it() -> None:
    files = {
        "CMakeLists.txt": "include(cmake/options.cmake)\nif (WITH_EXTRA)\n  add_subdirectory(extra)\nendif()\n",
        "cmake/options.cmake": "set(WITH_EXTRA ON)\n",
    }
    assert missing(tree(files, {"CMakeLists.txt", "cmake/options.cmake"})) == [
        "CMakeLists.txt:3 add_subdirectory(extra): extra/ is not synced; add it to [sync] include"
    ]


def test_a_source_added_to_a_list_under_an_undecided_condition_is_reported_with_it() -> None:
    files = {
        "CMakeLists.txt": (
            "set(SOURCES core.c)\nif (WIN32)\n  list(APPEND SOURCES win/io.c)\nendif()\nadd_library(core ${SOURCES})\n"
        ),
        "core.c": "",
        "win/io.c": "",
    }
    found = missing(tree(files, {"CMakeLists.txt", "core.c"}))
    assert len(found) == 1 and found[0].startswith("CMakeLists.txt:5 add_library(core ${SOURCES}): win/ is not synced;")
    assert "depends on `WIN32` (CMakeLists.txt:2)" in found[0]


def test_targets_made_so_far_decide_if_target() -> None:
    files = {
        "CMakeLists.txt": (
            "add_library(core core.c)\n"
            "if (NOT TARGET core)\n  add_subdirectory(never)\nendif()\n"
            "if (NOT TARGET other)\n  add_subdirectory(other)\nendif()\n"
            "find_package(Threads)\n"
            "if (TARGET Threads::Threads)\n  add_subdirectory(threads)\nendif()\n"
        ),
        "core.c": "",
    }
    found = missing(tree(files, {"CMakeLists.txt", "core.c"}))
    assert [m.split(": ")[1].split(" ")[0] for m in found] == ["other/", "threads/"]
    assert found[0].endswith("add it to [sync] include") and "TARGET Threads::Threads" in found[1]


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
        "backend-cpu/CMakeLists.txt": "add_library(cpu a.c b.c)\n",
        "backend-cpu/a.c": "",
        "backend-cpu/b.c": "",
        "backend-gpu/CMakeLists.txt": "",
    }
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
            "add_subdirectory($ENV{SOMEWHERE}/x)\n"
        ),
    }
    assert missing(tree(files)) == []


def test_the_remembered_check_is_keyed_on_definitions_and_on_what_the_cmake_cache_keeps(tmp_path: Path) -> None:
    destination, build = tmp_path / "vendor", tmp_path / "build"
    destination.mkdir()
    (destination / MANIFEST_NAME).write_text("{}")
    cpu = load_matrix().get("cpu")
    reach_record.remember_checked(build, destination, [cpu])
    assert reach_record.already_checked(build, destination, [cpu])
    defined = dataclasses.replace(cpu, cache_variables={**cpu.cache_variables, "GGML_CANN": "ON"})
    assert not reach_record.already_checked(build, destination, [defined])

    (build / "cpu").mkdir()
    (build / "cpu/CMakeCache.txt").write_text(
        "# This is the CMakeCache file.\n//Use CANN\nGGML_CANN:UNINITIALIZED=ON\nGGML_CPU:BOOL=ON\n"
        "CMAKE_C_COMPILER:FILEPATH=/usr/bin/cc\nggml_BINARY_DIR:STATIC=/x\nGGML_CPU-ADVANCED:INTERNAL=1\n"
    )
    assert reach_record.kept_cache_entries(build / "cpu") == {"GGML_CANN": "ON", "GGML_CPU": "ON"}
    assert reach_record.kept_cache_entries(build / "vulkan") == {}


def test_the_remembered_check_keeps_one_key_per_preset(tmp_path: Path) -> None:
    destination, build = tmp_path / "vendor", tmp_path / "build"
    destination.mkdir()
    (destination / MANIFEST_NAME).write_text("{}")
    cpu, vulkan = load_matrix().get("cpu"), load_matrix().get("vulkan")
    reach_record.remember_checked(build, destination, [cpu])
    reach_record.remember_checked(build, destination, [vulkan])  # does not overwrite cpu's
    assert reach_record.unchecked(build, destination, [cpu, vulkan]) == []
    defined = dataclasses.replace(cpu, cache_variables={**cpu.cache_variables, "GGML_CANN": "ON"})
    assert reach_record.unchecked(build, destination, [defined, vulkan]) == [defined]  # only that one is walked
    (destination / MANIFEST_NAME).write_text('{"synced": "again"}')
    assert reach_record.unchecked(build, destination, [cpu, vulkan]) == [cpu, vulkan]


def test_a_cache_made_in_another_folder_keeps_nothing(tmp_path: Path) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu/CMakeCache.txt").write_text(
        f"GGML_CANN:BOOL=ON\nCMAKE_CACHEFILE_DIR:INTERNAL={tmp_path / 'elsewhere/cpu'}\n"
    )
    cache = reach_record.read_cmake_cache(tmp_path / "cpu")
    assert cache is not None and cache.made_elsewhere(tmp_path / "cpu") == str(tmp_path / "elsewhere/cpu")
    assert cache.kept == {"GGML_CANN": "ON"}
    assert reach_record.kept_cache_entries(tmp_path / "cpu") == {}  # a moved project configures with --fresh
    (tmp_path / "cpu/CMakeCache.txt").write_text(f"GGML_CANN:BOOL=ON\nCMAKE_CACHEFILE_DIR:INTERNAL={tmp_path}/cpu\n")
    assert reach_record.kept_cache_entries(tmp_path / "cpu") == {"GGML_CANN": "ON"}
    assert reach_record.read_cmake_cache(tmp_path / "none") is None


def test_a_refusal_counts_paths_needed_apart_from_paths_that_may_be() -> None:
    sure = MissingPath("CMakeLists.txt", 1, "add_subdirectory(a)", "a/")
    perhaps = MissingPath("CMakeLists.txt", 3, "add_subdirectory(b)", "b/", ("`WIN32` (CMakeLists.txt:2)",))
    assert needs([sure]) == "needs 1 path(s)"
    assert needs([perhaps]) == "may need 1 path(s)"
    assert needs([sure, perhaps]) == "needs 1 and may need 1 more path(s)"


def folders(found: list[str]) -> list[str]:
    return [m.split(": ")[1].split(" ")[0] for m in found]


def test_an_undecided_write_of_the_value_a_variable_surely_has_leaves_it_known() -> None:
    files = {
        "CMakeLists.txt": (
            'option(GGML_NATIVE "native" ON)\n'
            'if (GGML_SYSTEM_ARCH STREQUAL "x86")\n'
            "  foreach (feat NATIVE AVX)\n    set(GGML_${feat} OFF)\n  endforeach()\nendif()\n"
            "if (GGML_NATIVE)\n  include(cmake/FindSIMD.cmake)\nendif()\n"
        ),
        "cmake/FindSIMD.cmake": "",
    }
    subset = tree(files, {"CMakeLists.txt"})
    assert missing(subset, outer=("GGML_SYSTEM_ARCH",), GGML_NATIVE="OFF") == []  # OFF whether or not it is set
    found = missing(subset, outer=("GGML_SYSTEM_ARCH",))  # ON, and perhaps set OFF: undecided
    assert folders(found) == ["cmake/"]
    assert "depends on `GGML_NATIVE` (CMakeLists.txt:7)" in found[0]


def test_a_clause_being_walked_decides_the_same_test_inside_the_functions_it_calls() -> None:
    files = {
        "CMakeLists.txt": (
            "function(variant name)\n"
            '  if (ARCH STREQUAL "x86")\n    add_subdirectory(x86)\n'
            '  elseif (ARCH STREQUAL "ARM")\n    add_subdirectory(arm)\n  endif()\n'
            "endfunction()\n"
            'if (ARCH STREQUAL "x86")\n  variant(x64)\n'
            'elseif (ARCH STREQUAL "ARM" AND LINUX)\n  variant(armv8)\nendif()\n'
            'if (ARCH STREQUAL "x86")\n  set(ARCH ${OTHER})\n'
            '  if (ARCH STREQUAL "ARM")\n    add_subdirectory(changed)\n  endif()\nendif()\n'
        ),
    }
    found = missing(tree(files, {"CMakeLists.txt"}), outer=("ARCH", "OTHER"))
    assert folders(found) == ["x86/", "arm/", "changed/"]
    assert found[0].startswith("CMakeLists.txt:9 variant(x64)")
    assert 'depends on `ARCH STREQUAL "x86"` (CMakeLists.txt:8),' in found[0]  # not tested again inside
    assert found[1].startswith("CMakeLists.txt:11 variant(armv8)")
    assert 'depends on `ARCH STREQUAL "ARM" AND LINUX` (CMakeLists.txt:10),' in found[1]
    assert '`ARCH STREQUAL "ARM"` (CMakeLists.txt:15)' in found[2]  # written since: undecided again


def test_a_cache_entry_stays_unless_forced_and_internal_forces() -> None:
    files = {
        "CMakeLists.txt": (
            'set(A "one" CACHE STRING "doc")\nset(A "two" CACHE INTERNAL "doc")\n'
            'set(B "one" CACHE STRING "doc")\nset(B "two" CACHE STRING "doc")\n'
            'set(C "one" CACHE STRING "doc")\nset(C "two" CACHE STRING "doc" FORCE)\n'
            'set(D "one" CACHE STRING "doc")\nunset(D CACHE)\n'
            'if (A STREQUAL "two")\n  add_subdirectory(internal)\nendif()\n'
            'if (B STREQUAL "two")\n  add_subdirectory(never)\nendif()\n'
            'if (C STREQUAL "two")\n  add_subdirectory(forced)\nendif()\n'
            "if (DEFINED D)\n  add_subdirectory(unset)\nendif()\n"
        ),
    }
    subset = tree(files, {"CMakeLists.txt"})
    assert folders(missing(subset)) == ["internal/", "forced/"]
    assert folders(missing(subset, B="two")) == ["internal/", "never/", "forced/"]  # the preset's entry stays


def test_the_module_path_is_the_variable_in_the_scope_that_includes() -> None:
    files = {
        "CMakeLists.txt": (
            'set(CMAKE_MODULE_PATH "${CMAKE_CURRENT_SOURCE_DIR}/cmake")\n'
            "include(first)\n"
            'function(more)\n  list(APPEND CMAKE_MODULE_PATH "${CMAKE_CURRENT_SOURCE_DIR}/more")\n'
            "  include(second)\nendfunction()\n"
            "more()\ninclude(third)\n"
        ),
        "cmake/first.cmake": "",
        "more/second.cmake": "",
        "more/third.cmake": "",
    }
    assert folders(missing(tree(files, {"CMakeLists.txt"}))) == ["cmake/", "more/"]
    found = missing(tree(files, {"CMakeLists.txt", "cmake/first.cmake"}))
    assert found == ["CMakeLists.txt:7 more(): more/ is not synced; add it to [sync] include"]  # not from line 8


def test_list_and_string_commands_that_read_a_list_write_only_their_result() -> None:
    files = {
        "CMakeLists.txt": (
            "set(L a b)\nlist(LENGTH L count)\nlist(FIND L b i)\nlist(GET L 0 first)\nlist(JOIN L - j)\n"
            'string(REPLACE "a" "c" r "${L}")\nstring(REGEX MATCH "a" m "${L}")\n'
            "foreach (x IN LISTS L)\n  add_subdirectory(${x})\nendforeach()\n"
            "if (count)\n  add_subdirectory(counted)\nendif()\n"
            "if (r)\n  add_subdirectory(replaced)\nendif()\n"
        ),
    }
    found = missing(tree(files, {"CMakeLists.txt"}))
    assert folders(found) == ["a/", "b/", "counted/", "replaced/"]
    assert found[0].endswith("add it to [sync] include") and found[1].endswith("add it to [sync] include")
    assert "depends on `count` (CMakeLists.txt:11)" in found[2] and "depends on `r` (CMakeLists.txt:14)" in found[3]


def test_macro_arguments_are_restored_and_foreach_range_counts() -> None:
    files = {
        "CMakeLists.txt": (
            "set(name outer)\n"
            "macro(add_one name)\n  add_subdirectory(${name})\nendmacro()\n"
            "add_one(inner)\nadd_subdirectory(${name})\n"
            "foreach (i RANGE 1 5 2)\n  add_subdirectory(r${i})\nendforeach()\n"
            "foreach (i RANGE 1)\n  add_subdirectory(s${i})\nendforeach()\n"
        ),
    }
    found = missing(tree(files, {"CMakeLists.txt"}))
    assert folders(found) == ["inner/", "outer/", "r1/", "r3/", "r5/", "s0/", "s1/"]
    assert all(m.endswith("add it to [sync] include") for m in found)


def test_wheels_syncs_again_when_vendor_is_stale_but_not_when_the_subset_lacks_paths(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ran: list[str] = []
    refusals: list[Exception] = [SubsetMissing("the synced CMake needs 1 path(s)"), OutOfDate("vendor is stale")]

    def build(config: object, request: object) -> object:
        ran.append("build")
        if refusals:
            raise refusals.pop(0)
        return "report"

    monkeypatch.setattr(wheels, "run_build", build)
    monkeypatch.setattr(wheels, "run_apply_patches", lambda config: ran.append("apply-patches"))
    monkeypatch.setattr(wheels, "run_sync", lambda config: ran.append("sync"))
    request = wheels.WheelsRequest()
    with pytest.raises(SubsetMissing) as refused:
        wheels.prepare_stages(None, request)  # type: ignore[arg-type]
    assert refused.value.exit_code == OutOfDate.exit_code == 5
    assert ran == ["build"]
    assert wheels.prepare_stages(None, request) == "report"  # type: ignore[arg-type,comparison-overlap]
    assert ran == ["build", "build", "apply-patches", "sync", "build"]
