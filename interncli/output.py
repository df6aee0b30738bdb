"""Rendering: replies as text (as the openai CLI prints them) or JSON, streamed or whole,
warnings, notices and errors on stderr. Every function writes to the streams of an IOStreams
and asks it, never ``sys`` or the environment, whether a stream is a terminal and colour is on.
What the server sent is escaped wherever a terminal would act on it: on stderr always, on stdout
when it is a terminal. Under ``--json`` (``io.json``) every stderr line is one JSON object:
``{"error": {...}}``, ``{"warning": TEXT}``, ``{"info": TEXT}``, ``{"notice": TEXT, "retry": N,
...}``, ``{"trace": LINE}``, ``{"traceback": TEXT}`` or ``{"problem": TEXT, "path": PATH, "line":
N}``. Never touches the network."""

from __future__ import annotations

import json
from typing import IO, TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Protocol

from interncli.client import ChoiceState, StreamAssembler, parse_arguments, split_markup
from interncli.errors import InternCliError
from interncli.safetext import escape_controls, escape_json_text, escape_line, replace_surrogates

if TYPE_CHECKING:
    from interncli.iostreams import IOStreams

DIM, RED, YELLOW, RESET = "\x1b[2m", "\x1b[31;1m", "\x1b[33m", "\x1b[0m"
# What a warning that quotes the server passes its text through: the command gives one that
# removes the token (a hostile server may echo it back, and stderr ends up in CI logs).
Redact = Callable[[str], str]


def _unchanged(text: str) -> str:
    return text


def escape_for_terminal(text: str, io: IOStreams) -> str:
    """Text from the server for stdout: escaped on a terminal, as received in a pipe (another
    program gets the bytes the model sent; a lone surrogate, which no UTF-8 can carry, as U+FFFD)."""
    return escape_controls(text) if io.stdout_tty else replace_surrogates(text)


def escape_line_for_terminal(text: str, io: IOStreams) -> str:
    """A server's value on one line of stdout (an id, a name): escaped to one line on a
    terminal, as received in a pipe (a lone surrogate as U+FFFD)."""
    return escape_line(text) if io.stdout_tty else replace_surrogates(text)


def header(index: Any, io: IOStreams, label: str = "Chat Completion") -> str:
    """The line before one choice of several, as the openai CLI prints it (``label``: "Completion"
    before the choices of a whole text completion)."""
    return "===== {} {} =====\n".format(label, escape_line_for_terminal(str(index), io))


def paint(text: str, code: str, color: bool) -> str:
    """``text`` in an ANSI colour when ``color`` is on."""
    return code + text + RESET if color else text


def write_diagnostic(obj: Dict[str, Any], err: IO[str]) -> None:
    """One JSON object as one stderr line (``--json``), DEL and C1 controls escaped."""
    err.write(escape_json_text(json.dumps(obj, ensure_ascii=False)) + "\n")
    err.flush()


def warn(message: str, io: IOStreams) -> None:
    """One warning on stderr: ``interncli: warning: ...`` (escaped: stderr may be a terminal),
    or ``{"warning": "..."}`` under --json."""
    if io.json:
        write_diagnostic({"warning": message}, io.stderr)
        return
    io.stderr.write(paint("interncli: warning:", YELLOW, io.color) + " " + escape_line(message) + "\n")
    io.stderr.flush()


def inform(message: str, io: IOStreams) -> None:
    """A message for the person on stderr: ``interncli: ...``, or ``{"info": "..."}`` under --json."""
    if io.json:
        write_diagnostic({"info": message}, io.stderr)
        return
    io.stderr.write("interncli: " + escape_line(message) + "\n")
    io.stderr.flush()


def progress(line: str, io: IOStreams) -> None:
    """A line of progress (a tool called, what it returned), already escaped by its maker, on
    stderr as it is, or ``{"info": "..."}`` under --json."""
    if io.json:
        write_diagnostic({"info": line}, io.stderr)
        return
    io.stderr.write(line + "\n")
    io.stderr.flush()


