"""Review of the day's speed-ups, attacked: what libyaml reads must be what the pure parser
reads (yamlread); the redaction shortcut lets through nothing the full pattern redacts."""

from __future__ import annotations

import pytest
import yaml

from interncli.toolspec import SpecError, load_spec
from interncli.yamlread import read_fast
from tests.conftest import SENTINEL, invoke

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


# PyYAML's safe constructors let a wrongly tagged scalar out as a plain ValueError, IndexError,
# KeyError or AttributeError, not a YAMLError: the commands showed "unexpected IndexError ...
# Please report it" with exit 1, not the file's problem with exit 2.
BAD_TAGS = ["!!int", "!!int x", "!!float x", "!!bool x", "!!timestamp x", "!!timestamp 2001-13-99"]


@pytest.mark.parametrize("tagged", BAD_TAGS)
def test_a_config_value_with_a_wrong_tag_is_a_yaml_error(config_dir, tagged):
    (config_dir / "config.yaml").write_text("profiles:\n  default:\n    timeout: {}\n".format(tagged))
    result = invoke(["config", "list"])
    assert result.exit_code == 2 and "not valid YAML" in result.stderr and "line 3" in result.stderr
    assert "unexpected" not in result.stderr and "hint:" in result.stderr


@pytest.mark.parametrize("tagged", BAD_TAGS)
def test_a_spec_value_with_a_wrong_tag_is_a_problem_at_its_line(tmp_path, tagged):
    path = tmp_path / "spec.yaml"
    path.write_text("tools:\n  - name: t\n    timeout: {}\n".format(tagged), encoding="utf-8")
    with pytest.raises(SpecError) as caught:
        load_spec(str(path))
    [problem] = caught.value.problems
    assert problem.line == 3 and problem.message.startswith("not valid YAML: ")


def test_a_stored_token_with_a_wrong_tag_is_an_error_that_does_not_quote_it(config_dir):
    (config_dir / "credentials.yaml").write_text("profiles:\n  default:\n    token: !!int {}\n".format(SENTINEL))
    (config_dir / "credentials.yaml").chmod(0o600)
    result = invoke(["auth", "token"])
    assert result.exit_code == 2 and "cannot read" in result.stderr and "unexpected" not in result.stderr
    assert SENTINEL not in result.stdout + result.stderr
