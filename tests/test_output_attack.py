"""Attacks on structured output, extraction, the repl and the api commands (session 4): what a
lying model or a hostile server sends, and what must still come out right.

Each test here failed before the fix it names in its commit."""

from __future__ import annotations

import io
import json
import os
from typing import Any, Callable, Dict

import pytest

from interncli import conversation, files, repl, structured
from interncli.commands.chat import send_chat
from interncli.context import AppContext
from interncli.errors import UsageError
from tests.apiserver import Completion, Json, Stream
from tests.conftest import SENTINEL, Sleeps
from tests.fakeio import fake_io

SHARED_SERVER = True
NUMBER = '{"type": "number"}'


# ------------------------------------------------------------------------------ --schema


@pytest.mark.parametrize("reply", ["1e400", "-1e400", '{"n": 1e400}'])
def test_a_number_beyond_json_s_range_is_no_json_value(reply):
    # json.loads reads 1e400 as inf, which json.dumps writes as Infinity: stdout was no JSON.
    value, problem = structured.find_json(reply)
    assert value is None
    assert problem is not None and "too large" in problem


def test_a_reply_of_1e400_is_asked_again_and_never_printed_as_infinity(cli, api):
    api.add(Completion("1e400"))
    api.add(Completion("1.5"))
    result = cli("chat", "create", "-m", "m", "-g", "user", "hi", "--schema", NUMBER)
    assert (result.exit_code, result.stdout) == (0, "1.5\n")
    assert "too large" in result.stderr
    assert "Infinity" not in result.stdout


@pytest.mark.parametrize("schema", ['{"type": "number", "maximum": 1e400}', '{"type": "number", "minimum": -1e999}'])
def test_a_schema_with_an_infinite_number_is_a_usage_error(schema):
    # It used to pass, then be told to the model as "maximum": Infinity (not JSON), or fail to
    # be sent with a message about -t and -P.
    with pytest.raises(UsageError) as caught:
        structured.load_schema(schema)
    assert "too large" in caught.value.message


def test_a_schema_with_an_infinite_number_exits_2_before_sending(cli, api):
    result = cli("chat", "create", "-m", "m", "-g", "user", "hi", "--schema", '{"maximum": 1e400}',
                 env={"INTERN_API": "intern"})
    assert result.exit_code == 2
    assert "too large" in result.stderr and "hint:" in result.stderr
    assert api.requests == []


def test_a_huge_whole_number_against_a_float_multiple_of_is_the_reply_s_fault(cli, api):
    # 10**4000 / 0.5 overflowed inside the check, which was taken for a broken schema: exit 2,
    # "--schema cannot check a reply", where the model's reply was what failed.
    api.add(Completion("1" + "0" * 4000))
    api.add(Completion("2.5"))
    result = cli("chat", "create", "-m", "m", "-g", "user", "hi", "--schema", '{"multipleOf": 0.5}')
    assert (result.exit_code, result.stdout) == (0, "2.5\n")
    assert "too large to check" in result.stderr


@pytest.mark.parametrize("inside", ["\x0c", "\x85", "\u2028", "\u2029", "\x0b", "\x1c", "\x1e"])
def test_a_code_block_keeps_characters_that_are_no_line_end_in_markdown(inside):
    # splitlines() broke lines at these too: -x printed a form feed in Python source, or a
    # U+2028 in a JavaScript string, as a newline.
    code = "a = 1{}b = 2\n".format(inside)
    assert structured.extract_block("```python\n" + code + "```\n") == code
    assert structured.extract_block("```\r\nx\r\n```") == "x\n"  # CRLF: lines as before


def multiplying(levels: int) -> str:
    """A schema of a few hundred bytes whose references multiply: 10**levels subschemas."""
    defs: Dict[str, Any] = {"l0": {"type": "integer"}}
    for level in range(1, levels + 1):
        defs["l{}".format(level)] = {"allOf": [{"$ref": "#/$defs/l{}".format(level - 1)}] * 10}
    return json.dumps({"$defs": defs, "$ref": "#/$defs/l{}".format(levels)})


def test_a_schema_whose_references_multiply_is_refused_in_bounded_time(monkeypatch):
    # Checking it (its loops, then an empty object against it) walked every path: ten levels
    # of ten ran for hours before anything was sent, with nothing said.
    monkeypatch.setattr(structured, "CHECK_TIME_LIMIT", 0.05)
    with pytest.raises(UsageError) as caught:
        structured.load_schema(multiplying(10))
    assert "took more than 0.05s" in caught.value.message and caught.value.hint