def retry_notice(code: Any, message: str, delay: float, number: int, max_retries: int, io: IOStreams) -> None:
    """Retry ``number`` of ``max_retries`` comes after ``delay`` seconds, for an error (its code
    and message, any token already removed): ``interncli: [CODE] message; retrying in 0.5s (1
    of 2)``, or under --json the same text as ``notice`` with the facts beside it:
    ``{"notice": "...", "retry": 1, "max_retries": 2, "delay": 0.5, "code": CODE, "message": "..."}``."""
    shown = "[{}] ".format(one_line(str(code))) if code is not None else ""
    text = "{}{}; retrying in {:.1f}s ({} of {})".format(shown, one_line(message), delay, number, max_retries)
    if io.json:
        write_diagnostic({"notice": text, "retry": number, "max_retries": max_retries, "delay": round(delay, 3),
                          "code": code, "message": one_line(message)}, io.stderr)
        return
    io.stderr.write("interncli: " + text + "\n")
    io.stderr.flush()


def trace(line: str, io: IOStreams) -> None:
    """A ``--verbose`` trace line (already redacted), escaped: it quotes the server's headers
    and body; ``{"trace": "..."}`` under --json."""
    if io.json:
        write_diagnostic({"trace": line}, io.stderr)
        return
    io.stderr.write(escape_controls(line) + "\n")
    io.stderr.flush()


def spec_problem(path: str, line: int, message: str, io: IOStreams) -> None:
    """One problem of a tools spec: ``SPEC:LINE: message``, or ``{"problem": ..., "path": ...,
    "line": N}`` under --json."""
    if io.json:
        write_diagnostic({"problem": message, "path": path, "line": line}, io.stderr)
        return
    io.stderr.write("{}:{}: {}\n".format(escape_line(path), line, escape_line(message)))
    io.stderr.flush()


def report_error(error: InternCliError, err: IO[str], as_json: bool = False, color: bool = False) -> None:
    """An error on stderr: ``interncli: error: [CODE] message`` and a hint, or one JSON line."""
    if as_json:
        shown = error.to_dict()
        shown["message"] = one_line(error.message)
        write_diagnostic({"error": shown}, err)
        return
    code = "[{}] ".format(one_line(str(error.code))) if error.code is not None else ""
    err.write(paint("interncli: error:", RED, color) + " " + code + one_line(error.message) + "\n")
    if error.hint:
        err.write("hint: " + one_line(error.hint) + "\n")
    err.flush()


MESSAGE_LIMIT = 400


