"""commands.common's parser shortcut: a short option is looked up among the short ones at once,
with exactly click's outcome (the same values, the same errors), and no NoSuchOption is built
on the way for a command line that is right."""

from __future__ import annotations

from typing import Any, List

import click
import pytest

from interncli.commands.common import Command, short_options_first
from tests.conftest import SENTINEL, invoke


def _params(f: Any) -> Any:
    for option in (click.option("-b", "--base-url"), click.option("-k", "--api-key"),
                   click.option("-v", "--verbose", is_flag=True), click.option("-n", type=int, default=1),
                   click.option("-H", "--header", multiple=True), click.option("-foo", "foo", is_flag=True),
                   click.argument("rest", nargs=-1)):
        f = option(f)
    return f


PLAIN = _params(click.command("plain")(lambda **kw: None))
OURS = _params(click.command("ours", cls=Command)(lambda **kw: None))

LINES = [["-b", "http://x", "-k", "T"], ["-vkT"], ["-vk", "T"], ["-b=http://x"], ["--base-url=http://x"],
         ["-n3", "-H", "a: b", "-H", "c: d"], ["-foo", "-v"], ["-v", "--", "-k", "x"], ["-z"], ["-vz"],
         ["--bas", "x"], ["-n", "x"], ["-k"], ["-", "-v"], ["-foo=1"], ["a", "-v", "b"]]
# Clusters with "=", values that start with a dash (negative numbers), a prefix of a one-dash
# long option, unknown letters.
LINES += [["-n", "-1"], ["-n-3"], ["-n=2"], ["-vk=T"], ["-vkvk"], ["-kv", "-v"], ["-k", "-v"], ["-fo"], ["-f"],
          ["-foov"], ["-vfoo"], ["--foo"], ["-", "--", "-"], ["--", "--"], ["-b", "--", "x"], ["-H", "-"],
          ["-vvv", "-nv"], ["-=", "-v"], ["-v=1"], ["-k", "--api-key=x"], ["--api-key", "-k"], ["-\u00e9"]]


def _outcome(command: click.Command, args: List[str], **extra: Any) -> Any:
    try:
        return command.make_context("x", list(args), **extra).params
    except click.ClickException as exc:
        return type(exc).__name__, exc.format_message()


@pytest.mark.parametrize("args", LINES, ids=" ".join)
def test_the_same_outcome_as_clicks_own_parser(args):
    assert _outcome(OURS, args) == _outcome(PLAIN, args)
    assert _outcome(OURS, args, resilient_parsing=True, ignore_unknown_options=True) == _outcome(
        PLAIN, args, resilient_parsing=True, ignore_unknown_options=True)


def test_a_right_command_line_builds_no_no_such_option(monkeypatch, api):
    built: List[str] = []
    original = click.exceptions.NoSuchOption.__init__

    def record(self: Any, option_name: str, *args: Any, **kwargs: Any) -> None:
        built.append(option_name)
        original(self, option_name, *args, **kwargs)

    monkeypatch.setattr(click.exceptions.NoSuchOption, "__init__", record)
    result = invoke(["-b", api.base_url, "-k", SENTINEL, "-v", "chat", "create", "-m", "intern-s1", "-n", "1",
                     "-g", "user", "hi"])
    assert result.exit_code == 0, result.stderr
    assert built == []
    assert invoke(["-b", api.base_url, "-z", "chat", "create"]).exit_code == 2
    assert built == ["-z"]  # an unknown one still is


def test_an_unknown_parser_is_left_as_it_is():
    class Other:
        pass

    parser = Other()
    assert short_options_first(parser, click.Context(PLAIN)) is parser
