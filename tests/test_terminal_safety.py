"""Text from the server or the model never reaches a terminal unescaped (interface.md section 1):
on stderr always, on stdout when stdout is a terminal; a pipe gets the bytes as received, and
``--json`` output has DEL and C1 controls escaped while keeping the same JSON value.

The pipe cases run in-process (CliRunner's streams are not terminals); the terminal cases run
the installed command with stdout and stderr on real pseudo-terminals (tests/terminal.py).
"""

from __future__ import annotations

import json

import pytest

from tests.apiserver import MODELS_PATH, Completion, Json, Stream, err_code, stream_chunks
from tests.terminal import run_on_terminal

SHARED_SERVER = True

# OSC 52 (write the clipboard), a screen clear, and CSI as the single C1 character U+009B.
HOSTILE = "A\x1b]52;c;SGVsbG8=\x07B\x1b[2JC\x9b31mD"
ESCAPED = "A\\x1b]52;c;SGVsbG8=\\x07B\\x1b[2JC\\x9b31mD"
# The pieces of a streamed reply, cut inside the sequences: each piece is escaped on its own.
PIECES = ["A\x1b", "]52;c;SGVsbG8=\x07B\x1b", "[2JC\x9b", "31mD"]
RAW = [b"\x1b]52", b"\x1b[2J", "\x9b".encode("utf-8"), b"\x07"]
DIM = "\x1b[2m"
FLAGGED = {"sensitive": True, "category": HOSTILE}


def assert_no_raw(data: bytes) -> None:
    for sequence in RAW:
        assert sequence not in data, "a raw {!r} reached the terminal: {!r}".format(sequence, data)


def on_terminal(exe, api, *args, **kwargs):
    return run_on_terminal(exe, ["-b", api.base_url, *args], **kwargs)


# ------------------------------------------------------------------- pipes: in-process


def test_piped_stdout_gets_the_bytes_as_received_and_stderr_is_escaped(cli, api):
    api.add(Completion(content=HOSTILE, reasoning=HOSTILE, moderation=FLAGGED))
    result = cli("chat", "create", "-g", "user", "hi", "--show-reasoning")
    assert result.exit_code == 0
    assert result.stdout == HOSTILE + "\n"
    assert "\x1b" not in result.stderr and "\x9b" not in result.stderr and "\x07" not in result.stderr
    assert ESCAPED + "\n" in result.stderr  # the reasoning
    assert "(category: {})".format(ESCAPED) in result.stderr  # the moderation warning


def test_piped_stream_gets_the_bytes_as_received_and_reasoning_is_escaped(cli, api):
    api.add(Stream(stream_chunks(PIECES, reasoning=PIECES)))
    result = cli("chat", "create", "-g", "user", "hi", "--stream", "--show-reasoning")
    assert result.exit_code == 0
    assert result.stdout == HOSTILE + "\n"
    assert result.stderr == ESCAPED + "\n"


def test_retry_notices_and_errors_carry_no_controls(cli, api):
    # Retry-After: 0 keeps the retry immediate.
    api.add(err_code("E\x1b[2J", HOSTILE, status=500, headers={"Retry-After": "0"}), times=2)
    result = cli("chat", "create", "-g", "user", "hi", globals_=("--max-retries", "1"))
    assert result.exit_code == 1
    assert "retrying" in result.stderr and "error:" in result.stderr
    assert "\x1b" not in result.stderr and "\x9b" not in result.stderr and "\x07" not in result.stderr


@pytest.mark.parametrize("stream", [False, True])
def test_verbose_traces_of_the_reply_are_escaped(cli, api, stream):
    # A trace quotes the body as received: here C1 raw inside the JSON strings, as json.dumps
    # (ensure_ascii=False) writes them.
    if stream:
        api.add(Stream(stream_chunks(PIECES)))
    else:
        api.add(Completion(content=HOSTILE))
    result = cli("chat", "create", "-g", "user", "hi", *(["--stream"] if stream else []), globals_=("-v",))
    assert "< HTTP 200" in result.stderr
    assert "\x1b" not in result.stderr and "\x9b" not in result.stderr and "\x07" not in result.stderr


