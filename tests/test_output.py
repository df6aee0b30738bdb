"""Unit tests of interncli.output on fake streams (tests/fakeio.py): escaping by terminal-ness,
colour and NO_COLOR, errors and warnings as text and as JSON, the JSON writer, tool-call lines,
whole replies and the two stream printers."""

from __future__ import annotations

import io
import json
import random
from typing import Any, Dict, List

from interncli import output
from interncli.client import StreamAssembler
from interncli.errors import RateLimitError, ServerError, UsageError
from interncli.iostreams import IOStreams
from tests.fakeio import FakeStream, fake_io, terminal_io

HOSTILE = "A\x1b]0;title\x07B\x9b31mC"
ESCAPED = "A\\x1b]0;title\\x07B\\x9b31mC"
DIM, YELLOW, RED, RESET = "\x1b[2m", "\x1b[33m", "\x1b[31;1m", "\x1b[0m"


def out(streams: IOStreams) -> str:
    assert isinstance(streams.stdout, FakeStream)
    return streams.stdout.getvalue()


def err(streams: IOStreams) -> str:
    assert isinstance(streams.stderr, FakeStream)
    return streams.stderr.getvalue()


def json_lines(text: str) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def chunk(content: str = "", reasoning: str = "", index: int = 0, finish: Any = None) -> Dict[str, Any]:
    delta: Dict[str, Any] = {}
    if content:
        delta["content"] = content
    if reasoning:
        delta["reasoning_content"] = reasoning
    return {"choices": [{"index": index, "delta": delta, "finish_reason": finish}]}


def feed(printer: Any, chunks: List[Dict[str, Any]]) -> StreamAssembler:
    assembler = StreamAssembler()
    for piece in chunks:
        assembler.add(piece)
        printer.show(piece, assembler)
    return assembler


# ------------------------------------------------------------------ escaping by terminal-ness


def test_server_text_is_escaped_for_a_terminal_and_raw_for_a_pipe():
    assert output.escape_for_terminal(HOSTILE, terminal_io()) == ESCAPED
    assert output.escape_for_terminal(HOSTILE, fake_io()) == HOSTILE


def test_a_lone_surrogate_becomes_a_replacement_character_in_a_pipe():
    assert output.escape_for_terminal("a\udc80b", fake_io()) == "a\ufffdb"
    assert output.escape_line_for_terminal("a\udc80b", fake_io()) == "a\ufffdb"


def test_a_line_value_is_kept_on_one_line_on_a_terminal_only():
    assert output.escape_line_for_terminal("id\nnext", terminal_io()) == "id\\x0anext"
    assert output.escape_line_for_terminal("id\nnext", fake_io()) == "id\nnext"


def test_write_lines_escapes_each_line_on_a_terminal():
    streams = terminal_io()
    output.write_lines(["m1", "m\x1b[2J2"], streams)
    assert out(streams) == "m1\nm\\x1b[2J2\n"
    piped = fake_io()
    output.write_lines(["m1", "m\x1b[2J2"], piped)
    assert out(piped) == "m1\nm\x1b[2J2\n"


# ------------------------------------------------------------------ colour


def test_warnings_are_yellow_on_a_terminal():
    streams = terminal_io()
    output.warn("careful", streams)
    assert err(streams) == YELLOW + "interncli: warning:" + RESET + " careful\n"


def test_no_color_turns_colour_off_whatever_its_value():
    for value in ("1", ""):
        streams = terminal_io(environ={"NO_COLOR": value})
        output.warn("careful", streams)
        output.show_reasoning("thinking", streams)
        assert err(streams) == "interncli: warning: careful\nthinking"


def test_no_colour_into_a_pipe():
    streams = fake_io(stdout_tty=True)  # stdout a terminal, stderr a pipe: stderr gets no colour
    output.warn("careful", streams)
    output.show_reasoning("thinking", streams)
    assert err(streams) == "interncli: warning: careful\nthinking"


def test_reasoning_is_dimmed_on_a_terminal_and_escaped_inside():
    streams = terminal_io()
    output.show_reasoning(HOSTILE, streams)
    assert err(streams) == DIM + ESCAPED + RESET


def test_reasoning_into_a_pipe_is_escaped_but_not_dimmed():
    streams = fake_io()
    output.show_reasoning(HOSTILE, streams)
    assert err(streams) == ESCAPED


# ------------------------------------------------------------------ errors


