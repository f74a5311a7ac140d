"""The pages PyPI shows (buildsys/packaging/pages.py): written for users, right about the binding's API and
the matrix, and rendered as twine and PyPI render them."""

from __future__ import annotations

import re
from types import SimpleNamespace
from unittest import mock

import llama_cpp_runtime as lcr
import pytest
import readme_renderer.markdown

from buildsys.builder.presets import load_matrix
from buildsys.packaging import pages
from buildsys.packaging.project_table import load_project_table
from buildsys.packaging.wheels import _description

MATRIX = load_matrix()
TABLE = load_project_table()
COVERAGE = [{"preset": "cpu", "backend": "cpu", "cpu_variants": ["haswell", "x64"]}]
BUILD = "Built from upstream commit `c`.\n"


def core(llama_cpp_python: str = "0.3.35") -> str:
    return pages.core_page(
        table=TABLE, matrix=MATRIX, coverage=COVERAGE, llama_cpp_python=llama_cpp_python, build=BUILD
    )


def headings(page: str) -> list[str]:
    found, fenced = [], False
    for line in page.splitlines():
        fenced ^= line.startswith("```")
        if not fenced and re.match(r"#{1,6} ", line):
            found.append(line)
    return found


def test_the_core_example_is_five_lines_that_call_the_binding_as_it_is() -> None:
    """Run the example against autospecs of the public classes: a method that is not there, or a keyword
    its signature does not take, fails here (the real libraries are not needed to check the calls)."""
    assert len(pages.CORE_EXAMPLE.splitlines()) == 5
    assert f"```python\n{pages.CORE_EXAMPLE}```" in core()
    runtime = mock.create_autospec(lcr.Runtime, instance=True)
    model = mock.create_autospec(lcr.Model, instance=True)
    context = mock.create_autospec(lcr.Context, instance=True)
    runtime.load_model.return_value = model
    model.context.return_value = context
    for handle in (model, context):
        handle.__enter__.return_value = handle
        handle.__exit__.return_value = False
    model.tokenize.return_value = [1, 2]
    context.generate.return_value = [3]
    model.detokenize.return_value = "generated"
    printed: list[object] = []
    with mock.patch.object(lcr, "load", mock.create_autospec(lcr.load, return_value=runtime)):
        exec(compile(pages.CORE_EXAMPLE, "the core page", "exec"), {"print": printed.append})
    runtime.load_model.assert_called_once_with("model.gguf")
    model.context.assert_called_once_with(n_ctx=512)
    model.tokenize.assert_called_once_with("Hello")
    context.generate.assert_called_once_with([1, 2], max_tokens=32)
    model.detokenize.assert_called_once_with([3])
    assert printed == ["generated"]
    context.__exit__.assert_called_once()
    model.__exit__.assert_called_once()


def test_an_example_calling_what_the_binding_lacks_would_fail() -> None:
    """The check above can fail: the same autospec refuses a keyword the binding's generate() does not take."""
    context = mock.create_autospec(lcr.Context, instance=True)
    with pytest.raises(TypeError):
        context.generate([1], max_new_tokens=32)


def test_the_core_page_is_for_users_and_ends_with_the_build() -> None:
    page = core()
    assert headings(page) == [
        "# llama-cpp-runtime",
        "## Install",
        "## Use",
        "## What runs, and how to see it",
        "## llama-cpp-python",
        "## Links",
        "## Build",
    ]
    assert page.endswith("## Build\n\n" + BUILD)
    assert "pip install llama-cpp-runtime " in page and 'pip install "llama-cpp-runtime[vulkan]"' in page
    assert 'pip install "llama-cpp-runtime[cuda13]"' in page
    for command in ("info", "doctor", "check"):
        assert f"python -m llama_cpp_runtime {command} " in page
    assert "the CPU variants `haswell`, `x64`" in page
    assert "llama-cpp-python 0.3.35" in page and "## llama-cpp-python" not in core(llama_cpp_python="")
    for label, url in TABLE.urls:
        assert f"- {label}: <{url}>" in page