def one_line(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """Text from elsewhere (a server's message) made one short line, with no control characters
    that could move the cursor or retitle the terminal."""
    # Made a line from the start, a few times the limit at a time: the line from a prefix is
    # the start of the whole one (its last word may go on), so once it is longer than the limit
    # the rest is not needed (a server's page of a megabyte took 0.1 s, a character at a time).
    end = 0
    while True:
        end = max(4 * limit, 2 * end, 256)
        piece = text[:end]
        if not piece.isprintable():
            piece = "".join(c if c.isprintable() else " " for c in piece)
        line = " ".join(piece.split())
        if len(line) > limit:
            return line[:limit] + "…"
        if end >= len(text):
            return line


def write_json(obj: Any, out: IO[str], pretty: bool = True) -> None:
    """One JSON document (or one JSONL line when not ``pretty``), with DEL and C1 controls
    escaped (json.dumps leaves them raw), so that ``cat`` to a terminal is safe; same value."""
    out.write(escape_json_text(json.dumps(obj, ensure_ascii=False, indent=2 if pretty else None)) + "\n")
    out.flush()


def tool_call_line(call: Dict[str, Any], io: IOStreams) -> str:
    """``tool_call {id} {name} {arguments as JSON}``; on a terminal the id and name are escaped
    to one line. The arguments are JSON, their DEL and C1 controls escaped as ``--json`` does;
    arguments that do not parse are the text received as a JSON string, so that the field stays
    JSON (write_tool_calls warns of them)."""
    function = call.get("function") or {}
    arguments = escape_json_text(json.dumps(parse_arguments(function.get("arguments", "")), ensure_ascii=False))
    return "tool_call {} {} {}\n".format(escape_line_for_terminal(str(call.get("id", "")), io),
                                         escape_line_for_terminal(str(function.get("name", "")), io), arguments)


def _unparsable(arguments: Any) -> bool:
    """Arguments text that is neither JSON nor the Python-literal form (LMDeploy 0.10's streamed
    calls lose their closing ``"}``)."""
    return isinstance(arguments, str) and bool(arguments.strip()) and isinstance(parse_arguments(arguments), str)


def write_tool_calls(calls: Iterable[Dict[str, Any]], io: IOStreams) -> None:
    """One ``tool_call`` line per call on stdout; a warning for arguments that do not parse."""
    for call in calls:
        io.stdout.write(tool_call_line(call, io))
        if _unparsable((call.get("function") or {}).get("arguments")):
            io.stdout.flush()
            warn("the arguments of tool call {} are not valid JSON; shown as the text received".format(
                (call.get("function") or {}).get("name") or "?"), io)


def warn_if_cut(finish_reason: Optional[str], label: str, io: IOStreams, thinking: bool = False) -> None:
    """Warn when a reply was cut at max_tokens; ``thinking``: before its answer began."""
    if finish_reason == "length":
        warn("the reply{} was cut at max_tokens (finish_reason: length){}".format(
            label, "; the model was still reasoning and gave no answer" if thinking else ""), io)


def warn_if_empty(finish_reason: Optional[str], content: Optional[str], reasoning: Optional[str], calls: bool,
                  label: str, io: IOStreams) -> None:
    """Warn about a reply that ended normally with nothing in it: LMDeploy 0.6.0's silent engine
    failure. Exit 0 all the same: the server said it finished, and an empty answer is a valid one."""
    if finish_reason in ("stop", None, "") and not content and not reasoning and not calls:
        warn("the server returned an empty reply{} (it may have failed; see its log)".format(label), io)


def warn_if_fewer(got: int, asked: Optional[int], io: IOStreams) -> None:
    """Warn when the server returned fewer choices than -n asked for (LMDeploy before 0.17 ignores n)."""
    if asked and got < asked:
        warn("the server returned {} choice{}; {} were asked for".format(got, "" if got == 1 else "s", asked), io)


THINK_TAG = "<think>"


def mention_inline_thinking(content: Optional[str], reasoning: Optional[str], io: IOStreams) -> None:
    """With --show-reasoning: say, once, that the server sent the thinking inside the answer."""
    if content and not reasoning and THINK_TAG in content:
        inform("the server sends the model's thinking inside the answer (<think>...</think>), so it cannot be "
               "shown apart: an LMDeploy server needs --reasoning-parser for that", io)


def warn_if_flagged(obj: Dict[str, Any], io: IOStreams, redact: Redact = _unchanged) -> bool:
    """Warn when the service flagged the content; True if it did."""
    moderation = obj.get("moderation")
    if isinstance(moderation, dict) and _truthy(moderation.get("sensitive")):
        warn(redact("the service flagged this reply as sensitive (category: {})".format(
            moderation.get("category") or "unspecified")), io)
        return True
    return False


def _truthy(value: Any) -> bool:
    """A flag that may come as a boolean or as text ("true"/"false"): "false" is not flagged."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def show_reasoning(text: str, io: IOStreams) -> None:
    """Reasoning text on stderr, dimmed on a terminal; escaped, so that the model cannot undo
    the dimming or send the terminal anything else."""
    if text:
        io.stderr.write(paint(escape_controls(text), DIM, io.color))
        io.stderr.flush()


def write_completion(reply: Dict[str, Any], io: IOStreams, reasoning: bool = False) -> None:
    """A whole reply as text, exactly as the openai CLI prints it, then any tool calls."""
    out = io.stdout
    choices = reply.get("choices") or []
    many = len(choices) > 1
    for choice in choices:
        message = choice.get("message") or {}
        if reasoning and message.get("reasoning_content"):
            show_reasoning(message["reasoning_content"].rstrip("\n") + "\n", io)
        if many:
            out.write(header(choice.get("index", 0), io))
        # A null content is no text (the openai CLI prints "None"; LMDeploy 0.13+ send null for
        # an empty reply). A lone empty reply prints nothing: warn_about_reply says it is empty.
        text = message.get("content") or ""
        calls = message.get("tool_calls") or []
        if text or (many and not calls):
            out.write(escape_for_terminal(text, io))
            if many or not text.endswith("\n"):
                out.write("\n")
        write_tool_calls(calls, io)
        out.flush()


def warn_about_reply(reply: Dict[str, Any], io: IOStreams, redact: Redact = _unchanged) -> None:
    """The warnings a whole reply calls for: cut at max_tokens, flagged by moderation."""
    choices = reply.get("choices") or []
    for choice in choices:
        label = " {}".format(choice.get("index", 0)) if len(choices) > 1 else ""
        message = choice.get("message") or {}
        warn_if_cut(choice.get("finish_reason"), label, io,
                    thinking=bool(message.get("reasoning_content")) and not message.get("content"))
        warn_if_empty(choice.get("finish_reason"), message.get("content"), message.get("reasoning_content"),
                      bool(message.get("tool_calls")), label, io)
    warn_if_flagged(reply, io, redact)


def write_text_completion(reply: Dict[str, Any], io: IOStreams) -> None:
    """A whole text completion (its client.text_view) as openai 2.34.0's CLI prints it: one
    choice, its text and a newline if it does not end with one; several, in the order received,
    each under ``===== Completion {index} =====`` and followed by a newline."""
    out = io.stdout
    choices = reply.get("choices") or []
    many = len(choices) > 1
    for choice in choices:
        # A null text is no text (that CLI fails on it with a traceback).
        text = (choice.get("message") or {}).get("content") or ""
        if many:
            out.write(header(choice.get("index", 0), io, "Completion"))
        out.write(escape_for_terminal(text, io))
        if many or not text.endswith("\n"):
            out.write("\n")
    out.flush()


# The keys openai's Model type declares, first in its JSON and null when the server sends none.
MODEL_KEYS = ("id", "created", "object", "owned_by")


def write_model(model: Dict[str, Any], io: IOStreams) -> None:
    """One model as openai 2.34.0's CLI prints it: a JSON object indented by 2, the keys of
    MODEL_KEYS first, then the server's others in the order received (DEL and C1 controls
    escaped, as ``--json`` does: the same JSON value)."""
    shown = {key: model.get(key) for key in MODEL_KEYS}
    shown.update((key, value) for key, value in model.items() if key not in shown)
    write_json(shown, io.stdout)


class StreamPrinter(Protocol):
    """What prints a streamed reply: each chunk as it comes, the end, or a failure midway.
    ``started``: something of the reply has been shown, so a retry would repeat it."""

    started: bool

    def show(self, chunk: Dict[str, Any], assembler: StreamAssembler) -> None:
        """Print what one chunk adds (the assembler has already taken it in)."""

    def finish(self, assembler: StreamAssembler) -> None:
        """The stream ended: print what only its end can tell."""

    def abort(self) -> None:
        """The stream failed after some of it was shown: leave the terminal ready for the error."""


class TextStreamPrinter:
    """Prints a streamed reply as it arrives: with n=1 each piece at once, flushed; with n>1
    each choice, under its header, when it finishes (the openai CLI interleaves them)."""

    def __init__(self, io: IOStreams, n: int = 1, reasoning: bool = False, redact: Redact = _unchanged) -> None:
        self.io = io
        self.out = io.stdout
        self.err = io.stderr
        self.redact = redact
        self.live = n <= 1
        self.reasoning = reasoning
        self.started = False
        self._printed: set = set()
        self._in_reasoning = False
        self._open_line = False  # the text printed so far does not end with a newline
        self._flagged = False
        self._wrote = False  # some text of the reply has been printed
        # Content from tool markup on (LMDeploy 0.7-0.12 stream it before the call), and an end
        # that may start such markup: printed at the end only if no tool call came.
        self._held: List[str] = []
        self._pending = ""

    def show(self, chunk: Dict[str, Any], assembler: StreamAssembler) -> None:
        """Print what one chunk adds (the assembler has already taken it in)."""
        if not self._flagged:
            self._flagged = warn_if_flagged(chunk, self.io, self.redact)
        for choice in chunk.get("choices") or []:
            index = choice.get("index", 0)
            if self.live:
                self._show_live(choice.get("delta") or {})
            elif choice.get("finish_reason") and index not in self._printed:
                self._print_choice(index, assembler)

    def finish(self, assembler: StreamAssembler) -> None:
        """End of stream: the final newline, tool calls, and choices not yet printed."""
        if self.live:
            self._end_reasoning()
            state = assembler.choice(0)
            calls = assembler.message(0).get("tool_calls", [])
            if not calls:  # held back as possible tool markup, but no call came: it was text
                self._write("".join(self._held) + self._pending)
            if self._wrote:
                self.out.write("\n")  # as the openai CLI ends every stream (an empty one: warned of)
            write_tool_calls(calls, self.io)
            self.out.flush()
            self.started = True
            warn_if_stream_ended(state, bool(calls), "", self.io)
            return
        for index in sorted(assembler.choices):
            if index not in self._printed:
                self._print_choice(index, assembler)

    def _show_live(self, delta: Dict[str, Any]) -> None:
        if self.reasoning and delta.get("reasoning_content"):
            self._in_reasoning = True
            self.started = True
            show_reasoning(delta["reasoning_content"], self.io)
        if delta.get("content"):
            self._end_reasoning()
            if self._held:  # tool markup began: the rest waits for the end (a call, or text after all)
                self._held.append(delta["content"])
                return
            shown, self._pending, markup = split_markup(self._pending + delta["content"])
            if markup:
                self._held.append(self._pending)
                self._pending = ""
            self._write(shown)

    def _write(self, text: str) -> None:
        if text:
            self.started = True
            self.out.write(escape_for_terminal(text, self.io))
            self.out.flush()
            self._wrote = True
            self._open_line = not text.endswith("\n")

    def abort(self) -> None:
        """The stream failed after some of it was shown: end the open reasoning line, and on a
        terminal the open line of text, so that the error starts a line of its own (into a pipe
        the text stays as received)."""
        self._end_reasoning()
        if self.live and self._open_line and self.io.stdout_tty:
            self._open_line = False
            self.out.write("\n")
            self.out.flush()

    def _end_reasoning(self) -> None:
        if self._in_reasoning:
            self._in_reasoning = False
            self.err.write("\n")
            self.err.flush()

    def _print_choice(self, index: int, assembler: StreamAssembler) -> None:
        self._printed.add(index)
        self.started = True
        state = assembler.choice(index)
        if self.reasoning and state.reasoning:
            show_reasoning(state.reasoning.rstrip("\n") + "\n", self.io)
        # The message, not the raw text: beside a tool call, LMDeploy 0.7-0.12's leaked markup is
        # no part of the answer (as with n = 1, and as the conversation keeps it).
        message = assembler.message(index)
        self.out.write(header(index, self.io))
        self.out.write(escape_for_terminal(message["content"], self.io) + "\n")
        calls = message.get("tool_calls", [])
        write_tool_calls(calls, self.io)
        self.out.flush()
        warn_if_stream_ended(state, bool(calls), " {}".format(index), self.io)


class JsonStreamPrinter:
    """Prints each chunk as one JSON line, as received."""

    def __init__(self, io: IOStreams, redact: Redact = _unchanged) -> None:
        self.io = io
        self.redact = redact
        self.started = False
        self._flagged = False

    def show(self, chunk: Dict[str, Any], assembler: StreamAssembler) -> None:
        """One JSONL line for the chunk."""
        self.started = True
        write_json(chunk, self.io.stdout, pretty=False)
        if not self._flagged:
            self._flagged = warn_if_flagged(chunk, self.io, self.redact)

    def abort(self) -> None:
        """The stream failed: every line printed is whole already."""

    def finish(self, assembler: StreamAssembler) -> None:
        """Warnings that only the end of the stream can tell."""
        many = len(assembler.choices) > 1
        for index, state in sorted(assembler.choices.items()):
            warn_if_stream_ended(state, bool(assembler.message(index).get("tool_calls")),
                                 " {}".format(index) if many else "", self.io)


class TextCompletionPrinter:
    """Prints a streamed text completion (its chunks as client.text_view shows them) as openai
    2.34.0's CLI does: each chunk's text at once, flushed; a chunk that holds several choices,
    each by index under ``===== Chat Completion {index} =====`` (that CLI's spelling) and
    followed by a newline; at the end one newline."""

    def __init__(self, io: IOStreams) -> None:
        self.io = io
        self.out = io.stdout
        self.started = False
        self._open_line = False  # the text printed so far does not end with a newline

    def show(self, chunk: Dict[str, Any], assembler: StreamAssembler) -> None:
        """Print the text one chunk adds."""
        choices = sorted(chunk.get("choices") or [], key=lambda c: c.get("index", 0))
        many = len(choices) > 1
        for choice in choices:
            text = (choice.get("delta") or {}).get("content") or ""
            if many:
                self._write(header(choice.get("index", 0), self.io) + escape_for_terminal(text, self.io) + "\n")
            elif text:
                self._write(escape_for_terminal(text, self.io))
        self.out.flush()

    def _write(self, text: str) -> None:
        self.started = True
        self.out.write(text)
        self._open_line = not text.endswith("\n")

    def finish(self, assembler: StreamAssembler) -> None:
        """The final newline, then the warnings the end of each choice calls for."""
        self.out.write("\n")
        self.out.flush()
        self.started = True
        many = len(assembler.choices) > 1
        for index, state in sorted(assembler.choices.items()):
            warn_if_stream_ended(state, False, " {}".format(index) if many else "", self.io)

    def abort(self) -> None:
        """The stream failed after some text was shown: on a terminal end its open line, so that
        the error starts a line of its own (into a pipe the text stays as received)."""
        if self._open_line and self.io.stdout_tty:
            self._open_line = False
            self.out.write("\n")
            self.out.flush()


def warn_if_stream_ended(state: ChoiceState, calls: bool, label: str, io: IOStreams) -> None:
    """The warnings the end of one streamed choice calls for: nameless tool calls left out, cut
    at max_tokens, empty."""
    if state.nameless_calls:
        warn("the reply{} has {} tool call{} without a name; left out".format(
            label, state.nameless_calls, "" if state.nameless_calls == 1 else "s"), io)
    warn_if_cut(state.finish_reason, label, io, thinking=bool(state.reasoning) and not state.content)
    warn_if_empty(state.finish_reason, state.content, state.reasoning, calls, label, io)


USAGE_COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")


def usage_counts(usage: Any) -> Dict[str, int]:
    """The token counts of a reply's ``usage`` that are whole numbers: prompt, completion and
    total, then ``reasoning_tokens`` when the server reports them (LMDeploy 0.16+)."""
    if not isinstance(usage, dict):
        return {}
    counts = {key: usage[key] for key in USAGE_COUNTS if type(usage.get(key)) is int}
    details = usage.get("completion_tokens_details")
    if counts and isinstance(details, dict) and type(details.get("reasoning_tokens")) is int:
        counts["reasoning_tokens"] = details["reasoning_tokens"]
    return counts


def write_usage(usage: Any, io: IOStreams) -> None:
    """-u: one line on stderr, ``interncli: usage: prompt_tokens=9 completion_tokens=12
    total_tokens=21``, or ``{"usage": {...}}`` under --json; a warning when the server sent none."""
    counts = usage_counts(usage)
    if not counts:
        warn("the server sent no token usage", io)
        return
    if io.json:
        write_diagnostic({"usage": counts}, io.stderr)
        return
    io.stderr.write("interncli: usage: " + " ".join("{}={}".format(k, v) for k, v in counts.items()) + "\n")
    io.stderr.flush()


def write_lines(lines: Iterable[str], io: IOStreams) -> None:
    """Lines of text from the server, one per line: on a terminal each escaped to one line."""
    for line in lines:
        io.stdout.write(escape_line_for_terminal(line, io) + "\n")
    io.stdout.flush()


def describe_request(method: str, url: str, headers: Dict[str, str], body: Optional[Dict[str, Any]],
                     out: IO[str], as_json: bool) -> None:
    """The request a ``--dry-run`` would send (headers already redacted)."""
    if as_json:
        write_json({"method": method, "url": url, "headers": headers, "body": body}, out)
        return
    out.write("{} {}\n".format(method, url))
    for key, value in headers.items():
        out.write("{}: {}\n".format(key, value))
    if body is not None:
        out.write("\n" + escape_json_text(json.dumps(body, ensure_ascii=False, indent=2)) + "\n")
    out.flush()
