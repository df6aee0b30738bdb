"""``chat repl`` in-process (issue 13): the scripted mode through the whole command line, and the
session's interactive logic (Ctrl-C, history, completion) with a scripted reader and the real
send path against the test server. The real terminal is tests/test_repl_pty.py's."""

from __future__ import annotations

import io
import json
import os
import signal
import stat
import threading
from typing import Any, Dict, List, Optional, Sequence, Union

import pytest

from interncli import repl
from interncli.commands.chat import send_chat
from interncli.context import AppContext
from interncli.errors import UsageError
from interncli.iostreams import IOStreams
from tests.apiserver import Stream, err_code, err_msgcode, stream_chunks
from tests.conftest import SENTINEL, Sleeps
from tests.fakeio import FakeStream, fake_io

SHARED_SERVER = True


def sent(api) -> List[Dict[str, Any]]:
    """The bodies of the chat requests the server received, in order."""
    return [r.json for r in api.calls()]


# ---------------------------------------------------------------- scripted mode (no terminal)


def test_each_line_of_stdin_is_a_turn_and_the_replies_go_to_stdout(cli, api):
    result = cli("chat", "repl", input="hi\nmore\n")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "echo: hi\necho: more\n"
    assert result.stderr == ""  # no prompt, no greeting: a script's stderr stays quiet
    first, second = sent(api)
    assert first["stream"] is True and first["messages"] == [{"role": "user", "content": "hi"}]
    assert second["messages"] == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "echo: hi"},
                                  {"role": "user", "content": "more"}]


def test_a_triple_quote_block_is_one_message_and_a_double_slash_sends_a_slash(cli, api):
    result = cli("chat", "repl", input='"""\nfirst line\n\nsecond line\n"""\n"""inline"""\n//etc/hosts\n\n')
    assert result.exit_code == 0, result.stderr
    assert [b["messages"][-1]["content"] for b in sent(api)] == ["first line\n\nsecond line", "inline", "/etc/hosts"]


def test_a_block_may_close_on_its_last_line_of_text(cli, api):
    result = cli("chat", "repl", input='"""one\ntwo"""\nnext\n')
    assert result.exit_code == 0, result.stderr
    assert [b["messages"][-1]["content"] for b in sent(api)] == ["one\ntwo", "next"]


def test_model_and_system_switch_from_the_next_turn(cli, api):
    result = cli("chat", "repl", "--system", "Be brief.", input="a\n/model intern-s1\n/system Be kind.\nb\n")
    assert result.exit_code == 0, result.stderr
    first, second = sent(api)
    assert first["model"] == "intern-latest"
    assert first["messages"][0] == {"role": "system", "content": "Be brief."}
    assert second["model"] == "intern-s1"
    assert second["messages"][0] == {"role": "system", "content": "Be kind."}
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "user"]
    assert "model: intern-s1" in result.stderr and "echo" not in result.stderr


def test_reset_starts_afresh_keeping_the_system_message(cli, api):
    result = cli("chat", "repl", "--system", "S", input="a\n/reset\nb\n")
    assert result.exit_code == 0, result.stderr
    assert sent(api)[1]["messages"] == [{"role": "system", "content": "S"}, {"role": "user", "content": "b"}]


def test_thinking_switches_on_with_the_fields_of_the_server_kind(cli, api):
    result = cli("chat", "repl", input="a\n/thinking on\nb\n/thinking\n")
    assert result.exit_code == 0, result.stderr
    first, second = sent(api)
    assert "enable_thinking" not in first  # 127.0.0.1 is taken for LMDeploy
    assert second["enable_thinking"] is True and second["chat_template_kwargs"] == {"enable_thinking": True}
    assert result.stderr.splitlines()[-1] == "thinking: on"


def test_thinking_to_the_official_kind_sends_thinking_mode(cli, api):
    result = cli("chat", "repl", "--thinking", input="a\n", env={"INTERN_API": "intern"})
    assert result.exit_code == 0, result.stderr
    assert sent(api)[0]["thinking_mode"] is True and "enable_thinking" not in sent(api)[0]


def test_show_reasoning_puts_the_reasoning_on_stderr_and_only_the_answer_is_kept(cli, api, tmp_path):
    api.add(Stream(stream_chunks(["42"], reasoning=["Let me ", "think."])))
    talk = tmp_path / "talk.json"
    result = cli("chat", "repl", "--show-reasoning", "--conversation", str(talk), input="a\n")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "42\n" and result.stderr == "Let me think.\n"
    assert json.loads(talk.read_text())[-1] == {"role": "assistant", "content": "42"}


