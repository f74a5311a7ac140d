"""The binding's public surface: every name in __all__ resolves through the façade, is documented, and the
environment variables are read in one place, parsed once, and refused by name when they make no sense."""

from __future__ import annotations

import ast
import inspect
import subprocess
import sys
from pathlib import Path

import llama_cpp_runtime as lcr
import pytest
from llama_cpp_runtime._settings import VARIABLES, read_settings

BINDING = Path(lcr.__file__).parent


def test_every_public_name_resolves_and_is_documented() -> None:
    undocumented = []
    for name in lcr.__all__:
        value = getattr(lcr, name)
        if (inspect.isclass(value) or inspect.isfunction(value)) and not inspect.getdoc(value):
            undocumented.append(name)
        if inspect.isclass(value) and not issubclass(value, BaseException | Warning):
            for member, attribute in inspect.getmembers(value):
                function = attribute.fget if isinstance(attribute, property) else attribute
                if not member.startswith("_") and callable(function) and not inspect.getdoc(function):
                    undocumented.append(f"{name}.{member}")
    assert undocumented == []
    assert set(lcr.__all__) <= set(dir(lcr))


def test_the_facade_imports_nothing_until_a_name_is_used() -> None:
    probe = "import sys, llama_cpp_runtime; print(sorted(m for m in sys.modules if m.startswith('llama_cpp_runtime.')))"
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=BINDING.parent, timeout=60
    )
    assert loaded.stdout.strip() == "[]"


def test_unknown_names_are_attribute_errors_and_variables_are_not_exported() -> None:
    with pytest.raises(AttributeError, match="no attribute 'BACKENDS_VARIABLE'"):
        _ = lcr.BACKENDS_VARIABLE  # type: ignore[attr-defined]
    assert not [name for name in lcr.__all__ if name.endswith("_VARIABLE")]


def test_only_the_settings_module_names_the_variables() -> None:
    readers = sorted(
        str(path.relative_to(BINDING))
        for path in BINDING.rglob("*.py")
        if any(f'"{variable}"' in path.read_text(encoding="utf-8") for variable in VARIABLES)
    )
    assert readers == ["_settings.py"]


def test_settings_are_parsed_once_into_values() -> None:
    settings = read_settings(
        {
            "LLAMA_CPP_RUNTIME_BACKENDS": " CPU, vulkan ,",
            "LLAMA_CPP_RUNTIME_CPU_VARIANT": "ggml-cpu-haswell",
            "LLAMA_CPP_RUNTIME_CPU_EXCLUDE": "ggml-cpu-icelake,sapphirerapids",
            "LLAMA_CPP_RUNTIME_BACKEND_ORDER": "Vulkan",
            "LLAMA_CPP_RUNTIME_CACHE_DIR": "off",
            "LLAMA_CPP_RUNTIME_PLUGIN_DIRS": f"/a{__import__('os').pathsep}/b",
        }
    )
    assert settings.backends == {"cpu", "vulkan"}
    assert settings.cpu_variant == "haswell"
    assert settings.cpu_exclude == {"icelake", "sapphirerapids"}
    assert settings.backend_order == ("vulkan", "cuda", "hip", "metal")
    assert settings.cache_dir is None
    assert settings.plugin_dirs == (Path("/a"), Path("/b"))
    unset = read_settings({"XDG_CACHE_HOME": "/xdg"})
    assert unset.backends is None and unset.cpu_variant is None and unset.library_dir is None
    assert unset.cache_dir == Path("/xdg/llama-cpp-runtime") or sys.platform != "linux"


def test_a_setting_it_cannot_use_is_refused_by_name() -> None:
    with pytest.raises(
        lcr.SettingError, match=r"LLAMA_CPP_RUNTIME_BACKEND_ORDER=cuda,vulcan: unknown backend 'vulcan'"
    ):
        read_settings({"LLAMA_CPP_RUNTIME_BACKEND_ORDER": "cuda,vulcan"})


def test_the_facades_names_are_one_list_said_three_ways() -> None:
    """__all__ (a literal, for tools), the TYPE_CHECKING imports (for type checkers and editors, each
    `X as X`: re-exported) and _HOMES (what __getattr__ imports) name the same names from the same modules."""
    tree = ast.parse((BINDING / "__init__.py").read_text(encoding="utf-8"))
    listed = next(
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
    )
    block = next(node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING")
    imported = {}
    for statement in block.body:
        assert isinstance(statement, ast.ImportFrom), ast.unparse(statement)
        for alias in statement.names:
            assert alias.asname == alias.name, f"{alias.name}: imported as {alias.asname}, not re-exported"
            imported[alias.name] = "." * statement.level + (statement.module or "")
    assert sorted(listed) == sorted(imported) == sorted(lcr._HOMES)
    assert len(listed) == len(set(listed))
    assert imported == lcr._HOMES
