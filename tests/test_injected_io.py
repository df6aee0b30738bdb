"""Commands run in process with injected streams (tests/fakeio.py) that are terminals, or not:
what a person sees on a terminal (escaping, dimmed reasoning, colour, NO_COLOR), what a pipe
gets, and the two prompts, which are asked only when stdin and stderr are terminals. The same
behaviour on real pseudo-terminals is tested end to end in test_terminal_safety.py and
test_tools.py."""

from __future__ import annotations

import os

import pytest

from interncli import credentials
from tests.apiserver import MODELS_PATH, Completion, Json, Stream, stream_chunks
from tests.conftest import SENTINEL
from tests.fakeio import fake_io, run_with, terminal_io
from tests.toolhelpers import ECHO, write_spec

SHARED_SERVER = True
HOSTILE = "A\x1b]0;title\x07B"
ESCAPED = "A\\x1b]0;title\\x07B"
DIM, YELLOW, RED, RESET = "\x1b[2m", "\x1b[33m", "\x1b[31;1m", "\x1b[0m"
LOGIN_TOKEN = "login-token-0123456789"


def chat(api, streams, *args):
    return run_with(streams, ["-b", api.base_url, "-k", SENTINEL, "chat", "create", *args])


# ------------------------------------------------------------------ replies on a terminal


def test_on_a_terminal_the_reply_is_escaped_and_the_reasoning_dimmed(api):
    api.add(Completion(content=HOSTILE, reasoning="why " + HOSTILE, finish_reason="length"))
    result = chat(api, terminal_io(), "-g", "user", "hi", "--show-reasoning")
    assert result.exit_code == 0
    assert result.stdout == ESCAPED + "\n"
    assert result.stderr == (DIM + "why " + ESCAPED + "\n" + RESET + YELLOW + "interncli: warning:" + RESET
                             + " the reply was cut at max_tokens (finish_reason: length)\n")


def test_no_color_on_a_terminal_keeps_the_escaping_and_drops_the_colour(api):
    api.add(Completion(content=HOSTILE, reasoning="why", finish_reason="length"))
    result = chat(api, terminal_io(environ={"NO_COLOR": "1"}), "-g", "user", "hi", "--show-reasoning")
    assert result.stdout == ESCAPED + "\n"
    assert result.stderr == "why\ninterncli: warning: the reply was cut at max_tokens (finish_reason: length)\n"


def test_into_a_pipe_the_reply_is_as_received_and_nothing_is_coloured(api):
    api.add(Completion(content=HOSTILE, reasoning="why"))
    result = chat(api, fake_io(), "-g", "user", "hi", "--show-reasoning")
    assert result.stdout == HOSTILE + "\n"
    assert result.stderr == "why\n"


def test_a_streamed_reply_on_a_terminal_is_escaped_piece_by_piece(api):
    api.add(Stream(stream_chunks(["A\x1b", "]0;t\x07B"], reasoning=["hm"])))
    result = chat(api, terminal_io(), "-g", "user", "hi", "--stream", "--show-reasoning")
    assert result.exit_code == 0
    assert result.stdout == "A\\x1b]0;t\\x07B\n"
    assert result.stderr == DIM + "hm" + RESET + "\n"


def test_an_error_is_red_on_a_terminal_and_plain_in_a_pipe(api):
    api.add(Completion("x"), path=MODELS_PATH, method="GET")  # not a listing: a bad reply
    for streams, prefix in ((terminal_io(), RED + "interncli: error:" + RESET), (fake_io(), "interncli: error:")):
        result = run_with(streams, ["-b", api.base_url, "-k", SENTINEL, "--max-retries", "0", "models", "list"])
        assert result.exit_code != 0
        assert result.stderr.startswith(prefix + " "), result.stderr
        api.add(Completion("x"), path=MODELS_PATH, method="GET")


def test_model_ids_are_escaped_on_a_terminal_only(api):
    listing = {"object": "list", "data": [{"id": "m\x1b[2J1"}]}
    for streams, expected in ((terminal_io(), "m\\x1b[2J1\n"), (fake_io(), "m\x1b[2J1\n")):
        api.add(Json(listing), path=MODELS_PATH, method="GET")
        result = run_with(streams, ["-b", api.base_url, "-k", SENTINEL, "models", "list"])
        assert result.stdout == expected


# ------------------------------------------------------------------ stdin: a terminal or a pipe


def test_without_messages_a_terminal_stdin_is_not_read(api):
    result = chat(api, terminal_io("ignored\n"))
    assert result.exit_code == 2 and "no message to send" in result.stderr
    assert api.calls() == []