def test_thinking_with_a_system_message_is_refused_by_the_official_kind(cli, api):
    env = {"INTERN_API": "intern"}
    result = cli("chat", "repl", "--thinking", "--system", "S", input="a\n", env=env)
    assert result.exit_code == 2 and sent(api) == []
    assert "--thinking cannot be used with a system message" in result.stderr
    # In the session: an error on one line, thinking stays off, the session goes on.
    result = cli("chat", "repl", "--system", "S", input="/thinking on\na\n", env=env)
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1 and "thinking mode" in result.stderr
    assert "thinking_mode" not in sent(api)[0] and result.stdout == "echo: a\n"


def test_the_conversation_file_is_saved_after_every_turn_and_picked_up_again(cli, api, tmp_path):
    talk = tmp_path / "talk.json"
    assert cli("chat", "repl", "--conversation", str(talk), input="one\n").exit_code == 0
    assert json.loads(talk.read_text()) == [{"role": "user", "content": "one"},
                                            {"role": "assistant", "content": "echo: one"}]
    assert stat.S_IMODE(talk.stat().st_mode) == 0o600
    result = cli("chat", "repl", "--conversation", str(talk), input="two\n")
    assert result.exit_code == 0, result.stderr
    assert sent(api)[-1]["messages"][:2] == [{"role": "user", "content": "one"},
                                             {"role": "assistant", "content": "echo: one"}]
    assert [m["content"] for m in json.loads(talk.read_text())] == ["one", "echo: one", "two", "echo: two"]


def test_save_writes_the_conversation_and_a_bad_save_leaves_the_session_going(cli, api, tmp_path):
    out = tmp_path / "saved.json"
    result = cli("chat", "repl", input="a\n/save\n/save {}\n/save {}/no/such/dir/x.json\nb\n".format(out, tmp_path))
    assert result.exit_code == 2  # the first failure's exit code: /save without a file
    assert json.loads(out.read_text()) == [{"role": "user", "content": "a"},
                                           {"role": "assistant", "content": "echo: a"}]
    lines = result.stderr.splitlines()
    assert lines[0].startswith("interncli: error: /save needs a file name")
    assert lines[1] == "saved 2 messages to {}".format(out)
    assert lines[2].startswith("interncli: error: cannot write conversation") and "(hint: " in lines[2]
    assert result.stdout == "echo: a\necho: b\n"


def test_reset_stops_writing_the_conversation_file(cli, api, tmp_path):
    talk = tmp_path / "talk.json"
    result = cli("chat", "repl", "--conversation", str(talk), input="a\n/reset\nb\n")
    assert result.exit_code == 0, result.stderr
    assert [m["content"] for m in json.loads(talk.read_text())] == ["a", "echo: a"]
    assert "no longer written" in result.stderr


def test_a_server_error_is_one_line_and_the_session_goes_on(cli, api, sleeps):
    api.add(err_code(-20053, "too many requests", status=429), times=3)
    result = cli("chat", "repl", input="a\nb\n")
    assert result.exit_code == 4  # a script learns that a turn failed
    assert result.stdout == "echo: b\n"
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert errors == [line for line in errors if line.startswith("interncli: error: [-20053] too many requests")]
    assert len(errors) == 1 and "(hint: " in errors[0]
    assert len(sleeps.delays) == 2  # the usual retries, with the injected sleep
    # The failed turn is not in the conversation: the next one starts from nothing.
    assert sent(api)[-1]["messages"] == [{"role": "user", "content": "b"}]


def test_an_auth_error_mid_session_never_shows_the_token(cli, api):
    api.add(err_msgcode("A0202", "token {} is invalid".format(SENTINEL), status=401))
    result = cli("chat", "repl", input="a\nb\n")
    assert result.exit_code == 3
    assert "A0202" in result.stderr and SENTINEL not in result.stderr
    assert result.stdout == "echo: b\n"


def test_unknown_commands_are_refused_and_the_session_goes_on(cli, api):
    result = cli("chat", "repl", input="/frobnicate\n/help\na\n/exit\nnever sent\n")
    assert result.exit_code == 2
    assert "unknown command /frobnicate" in result.stderr and "/save FILE" in result.stderr
    assert result.stdout == "echo: a\n" and len(sent(api)) == 1


def test_no_token_for_the_official_service_fails_before_reading(tmp_path):
    from tests.conftest import invoke

    result = invoke(["chat", "repl"], input="a\n")
    assert result.exit_code == 3 and "interncli auth login" in result.stderr


def test_a_line_of_stdin_that_is_not_utf8_is_skipped_with_an_error():
    reader = repl.LineReader(io.TextIOWrapper(io.BytesIO(b"\xff\xfe bad\nok\r\n")))
    with pytest.raises(UsageError, match="not UTF-8"):
        reader.read("")
    assert reader.read("") == "ok"
    with pytest.raises(EOFError):
        reader.read("")