def test_every_extra_of_the_core_wheel_has_a_row_and_the_driver_it_needs() -> None:
    rows = {
        line.split(" | ")[0].removeprefix("| ").strip("`[]"): line
        for line in pages.extras_table(MATRIX)[2:]
        if "|" in line
    }
    plugins = {p.wheel for p in MATRIX.presets if p.wheel != "llama-cpp-runtime"} | set(MATRIX.family_members())
    assert set(rows) == {name.removeprefix("llama-cpp-runtime-") for name in plugins}
    assert "`sm_90`, `sm_100`, `sm_120a`; PTX `compute_100`" in rows["cuda13-sm90"]
    assert "| NVIDIA driver ≥ 580 (Linux), ≥ 580 (Windows) |" in rows["cuda13-sm90"]
    assert "| ROCm ≥ 6.1 |" in rows["rocm"] and "`gfx1100`" in rows["rocm"]
    # where each is published, from the CI matrix (no ROCm on aarch64 nor, for now, Windows)
    assert rows["rocm"].endswith("| linux-x86_64 |")
    assert rows["cuda13"].endswith("| linux-x86_64, linux-aarch64, windows-x86_64 |")
    assert "every family (`[cuda12-sm61]`, `[cuda12-sm86]`)" in rows["cuda12"]


@pytest.mark.parametrize("distribution", sorted({p.wheel for p in MATRIX.presets} - {"llama-cpp-runtime"}))
def test_each_plugin_page_says_how_to_install_it_and_what_it_needs(distribution: str) -> None:
    presets = [p for p in MATRIX.presets if p.wheel == distribution]
    page = pages.plugin_page(table=TABLE, distribution=distribution, presets=presets, build=BUILD)
    assert headings(page) == [f"# {distribution}", "## Install", "## Needs", "## Check it", "## Links", "## Build"]
    assert f'pip install "llama-cpp-runtime[{distribution.removeprefix("llama-cpp-runtime-")}]"' in page
    floor = pages.driver_floor_text(presets[0].driver_floor)
    assert (f"- {floor}: under an older one the binding skips this module" in page) == bool(floor)
    if presets[0].family:
        assert f'pip install "llama-cpp-runtime[{presets[0].family.removeprefix("llama-cpp-runtime-")}]"' in page


def test_the_build_section_keeps_the_provenance_and_names_the_patches() -> None:
    result = SimpleNamespace(preset=MATRIX.get("cuda13-sm90"), options={"GGML_CUDA": "ON", "CMAKE_X": "1"})
    provenance = {"commit": "c" * 40, "patch_series_sha256": "5" * 64, "llama_cpp_python": "0.3.35"}
    patch = SimpleNamespace(name="0001-vulkan-headers.patch", sha256="a" * 64)
    build = _description([result], provenance, patches=[patch])  # type: ignore[list-item]
    assert build.startswith(f"Built from upstream commit `{'c' * 40}` with patch series sha256 `{'5' * 64}`.")
    assert "Patches: `0001-vulkan-headers.patch`." in build and "release.json" in build
    assert "- preset `cuda13-sm90`: GGML_CUDA=ON\n" in build and "CMAKE_X" not in build
    assert build.endswith(
        "Needs NVIDIA driver ≥ 580 (Linux), ≥ 580 (Windows): the binding skips its module, "
        "naming both versions, under an older one.\n"
    )


def test_pages_render_as_pypi_renders_them() -> None:
    """readme_renderer is what twine check and PyPI use: a page it cannot render is refused at upload."""
    family = pages.family_page(
        table=TABLE,
        family="llama-cpp-runtime-cuda13",
        members=[("llama-cpp-runtime-cuda13-sm75", None), ("llama-cpp-runtime-cuda13-sm90", None)],
        build=BUILD,
    )
    plugin = pages.plugin_page(
        table=TABLE, distribution="llama-cpp-runtime-vulkan", presets=[MATRIX.get("vulkan")], build=BUILD
    )
    rendered = {
        name: readme_renderer.markdown.render(page, variant="GFM")
        for name, page in {"core": core(), "family": family, "plugin": plugin}.items()
    }
    assert all(html is not None and re.search(r'<h2 id="user-content-build">Build', html) for html in rendered.values())
    assert "<table>" in str(rendered["core"]) and "<table>" in str(rendered["family"])  # GFM tables, as on PyPI
    assert '<pre lang="python"><span class="kn">import</span>' in str(rendered["core"])  # highlighted as Python
