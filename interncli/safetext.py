"""Text from the server or the model made safe to show: pure functions, no I/O.

A terminal acts on C0 controls (ESC starts an escape sequence: a screen clear, OSC 52 writing
the clipboard, a new window title), on DEL and on C1 controls (U+0080-U+009F; U+009B is CSI on
its own). Escaping the one character that introduces a sequence defuses the whole sequence, so
text can be escaped piece by piece as a stream arrives. Newline and tab are kept: they are text.
"""

from __future__ import annotations

import re

# C0 controls other than tab and newline, DEL, and C1 controls.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# The same, newline and tab included, for text that must stay on one line.
_CONTROLS_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f]")
# C1 controls and DEL as json.dumps(ensure_ascii=False) leaves them: raw, inside strings.
_JSON_RAW = re.compile("[\x7f-\x9f]")


def _escaped(match: "re.Match[str]") -> str:
    return "\\x{:02x}".format(ord(match.group()))


def escape_controls(text: str) -> str:
    """``text`` with every control a terminal would act on written as ``\\xNN``; newlines
    and tabs kept."""
    return _CONTROLS.sub(_escaped, text)


def escape_line(text: str) -> str:
    """``text`` for one line of a message: every control, newline and tab too, as ``\\xNN``."""
    return _CONTROLS_ONE_LINE.sub(_escaped, text)


def escape_json_text(dumped: str) -> str:
    """A ``json.dumps(..., ensure_ascii=False)`` result with DEL and C1 controls as ``\\u00NN``.

    They can only occur inside JSON strings there, so the result is the same JSON value; it is
    just safe to ``cat`` to a terminal."""
    return _JSON_RAW.sub(lambda m: "\\u{:04x}".format(ord(m.group())), dumped)


def has_controls(text: str) -> bool:
    """Whether ``text`` holds anything :func:`escape_controls` would change."""
    return _CONTROLS.search(text) is not None
