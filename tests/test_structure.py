"""The library's shape: short functions, and imports that point one way (no module imports training or a model
class for a type; the checkpoint format knows no model)."""

import ast
from pathlib import Path

import pytest

import vae_lib as vl

LIBRARY = Path(vl.__file__).parent
MODULES = sorted(LIBRARY.glob("*.py"))
LONGEST_FUNCTION = 60


def functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]


def imported_modules(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_function_is_longer_than_sixty_lines(path: Path) -> None:
    tree = ast.parse(path.read_text())
    too_long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in functions(tree)
        if node.end_lineno - node.lineno + 1 > LONGEST_FUNCTION
    ]
    assert not too_long, f"{path.name}: {too_long}"


def test_only_the_package_and_the_command_line_import_training() -> None:
    importers = [p.name for p in MODULES if "vae_lib.training" in imported_modules(ast.parse(p.read_text()))]
    assert sorted(importers) == ["__init__.py", "cli.py"]


def test_the_checkpoint_format_imports_no_model() -> None:
    imported = imported_modules(ast.parse((LIBRARY / "checkpoint.py").read_text()))
    helpers = {"vae_lib._atomic_file", "vae_lib._checks", "vae_lib.device"}  # no model, loss or training loop
    assert {name for name in imported if name.startswith("vae_lib")} <= helpers, imported


def test_the_sphinx_extensions_are_not_in_the_package() -> None:
    assert not list(LIBRARY.glob("_sphinx*.py"))
    assert (LIBRARY.parent / "book" / "_ext" / "vae_book_api.py").is_file()


def test_every_public_name_is_listed_once_and_exported() -> None:
    assert len(vl.__all__) == len(set(vl.__all__))
    for name in vl.__all__:
        assert hasattr(vl, name), name
