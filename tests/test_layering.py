"""The layering holds (issue 9): no import cycle between interncli's modules, nothing but
``__main__`` imports the root command, nothing below ``interncli/commands/`` imports click, and
only transport.py imports requests, only credentials.py imports keyring.

The imports are read from the source with ``ast``, nothing is imported: an import inside a
function (interncli imports lazily for start-up speed) counts as much as one at the top, since
the cycle is there all the same once that function runs. Only an import under
``if TYPE_CHECKING:`` is left out of the cycle check, as it never runs (the other rules count it).
"""

from __future__ import annotations

import ast
import functools
import pathlib
from typing import Dict, FrozenSet, List, Optional, Set, Tuple

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "interncli"


def module_name(path: pathlib.Path) -> str:
    """``interncli/commands/chat.py`` -> ``interncli.commands.chat`` (a package by its own name)."""
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: Dict[str, pathlib.Path] = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(name: str, run_only: bool = False) -> Set[str]:
    """Every module ``name`` imports, anywhere in its source: ``from interncli import config``
    names the module interncli.config, ``from interncli.errors import UsageError`` names
    interncli.errors; third-party modules are kept by their top-level name. ``run_only`` leaves
    out the imports under ``if TYPE_CHECKING:``, which never run."""
    every, run = _imported(name, MODULES[name])
    return set(run if run_only else every)


@functools.lru_cache(maxsize=None)
def _imported(name: str, path: pathlib.Path) -> Tuple[FrozenSet[str], FrozenSet[str]]:
    """imported(), both ways (every import; those not under ``if TYPE_CHECKING:``) from one
    parse and one walk of each file: the tests ask for every module's imports again and again
    (each parse of the package cost 0.4 s a test, and walking a tree is most of a parse's cost)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    every: Set[str] = set()
    run: Set[str] = set()
    stack: List[Tuple[ast.AST, bool]] = [(tree, False)]
    while stack:
        node, type_only = stack.pop()
        found: List[str] = []
        if isinstance(node, ast.Import):
            found = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = resolve_from(package, node.module, node.level)
            found = [base] + [base + "." + alias.name for alias in node.names if base + "." + alias.name in MODULES]
        every.update(found)
        if not type_only:
            run.update(found)
        guarded = set(map(id, node.body)) if isinstance(node, ast.If) and is_type_checking(node.test) else set()
        stack += [(child, type_only or id(child) in guarded) for child in ast.iter_child_nodes(node)]
    return frozenset(map(normalise, every)), frozenset(map(normalise, run))


def is_type_checking(test: ast.expr) -> bool:
    """The test of ``if TYPE_CHECKING:`` (or ``if typing.TYPE_CHECKING:``)."""
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def resolve_from(package: str, module: Optional[str], level: int) -> str:
    """The absolute module of a ``from ... import`` (relative ones resolved against ``package``)."""
    if level == 0:
        return module or ""
    parts = package.split(".")
    base = parts[:len(parts) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def normalise(module: str) -> str:
    """interncli's modules by their full name, anything else by its top-level package."""
    return module if module.split(".")[0] == "interncli" else module.split(".")[0]


@functools.lru_cache(maxsize=None)
def graph() -> Dict[str, Set[str]]:
    """Which of interncli's modules each one imports when it runs. Built on first use, not at
    collection: every process of a parallel run collects this file, one runs its tests."""
    # A package's __init__ runs on importing any module in it; an edge to it is no layering. A
    # type-only import (under TYPE_CHECKING) never runs, so it closes no cycle.
    return {name: {m for m in imported(name, run_only=True) if m in MODULES and m != name
                   and not name.startswith(m + ".")}
            for name in MODULES}


def find_cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """One cycle per strongly connected component that has one (Tarjan), as a path that returns
    to where it starts."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    components: List[List[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [cycle_within(graph, set(component)) for component in components]


def cycle_within(graph: Dict[str, Set[str]], component: Set[str]) -> List[str]:
    """A shortest path from the component's first module back to itself, inside the component."""
    start = min(component)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node] & component):
            if nxt == start:
                return paths[node] + [start]
            if nxt not in paths:
                paths[nxt] = paths[node] + [nxt]
                queue.append(nxt)
    raise AssertionError("not a cycle: {}".format(sorted(component)))


def importers_of(module: str) -> Set[str]:
    return {name for name in MODULES if module in imported(name)}


# -- the checker itself ----------------------------------------------------------------------------

def test_the_walk_sees_the_modules_and_their_lazy_imports():
    """The walk reads what the code imports, lazy imports in functions included."""
    assert {"interncli", "interncli.cli", "interncli.__main__", "interncli.commands.chat"} <= set(MODULES)
    assert "interncli.cli" in graph()["interncli.__main__"]  # imported inside main()
    assert "interncli.transport" in graph()["interncli.commands.common"]  # inside open_transport()
    assert "requests" in imported("interncli.transport")


def test_type_only_imports_are_told_apart(tmp_path, monkeypatch):
    source = tmp_path / "typed.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from interncli.transport import T\n"
                      "def f() -> None:\n    from interncli import errors\n", encoding="utf-8")
    monkeypatch.setitem(MODULES, "interncli.typed", source)
    assert imported("interncli.typed") == {"typing", "interncli.transport", "interncli", "interncli.errors"}
    assert imported("interncli.typed", run_only=True) == {"typing", "interncli", "interncli.errors"}


def test_find_cycles_reports_a_cycle_and_only_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


# -- the rules ---------------------------------------------------------------------------------------

def test_no_import_cycle():
    cycles = find_cycles(graph())
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)


def test_only_main_imports_the_root_command():
    """Commands find the root from the click context (``ctx.find_root().command``);
    scripts/generate.py, which is no command, passes it in."""
    assert importers_of("interncli.cli") == {"interncli.__main__"}


@pytest.mark.parametrize("library, owner", [("requests", "interncli.transport"),
                                            ("keyring", "interncli.credentials")])
def test_one_module_imports_each_outside_library(library, owner):
    assert importers_of(library) == {owner}


def test_nothing_below_the_commands_imports_click():
    """click belongs to the command line: the root (cli.py) and commands/; the core is usable
    without it."""
    allowed = {"interncli.cli"}
    core = {name for name in MODULES if not name.startswith("interncli.commands") and name not in allowed}
    assert importers_of("click") & core == set()
