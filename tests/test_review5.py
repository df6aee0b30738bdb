"""Review of the day's speed-ups, attacked: what libyaml reads must be what the pure parser
reads (yamlread); the redaction shortcut lets through nothing the full pattern redacts."""

from __future__ import annotations

import pytest
import yaml

from interncli.yamlread import read_fast

needs_libyaml = pytest.mark.skipif(not hasattr(yaml, "CSafeLoader"), reason="PyYAML built without libyaml")


def _pure(text):
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        return loader.construct_document(root) if root is not None else None
    finally:
        loader.dispose()


# Documents both parsers read, to different data: libyaml drops a byte order mark at the start
# of any line (the pure parser only at the start of the text), and reads an empty scalar tagged
# "!" as "" (the pure parser: None).
APART = ["profiles:\n\ufeff  default: {}\n", b"profiles:\n\xef\xbb\xbf  default: {}\n", "\n\ufeff1_0",
         "a: !", b"a: !", "- !\n- x", "a: !<!>", "? !"]


@needs_libyaml
@pytest.mark.parametrize("text", APART)
def test_what_libyaml_reads_apart_is_left_to_the_pure_parser(text):
    found = read_fast(text)
    assert found is None or found[1] == _pure(text)


@needs_libyaml
@pytest.mark.parametrize("text", ["\ufeffa: 1", b"\xef\xbb\xbfa: 1", "a: ! x", b"a: ! x", "a: '!'"])
def test_a_leading_bom_or_a_tag_both_read_alike_stays_fast(text):
    found = read_fast(text)
    assert found is not None and found[1] == _pure(text)
