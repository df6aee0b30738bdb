"""``chat repl``: an interactive chat session. Turns, slash commands, multi-line entries, the
history file and the conversation file live here; the line editor (prompt_toolkit, on a
terminal only) is in lineedit.py, and sending a turn is the command's (the send path of ``chat
create``), handed in as ``send``. No click here.

Two ways in: on a terminal (stdin and stderr), a line editor with history and completion; else
one message per line of stdin, replies on stdout, for scripts."""

from __future__ import annotations

import json
import os
from typing import IO, Any, Callable, Dict, List, Optional, Protocol, Tuple

from interncli import config, conversation, output
from interncli.context import AppContext
from interncli.errors import InternCliError, UsageError
from interncli.safetext import escape_controls, escape_line

Message = Dict[str, Any]
# The command's send path: send(body, keep, cut) prints a streamed reply, hands the whole
# reply's message to ``keep``, or, on a Ctrl-C midway, the part received to ``cut``; errors are
# raised (InternCliError), as is the KeyboardInterrupt after ``cut``.
Send = Callable[[Dict[str, Any], Callable[[Message], None], Callable[[Message], None]], None]

HISTORY_FILE = "repl_history"
HISTORY_ENTRIES = 1000  # entries loaded from the history file: the newest
HISTORY_TAIL = 1 << 20  # bytes read from the end of the history file, at most
CUT_MARK = "[interrupted]"  # ends a reply stopped by Ctrl-C, in the conversation and its file
BLOCK = '"""'

SLASH_COMMANDS = (
    ("/help", "", "this help"),
    ("/exit", "", "leave (also /quit, or Ctrl-D)"),
    ("/save", "FILE", "write the conversation to FILE (JSON, as --conversation reads it)"),
    ("/reset", "", "start a new conversation (the system message stays)"),
    ("/model", "NAME", "use another model from the next turn (alone: show it)"),
    ("/system", "TEXT", "set the system message (alone: show it)"),
    ("/thinking", "on|off", "thinking mode from the next turn (alone: show it)"),
)
KEYS = (
    ("Enter", "send the message"),
    ("Alt+Enter or Esc Enter", "a new line in the message"),
    ('"""', "a line starting with it opens a multi-line message; a line ending with it closes it"),
    ("Tab", "complete /commands and /model names"),
    ("Up, Down, Ctrl-R", "earlier messages (kept across sessions)"),
    ("Ctrl-C", "stop a reply (the part received is kept, marked {}); at the prompt, clear the line".format(
        CUT_MARK)),
    ("Ctrl-D", "leave"),
)


class Reader(Protocol):
    """Where entries come from: ``read`` raises EOFError at the end and KeyboardInterrupt on a
    Ctrl-C at the prompt; ``keep`` offers an entry to the history (never one holding a secret)."""

    def read(self, prompt: str) -> str:
        """One line (from a line editor: maybe several, with Alt+Enter or a paste)."""

    def keep(self, entry: str) -> None:
        """Remember a whole entry."""


class LineReader:
    """stdin read one line at a time, for scripts: no prompt, no history."""

    def __init__(self, stdin: Optional[IO[str]]) -> None:
        self.stdin = stdin

    def read(self, prompt: str) -> str:
        """The next line without its end; EOFError at the end of stdin (or a closed one)."""
        if self.stdin is None:
            raise EOFError
        buffer = getattr(self.stdin, "buffer", None)
        line: Any = buffer.readline() if buffer is not None else self.stdin.readline()
        if not line:
            raise EOFError
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError:
                raise UsageError("a line of stdin is not UTF-8 text; skipped",
                                 hint="Convert it first, e.g. iconv -f GBK -t UTF-8.") from None
        return line.rstrip("\r\n").lstrip("\ufeff")

    def keep(self, entry: str) -> None:
        """Scripted input is not remembered."""


def history_path(environ: Any) -> str:
    """The history file, in the user's state folder."""
    return os.path.join(config.state_dir(environ), HISTORY_FILE)


def load_history(path: str) -> List[str]:
    """The entries of the history file, oldest first (the newest HISTORY_ENTRIES; lines that do
    not parse are passed over: the file may have been cut by a crash)."""
    import stat

    try:
        # Not blocking, and only a regular file: a FIFO left there would hang the start, and
        # /dev/zero (a symlink to it) has no end to read to.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return []
    try:
        with open(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                return []
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - HISTORY_TAIL))
            data = fh.read(HISTORY_TAIL)
    except OSError:
        return []
    lines = data.split(b"\n")
    if len(data) == HISTORY_TAIL:
        lines = lines[1:]  # the first line may be the end of one cut by the seek
    entries = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, str):
            entries.append(entry)
    return entries[-HISTORY_ENTRIES:]