def test_a_reader_gone_still_keeps_the_turn(cli, api, tmp_path):
    talk = tmp_path / "talk.json"
    session = session_for(api, store=str(talk))

    def send(body, keep, cut):
        keep({"role": "assistant", "content": "whole"})
        raise BrokenPipeError

    session.send = send
    with pytest.raises(BrokenPipeError):
        session.run(ScriptedReader(["a"]))
    assert json.loads(talk.read_text()) == [{"role": "user", "content": "a"}, {"role": "assistant", "content": "whole"}]


def test_model_text_reaches_a_pipe_as_received(cli, api):
    api.add(Stream(stream_chunks(["\x1b]52;c;aGk=\x07", "ok"])))
    result = cli("chat", "repl", input="a\n")
    assert result.stdout == "\x1b]52;c;aGk=\x07ok\n"


# ---------------------------------------------------------------- the session, interactively


Entry = Union[str, type]


class ScriptedReader:
    """Entries as a person would type them; an exception class is raised instead (Ctrl-C is
    KeyboardInterrupt, Ctrl-D EOFError). Records the prompts shown and the entries kept."""

    def __init__(self, entries: Sequence[Entry]) -> None:
        self.entries = list(entries)
        self.prompts: List[str] = []
        self.kept: List[str] = []

    def read(self, prompt: str) -> str:
        self.prompts.append(prompt)
        if not self.entries:
            raise EOFError
        entry = self.entries.pop(0)
        if isinstance(entry, type):
            raise entry()
        return entry

    def keep(self, entry: str) -> None:
        self.kept.append(entry)


def session_for(api, store: Optional[str] = None, io: Optional[IOStreams] = None) -> repl.Session:
    """A session on terminal-like streams, sending with chat create's send path to the server."""
    app = AppContext(options={"base_url": api.base_url, "api_key": SENTINEL}, environ=os.environ,
                     config_dir=os.environ["INTERNCLI_CONFIG_DIR"],
                     io=io or fake_io(None, stdin_tty=True, stdout_tty=True, stderr_tty=True))
    app.sleep = Sleeps()

    def send(body, keep, cut):
        send_chat(app, body, as_json=False, show_reasoning=False, keep=keep, cut=cut)

    return repl.Session(app, send, model=app.settings.model, store=store, system=None, thinking=False,
                        interactive=True)


def streams(session: repl.Session):
    out, err = session.io.stdout, session.io.stderr
    assert isinstance(out, FakeStream) and isinstance(err, FakeStream)
    return out.getvalue(), err.getvalue()


def test_ctrl_c_at_the_prompt_clears_the_line_and_ctrl_d_leaves_with_0(api):
    session = session_for(api)
    reader = ScriptedReader([KeyboardInterrupt, "hi", KeyboardInterrupt, EOFError, "never"])
    assert session.run(reader) == 0
    out, err = streams(session)
    assert out == "echo: hi\n"
    assert err.startswith("chat with intern-latest; /help for commands, Ctrl-D to leave\n")
    assert reader.prompts == ["intern-latest> "] * 4 and reader.kept == ["hi"]


def test_ctrl_c_mid_reply_stops_it_keeps_the_part_marked_and_the_session_goes_on(api, tmp_path):
    release = threading.Event()
    stalled = api.add(Stream(stream_chunks(["Once upon ", "a time"]), hold_after=1, release=release))
    main = threading.main_thread().ident
    assert main is not None

    talk = tmp_path / "talk.json"
    session = session_for(api, store=str(talk))
    out = session.io.stdout
    assert isinstance(out, FakeStream)

    def interrupt_when_stalled() -> None:
        # The first piece was sent, the rest is not coming: once it is printed, Ctrl-C.
        if stalled.held.wait(10):
            while "Once upon" not in out.getvalue() and not release.wait(0.005):
                pass
            signal.pthread_kill(main, signal.SIGINT)

    threading.Thread(target=interrupt_when_stalled, daemon=True).start()
    try:
        assert session.run(ScriptedReader(["tell a story", "go on"])) == 0
    finally:
        release.set()
    out, err = streams(session)
    assert out == "Once upon \necho: go on\n"  # the cut line is ended before what follows
    assert "reply stopped: the part received is kept, marked [interrupted]" in err
    cut = {"role": "assistant", "content": "Once upon \n\n[interrupted]"}
    assert api.calls()[-1].json["messages"][:2] == [{"role": "user", "content": "tell a story"}, cut]
    assert json.loads(talk.read_text())[:2] == [{"role": "user", "content": "tell a story"}, cut]