def test_report_error_as_text_with_code_and_hint():
    stream = io.StringIO()
    output.report_error(RateLimitError("too many\nrequests", code="A0211", hint="Wait."), stream)
    assert stream.getvalue() == "interncli: error: [A0211] too many requests\nhint: Wait.\n"


def test_report_error_in_red_when_colour_is_on():
    stream = io.StringIO()
    output.report_error(UsageError("bad", hint="Fix it."), stream, color=True)
    assert stream.getvalue() == RED + "interncli: error:" + RESET + " bad\nhint: Fix it.\n"


def test_report_error_as_one_json_line():
    stream = io.StringIO()
    output.report_error(ServerError("broke\x9b here\n" + "x" * 500, code=500, http_status=500), stream,
                        as_json=True)
    (line,) = stream.getvalue().splitlines()
    assert "\x9b" not in line
    shown = json.loads(line)["error"]
    assert shown["code"] == 500 and shown["http_status"] == 500 and shown["exit_code"] == 1
    assert shown["message"].startswith("broke") and "\n" not in shown["message"] and shown["message"].endswith("…")


# ------------------------------------------------------------------ warnings, notices, traces


def test_warn_escapes_what_it_quotes():
    streams = fake_io()
    output.warn("category " + HOSTILE, streams)
    assert err(streams) == "interncli: warning: category " + ESCAPED + "\n"


def test_under_json_each_diagnostic_is_one_json_object():
    streams = terminal_io()
    streams.json = True
    output.warn("careful " + HOSTILE, streams)
    output.inform("stored", streams)
    output.progress("→ f {}", streams)
    output.trace("> GET /models", streams)
    output.spec_problem("spec.yaml", 3, "bad", streams)
    output.retry_notice(500, "failed", 0.5, 1, 2, streams)
    lines = json_lines(err(streams))
    assert lines[:5] == [{"warning": "careful " + HOSTILE}, {"info": "stored"}, {"info": "→ f {}"},
                         {"trace": "> GET /models"}, {"problem": "bad", "path": "spec.yaml", "line": 3}]
    assert lines[5] == {"notice": "[500] failed; retrying in 0.5s (1 of 2)", "retry": 1, "max_retries": 2,
                        "delay": 0.5, "code": 500, "message": "failed"}
    assert "\x1b" not in err(streams) and "\x9b" not in err(streams)  # no colour, controls escaped


def test_retry_notice_as_text():
    streams = fake_io()
    output.retry_notice(None, "cannot reach\nthe host", 1.25, 2, 3, streams)
    output.retry_notice("E1", "busy", 0.5, 3, 3, streams)
    assert err(streams) == ("interncli: cannot reach the host; retrying in 1.2s (2 of 3)\n"
                            "interncli: [E1] busy; retrying in 0.5s (3 of 3)\n")


def test_a_trace_line_is_escaped():
    streams = fake_io()
    output.trace("< " + HOSTILE, streams)
    assert err(streams) == "< " + ESCAPED + "\n"


def test_inform_and_spec_problems_as_text():
    streams = fake_io()
    output.inform("token stored\x1b[2J", streams)
    output.spec_problem("s.yaml", 7, "no\nname", streams)
    assert err(streams) == "interncli: token stored\\x1b[2J\ns.yaml:7: no\\x0aname\n"


def test_length_and_moderation_notes():
    streams = fake_io()
    reply = {"choices": [{"index": 0, "finish_reason": "length"}, {"index": 1, "finish_reason": "stop",
                                                                      "message": {"content": "x"}}],
             "moderation": {"sensitive": True, "category": "secret-abc"}}
    output.warn_about_reply(reply, streams, redact=lambda text: text.replace("secret-abc", "***"))
    assert err(streams) == ("interncli: warning: the reply 0 was cut at max_tokens (finish_reason: length)\n"
                            "interncli: warning: the service flagged this reply as sensitive (category: ***)\n")


# ------------------------------------------------------------------ JSON and tool calls


def test_write_json_pretty_and_compact_escape_c1_and_keep_the_value():
    stream = io.StringIO()
    output.write_json({"a": "x\x9by"}, stream)
    output.write_json({"a": "x\x9by"}, stream, pretty=False)
    pretty, compact = stream.getvalue().split("\n}\n")
    assert "\x9b" not in stream.getvalue()
    assert json.loads(pretty + "\n}") == {"a": "x\x9by"} and json.loads(compact) == {"a": "x\x9by"}
    assert compact.count("\n") == 1


