"""Review of the day's speed-ups, attacked: what libyaml reads must be what the pure parser
reads (yamlread), and a wrongly tagged value is the file's problem, not a crash; the redaction
shortcut lets through nothing the full pattern redacts. (The short-option shortcut's extra
command lines are in test_option_parsing.)"""

from __future__ import annotations

import pytest
import yaml

from interncli.toolspec import SpecError, load_spec
from interncli.yamlread import read_fast
from tests.conftest import SENTINEL, invoke
from tests.toolhelpers import recursion_room

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


def _shortcut_cases(token):
    import base64
    import re

    # Every character str.split() or the pattern's \s takes for whitespace (Unicode has none
    # past U+3000): where the two disagreed, the shortcut would squeeze the text apart.
    spaces = [chr(c) for c in range(0x3001) if chr(c).isspace() or re.match(r"\s", chr(c))]
    data = token.encode()
    texts = [token[:5] + space + token[5:] for space in spaces]
    texts += [token[:3] + "\r\n" + token[3:7] + "\u2028" + token[7:], token[:4] + "\u200b" + token[4:],
              token.upper(), token.swapcase(), "Bearer " + token[:-1]]
    for prefix in (b"", b"x", b"xy", b"Bearer ", b"Authorization: Bearer ", b"\xff\xfe"):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(prefix + data + b"!?").decode()
            texts += [encoded, encoded.rstrip("="), " ".join(encoded[i:i + 3] for i in range(0, len(encoded), 3))]
    return texts


def test_the_redaction_shortcut_lets_through_nothing_the_full_pattern_takes():
    from interncli.credentials import _redaction_pattern, redact

    token = "sk-Rev5+/tok_en-9~x"
    pattern = _redaction_pattern((token,))
    redacted = 0
    for text in _shortcut_cases(token):
        assert redact(text, [token]) == pattern.sub("***", text), repr(text)
        redacted += pattern.sub("***", text) != text
    assert redacted > 30  # the cases reach the pattern's forms, not only texts it leaves alone


# A document nested past what libyaml is trusted with goes to the pure parser, which recurses
# once per level at least: the config and token readers let its RecursionError out
# ("unexpected ... Please report it", exit 1) where the tools spec reader says "nested too
# deeply". recursion_room puts the limit that many frames above this test's stack.
def _deep(depth):
    return "[" * depth + "]" * depth


def test_a_config_nested_too_deeply_is_a_usage_error(config_dir):
    with recursion_room(300) as depth:
        (config_dir / "config.yaml").write_text("profiles: {}\n".format(_deep(depth)))
        result = invoke(["config", "list"])
    assert result.exit_code == 2 and "nested too deeply" in result.stderr and "hint:" in result.stderr
    assert "unexpected" not in result.stderr


def test_a_token_file_nested_too_deeply_is_a_usage_error(config_dir):
    with recursion_room(300) as depth:
        (config_dir / "credentials.yaml").write_text("profiles: {{default: {{token: {}}}}}\n".format(_deep(depth)))
        (config_dir / "credentials.yaml").chmod(0o600)
        result = invoke(["auth", "token"])
    assert result.exit_code == 2 and "nested too deeply" in result.stderr and "hint:" in result.stderr
    assert "unexpected" not in result.stderr
