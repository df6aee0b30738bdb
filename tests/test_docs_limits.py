"""The limits the README's Security section and the man page state are the ones the code
enforces: a change to a cap without a change to the documentation fails here."""

from __future__ import annotations

import pathlib

import pytest

from interncli import client, toolrun, transport
from interncli.errors import size_text

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
SECURITY = README.split("## Security", 1)[1].split("\n## ", 1)[0]
MAN = (ROOT / "man" / "interncli.1").read_text(encoding="utf-8")


def spoken(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("fact", [
    "at most {} of a reply".format(size_text(transport.BODY_LIMIT)),
    "{} of one stream line or event".format(size_text(client.LINE_LIMIT)),
    "{} of non-event text before a stream's first event".format(size_text(client.PRELUDE_LIMIT)),
    "{:,} JSON values in one document".format(client.VALUE_LIMIT),
    "{} choices and {} tool calls per choice".format(client.MAX_CHOICES, client.MAX_TOOL_CALLS),
])
def test_the_readme_states_the_reply_limits_the_code_enforces(fact):
    assert fact in spoken(SECURITY)


def test_the_stream_and_body_limits_agree():
    assert client.REPLY_LIMIT == transport.BODY_LIMIT  # the README names one figure for both
    assert client.EVENT_LIMIT == client.LINE_LIMIT


@pytest.mark.parametrize("fact", [
    "At most {} of a reply is held".format(size_text(transport.BODY_LIMIT)),
    "{} of one".format(size_text(client.LINE_LIMIT)),
    "{:,} JSON values".format(client.VALUE_LIMIT),
    "{} choices and {} tool calls per choice".format(client.MAX_CHOICES, client.MAX_TOOL_CALLS),
])
def test_the_man_page_states_them_too(fact):
    assert fact in spoken(MAN.replace("\\-", "-"))


@pytest.mark.parametrize("fact", [
    "at most {} calls".format(toolrun.CALLS_LIMIT),
    "at most {} KiB of arguments".format(toolrun.ARGUMENTS_LIMIT // 1024),
    "over {} characters of argv and stdin".format(toolrun.SHOW_LIMIT),
])
def test_the_readme_states_the_tool_limits_the_code_enforces(fact):
    assert fact in spoken(README)