def test_tool_call_line_escapes_id_and_name_on_a_terminal_only():
    call = {"id": "c\x1b1", "function": {"name": "f\nn", "arguments": '{"q": "x\\u009by"}'}}
    assert output.tool_call_line(call, terminal_io()) == 'tool_call c\\x1b1 f\\x0an {"q": "x\\u009by"}\n'
    assert output.tool_call_line(call, fake_io()) == 'tool_call c\x1b1 f\nn {"q": "x\\u009by"}\n'


# ------------------------------------------------------------------ whole replies


def test_write_completion_shows_dimmed_reasoning_on_a_terminal():
    streams = terminal_io()
    output.write_completion({"choices": [{"message": {"content": HOSTILE, "reasoning_content": "why\n"}}]},
                            streams, reasoning=True)
    assert out(streams) == ESCAPED + "\n"
    assert err(streams) == DIM + "why\n" + RESET


def test_write_completion_with_several_choices_and_a_null_content():
    streams = fake_io()
    output.write_completion({"choices": [{"index": 0, "message": {"content": "one"}},
                                         {"index": 1, "message": {"content": None}}]}, streams)
    # issue 10 (#7): a null content is no text, never "None"
    assert out(streams) == "===== Chat Completion 0 =====\none\n===== Chat Completion 1 =====\n\n"
    assert err(streams) == ""


# ------------------------------------------------------------------ stream printers


def test_text_printer_shows_each_piece_and_ends_the_line():
    streams = terminal_io()
    printer = output.TextStreamPrinter(streams, reasoning=True)
    assembler = feed(printer, [chunk(reasoning="hm"), chunk("A\x1b"), chunk("B", finish="length")])
    assert printer.started
    printer.finish(assembler)
    assert out(streams) == "A\\x1bB\n"
    assert err(streams) == (DIM + "hm" + RESET + "\n" + YELLOW + "interncli: warning:" + RESET
                            + " the reply was cut at max_tokens (finish_reason: length)\n")


def test_text_printer_abort_ends_an_open_line_on_a_terminal_only():
    for streams, expected in ((terminal_io(), "half\n"), (fake_io(), "half")):
        printer = output.TextStreamPrinter(streams)
        feed(printer, [chunk("half")])
        printer.abort()
        assert out(streams) == expected


def test_text_printer_with_several_choices_prints_each_when_it_finishes():
    streams = fake_io()
    printer = output.TextStreamPrinter(streams, n=2)
    assembler = feed(printer, [chunk("a", index=0), chunk("b", index=1), chunk(index=1, finish="stop")])
    assert out(streams) == "===== Chat Completion 1 =====\nb\n"
    printer.finish(assembler)
    assert out(streams) == "===== Chat Completion 1 =====\nb\n===== Chat Completion 0 =====\na\n"


def test_json_printer_writes_each_chunk_as_a_line_and_warns_at_the_end():
    streams = fake_io()
    streams.json = True
    printer = output.JsonStreamPrinter(streams)
    chunks = [chunk("a"), chunk("b", finish="length")]
    assembler = feed(printer, chunks)
    printer.abort()  # nothing to end: every line is whole
    printer.finish(assembler)
    assert json_lines(out(streams)) == chunks
    assert json_lines(err(streams)) == [{"warning": "the reply was cut at max_tokens (finish_reason: length)"}]


def test_a_flagged_stream_is_warned_about_once():
    streams = fake_io()
    printer = output.TextStreamPrinter(streams)
    flagged = dict(chunk("a"), moderation={"sensitive": True, "category": "c"})
    feed(printer, [flagged, flagged])
    assert err(streams).count("flagged") == 1


def test_one_line_reads_only_what_it_shows_and_shows_what_it_did():
    """one_line works on a growing prefix of the text: the same line as made from the whole
    text (each control or other unprintable character a space, whitespace runs one space, cut
    at the limit with "…"), for any limit, 0 included."""
    def whole(text: str, limit: int) -> str:
        text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
        return text if len(text) <= limit else text[:limit] + "…"

    rng = random.Random(3)
    pieces = ["a", "b", " ", "\n", "\t", "\x1b", "\u200b", "\u3000", "é", "\x85", "\u2028", "x" * 50, " " * 300]
    for _ in range(400):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 120)))
        limit = rng.choice([0, 1, 5, 40, 400])
        assert output.one_line(text, limit) == whole(text, limit), (text, limit)
    page = "<p>error\n</p>" * 2000
    assert output.one_line(page) == whole(page, output.MESSAGE_LIMIT)
