from __future__ import annotations

from buildsys.builder.buildlog import summarise_failure

NINJA = [
    "[1/9] Building C object a.o",
    "FAILED: [code=1] src/CMakeFiles/ggml-cpu-haswell.dir/ops.c.o ",
    "/usr/bin/cc -O3 -mavx2 -c ops.c -o ops.c.o",
    "ops.c:43:5: error: 'oops' undeclared",
    "   43 |     oops;",
    "[2/9] Building C object b.o",
    "FAILED: src/other.o",
    "cc other.c",
    "ninja: build stopped: subcommand failed.",
]


def test_the_first_ninja_failure_gives_target_command_and_its_lines() -> None:
    summary = summarise_failure(NINJA, [])
    assert summary.target == "src/CMakeFiles/ggml-cpu-haswell.dir/ops.c.o"
    assert summary.command == "/usr/bin/cc -O3 -mavx2 -c ops.c -o ops.c.o"
    assert summary.lines == ("ops.c:43:5: error: 'oops' undeclared", "   43 |     oops;")


def test_a_very_long_command_is_cut() -> None:
    summary = summarise_failure(["FAILED: x.o", "cc " + "-Dflag " * 500, "x.c:1: error: no"], [])
    assert summary.command is not None and len(summary.command) < 700 and summary.command.endswith("…")


def test_cmake_errors_are_kept_paragraph_by_paragraph() -> None:
    stderr = [
        "CMake Warning: ignore me",
        "",
        "CMake Error at ggml/CMakeLists.txt:3 (message):",
        "  no Vulkan",
        "",
        "-- Configuring incomplete, errors occurred!",
    ]
    summary = summarise_failure(["-- The C compiler identification is GNU"], stderr)
    assert summary.target is None
    assert summary.lines == ("CMake Error at ggml/CMakeLists.txt:3 (message):", "  no Vulkan", "")


def test_without_a_recognisable_error_the_last_lines_are_shown() -> None:
    summary = summarise_failure([f"line {i}" for i in range(100)], ["killed"])
    assert summary.lines[-1] == "killed" and len(summary.lines) == 25
