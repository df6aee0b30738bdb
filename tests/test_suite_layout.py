"""The suite's own layout: shared helpers live in helper modules (conftest.py, clierrors.py,
toolhelpers.py, servers/...), so no test module imports another, and each file runs alone."""

from __future__ import annotations

import ast
import pathlib
from typing import List

TESTS = pathlib.Path(__file__).resolve().parent


def test_the_walk_finds_test_module_imports_anywhere() -> None:
    tree = ast.parse("import tests.test_a\nfrom tests.test_b import x\nfrom tests.servers import real\n"
                     "def f():\n    from tests.test_c import y\n")
    assert imported_test_modules(tree) == ["tests.test_a", "tests.test_b", "tests.test_c"]


def imported_test_modules(tree: ast.AST) -> List[str]:
    """The test modules (tests.test_*) that ``tree`` imports, anywhere in it."""
    found = []
    for node in ast.walk(tree):
        names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else (
            [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
        found += [name for name in names if name.startswith("tests.test_")]
    return found


def test_no_test_module_imports_another() -> None:
    offenders = {path.relative_to(TESTS).as_posix(): imported_test_modules(ast.parse(path.read_text("utf-8")))
                 for path in sorted(TESTS.rglob("*.py"))}
    assert {path: names for path, names in offenders.items() if names} == {}
