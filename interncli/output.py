"""Rendering: replies as text (as the openai CLI prints them) or JSON, streamed or whole,
warnings and errors on stderr. What the server sent is escaped wherever a terminal would act on
it: on stderr always, on stdout when it is a terminal. Never touches the network."""

from __future__ import annotations

import json
import os
from typing import IO, Any, Callable, Dict, Iterable, Optional

from interncli.client import StreamAssembler, parse_arguments
from interncli.errors import InternCliError
from interncli.safetext import escape_controls, escape_json_text, escape_line, replace_surrogates

DIM, RED, YELLOW, RESET = "\x1b[2m", "\x1b[31;1m", "\x1b[33m", "\x1b[0m"
# What a warning that quotes the server passes its text through: the command gives one that
# removes the token (a hostile server may echo it back, and stderr ends up in CI logs).
Redact = Callable[[str], str]


def _unchanged(text: str) -> str:
    return text


def use_color(stream: IO[str]) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set."""
    return "NO_COLOR" not in os.environ and is_terminal(stream)


def is_terminal(stream: IO[str]) -> bool:
    """Whether ``stream`` is a terminal, which would act on escape sequences written to it."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def for_stdout(text: str, out: IO[str]) -> str:
    """Text from the server for stdout: escaped on a terminal, as received in a pipe (another
    program gets the bytes the model sent; a lone surrogate, which no UTF-8 can carry, as U+FFFD)."""
    return escape_controls(text) if is_terminal(out) else replace_surrogates(text)


def line_for_stdout(text: str, out: IO[str]) -> str:
    """A server's value on one line of stdout (an id, a name): escaped to one line on a
    terminal, as received in a pipe (a lone surrogate as U+FFFD)."""
    return escape_line(text) if is_terminal(out) else replace_surrogates(text)


def header(index: Any, out: IO[str]) -> str:
    """The line before one choice of several, as the openai CLI prints it."""
    return "===== Chat Completion {} =====\n".format(line_for_stdout(str(index), out))


def paint(text: str, code: str, stream: IO[str]) -> str:
    """``text`` in an ANSI colour when ``stream`` takes colour."""
    return code + text + RESET if use_color(stream) else text


def warn(message: str, err: IO[str]) -> None:
    """One warning line on stderr (a terminal, maybe: its text is escaped)."""
    err.write(paint("interncli: warning:", YELLOW, err) + " " + escape_line(message) + "\n")
    err.flush()


def report_error(error: InternCliError, err: IO[str], as_json: bool = False) -> None:
    """An error on stderr: ``interncli: error: [CODE] message`` and a hint, or one JSON line."""
    if as_json:
        shown = error.to_dict()
        shown["message"] = one_line(error.message)
        err.write(escape_json_text(json.dumps({"error": shown}, ensure_ascii=False)) + "\n")
    else:
        code = "[{}] ".format(one_line(str(error.code))) if error.code is not None else ""
        err.write(paint("interncli: error:", RED, err) + " " + code + one_line(error.message) + "\n")
        if error.hint:
            err.write("hint: " + one_line(error.hint) + "\n")
    err.flush()


MESSAGE_LIMIT = 400