def test_without_messages_a_piped_stdin_is_the_message(api):
    result = chat(api, fake_io("from the pipe\n"))
    assert result.exit_code == 0 and result.stdout == "echo: from the pipe\n"


# ------------------------------------------------------------------ the approval prompt


@pytest.fixture
def spec(tmp_path, monkeypatch):
    monkeypatch.delenv("CI", raising=False)  # the machine running the tests may set it
    return write_spec(tmp_path, [{"name": "echo", "description": "echo",
                                  "parameters": {"type": "object", "properties": {}}, "command": [ECHO, "--flag"]}])


def run_tool(api, spec, streams):
    api.add(Completion(content=None, tool_calls=[("c1", "echo", "{}")]))
    api.add(Completion("done"))
    return run_with(streams, ["-b", api.base_url, "-k", SENTINEL, "tools", "run", str(spec), "go"])


def test_on_a_terminal_a_yes_runs_the_tool(api, spec):
    result = run_tool(api, spec, terminal_io("y\n"))
    assert result.exit_code == 0 and result.stdout == "done\n"
    assert "argv: " in result.stderr and "--flag" in result.stderr
    assert "interncli: run it? [y/N]: " in result.stderr
    assert (spec.parent / "ran.log").exists()


@pytest.mark.parametrize("answer", ["n\n", "\n", "maybe\nno\n"])
def test_on_a_terminal_anything_but_yes_runs_nothing(api, spec, answer):
    result = run_tool(api, spec, terminal_io(answer))
    assert result.exit_code == 7 and "not approved" in result.stderr
    assert result.stderr.count("[y/N]") == answer.count("\n")
    assert ("Error: invalid input" in result.stderr) == answer.startswith("maybe")
    assert not (spec.parent / "ran.log").exists()


def test_the_end_of_input_at_the_prompt_is_an_interrupt(api, spec):
    result = run_tool(api, spec, terminal_io(""))
    assert result.exit_code == 130 and result.stderr.endswith("interncli: interrupted\n")
    assert not (spec.parent / "ran.log").exists()


@pytest.mark.parametrize("streams", [fake_io("y\n", stdin_tty=True), fake_io("y\n", stderr_tty=True)],
                         ids=["stderr-piped", "stdin-piped"])
def test_without_both_stdin_and_stderr_on_a_terminal_nothing_is_asked_or_run(api, spec, streams):
    result = run_tool(api, spec, streams)
    assert result.exit_code == 7 and "[y/N]" not in result.stderr
    assert not (spec.parent / "ran.log").exists()


# ------------------------------------------------------------------ auth login's prompt


def test_login_on_a_terminal_asks_for_the_token(memory_keyring):
    result = run_with(terminal_io(LOGIN_TOKEN + "\n"), ["auth", "login"])
    assert result.exit_code == 0, result.stderr
    assert result.stderr.startswith("Paste your Intern API token: ")
    assert LOGIN_TOKEN not in result.stderr + result.stdout
    assert memory_keyring.get_password(credentials.SERVICE, "default") == LOGIN_TOKEN


def test_login_with_stdin_piped_asks_nothing(memory_keyring):
    result = run_with(fake_io(LOGIN_TOKEN + "\n", stderr_tty=True), ["auth", "login"])
    assert result.exit_code == 2 and "no terminal to ask for the token on" in result.stderr
    assert "Paste" not in result.stderr
    assert memory_keyring.get_password(credentials.SERVICE, "default") is None


def test_login_with_an_empty_answer_stores_nothing(memory_keyring):
    result = run_with(terminal_io("\n"), ["auth", "login"])
    assert result.exit_code == 2 and "no token given" in result.stderr
    assert memory_keyring.get_password(credentials.SERVICE, "default") is None


def test_login_with_token_reads_the_injected_stdin(memory_keyring):
    result = run_with(fake_io(LOGIN_TOKEN + "\n"), ["auth", "login", "--with-token"])
    assert result.exit_code == 0
    assert memory_keyring.get_password(credentials.SERVICE, "default") == LOGIN_TOKEN


def test_the_chmod_warning_comes_through_the_injected_stderr(config_dir):
    path = config_dir / "credentials.yaml"
    path.write_text("profiles:\n  default:\n    token: file-token-0001\n", encoding="utf-8")
    os.chmod(path, 0o644)
    result = run_with(terminal_io(), ["auth", "token"])
    assert result.stdout == "file-token-0001\n"
    assert result.stderr == "{}interncli: warning:{} {} can be read by other users; run: chmod 600 {}\n".format(
        YELLOW, RESET, path, path)
