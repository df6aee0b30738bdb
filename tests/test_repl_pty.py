"""``chat repl`` on a real pseudo-terminal (issue 13): the installed command, prompt_toolkit
reading the keys typed, the replies streamed from the test server, Ctrl-C sent as the terminal
sends it (a SIGINT to the foreground process group), Ctrl-D, the history file. Slow: integration."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import select
import stat
import struct
import subprocess
import sys
import termios
import threading
import time
from typing import Dict, List, Optional, Sequence

import pytest

from interncli.repl import HISTORY_FILE
from tests.apiserver import Stream, err_object, stream_chunks
from tests.conftest import SENTINEL

pytestmark = pytest.mark.integration

DEADLINE = 20.0


def _take_terminal() -> None:
    # In the child: a session of its own with the pty as its controlling terminal, so that the
    # Ctrl-C typed reaches it as a signal, as in a shell.
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """The installed interncli with stdin, stdout and stderr on one pty of 24 x 100."""

    def __init__(self, exe: str, api, args: Sequence[str], env: Optional[Dict[str, str]] = None) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
        environ = dict(os.environ, INTERN_API_KEY=SENTINEL, TERM="xterm", **(env or {}))
        # A terminal answers prompt_toolkit's cursor-position request; this test reader does not.
        environ["PROMPT_TOOLKIT_NO_CPR"] = "1"
        self.proc = subprocess.Popen([exe, "-b", api.base_url, *args], stdin=slave, stdout=slave, stderr=slave,
                                     env=environ, close_fds=True, preexec_fn=_take_terminal)
        os.close(slave)
        self.seen = b""
        self.mark = 0

    def expect(self, text: str) -> str:
        """Read until ``text`` has appeared since the last expect; what came up to it."""
        wanted = text.encode()
        end = time.monotonic() + DEADLINE
        while wanted not in self.seen[self.mark:]:
            left = end - time.monotonic()
            if left <= 0 or not self._read(left):
                pytest.fail("{!r} did not appear; the terminal showed: {!r}".format(text, self.seen[self.mark:]))
        at = self.seen.index(wanted, self.mark) + len(wanted)
        got, self.mark = self.seen[self.mark:at], at
        return got.decode("utf-8", "replace")

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def enter(self, keys: str) -> None:
        """Type ``keys`` once the prompt is up (prompt_toolkit turns bracketed paste on for it):
        typed before, they would be read by the terminal's own line discipline."""
        self.expect("\x1b[?2004h")
        self.type(keys)

    def finish(self) -> int:
        """Read to the end; the exit code."""
        end = time.monotonic() + DEADLINE
        while self.proc.poll() is None and time.monotonic() < end:
            self._read(0.1)
        while self._read(0.1):
            pass
        try:
            return self.proc.wait(DEADLINE)
        finally:
            os.close(self.master)

    def _read(self, wait: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], wait)
        if not ready:
            return self.proc.poll() is None
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the program has gone
            return False
        self.seen += data
        return bool(data)


def contents(api) -> List[str]:
    return [r.json["messages"][-1]["content"] for r in api.calls()]


def history(home) -> str:
    return os.path.join(str(home), ".local", "state", "interncli", HISTORY_FILE)


def test_typing_streaming_keys_completion_and_ctrl_d(exe, api, isolated_env, config_dir, tmp_path):
    (config_dir / "config.yaml").write_text("profiles:\n  default:\n    models: [intern-latest, intern-s1]\n")
    term = Terminal(exe, api, ["chat", "repl"])
    term.expect("Ctrl-D to leave")
    term.enter("hello\r")
    term.expect("echo: hello")
    term.enter("abc\x03")  # Ctrl-C at the prompt clears the line, not the session
    term.enter("def\r")
    term.expect("echo: def")
    term.enter("line one\x1b\rline two\r")  # Esc Enter (Alt+Enter): a new line in the message
    term.expect("echo: line one")
    term.enter('"""\rblock one\rblock two\r"""\r')
    term.expect("echo: block one")
    term.enter("\x1b[200~pasted\nlines\x1b[201~\r")  # a bracketed paste of two lines is one message
    term.expect("echo: pasted")
    term.enter("/mod\t")  # Tab completes the command, then the model's name (each drawn before going on)
    term.expect("/mod")
    term.expect("el")
    term.type(" intern-s\t")
    term.expect("intern-s")
    term.expect("1")
    term.type("\r")
    term.expect("model: intern-s1")
    saved = tmp_path / "saved.json"
    term.enter("again\r")
    term.enter("/save {}\r".format(saved))
    term.expect("saved 12 messages")
    term.enter("my token is {}\r".format(SENTINEL))
    term.expect("echo: my token")
    term.enter("\x04")
    assert term.finish() == 0
    assert contents(api) == ["hello", "def", "line one\nline two", "block one\nblock two", "pasted\nlines",
                             "again", "my token is " + SENTINEL]
    assert api.calls()[-2].json["model"] == "intern-s1"
    assert [m["content"] for m in json.loads(saved.read_text())][-2:] == ["again", "echo: again"]
    path = history(isolated_env)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path, encoding="utf-8") as fh:
        kept = [json.loads(line) for line in fh]
    assert kept == ["hello", "def", "line one\nline two", "block one\nblock two", "pasted\nlines",
                    "/model intern-s1", "again", "/save {}".format(saved)]
    assert SENTINEL not in open(path, encoding="utf-8").read()


