"""Unit tests of interncli.yamlread: what libyaml reads is what the pure-Python parser reads
(data and line numbers), and anything with a problem, too deep or self-holding is left to the
pure parser, whose messages the commands keep."""

from __future__ import annotations

import pytest
import yaml

from interncli import yamlread
from interncli.toolspec import SpecError, load_spec
from interncli.yamlread import SHALLOW, read_fast

needs_libyaml = pytest.mark.skipif(not hasattr(yaml, "CSafeLoader"), reason="PyYAML built without libyaml")

VALID = ["a: 1", "", "[]", "a: [1, {b: [2]}]\nc: 'x'\n", "<<: {x: 1}\ny: 2", "a: &a [1]\nb: [*a, *a]",
         "? a\n? b", "a: !!binary aGk=", "a: 2001-12-14", "a: .inf\nb: 0o17\nc: 1_000\nd: ~\ne: yes",
         "\ufeffa: 1", "a: \x85", "k: \"\\u263a\"", "profiles:\n  default:\n    token: 'sk-x'\n",
         "tools:\n  - name: t\n    command: [echo, '{x}']\n    parameters: {type: object}\n"]


def _lines(node):
    out = [(node.start_mark.line, node.start_mark.column)]  # what the problems are placed by
    for item in node.value if isinstance(node.value, list) else []:
        for part in item if isinstance(item, tuple) else (item,):
            out += _lines(part)
    return out


@needs_libyaml
@pytest.mark.parametrize("text", VALID)
def test_a_valid_document_reads_as_the_pure_parser_reads_it(text):
    found = read_fast(text)
    assert found is not None
    root, data = found
    pure = yaml.SafeLoader(text)
    try:
        pure_root = pure.get_single_node()
        # After construction on both sides: a merge key (<<) rewrites the tree as it is built.
        assert data == (pure.construct_document(pure_root) if pure_root is not None else None)
    finally:
        pure.dispose()
    assert (root is None) == (pure_root is None)
    if root is not None and text != EXPLICIT_KEYS:
        assert _lines(root) == _lines(pure_root)


# The one difference in positions found: after an explicit "? key" with no value, libyaml
# places the empty value at the start of the next line, the pure parser after the key.
EXPLICIT_KEYS = "? a\n? b"


@pytest.mark.parametrize("text", ["a: b: c", "tools: [unclosed", "a: \x07", "a: *nope", "a: 1\n---\nb: 2",
                                  "a: !!python/object:os.system x"])
def test_a_document_with_a_problem_is_left_to_the_pure_parser(text):
    assert read_fast(text) is None


def test_too_deep_or_holding_itself_is_left_to_the_pure_parser():
    assert read_fast("[" * (SHALLOW - 1) + "]" * (SHALLOW - 1)) is not None
    assert read_fast("[" * (SHALLOW + 1) + "]" * (SHALLOW + 1)) is None
    assert read_fast("a: &a [*a]") is None


def test_shared_nodes_are_walked_once():
    # Nine levels of ten aliases each: 10**9 paths, 90 nodes.
    lines = ['a0: &a0 ["x", "x"]'] + ["a{0}: &a{0} [{1}]".format(n, ", ".join(["*a{}".format(n - 1)] * 10))
                                      for n in range(1, 9)]
    found = read_fast("\n".join(lines))
    assert found is not None and found[1]["a8"][0][0][0][0][0][0][0][0] == ["x", "x"]


def test_without_libyaml_nothing_is_read(monkeypatch):
    monkeypatch.delattr(yaml, "CSafeLoader", raising=False)
    assert read_fast("a: 1") is None


def test_a_spec_with_a_yaml_error_says_what_the_pure_parser_says(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_text("tools: [unclosed\n", encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        load_spec(str(path))
    assert [(p.line, p.message) for p in caught.value.problems] == [
        (2, "not valid YAML: expected ',' or ']', but got '<stream end>'")]


def test_the_module_reads_nothing_itself():
    assert not hasattr(yamlread, "open")