@pytest.mark.parametrize("stream", [False, True])
def test_json_output_escapes_c1_and_keeps_the_value(cli, api, stream):
    if stream:
        api.add(Stream(stream_chunks(PIECES)))
    else:
        api.add(Completion(content=HOSTILE))
    result = cli("chat", "create", "-g", "user", "hi", "--json", *(["--stream"] if stream else []))
    assert result.exit_code == 0
    assert "\x9b" not in result.stdout and "\x1b" not in result.stdout and "\\u009b" in result.stdout
    if stream:
        text = "".join(json.loads(line)["choices"][0]["delta"].get("content") or ""
                       for line in result.stdout.splitlines())
    else:
        text = json.loads(result.stdout)["choices"][0]["message"]["content"]
    assert text == HOSTILE


def test_json_error_line_escapes_c1_and_keeps_the_code(cli, api):
    api.add(err_code("E\x9b1", "bad\x9b", status=400))
    result = cli("chat", "create", "-g", "user", "hi", "--json")
    assert result.exit_code == 5
    assert "\x9b" not in result.stderr
    assert json.loads(result.stderr)["error"]["code"] == "E\x9b1"


def test_piped_tool_call_line_keeps_id_and_name_as_received(cli, api):
    api.add(Completion(content=None, tool_calls=[("call\x1b[2J1", "f\x9b31m", '{"q": "x\\u009by"}')]))
    result = cli("chat", "create", "-g", "user", "hi")
    assert result.exit_code == 0
    # The arguments are JSON as interncli writes it: C1 escaped, the same value.
    assert result.stdout == 'tool_call call\x1b[2J1 f\x9b31m {"q": "x\\u009by"}\n'


# ------------------------------------------------------------- real pseudo-terminals


@pytest.mark.integration
def test_whole_reply_on_terminals_is_escaped_and_reasoning_stays_dimmed(exe, api):
    api.add(Completion(content=HOSTILE, reasoning=HOSTILE, moderation=FLAGGED, finish_reason="length"))
    run = on_terminal(exe, api, "chat", "create", "-g", "user", "hi", "--show-reasoning")
    assert run.exit_code == 0, run.stderr
    assert run.stdout == (ESCAPED + "\n").encode()
    assert_no_raw(run.stderr)
    assert (DIM + ESCAPED).encode() in run.stderr  # dimmed, and the model's text inside escaped
    assert "(category: {})".format(ESCAPED).encode() in run.stderr
    assert b"max_tokens" in run.stderr


@pytest.mark.integration
def test_streamed_reply_on_terminals_is_escaped_piece_by_piece(exe, api):
    api.add(Stream(stream_chunks(PIECES, reasoning=PIECES)))
    run = on_terminal(exe, api, "chat", "create", "-g", "user", "hi", "--stream", "--show-reasoning")
    assert run.exit_code == 0, run.stderr
    assert run.stdout == (ESCAPED + "\n").encode()
    assert_no_raw(run.stderr)
    assert (DIM + "A\\x1b").encode() in run.stderr


@pytest.mark.integration
@pytest.mark.parametrize("stream", [False, True])
def test_several_choices_on_a_terminal_are_escaped(exe, api, stream):
    if stream:
        api.add(Stream(stream_chunks(PIECES, n=2)))
    else:
        api.add(Completion(content=HOSTILE, n=2))
    run = on_terminal(exe, api, "chat", "create", "-g", "user", "hi", "-n", "2", *(["--stream"] if stream else []))
    assert run.exit_code == 0, run.stderr
    assert_no_raw(run.stdout)
    assert run.stdout.count(ESCAPED.encode()) == 2 and b"===== Chat Completion 1 =====" in run.stdout


