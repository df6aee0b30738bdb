"""Text from the server or the model made safe to show: pure functions, no I/O.

A terminal acts on C0 controls (ESC starts an escape sequence: a screen clear, OSC 52 writing
the clipboard, a new window title), on DEL and on C1 controls (U+0080-U+009F; U+009B is CSI on
its own). Escaping the one character that introduces a sequence defuses the whole sequence, so
text can be escaped piece by piece as a stream arrives. Newline and tab are kept: they are text.

A lone surrogate (U+D800-U+DFFF) is no character: JSON can carry one (``"\\ud800"``) but no
UTF-8 stream can, and writing one fails. The escapers spell it ``\\uNNNN``; text for a pipe or a
file has it replaced by U+FFFD, as a decoder would (a high and a low one side by side, as a
pair split across two stream chunks leaves them, become the character they stand for).
"""

from __future__ import annotations

import re

# C0 controls other than tab and newline, DEL, C1 controls, and lone surrogates.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
# The same, newline and tab included, for text that must stay on one line.
_CONTROLS_ONE_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# C1 controls, DEL and lone surrogates as json.dumps(ensure_ascii=False) leaves them: raw, inside strings.
_JSON_RAW = re.compile("[\x7f-\x9f\ud800-\udfff]")
_SURROGATES = re.compile("[\ud800-\udfff]")


def _escaped(match: "re.Match[str]") -> str:
    code = ord(match.group())
    return "\\x{:02x}".format(code) if code < 0x100 else "\\u{:04x}".format(code)


def escape_controls(text: str) -> str:
    """``text`` with every control a terminal would act on written as ``\\xNN``; newlines
    and tabs kept."""
    return _CONTROLS.sub(_escaped, text)


def escape_line(text: str) -> str:
    """``text`` for one line of a message: every control, newline and tab too, as ``\\xNN``."""
    return _CONTROLS_ONE_LINE.sub(_escaped, text)


def escape_json_text(dumped: str) -> str:
    """A ``json.dumps(..., ensure_ascii=False)`` result with DEL, C1 controls and lone
    surrogates as ``\\uNNNN``.

    They can only occur inside JSON strings there, so the result is the same JSON value; it is
    just safe to ``cat`` to a terminal."""
    return _JSON_RAW.sub(lambda m: "\\u{:04x}".format(ord(m.group())), dumped)


def replace_surrogates(text: str) -> str:
    """``text`` with each lone surrogate replaced by U+FFFD, so that it can be written as UTF-8;
    a high surrogate followed by a low one is joined into the character of the pair."""
    if _SURROGATES.search(text) is None:
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def has_controls(text: str) -> bool:
    """Whether ``text`` holds anything :func:`escape_controls` would change."""
    return _CONTROLS.search(text) is not None
