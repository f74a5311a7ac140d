"""Reading the build-relevant part of an upstream change out of CMake text."""

from __future__ import annotations

from buildsys.builder.presets import load_matrix
from buildsys.pathfilter import PathFilter
from buildsys.upkeep.upstream_changes import Option, _Side, compare_options, compare_subset, preset_warnings


def side(**texts: str) -> _Side:
    """Keyword names stand for paths: `__` is a slash, `_txt` is `.txt`."""
    return _Side({path.replace("__", "/").replace("_txt", ".txt").replace("_", "-"): t for path, t in texts.items()})


def test_a_deprecation_shim_is_a_rename_even_when_the_description_changed() -> None:
    before = side(CMakeLists_txt='option(GGML_CUBLAS "ggml: use CUDA" OFF)\n').options()
    shim = "ggml_option_depr(WARNING GGML_CUBLAS GGML_CUDA)\n"
    after_side = side(CMakeLists_txt='option(GGML_CUDA "ggml: use CUDA (NVIDIA)" OFF)\n' + shim)

    changes = compare_options(before, after_side.options(), after_side.renames())

    assert [(r.old, r.new, r.evidence) for r in changes.renamed] == [("GGML_CUBLAS", "GGML_CUDA", "deprecation shim")]
    assert changes.added == () and changes.removed == ()


def test_renames_are_inferred_from_the_description_or_a_close_name_in_the_same_file() -> None:
    before = side(
        a='option(GGML_X "ggml: use X" ON)\noption(GGML_VK_DEBUG "debug output" OFF)\noption(GGML_GONE "gone" OFF)\n'
    ).options()
    after = side(
        a='option(GGML_USE_X "ggml: use X" ON)\noption(GGML_VK_DEBUGGING "print debug output" OFF)\n'
        'option(GGML_NEW "unrelated" OFF)\n'
    ).options()

    changes = compare_options(before, after, set())

    assert [(r.old, r.new, r.evidence) for r in changes.renamed] == [
        ("GGML_VK_DEBUG", "GGML_VK_DEBUGGING", "similar name"),
        ("GGML_X", "GGML_USE_X", "same description"),
    ]
    assert [o.name for o in changes.removed] == ["GGML_GONE"]
    assert [o.name for o in changes.added] == ["GGML_NEW"]


def test_commented_out_options_do_not_count_and_cache_variables_do() -> None:
    text = (
        '# option(GGML_OLD "not an option any more" OFF)\n'
        'option(GGML_REAL "real" OFF) # trailing comment\n'
        'set(GGML_CUDA_PEER_MAX_BATCH_SIZE 128 CACHE STRING "ggml: max. batch size for using peer access")\n'
    )
    options = side(CMakeLists_txt=text).options()

    assert sorted(options) == ["GGML_CUDA_PEER_MAX_BATCH_SIZE", "GGML_REAL"]
    assert options["GGML_CUDA_PEER_MAX_BATCH_SIZE"].default == "128"


def test_a_description_with_escaped_quotes_is_read_whole() -> None:
    """ggml's GGML_CUDA_FA_QUANTS (0.3.36) spans two lines and quotes inside its description."""
    text = (
        'set   (GGML_CUDA_FA_QUANTS "q4_0-q4_0;q8_0-q8_0" CACHE STRING\n'
        '        "ggml: combinations to compile, \\"all\\" or a list such as \\"q8_0-q8_0\\"")\n'
        'option(GGML_NEXT "next, \\"quoted\\"" ON)\n'
    )
    options = side(CMakeLists_txt=text).options()

    assert options["GGML_CUDA_FA_QUANTS"].doc == 'ggml: combinations to compile, "all" or a list such as "q8_0-q8_0"'
    assert options["GGML_CUDA_FA_QUANTS"].default == '"q4_0-q4_0;q8_0-q8_0"'
    assert options["GGML_NEXT"].doc == 'next, "quoted"' and options["GGML_NEXT"].default == "ON"


def test_default_changes_and_requirements_are_reported() -> None:
    before = side(
        src__ggml_hip__CMakeLists_txt=(
            "cmake_minimum_required(VERSION 3.21)\nfind_package(hip 6.0 REQUIRED)\n"
            "if (${hip_VERSION} VERSION_LESS 6.1)\nendif()\ntarget_compile_features(x PRIVATE cxx_std_17)\n"
        )
    )
    after = side(
        src__ggml_hip__CMakeLists_txt=(
            "cmake_minimum_required(VERSION 3.21)\nfind_package(hip 6.2 REQUIRED)\n"
            "if (${hip_VERSION} VERSION_LESS 6.2)\nendif()\ntarget_compile_features(x PRIVATE cxx_std_20)\n"
        )
    )

    found = before.requirements(), after.requirements()

    changed = {key: (found[0][key], found[1][key]) for key in found[0] if found[0][key] != found[1][key]}
    path = "src/ggml-hip/CMakeLists.txt"
    assert changed == {
        ("hip", path): ("6.0", "6.2"),
        ("hip_VERSION", path): ("6.1", "6.2"),
        ("C++ standard", path): ("17", "20"),
    }
    defaults = compare_options({"A": Option("A", "a", "OFF", "x")}, {"A": Option("A", "a", "ON", "x")}, set())
    assert [(old.default, new.default) for old, new in defaults.default_changed] == [("OFF", "ON")]


def test_files_entering_and_leaving_the_subset_include_renames_across_its_edge() -> None:
    subset = PathFilter(("src/",), ("**/*.md",))
    entries = [
        ("A", ("src/new.c",)),
        ("A", ("docs/new.c",)),
        ("D", ("src/old.c",)),
        ("M", ("src/kept.c",)),
        ("R", ("examples/moved.c", "src/moved.c")),
        ("R", ("src/a.c", "src/b.c")),
        ("R", ("src/out.c", "tools/out.c")),
    ]

    changes = compare_subset(entries, subset)

    assert changes.entering == ("src/new.c", "src/moved.c")
    assert changes.leaving == ("src/old.c", "src/out.c")
    assert changes.renamed == (("src/a.c", "src/b.c"),)
    assert changes.modified == 1


def test_presets_setting_a_renamed_option_and_unbuilt_backends_are_flagged() -> None:
    before = {"GGML_CCACHE": Option("GGML_CCACHE", "ggml: use ccache if available", "ON", "CMakeLists.txt")}
    after = {"GGML_USE_CCACHE": Option("GGML_USE_CCACHE", "ggml: use ccache if available", "ON", "CMakeLists.txt")}
    presets = load_matrix().presets

    warnings = preset_warnings(compare_options(before, after, set()), ("OpenCL", "Vulkan"), tuple(presets))

    assert len(warnings) == 2
    assert warnings[0].endswith("set GGML_CCACHE, renamed upstream to GGML_USE_CCACHE: update CMakePresets.json")
    assert "cpu" in warnings[0] and "vulkan" in warnings[0]
    assert warnings[1] == "new backend OpenCL: no preset builds it"