def test_history_comes_back_in_the_next_session(exe, api, isolated_env):
    os.makedirs(os.path.dirname(history(isolated_env)), mode=0o700)
    with open(history(isolated_env), "w", encoding="utf-8") as fh:
        fh.write(json.dumps("from yesterday") + "\n")
    term = Terminal(exe, api, ["chat", "repl"])
    term.expect("Ctrl-D to leave")
    term.enter("\x1b[A\r")  # Up: the last entry of the session before
    term.expect("echo: from yesterday")
    term.enter("\x04")
    assert term.finish() == 0


def test_ctrl_c_mid_reply_stops_it_and_the_conversation_is_picked_up_again(exe, api, tmp_path):
    release = threading.Event()
    api.add(Stream(stream_chunks(["Once upon ", "a time"]), hold_after=1, release=release, hold_timeout=DEADLINE))
    talk = tmp_path / "talk.json"
    term = Terminal(exe, api, ["chat", "repl", "--conversation", str(talk)])
    try:
        term.expect("Ctrl-D to leave")
        term.enter("tell a story\r")
        term.expect("Once upon")
        term.type("\x03")  # the terminal sends SIGINT: the reply stops, the session goes on
        term.expect("reply stopped")
        term.enter("go on\r")
        term.expect("echo: go on")
        term.enter("\x04")
        assert term.finish() == 0
    finally:
        release.set()
    cut = {"role": "assistant", "content": "Once upon \n\n[interrupted]"}
    assert json.loads(talk.read_text())[:2] == [{"role": "user", "content": "tell a story"}, cut]
    assert api.calls()[-1].json["messages"][1] == cut

    again = Terminal(exe, api, ["chat", "repl", "--conversation", str(talk)])
    again.expect("4 messages from {}".format(talk))
    again.enter("and then?\r")
    again.expect("echo: and then?")
    again.enter("/exit\r")
    assert again.finish() == 0
    assert [m["content"] for m in api.calls()[-1].json["messages"]] == [
        "tell a story", cut["content"], "go on", "echo: go on", "and then?"]


def test_a_server_error_mid_session_is_one_line_and_model_text_is_escaped(exe, api):
    api.add(err_object("engine exploded", code=500, status=500))
    api.add(Stream(stream_chunks(["\x1b]0;pwned\x07", "safe"])))
    term = Terminal(exe, api, ["--max-retries", "0", "chat", "repl"])
    term.expect("Ctrl-D to leave")
    term.enter("first\r")
    shown = term.expect("\n")
    while "engine exploded" not in shown:
        shown = term.expect("\n")
    assert "interncli: error:" in shown and "(hint: " in shown
    term.enter("second\r")
    term.expect("safe")
    term.enter("third\r")
    term.expect("echo: third")
    term.enter("\x04")
    assert term.finish() == 0
    assert b"\x1b]0;pwned" not in term.seen and b"\\x1b]0;pwned\\x07safe" in term.seen


def test_a_script_never_loads_the_line_editor(api):
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "interncli", "-b", api.base_url, "chat", "repl"],
                          input=b"hi\n", capture_output=True, env=dict(os.environ, INTERN_API_KEY=SENTINEL),
                          timeout=DEADLINE)
    assert proc.returncode == 0 and proc.stdout == b"echo: hi\n"
    assert b"prompt_toolkit" not in proc.stderr and b"interncli.lineedit" not in proc.stderr
