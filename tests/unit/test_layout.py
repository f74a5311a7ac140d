"""buildsys's folders follow the pipeline and the binding's follow its layers, and every import points down
them: a newcomer can read a stage knowing it uses only the stages before it and the foundations."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "buildsys"
BINDING = REPO / "bindings" / "python" / "llama_cpp_runtime"
# Lower numbers come first; a module may import its own layer and the ones below it.
LAYERS = {"foundations": 0, "vendoring": 1, "builder": 2, "upkeep": 3, "packaging": 3, "ci": 3, "face": 4}
FACE = {"cli", "__main__"}


def layer_of(module: str) -> str:
    """buildsys.builder.driver -> builder; buildsys.git -> foundations; buildsys.cli -> face."""
    parts = module.split(".")[1:]
    if len(parts) > 1 or (parts and parts[0] in LAYERS and parts[0] != "face"):
        return parts[0]
    return "face" if parts and parts[0] in FACE else "foundations"


def module_name(path: Path, root: Path) -> str:
    return ".".join([root.name, *path.relative_to(root).with_suffix("").parts])


def imported_modules(path: Path, root: Path = PACKAGE) -> set[str]:
    """Every module of `root`'s package that `path` imports, absolute, lazy imports inside functions included."""
    module = module_name(path, root)
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module.removesuffix(".__init__")
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join([*base, *([node.module] if node.module else [])])
            names = [target] if node.module else [f"{target}.{alias.name}" for alias in node.names]
            found |= {name for name in names if name.startswith(root.name)}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith(root.name)}
    return found


def test_every_import_points_down_the_pipeline() -> None:
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path, PACKAGE)
        for imported in imported_modules(path):
            if LAYERS[layer_of(imported)] > LAYERS[layer_of(module)]:
                upward.append(f"{module} imports {imported}")
    assert upward == []


def test_the_stages_are_folders_and_the_foundations_few() -> None:
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert folders == {"vendoring", "upkeep", "builder", "packaging", "ci"}
    top = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert top == FACE | {"config", "pathfilter", "errors", "ui", "git", "cmake_tool", "fileops", "project_lock"}


# The binding, bottom up: what every layer may use; the machine's GPUs as the system and drivers see them
# (no ggml); ggml's API and compute; libllama's structs, models and contexts; finding and loading the
# libraries; serving another binding, and RPC servers (a model on them runs in a child); the Runtime; the CLI
# and the launcher of upstream's programs (llama-server); the façade.
BINDING_LAYERS = {
    "foundations": 0,
    "_gpu": 1,
    "_ggml": 2,
    "_llama": 3,
    "_loading": 4,
    "_downstream": 5,
    "_rpc": 5,
    "_runtime": 6,
    "_cli": 7,
    "_launch": 7,
    "face": 8,
}
BINDING_FOUNDATIONS = {"_errors", "_settings", "_platform", "_report", "_child", "_handle", "_numbers"}


def binding_layer_of(module: str) -> str:
    """llama_cpp_runtime._llama.model -> _llama; ._errors -> foundations; the package and __main__ -> face."""
    parts = [p for p in module.split(".")[1:] if p != "__init__"]
    if not parts or parts[0] == "__main__":
        return "face"
    return "foundations" if parts[0] in BINDING_FOUNDATIONS else parts[0]


def test_every_binding_import_points_down_its_layers() -> None:
    upward = []
    for path in sorted(BINDING.rglob("*.py")):
        module = module_name(path, BINDING)
        for imported in imported_modules(path, BINDING):
            if BINDING_LAYERS[binding_layer_of(imported)] > BINDING_LAYERS[binding_layer_of(module)]:
                upward.append(f"{module} imports {imported}")
    assert upward == []


def test_the_binding_is_grouped_by_concern_behind_a_facade() -> None:
    folders = {p.name for p in BINDING.iterdir() if (p / "__init__.py").is_file()}
    assert folders == {"_gpu", "_ggml", "_llama", "_loading", "_rpc", "_cli"}
    top = {p.stem for p in BINDING.glob("*.py")}
    assert top == {"__init__", "__main__", "_downstream", "_runtime", "_launch"} | BINDING_FOUNDATIONS