def one_line(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """Text from elsewhere (a server's message) made one short line, with no control characters
    that could move the cursor or retitle the terminal."""
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return text if len(text) <= limit else text[:limit] + "…"


def write_json(obj: Any, out: IO[str], pretty: bool = True) -> None:
    """One JSON document (or one JSONL line when not ``pretty``), with DEL and C1 controls
    escaped (json.dumps leaves them raw), so that ``cat`` to a terminal is safe; same value."""
    out.write(escape_json_text(json.dumps(obj, ensure_ascii=False, indent=2 if pretty else None)) + "\n")
    out.flush()


def tool_call_line(call: Dict[str, Any], out: IO[str]) -> str:
    """``tool_call {id} {name} {arguments as JSON}``; on a terminal the id and name are escaped
    to one line. The arguments are JSON, their DEL and C1 controls escaped as ``--json`` does."""
    function = call.get("function") or {}
    arguments = escape_json_text(json.dumps(parse_arguments(function.get("arguments", "")), ensure_ascii=False))
    return "tool_call {} {} {}\n".format(line_for_stdout(str(call.get("id", "")), out),
                                         line_for_stdout(str(function.get("name", "")), out), arguments)


def length_note(finish_reason: Optional[str], label: str, err: IO[str]) -> None:
    """Warn when a reply was cut at max_tokens."""
    if finish_reason == "length":
        warn("the reply{} was cut at max_tokens (finish_reason: length)".format(label), err)


def moderation_note(obj: Dict[str, Any], err: IO[str], redact: Redact = _unchanged) -> bool:
    """Warn when the service flagged the content; True if it did."""
    moderation = obj.get("moderation")
    if isinstance(moderation, dict) and moderation.get("sensitive"):
        warn(redact("the service flagged this reply as sensitive (category: {})".format(
            moderation.get("category") or "unspecified")), err)
        return True
    return False


def show_reasoning(text: str, err: IO[str]) -> None:
    """Reasoning text on stderr, dimmed on a terminal; escaped, so that the model cannot undo
    the dimming or send the terminal anything else."""
    if text:
        err.write(paint(escape_controls(text), DIM, err))
        err.flush()


def write_completion(reply: Dict[str, Any], out: IO[str], err: IO[str], reasoning: bool = False) -> None:
    """A whole reply as text, exactly as the openai CLI prints it, then any tool calls."""
    choices = reply.get("choices") or []
    many = len(choices) > 1
    for choice in choices:
        message = choice.get("message") or {}
        if reasoning and message.get("reasoning_content"):
            show_reasoning(message["reasoning_content"].rstrip("\n") + "\n", err)
        if many:
            out.write(header(choice.get("index", 0), out))
        content = message.get("content")
        calls = message.get("tool_calls") or []
        if content is not None or not calls:
            text = "None" if content is None else content  # as the openai CLI prints a null content
            out.write(for_stdout(text, out))
            if many or not text.endswith("\n"):
                out.write("\n")
        for call in calls:
            out.write(tool_call_line(call, out))
        out.flush()


def reply_notes(reply: Dict[str, Any], err: IO[str], redact: Redact = _unchanged) -> None:
    """The warnings a whole reply calls for: cut at max_tokens, flagged by moderation."""
    choices = reply.get("choices") or []
    for choice in choices:
        length_note(choice.get("finish_reason"), " {}".format(choice.get("index", 0)) if len(choices) > 1 else "",
                    err)
    moderation_note(reply, err, redact)


class TextStreamPrinter:
    """Prints a streamed reply as it arrives: with n=1 each piece at once, flushed; with n>1
    each choice, under its header, when it finishes (the openai CLI interleaves them)."""

    def __init__(self, out: IO[str], err: IO[str], n: int = 1, reasoning: bool = False,
                 redact: Redact = _unchanged) -> None:
        self.out, self.err, self.redact = out, err, redact
        self.live = n <= 1
        self.reasoning = reasoning
        self.started = False
        self._printed: set = set()
        self._in_reasoning = False
        self._open_line = False  # the text printed so far does not end with a newline
        self._flagged = False

    def show(self, chunk: Dict[str, Any], assembler: StreamAssembler) -> None:
        """Print what one chunk adds (the assembler has already taken it in)."""
        if not self._flagged:
            self._flagged = moderation_note(chunk, self.err, self.redact)
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
            if state.content or not calls:
                self.out.write("\n")  # as the openai CLI ends every stream
            for call in calls:
                self.out.write(tool_call_line(call, self.out))
            self.out.flush()
            self.started = True
            length_note(state.finish_reason, "", self.err)
            return
        for index in sorted(assembler.choices):
            if index not in self._printed:
                self._print_choice(index, assembler)

    def _show_live(self, delta: Dict[str, Any]) -> None:
        if self.reasoning and delta.get("reasoning_content"):
            self._in_reasoning = True
            self.started = True
            show_reasoning(delta["reasoning_content"], self.err)
        if delta.get("content"):
            self._end_reasoning()
            self.started = True
            self.out.write(for_stdout(delta["content"], self.out))
            self.out.flush()
            self._open_line = not delta["content"].endswith("\n")

    def abort(self) -> None:
        """The stream failed after some of it was shown: end the open reasoning line, and on a
        terminal the open line of text, so that the error starts a line of its own (into a pipe
        the text stays as received)."""
        self._end_reasoning()
        if self.live and self._open_line and is_terminal(self.out):
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
            show_reasoning(state.reasoning.rstrip("\n") + "\n", self.err)
        self.out.write(header(index, self.out))
        self.out.write(for_stdout(state.content, self.out) + "\n")
        for call in assembler.message(index).get("tool_calls", []):
            self.out.write(tool_call_line(call, self.out))
        self.out.flush()
        length_note(state.finish_reason, " {}".format(index), self.err)


class JsonStreamPrinter:
    """Prints each chunk as one JSON line, as received."""

    def __init__(self, out: IO[str], err: IO[str], redact: Redact = _unchanged) -> None:
        self.out, self.err, self.redact = out, err, redact
        self.started = False
        self._flagged = False

    def show(self, chunk: Dict[str, Any], assembler: StreamAssembler) -> None:
        """One JSONL line for the chunk."""
        self.started = True
        write_json(chunk, self.out, pretty=False)
        if not self._flagged:
            self._flagged = moderation_note(chunk, self.err, self.redact)

    def abort(self) -> None:
        """The stream failed: every line printed is whole already."""

    def finish(self, assembler: StreamAssembler) -> None:
        """Warnings that only the end of the stream can tell."""
        many = len(assembler.choices) > 1
        for index, state in sorted(assembler.choices.items()):
            length_note(state.finish_reason, " {}".format(index) if many else "", self.err)


def write_lines(lines: Iterable[str], out: IO[str]) -> None:
    """Lines of text from the server, one per line: on a terminal each escaped to one line."""
    for line in lines:
        out.write(line_for_stdout(line, out) + "\n")
    out.flush()


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
