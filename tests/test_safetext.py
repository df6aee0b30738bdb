"""Unit tests of interncli.safetext: what a terminal would act on is escaped, text is kept."""

from __future__ import annotations

import json

import pytest

from interncli.safetext import escape_controls, escape_json_text, escape_line, has_controls

ATTACKS = [
    "\x1b[2J\x1b[H",                      # clear the screen
    "\x1b]52;c;ZWNobyBwd25lZA==\x07",     # OSC 52: write the clipboard
    "\x1b]0;new title\x07",               # retitle the window
    "\x9b31m",                            # C1 CSI on its own
    "\x9d0;title\x9c",                    # C1 OSC ... ST
    "a\rb",                               # carriage return overwrites the line
    "\x08\x08\x08",                       # backspaces
    "\x7f",                               # DEL
]


@pytest.mark.parametrize("attack", ATTACKS)
def test_every_introducer_is_escaped(attack):
    shown = escape_controls(attack)
    assert not has_controls(shown)
    assert all(ord(c) >= 0x20 and not 0x7f <= ord(c) <= 0x9f for c in shown)


def test_text_newlines_tabs_and_unicode_are_kept():
    text = "第一行\n\tsecond — ünïcode ✓ 🙂\n"
    assert escape_controls(text) == text
    assert not has_controls(text)


def test_escapes_are_visible_and_reversible_to_the_eye():
    assert escape_controls("\x1b[31mred") == "\\x1b[31mred"
    assert escape_controls("\x9b") == "\\x9b"
    assert escape_line("a\nb\tc") == "a\\x0ab\\x09c"


def test_json_escaping_keeps_the_value():
    value = {"content": "x\x85y\x9b2J\x7fz", "n": [1, "\x1b"]}
    dumped = json.dumps(value, ensure_ascii=False)
    safe = escape_json_text(dumped)
    assert json.loads(safe) == value
    assert not any(0x7f <= ord(c) <= 0x9f or ord(c) < 0x20 for c in safe)
