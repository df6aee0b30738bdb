"""Unit tests of IOStreams (what is a terminal, when colour is on) and of AppContext's handling
of secrets: which tokens and passwords it knows, and that redact removes them."""

from __future__ import annotations

import io
from typing import Dict, Optional

from interncli.context import AppContext
from interncli.iostreams import IOStreams, is_terminal
from tests.fakeio import FakeStream, fake_io, terminal_io

TOKEN = "tok-0123456789abcdef"


class ClosedStream(io.StringIO):
    """A stream whose isatty fails, as a closed file's does."""

    def isatty(self) -> bool:
        raise ValueError("I/O operation on closed file")


def app_with(options: Optional[Dict[str, str]] = None, environ: Optional[Dict[str, str]] = None,
             streams: Optional[IOStreams] = None) -> AppContext:
    return AppContext(options=dict(options or {}), environ=environ or {}, config_dir="/nonexistent",
                      io=streams or fake_io())


# ------------------------------------------------------------------ IOStreams


def test_each_stream_is_a_terminal_only_if_it_says_so():
    streams = fake_io(stdin_tty=True, stdout_tty=False, stderr_tty=True)
    assert (streams.stdin_tty, streams.stdout_tty, streams.stderr_tty) == (True, False, True)
    assert not fake_io().stdout_tty and terminal_io().stdout_tty


def test_a_closed_or_odd_stream_is_no_terminal():
    assert not is_terminal(ClosedStream())
    assert not is_terminal(object())
    streams = IOStreams(None, ClosedStream(), FakeStream(terminal=True), {})
    assert not streams.stdin_tty and not streams.stdout_tty and streams.stderr_tty


def test_colour_is_on_only_for_a_terminal_stderr_without_no_color():
    assert terminal_io().color
    assert not terminal_io(environ={"NO_COLOR": "1"}).color
    assert not terminal_io(environ={"NO_COLOR": ""}).color  # set at all: no colour
    assert not fake_io(stdout_tty=True).color  # only stderr is ever coloured
    assert fake_io(stderr_tty=True).color


def test_a_person_can_be_asked_only_with_stdin_and_stderr_on_a_terminal():
    assert terminal_io().interactive
    assert not fake_io(stdin_tty=True).interactive
    assert not fake_io(stderr_tty=True).interactive
    assert not fake_io(None, stderr_tty=True).interactive  # stdin closed


def test_stderr_starts_as_text_not_json():
    assert terminal_io().json is False


def test_the_app_carries_the_streams_it_was_given():
    streams = terminal_io()
    assert app_with(streams=streams).io is streams


# ------------------------------------------------------------------ secrets


def test_secrets_come_from_the_flag_the_variable_the_command_line_and_input():
    app = app_with({"api_key": "flag-" + TOKEN}, {"INTERN_API_KEY": "Bearer env-" + TOKEN})
    app.argv_tokens = ["argv-" + TOKEN]
    app.input_tokens = ["  input-" + TOKEN + "\n"]
    secrets = app.secrets()
    for token in ("flag-" + TOKEN, "env-" + TOKEN, "argv-" + TOKEN, "input-" + TOKEN):
        assert token in secrets
    assert "Bearer env-" + TOKEN in secrets  # as given, too


def test_too_short_strings_are_not_secrets():
    app = app_with({"api_key": "abc"})
    assert app.secrets() == []
    assert app.redact("abc def") == "abc def"


def test_hidden_adds_the_passwords_of_proxy_and_base_urls():
    app = app_with({"proxy": "http://user:proxy-pass-1@proxy:3128"},
                   {"INTERN_BASE_URL": "https://u:base-pass-22@api.example/v1",
                    "HTTPS_PROXY": "http://p:env-pass-333@other:8080"})
    hidden = app.hidden()
    assert {"proxy-pass-1", "base-pass-22", "env-pass-333"} <= set(hidden)


def test_redact_removes_every_secret_and_redact_value_walks_json():
    app = app_with({"api_key": TOKEN, "proxy": "http://user:proxy-pass-1@proxy:3128"})
    assert app.redact("token {} and proxy-pass-1".format(TOKEN)) == "token *** and ***"
    assert app.redact_value({"code": [TOKEN, 5], TOKEN: None}) == {"code": ["***", 5], "***": None}
