"""The suite's own layout: shared helpers live in helper modules (conftest.py, clierrors.py,
toolhelpers.py, servers/...), so no test module imports another, and each file runs alone."""

from __future__ import annotations

import ast
import pathlib
import re
import unicodedata
from typing import List

TESTS = pathlib.Path(__file__).resolve().parent

# What the source of any import of tests.test_x holds: "tests", ".", "test_" in a row, with at
# most blanks or a backslash-newline between them, once NFKC-normalised as Python reads names.
# Only a file that holds it is parsed: walking the trees of the whole suite cost a second.
MAYBE_IMPORT = re.compile(r"tests(?:[ \t\f]|\\\n)*\.(?:[ \t\f]|\\\n)*test_")


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


def test_the_filter_keeps_every_spelling_of_such_an_import() -> None:
    for source in ("import tests.test_a", "from tests . test_b import x", "import tests\\\n.test_c",
                   "from \uff54ests.test_d import y"):  # a fullwidth t, which Python reads as t
        assert MAYBE_IMPORT.search(unicodedata.normalize("NFKC", source)), source
        assert imported_test_modules(ast.parse(source)), source


def test_no_test_module_imports_another() -> None:
    sources = {path.relative_to(TESTS).as_posix(): path.read_text("utf-8") for path in sorted(TESTS.rglob("*.py"))}
    offenders = {path: imported_test_modules(ast.parse(text)) for path, text in sources.items()
                 if MAYBE_IMPORT.search(unicodedata.normalize("NFKC", text))}
    assert "test_suite_layout.py" in offenders  # this file's own examples: the filter does look
    assert {path: names for path, names in offenders.items() if names} == {}
