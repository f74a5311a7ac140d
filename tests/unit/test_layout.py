"""buildsys's folders follow the pipeline and every import points down it: a newcomer can read a stage
knowing it uses only the stages before it and the foundations."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "buildsys"
# Lower numbers come first; a module may import its own layer and the ones below it.
LAYERS = {"foundations": 0, "vendoring": 1, "builder": 2, "upkeep": 3, "packaging": 3, "ci": 3, "face": 4}
FACE = {"cli", "__main__"}


def layer_of(module: str) -> str:
    """buildsys.builder.driver -> builder; buildsys.git -> foundations; buildsys.cli -> face."""
    parts = module.split(".")[1:]
    if len(parts) > 1 or (parts and parts[0] in LAYERS and parts[0] != "face"):
        return parts[0]
    return "face" if parts and parts[0] in FACE else "foundations"


def imported_modules(path: Path) -> set[str]:
    """Every buildsys module `path` imports, absolute, lazy imports inside functions included."""
    module = "buildsys." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
    package = module.rsplit(".", 1)[0] if path.name != "__init__.py" else module.removesuffix(".__init__")
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            target = ".".join([*base, *([node.module] if node.module else [])])
            names = [target] if node.module else [f"{target}.{alias.name}" for alias in node.names]
            found |= {name for name in names if name.startswith("buildsys")}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("buildsys")}
    return found


def test_every_import_points_down_the_pipeline() -> None:
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = "buildsys." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        for imported in imported_modules(path):
            if LAYERS[layer_of(imported)] > LAYERS[layer_of(module)]:
                upward.append(f"{module} imports {imported}")
    assert upward == []


def test_the_stages_are_folders_and_the_foundations_few() -> None:
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert folders == {"vendoring", "upkeep", "builder", "packaging", "ci"}
    top = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert top == FACE | {"config", "pathfilter", "errors", "ui", "git", "cmake_tool", "fileops", "project_lock"}