def test_a_reply_stopped_before_any_text_leaves_the_turn_out(api):
    session = session_for(api)

    def send(body, keep, cut):
        cut({"role": "assistant", "content": ""})
        raise KeyboardInterrupt

    session.send = send
    assert session.run(ScriptedReader(["a"])) == 0
    assert session.messages == []
    assert "nothing had come, so the message was not kept" in streams(session)[1]


def test_an_entry_holding_the_token_is_never_kept_in_the_history(api):
    session = session_for(api)
    reader = ScriptedReader(["/model x-" + SENTINEL, "plain"])
    session.run(reader)
    assert reader.kept == ["plain"]
    assert SENTINEL not in streams(session)[0]


def test_model_text_is_escaped_on_a_terminal(api):
    api.add(Stream(stream_chunks(["\x1b[2J", "ok"])))
    session = session_for(api)
    session.run(ScriptedReader(["a"]))
    assert streams(session)[0] == "\\x1b[2Jok\n"


def test_help_lists_the_commands_and_keys(api):
    session = session_for(api)
    session.run(ScriptedReader(["/help"]))
    err = streams(session)[1]
    for name in ("/exit", "/save FILE", "/reset", "/model NAME", "/system TEXT", "/thinking on|off", "/help",
                 "Alt+Enter", "Ctrl-C", "Ctrl-D", '"""'):
        assert name in err


def test_without_prompt_toolkit_a_terminal_is_told_how_to_proceed(api, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "prompt_toolkit", None)  # import prompt_toolkit now fails
    monkeypatch.delitem(sys.modules, "interncli.lineedit", raising=False)
    session = session_for(api)
    with pytest.raises(UsageError, match="needs prompt_toolkit") as caught:
        repl.open_reader(session.app, session)
    assert "printf 'hi\\n' | interncli chat repl" in (caught.value.hint or "")


# ---------------------------------------------------------------- history file and completion


def test_the_history_file_is_private_from_its_creation_and_keeps_multi_line_entries(tmp_path):
    path = str(tmp_path / "state" / "interncli" / repl.HISTORY_FILE)
    old = os.umask(0)  # the most permissive umask: the file must still never be readable by others
    try:
        repl.append_history(path, "first")
        repl.append_history(path, "two\nlines")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    assert repl.load_history(path) == ["first", "two\nlines"]


def test_a_history_file_made_readable_is_made_private_again_and_a_cut_line_is_passed_over(tmp_path):
    path = tmp_path / repl.HISTORY_FILE
    path.write_text('"old"\n"cut in the mid')
    path.chmod(0o644)
    repl.append_history(str(path), "new")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert repl.load_history(str(path)) == ["old"]  # the cut line swallowed the next: both passed over
    repl.append_history(str(path), "newer")
    assert repl.load_history(str(path)) == ["old", "newer"]


def test_the_history_file_is_in_the_state_folder():
    assert repl.history_path(os.environ) == os.path.join(os.environ["XDG_STATE_HOME"], "interncli",
                                                         repl.HISTORY_FILE)


def test_completion_offers_commands_model_names_and_on_off():
    models = ["intern-latest", "intern-s1", "internvl2.5-latest"]
    assert repl.complete("/", models)[1] == ["/help", "/exit", "/save", "/reset", "/model", "/system", "/thinking",
                                            "/quit"]
    assert repl.complete("/s", models) == (0, ["/save", "/system"])
    assert repl.complete("/model intern-", models) == (7, ["intern-latest", "intern-s1"])
    assert repl.complete("/model internvl", models) == (7, ["internvl2.5-latest"])
    assert repl.complete("/thinking o", models) == (10, ["on", "off"])
    assert repl.complete("hello /m", models)[1] == []


def test_model_names_come_from_the_config(cli, api, config_dir):
    (config_dir / "config.yaml").write_text("profiles:\n  default:\n    model: mine\n    models: [a-1, a-2]\n")
    session = session_for(api)
    assert session.models == ["mine", "a-1", "a-2"]
    assert session.prompt() == "mine> "
    assert sent(api) == []  # no network for completion


@pytest.mark.parametrize("entry", ["/thinking maybe", "/model bad\x1bname"])
def test_bad_command_arguments_are_one_line_errors(api, entry):
    session = session_for(api)
    assert session.run(ScriptedReader([entry])) == 0  # on a terminal, Ctrl-D always leaves with 0
    err = streams(session)[1].splitlines()
    assert len(err) == 3 and err[1].startswith("\x1b[31;1minterncli: error:\x1b[0m ")  # red on a terminal
    assert "\x1b" not in err[1][len("\x1b[31;1minterncli: error:\x1b[0m "):]