def test_a_schema_with_a_few_shared_references_still_loads():
    assert structured.check_reply(structured.load_schema(multiplying(2)), "1") == (1, [])


def test_blank_fenced_blocks_are_passed_over_without_a_parse_each():
    # A reply of a million bare fences was a million JSON parses (and failures) per attempt.
    reply = "```\n```\n" * 5000 + "```json\n[1]\n```\n"
    assert structured.find_json(reply) == ([1], None)


def test_only_the_first_blocks_that_could_hold_json_are_tried():
    tried = structured.JSON_BLOCKS_TRIED
    late = "```\nnot json\n```\n" * tried + "```json\n[1]\n```\n"
    value, problem = structured.find_json(late)
    assert value is None and problem is not None and problem.startswith("the reply is not JSON")
    early = "```\nnot json\n```\n" * (tried - 1) + "```json\n[1]\n```\n"
    assert structured.find_json(early) == ([1], None)


def test_the_first_block_is_taken_without_reading_the_rest():
    reply = "```sh\nls\n```\n" + "```\n" * 1000
    assert structured.extract_block(reply) == "ls\n"
    assert structured.extract_block(reply, last=True) == ""


@pytest.mark.skipif(not os.path.isfile("/proc/kallsyms") or os.path.getsize("/proc/kallsyms") != 0,
                    reason="needs a /proc file that says size 0")
def test_a_schema_file_that_says_size_0_is_still_read_only_up_to_the_limit():
    # /proc files give size 0: the size check passed and the whole file (megabytes: a line per
    # kernel symbol) was read.
    with pytest.raises(UsageError) as caught:
        structured.load_schema("/proc/kallsyms")
    assert "over 1 MiB" in caught.value.message


# ------------------------------------------------------------------------------ a null index


def chunk(choices):
    """A streamed chat completion chunk holding ``choices`` as given."""
    return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": choices}


# Two choices, one with "index": null: kept apart from index 0 as None, whose sorting failed.
NULL_INDEX = [chunk([{"index": None, "delta": {"content": "x"}}, {"index": 0, "delta": {"content": "y"}}])]


@pytest.mark.parametrize("extra", [["-x"], ["--schema", '{"type": "string"}'], ["--json"], []])
def test_a_stream_with_a_null_choice_index_is_malformed_not_a_crash(cli, api, extra):
    api.add(Stream(NULL_INDEX), times=3)
    result = cli("chat", "create", "-m", "m", "-g", "user", "hi", "--stream", *extra)
    assert result.exit_code == 6
    assert "index is null" in result.stderr
    assert "TypeError" not in result.stderr and "report it" not in result.stderr


def test_a_text_completion_stream_with_a_null_index_is_malformed_not_a_crash(cli, api):
    events = [{"id": "c", "object": "text_completion", "created": 1, "model": "m",
               "choices": [{"index": None, "text": "x"}, {"index": 0, "text": "y"}]}]
    api.add(Stream(events), path="/v1/completions", times=3)
    result = cli("api", "completions.create", "-m", "m", "-p", "x", "--stream")
    assert result.exit_code == 6
    assert "index is null" in result.stderr and "TypeError" not in result.stderr


def test_a_whole_reply_with_a_null_index_is_refused(cli, api):
    reply = {"id": "c", "object": "chat.completion", "created": 1, "model": "m",
             "choices": [{"index": None, "message": {"role": "assistant", "content": "x"}}]}
    api.add(Json(reply))
    result = cli("chat", "create", "-m", "m", "-g", "user", "hi", globals_=["--max-retries", "0"])
    assert result.exit_code == 1 and "index is null" in result.stderr and "TypeError" not in result.stderr
    assert "Chat Completion None" not in result.stdout


def test_a_tool_call_with_a_null_index_is_malformed_not_a_crash(cli, api):
    calls = [{"index": None, "id": "a", "function": {"name": "f", "arguments": "{}"}},
             {"index": 0, "id": "b", "function": {"name": "g", "arguments": "{}"}}]
    api.add(Stream([chunk([{"index": 0, "delta": {"tool_calls": calls}, "finish_reason": "tool_calls"}])]), times=3)
    result = cli("chat", "create", "-m", "m", "-g", "user", "hi", "--stream")
    assert result.exit_code == 6
    assert "index is null" in result.stderr and "TypeError" not in result.stderr