def append_history(path: str, entry: str) -> None:
    """Add one entry to the history file: one JSON string a line (an entry may span lines),
    the file private (0600) from its creation, its folder private too."""
    from interncli.files import append_private
    from interncli.safetext import replace_surrogates

    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    # prompt_toolkit reads bytes that are not UTF-8 (a terminal in GBK, a paste) as lone
    # surrogates, which no UTF-8 file can hold: they are kept as U+FFFD.
    append_private(path, replace_surrogates(json.dumps(entry, ensure_ascii=False)) + "\n")


def complete(text: str, models: List[str]) -> Tuple[int, List[str]]:
    """Tab completion of the text before the cursor: (where the word being completed starts,
    the candidates). /commands, then /model's names (from the config) and /thinking's on|off."""
    if text.startswith("/") and " " not in text:
        return 0, [name for name, _, _ in SLASH_COMMANDS + (("/quit", "", ""),) if name.startswith(text)]
    for command, choices in (("/model ", models), ("/thinking ", ["on", "off"])):
        if text.startswith(command) and " " not in text[len(command):]:
            word = text[len(command):]
            return len(command), [c for c in choices if c.startswith(word)]
    return len(text), []


def mark_cut(message: Message) -> Optional[Message]:
    """The part of a reply received before a Ctrl-C, marked as cut; None if nothing came."""
    content = message.get("content") or ""
    if not content and not message.get("tool_calls"):
        return None
    marked = dict(message)
    marked["content"] = (content + "\n\n" if content else "") + CUT_MARK
    return marked