@pytest.mark.integration
@pytest.mark.parametrize("stream", [False, True])
def test_tool_call_lines_on_a_terminal_are_escaped(exe, api, stream):
    call = {"id": "call\x1b[2J1", "type": "function",
            "function": {"name": "f\x9b31m", "arguments": '{"q": "x\\u009by\\u001b]52;c;AA==\\u0007"}'}}
    if stream:
        chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "intern-latest",
                 "choices": [{"index": 0, "delta": {"role": "assistant", "content": None,
                                                    "tool_calls": [dict(call, index=0)]},
                              "finish_reason": "tool_calls"}]}
        api.add(Stream([chunk]))
    else:
        api.add(Completion(content=None, tool_calls=[call]))
    run = on_terminal(exe, api, "chat", "create", "-g", "user", "hi", *(["--stream"] if stream else []))
    assert run.exit_code == 0, run.stderr
    assert_no_raw(run.stdout)
    assert run.stdout.startswith(b"tool_call call\\x1b[2J1 f\\x9b31m ")
    arguments = json.loads(run.stdout.decode().split(" ", 3)[3])
    assert arguments == {"q": "x\x9by\x1b]52;c;AA==\x07"}  # escaped on screen, the same JSON value


@pytest.mark.integration
def test_model_ids_on_a_terminal_are_escaped_and_raw_in_a_pipe(exe, api):
    listing = Json({"object": "list", "data": [{"id": HOSTILE, "object": "model"}, {"id": "plain"}]})
    api.add(listing, path=MODELS_PATH, method="GET")
    run = on_terminal(exe, api, "models", "list")
    assert run.exit_code == 0, run.stderr
    assert run.stdout == (ESCAPED + "\nplain\n").encode()
    api.add(listing, path=MODELS_PATH, method="GET")
    piped = on_terminal(exe, api, "models", "list", stdout_tty=False)
    assert piped.stdout == (HOSTILE + "\nplain\n").encode()


@pytest.mark.integration
def test_piped_stdout_beside_a_terminal_stderr_is_unchanged(exe, api):
    api.add(Completion(content=HOSTILE, reasoning=HOSTILE))
    run = on_terminal(exe, api, "chat", "create", "-g", "user", "hi", "--show-reasoning", stdout_tty=False)
    assert run.exit_code == 0, run.stderr
    assert run.stdout == (HOSTILE + "\n").encode()
    assert_no_raw(run.stderr)


@pytest.mark.integration
def test_errors_and_retry_notices_on_a_terminal_carry_no_controls(exe, api):
    api.add(err_code("E\x1b[2J", HOSTILE, status=500, headers={"Retry-After": "0"}), times=2)
    run = on_terminal(exe, api, "--max-retries", "1", "chat", "create", "-g", "user", "hi")
    assert run.exit_code == 1
    assert b"retrying" in run.stderr and b"error:" in run.stderr
    assert_no_raw(run.stderr)
    assert run.stdout == b""


# ------------------------------------------------------------- a stream cut mid-line

@pytest.mark.integration
def test_a_stream_cut_mid_line_ends_the_line_on_a_terminal_before_the_error(exe, api):
    # Without this the error would start on the line of the text ("Hel interncli: error: ...").
    api.add(Stream(stream_chunks(["Hel"], finish_reason=None), cut=True))
    result = on_terminal(exe, api, "--max-retries", "0", "chat", "create", "--stream", "-g", "user", "hi")
    assert result.exit_code == 6
    assert result.stdout == b"Hel\n"  # the line is ended, so the error on the terminal starts a line
    assert b"the reply stream was cut" in result.stderr


def test_a_stream_cut_mid_line_into_a_pipe_keeps_the_bytes_as_received(cli, api):
    api.add(Stream(stream_chunks(["Hel"], finish_reason=None), cut=True))
    result = cli("--max-retries", "0", "chat", "create", "--stream", "-g", "user", "hi")
    assert result.exit_code == 6
    assert result.stdout == "Hel"