# ------------------------------------------------------------------------------ the repl's file


class Between(io.BytesIO):
    """stdin whose ``before``-th line is read only after ``action`` ran: another run's turn."""

    def __init__(self, data: bytes, before: int, action: Callable[[], None]) -> None:
        super().__init__(data)
        self.lines, self.before, self.action = 0, before, action

    def readline(self, *args: int) -> bytes:  # type: ignore[override]
        """The next line, ``action`` run first before the ``before``-th."""
        self.lines += 1
        if self.lines == self.before:
            self.action()
        return super().readline(*args)


def contents(path) -> list:
    """The content of each message of a conversation file."""
    return [m["content"] for m in json.loads(path.read_text())]


def test_a_turn_another_run_added_to_the_repl_s_file_is_not_lost(cli, api, tmp_path):
    # The repl replaced the file with its own conversation after each turn: a turn that
    # `chat create --conversation` (or a second repl) had added in between was silently gone.
    talk = tmp_path / "talk.json"
    theirs: Dict[str, str] = {"role": "user", "content": "theirs"}
    stdin = Between(b"one\ntwo\n", 2, lambda: conversation.append_messages(str(talk), [theirs]))
    result = cli("chat", "repl", "--conversation", str(talk), input=stdin)  # type: ignore[arg-type]
    assert contents(talk) == ["one", "echo: one", "theirs"]
    assert result.stdout == "echo: one\necho: two\n"  # the session went on
    assert "changed outside this session" in result.stderr and "/save" in result.stderr
    assert result.exit_code == 2  # a script learns its turn was not written


def test_the_repl_still_writes_its_file_turn_after_turn_when_nobody_else_does(cli, api, tmp_path):
    talk = tmp_path / "talk.json"
    talk.write_text(json.dumps([{"role": "user", "content": "old \ud800"}]))  # kept as U+FFFD: no false alarm
    result = cli("chat", "repl", "--conversation", str(talk), "--system", "be brief", input="a\nb\n")
    assert result.exit_code == 0, result.stderr
    assert contents(talk) == ["be brief", "old \ufffd", "a", "echo: a", "b", "echo: b"]


def test_save_to_the_repl_s_own_file_is_no_change_by_another_run(cli, api, tmp_path):
    talk = tmp_path / "talk.json"
    result = cli("chat", "repl", "--conversation", str(talk), input="a\n/save {}\nb\n".format(talk))
    assert result.exit_code == 0, result.stderr
    assert contents(talk) == ["a", "echo: a", "b", "echo: b"]


# ------------------------------------------------------------------------------ the repl's history


def test_a_history_file_that_is_a_fifo_or_dev_zero_is_no_history(tmp_path):
    # open() of a FIFO waited for a writer that never comes: the repl never started; a link to
    # /dev/zero was read without end.
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    zero = tmp_path / "zero"
    zero.symlink_to("/dev/zero")
    assert repl.load_history(str(fifo)) == []
    assert repl.load_history(str(zero)) == []


def test_the_history_file_is_still_read_from_its_end(tmp_path):
    history = tmp_path / "history"
    history.write_text("".join(json.dumps("entry {}".format(i)) + "\n" for i in range(1500)))
    entries = repl.load_history(str(history))
    assert entries[0] == "entry 500" and entries[-1] == "entry 1499" and len(entries) == repl.HISTORY_ENTRIES


# ------------------------------------------------------------------------------ the token in the repl


@pytest.mark.parametrize("entry", ["/model " + SENTINEL, "/system my key is " + SENTINEL, "/save " + SENTINEL])
def test_the_token_typed_into_a_command_by_mistake_is_not_shown_back(cli, api, tmp_path, monkeypatch, entry):
    # A key pasted at the wrong prompt came back on stderr: "model: <token>", "system message:
    # my key is <token>", "saved 0 messages to <token>" (the cli fixture fails on any of them).
    monkeypatch.chdir(tmp_path)
    result = cli("chat", "repl", input=entry + "\n/model\n/system\n")
    assert result.exit_code == 0, result.stderr
    assert "***" in result.stderr


class Entries:
    """A person's entries at the repl's prompt, then Ctrl-D."""

    def __init__(self, *entries: str) -> None:
        self.entries = list(entries)

    def read(self, prompt: str) -> str:
        """The next entry; EOFError (Ctrl-D) after the last."""
        if not self.entries:
            raise EOFError
        return self.entries.pop(0)

    def keep(self, entry: str) -> None:
        """Nothing is remembered here."""