class Session:
    """One interactive conversation: ``run`` reads entries until the end and returns the exit
    code. ``interactive``: a person at a terminal, so a Ctrl-C stops a reply, not the session;
    in a script it ends the run (exit 130) like any command's."""

    def __init__(self, app: AppContext, send: Send, *, model: str, store: Optional[str], system: Optional[str],
                 thinking: bool, interactive: bool) -> None:
        self.app = app
        self.io = app.io
        self.send = send
        self.model = model
        self.store = store
        self.thinking = thinking
        self.interactive = interactive
        self.models = list(dict.fromkeys([app.settings.model] + list(app.settings.models)))
        self.messages: List[Message] = conversation.load_messages(store) if store is not None else []
        self.loaded = len(self.messages)
        # What the file may hold, as this session last read or wrote it: what save expects.
        self.on_disk: List[List[Message]] = [list(self.messages)]
        self.failure = 0  # the exit code of the first error (a script's exit code)
        if system is not None:
            self.place_system(system)
        self.check_thinking()

    # ------------------------------------------------------------------ the loop

    def run(self, reader: Reader) -> int:
        """Read and act on entries until /exit or the end of input."""
        if self.interactive:
            self.greet()
        while True:
            try:
                entry = self.read_entry(reader)
            except EOFError:
                if self.interactive:
                    self.io.stderr.write("\n")
                    self.io.stderr.flush()
                return self.failure
            except KeyboardInterrupt:
                if not self.interactive:
                    raise
                continue  # Ctrl-C at the prompt: the line is cleared
            except InternCliError as err:  # a line of stdin that cannot be read
                self.report(err)
                continue
            if not entry.strip():
                continue
            try:
                self.remember(reader, entry)  # a history file on a slow disk: a Ctrl-C may come here too
                if not self.handle(entry):
                    return self.failure
            except KeyboardInterrupt:
                if not self.interactive:
                    raise
                self.say("")  # a Ctrl-C just outside a reply (a slow /save, say): back to the prompt

    def read_entry(self, reader: Reader) -> str:
        """One entry: a line, or a multi-line ``\"\"\"`` block (ended by a line ending with
        ``\"\"\"``, or by the end of input)."""
        line = reader.read(self.prompt())
        head = line.lstrip()
        if not head.startswith(BLOCK) or "\n" in line:
            return line
        rest = head[len(BLOCK):]
        if rest.rstrip().endswith(BLOCK):
            return rest.rstrip()[:-len(BLOCK)]
        parts = [rest] if rest.strip() else []
        while True:
            try:
                line = reader.read("... ")
            except EOFError:
                break
            if line.rstrip().endswith(BLOCK):
                parts.append(line.rstrip()[:-len(BLOCK)])
                break
            parts.append(line)
        return "\n".join(parts).strip("\n")

    def prompt(self) -> str:
        """The prompt: the model's name (one line, escaped: /model may have set anything)."""
        return escape_line(self.app.redact(self.model)) + "> "

    def remember(self, reader: Reader, entry: str) -> None:
        """Offer the entry to the history, unless it holds a token or password: the history
        file must never hold one."""
        if not any(secret in entry for secret in self.app.hidden()):
            reader.keep(entry)

    def handle(self, entry: str) -> bool:
        """Act on an entry: a slash command or a message. False: leave."""
        if entry.startswith("//"):
            self.turn(entry[1:])  # "//" sends a message starting with "/"
            return True
        if entry.startswith("/"):
            try:
                return self.command(entry)
            except InternCliError as err:
                self.report(err)
                return True
        self.turn(entry)
        return True

    # ------------------------------------------------------------------ turns

    def turn(self, text: str) -> None:
        """Send one user message and keep the reply: whole, or the part before a Ctrl-C. A
        failed turn is reported and leaves the conversation as it was."""
        from interncli.client import ChatRequest, build_chat_body

        user: Message = {"role": "user", "content": text}
        body = build_chat_body(ChatRequest(self.model, self.messages + [user], stream=True,
                                           thinking=self.thinking, api=self.app.settings.api))
        got: List[Optional[Message]] = []

        def cut(partial: Message) -> None:
            got.append(mark_cut(partial))

        try:
            self.send(body, got.append, cut)
        except InternCliError as err:
            self.report(err)
        except KeyboardInterrupt:
            if not self.interactive:
                raise
            self.say("reply stopped" + (": the part received is kept, marked " + CUT_MARK if got and got[0]
                                        else "; nothing had come, so the message was not kept"))
        finally:  # also when the reader of stdout has gone, or a script is interrupted
            self.record(user, got)

    def record(self, user: Message, got: List[Optional[Message]]) -> None:
        """Add the turn to the conversation and save it, if a reply (or part of one) came."""
        if not got or got[0] is None:
            return
        self.messages += [user, got[0]]
        self.save()

    def save(self) -> None:
        """Write the conversation to the --conversation file, if there is one."""
        if self.store is None:
            return
        try:
            written = conversation.save_messages(self.store, self.messages, expected=self.on_disk)
        except InternCliError as err:
            self.report(err)
            return
        except BaseException:
            # A Ctrl-C midway: the file holds the old conversation or, the rename done, this one.
            self.on_disk = self.on_disk + [conversation.as_saved(self.messages)]
            raise
        if written is None:
            # Another run (chat create --conversation, a second repl) added to the file since:
            # writing this conversation over it would destroy that turn, so it is left alone.
            store, self.store = self.store, None
            self.report(UsageError("conversation {} changed outside this session (another run?): this session's "
                                   "turns are no longer written to it".format(escape_line(store)),
                                   hint="/save FILE keeps this conversation in a file of its own."))
            return
        self.on_disk = [written]

    # ------------------------------------------------------------------ slash commands

    def command(self, entry: str) -> bool:
        """Run a slash command; False for /exit."""
        name, _, arg = entry.partition(" ")
        arg = arg.strip()
        if name in ("/exit", "/quit"):
            return False
        if name == "/help":
            self.show_help()
        elif name == "/save":
            self.save_as(arg)
        elif name == "/reset":
            self.reset()
        elif name == "/model":
            self.switch_model(arg)
        elif name == "/system":
            if arg:
                self.set_system(arg)
                self.say("system message set")
            else:
                current = self.system_message()
                self.say("system message: " + (escape_controls(current) if current is not None else "none"))
        elif name == "/thinking":
            self.switch_thinking(arg)
        else:
            raise UsageError("unknown command {}".format(name), hint="/help lists them; start a message "
                                                                     "with // to send one beginning with /.")
        return True

    def show_help(self) -> None:
        """The commands and keys, on stderr."""
        rows = [((name + " " + arg).strip(), text) for name, arg, text in SLASH_COMMANDS]
        rows.append(("//TEXT", "send a message that starts with /"))
        width = max(len(left) for left, _ in rows + list(KEYS))
        lines = ["Commands:"] + ["  {:<{}}  {}".format(left, width, text) for left, text in rows]
        lines += ["Keys:"] + ["  {:<{}}  {}".format(key, width, text) for key, text in KEYS]
        self.io.stderr.write("\n".join(lines) + "\n")
        self.io.stderr.flush()

    def save_as(self, path: str) -> None:
        """/save FILE: the conversation so far, written atomically."""
        if not path:
            raise UsageError("/save needs a file name", hint="For example: /save talk.json")
        path = os.path.expanduser(path)  # no shell expands it here
        written = conversation.save_messages(path, self.messages)
        if written is not None and self.store is not None and os.path.realpath(path) == os.path.realpath(self.store):
            self.on_disk = [written]  # the --conversation file itself: the next turn's save expects this
        self.say("saved {} message{} to {}".format(len(self.messages), "" if len(self.messages) == 1 else "s",
                                                   escape_line(path)))

    def reset(self) -> None:
        """/reset: a new conversation, keeping the system message. The --conversation file keeps
        the old one and is not written any more (/save names a file for the new one)."""
        system = self.system_message()
        self.messages = [{"role": "system", "content": system}] if system is not None else []
        note = ""
        if self.store is not None:
            note = "; {} keeps the old one and is no longer written (/save FILE keeps this one)".format(
                escape_line(self.store))
            self.store = None
        self.say("new conversation" + note)

    def switch_model(self, name: str) -> None:
        """/model NAME (no network: any name is taken; Tab offers the config's)."""
        if not name:
            self.say("model: " + escape_line(self.model))
            return
        config.check_printable(name, "/model")
        self.model = name
        self.say("model: " + name)

    def switch_thinking(self, arg: str) -> None:
        """/thinking on|off."""
        if not arg:
            self.say("thinking: " + ("on" if self.thinking else "off"))
            return
        if arg not in ("on", "off"):
            raise UsageError("/thinking takes on or off, not {!r}".format(arg), hint="For example: /thinking on")
        was = self.thinking
        self.thinking = arg == "on"
        try:
            self.check_thinking()
        except UsageError:
            self.thinking = was
            raise
        self.say("thinking: " + arg)

    def system_message(self) -> Optional[str]:
        """The text of the conversation's system message (the first message), if it has one."""
        if self.messages and self.messages[0].get("role") == "system":
            content = self.messages[0].get("content")
            return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        return None

    def set_system(self, text: str) -> None:
        """/system TEXT: refused in thinking mode where the server refuses it."""
        if self.thinking and self.app.settings.api == "intern":
            raise UsageError("a system message cannot be used in thinking mode",
                             hint="The service refuses system messages in thinking mode: /thinking off first.")
        self.place_system(text)

    def place_system(self, text: str) -> None:
        """Make ``text`` the system message: the first message, replaced or put first."""
        message = {"role": "system", "content": text}
        if self.messages and self.messages[0].get("role") == "system":
            self.messages[0] = message
        else:
            self.messages.insert(0, message)

    def check_thinking(self) -> None:
        """The official service refuses a system message in thinking mode (as chat create does)."""
        if self.thinking and self.app.settings.api == "intern" and any(
                m.get("role") == "system" for m in self.messages):
            raise UsageError("--thinking cannot be used with a system message",
                             hint="The service refuses system messages in thinking mode: drop one or the other.")

    # ------------------------------------------------------------------ telling the person

    def greet(self) -> None:
        """The first line on a terminal: the model, the conversation picked up, how to get help."""
        picked = ""
        if self.store is not None and self.loaded:
            picked = "; {} message{} from {}".format(self.loaded, "" if self.loaded == 1 else "s",
                                                     escape_line(self.store))
        self.say("chat with {}{}; /help for commands, Ctrl-D to leave".format(escape_line(self.model), picked))

    def say(self, text: str) -> None:
        """A line for the person on stderr (already escaped where it quotes anything untrusted),
        without any token: one pasted at the wrong place (/model, /system) is not shown back."""
        self.io.stderr.write(self.app.redact(text) + "\n")
        self.io.stderr.flush()

    def report(self, err: InternCliError) -> None:
        """An error on one line of stderr, its hint included, without any token; the session goes
        on. A script's exit code is the first error's (on a terminal, Ctrl-D leaves with 0)."""
        app = self.app
        message, hint = app.redact(err.message), app.redact(err.hint) if err.hint else None
        shown = InternCliError(message + (" (hint: {})".format(hint) if hint else ""),
                               code=app.redact_value(err.code))
        output.report_error(shown, self.io.stderr, color=self.io.color)
        if not self.interactive and not self.failure:
            self.failure = int(err.exit_code)


def open_reader(app: AppContext, session: Session) -> Reader:
    """The line editor on a terminal (prompt_toolkit, imported only then), else stdin's lines."""
    if not session.interactive:
        return LineReader(app.io.stdin)
    try:
        from interncli import lineedit
    except ImportError as exc:  # installed without its dependencies (pip --no-deps, a distro package)
        raise UsageError("chat repl needs prompt_toolkit on a terminal: {}".format(exc),
                         hint="Install it (pip install 'prompt_toolkit>=3.0.36'), or pipe the messages in: "
                              "printf 'hi\\n' | interncli chat repl") from None

    path = history_path(app.environ)
    broken: List[str] = []  # the history file failed once: said once, then not tried again

    def store(entry: str) -> None:
        if broken:
            return
        try:
            append_history(path, entry)
        except (OSError, InternCliError) as exc:
            broken.append(path)
            output.warn("the history file cannot be written, so this session's is not kept: {}".format(
                getattr(exc, "message", None) or exc), app.io)

    return lineedit.TerminalReader(app.io, load_history(path), store,
                                   lambda text: complete(text, session.models))