def test_ctrl_c_just_after_the_repl_replaced_its_file_is_no_change_by_another_run(api, tmp_path, monkeypatch):
    # A Ctrl-C after the rename (while the folder is synced) left the session believing the
    # file still held the old conversation: the next turn took it for another run's change.
    app = AppContext(options={"base_url": api.base_url, "api_key": SENTINEL}, environ=os.environ,
                     config_dir=os.environ["INTERNCLI_CONFIG_DIR"],
                     io=fake_io(None, stdin_tty=True, stdout_tty=True, stderr_tty=True))
    app.sleep = Sleeps()
    talk = tmp_path / "talk.json"
    session = repl.Session(app, lambda body, keep, cut: send_chat(app, body, as_json=False, show_reasoning=False,
                                                                  keep=keep, cut=cut),
                           model="m", store=str(talk), system=None, thinking=False, interactive=True)
    synced = files._sync_folder
    calls = []

    def interrupted_once(folder: str) -> None:
        calls.append(folder)
        if len(calls) == 1:
            raise KeyboardInterrupt
        synced(folder)

    monkeypatch.setattr(files, "_sync_folder", interrupted_once)
    assert session.run(Entries("one", "two")) == 0
    assert contents(talk) == ["one", "echo: one", "two", "echo: two"]
    assert "another run" not in app.io.stderr.getvalue()  # type: ignore[attr-defined]


def test_an_entry_typed_in_bytes_that_are_not_utf8_goes_into_the_history(tmp_path):
    # prompt_toolkit decodes a terminal's bytes with surrogateescape: "\xff" typed became
    # "\udcff", whose append raised UnicodeEncodeError out of the session: exit 1, "report it".
    history = tmp_path / "state" / "history"
    repl.append_history(str(history), "caf\udcff")
    repl.append_history(str(history), "next")
    assert repl.load_history(str(history)) == ["caf\ufffd", "next"]


def test_a_whole_message_s_tool_call_with_a_null_index_is_still_taken(cli, api):
    # A whole message's calls are placed by their order, not their index: null there is harmless.
    reply = {"id": "c", "object": "chat.completion", "created": 1, "model": "m",
             "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                 "role": "assistant", "content": None, "tool_calls": [
                     {"index": None, "id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}}]}
    api.add(Json(reply))
    result = cli("chat", "create", "-m", "m", "-g", "user", "hi")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("tool_call a f")


class SlowHistory(Entries):
    """A history file on a slow disk: a Ctrl-C comes while the first entry is written."""

    def __init__(self, *entries: str) -> None:
        super().__init__(*entries)
        self.kept = 0

    def keep(self, entry: str) -> None:
        """Interrupted the first time."""
        self.kept += 1
        if self.kept == 1:
            raise KeyboardInterrupt


def test_ctrl_c_while_the_history_is_written_goes_back_to_the_prompt(api):
    # The history was written outside the session's Ctrl-C handling: the session ended.
    app = AppContext(options={"base_url": api.base_url, "api_key": SENTINEL}, environ=os.environ,
                     config_dir=os.environ["INTERNCLI_CONFIG_DIR"],
                     io=fake_io(None, stdin_tty=True, stdout_tty=True, stderr_tty=True))
    app.sleep = Sleeps()
    session = repl.Session(app, lambda body, keep, cut: send_chat(app, body, as_json=False, show_reasoning=False,
                                                                  keep=keep, cut=cut),
                           model="m", store=None, system=None, thinking=False, interactive=True)
    assert session.run(SlowHistory("first", "second")) == 0
    assert app.io.stdout.getvalue() == "echo: second\n"  # type: ignore[attr-defined]


def test_a_fifo_at_the_history_path_is_refused_at_once_when_written(tmp_path):
    # Reading it was made safe, but the append opened it for writing without O_NONBLOCK, which
    # waits for a reader for ever: the repl's first Enter hung, and every one after it.
    from interncli import files

    fifo = tmp_path / "repl_history"
    os.mkfifo(str(fifo))
    with pytest.raises(UsageError, match="cannot write"):
        files.append_private(str(fifo), "hi\n")
    reader = os.open(str(fifo), os.O_RDONLY | os.O_NONBLOCK)  # with a reader, not a regular file all the same
    try:
        with pytest.raises(UsageError, match="not a regular file"):
            files.append_private(str(fifo), "hi\n")
    finally:
        os.close(reader)
