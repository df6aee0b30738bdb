"""Holes found by attacking the network layer (issue 8, sections 1 and 6): a hostile server or
a broken proxy must get exit 6 (or the API's own code) with a one-line error, never an
"unexpected" error, a misleading hint, or exit 0 for a reply that is not one."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from interncli.sse import SSEDecoder
from tests import hostile
from tests.apiserver import MODELS_PATH, Json, Raw, Stream, stream_chunks
from tests.conftest import SENTINEL
from tests.hostilecli import HUNG, MEMORY_LIMIT_KIB, NO_RETRY, chat, error_line, run_measured

OK_BODY = b'{"choices": [{"index": 0, "message": {"content": "ok"}, "finish_reason": "stop"}]}'


def reply(status: bytes, headers: list, body: bytes) -> hostile.Verbatim:
    """A raw HTTP response: the status line, ``headers`` and ``body``, exactly as given."""
    return hostile.Verbatim(status + b"\r\n" + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body)


# ---------------------------------------------------------------------------- SSE retry field


def test_a_retry_field_with_more_digits_than_python_reads_is_ignored():
    # int() refuses more than 4300 digits (sys.get_int_max_str_digits) with a ValueError; the
    # SSE spec says a retry value that is not a number is ignored, and one this long is not a
    # wait anyone means.
    decoder = SSEDecoder()
    events = decoder.feed(b"retry: " + b"9" * 5000 + b"\ndata: x\n\n")
    assert [(e.data, e.retry) for e in events] == [("x", None)]


def test_a_stream_with_an_endless_retry_value_still_prints_its_reply(cli, api):
    api.add(Stream([b"retry: " + b"9" * 5000 + b"\n"] + stream_chunks(["Hel", "lo"])))
    result = chat(cli, True)
    assert (result.exit_code, result.stdout) == (0, "Hello\n"), result


# ---------------------------------------------------------------------------- reply headers


@pytest.mark.parametrize("stream", [False, True])
def test_conflicting_content_lengths_are_a_network_error_not_a_bad_token(cli, api, stream):
    # urllib3 2.x refuses a reply whose Content-Length headers disagree (a request-smuggling
    # sign) with its InvalidHeader, which requests re-raises as its own InvalidHeader, the
    # same class it uses for a request header it cannot send (a token with a newline).
    api.add(reply(b"HTTP/1.1 200 OK", [b"Content-Type: application/json", b"Content-Length: %d" % len(OK_BODY),
                                       b"Content-Length: 5"], OK_BODY))
    result = chat(cli, stream)
    assert result.exit_code == 6, result
    line = error_line(result.stderr)
    assert "reply" in line and "Content-Length" in line
    assert "token" not in result.stderr


# ---------------------------------------------------------------------------- shapes


def call(call_id) -> dict:
    return {"id": call_id, "type": "function", "function": {"name": "f", "arguments": "{}"}}


@pytest.mark.parametrize("call_id", [{"a": 1}, [1], 5, True])
def test_a_tool_call_id_that_is_not_text_is_malformed(cli, api, call_id):
    api.add(Json({"choices": [{"index": 0, "message": {"content": None, "tool_calls": [call(call_id)]},
                               "finish_reason": "tool_calls"}]}))
    result = chat(cli, False)
    assert result.exit_code == 1, result
    assert "tool call's id is" in error_line(result.stderr)
    assert result.stdout == ""


@pytest.mark.parametrize("call_id", [{"a": 1}, [1], 5])
def test_a_streamed_tool_call_id_that_is_not_text_is_malformed(cli, api, call_id):
    chunk = {"choices": [{"index": 0, "delta": {"tool_calls": [dict(call(call_id), index=0)]},
                          "finish_reason": "tool_calls"}]}
    api.add(Stream(["data: " + json.dumps(chunk) + "\n\n"]))
    result = chat(cli, True)
    assert result.exit_code == 6, result
    assert "tool call's id is" in error_line(result.stderr)
    assert result.stdout == ""


@pytest.mark.parametrize("choice, words", [
    ({"index": 0, "message": None, "finish_reason": "stop"}, "the reply's choice has no message"),
    ({"index": 0, "finish_reason": "stop"}, "the reply's choice has no message"),
])
def test_a_completion_choice_without_a_message_is_not_a_reply(cli, api, choice, words):
    # It printed "None" with exit 0.
    api.add(Json({"choices": [choice]}))
    result = chat(cli, False)
    assert result.exit_code == 1, result
    assert words in error_line(result.stderr)
    assert result.stdout == ""


# ---------------------------------------------------------------------------- -v traces


def byte_per_chunk_line(size: int) -> hostile.Endless:
    """A stream whose one event is a line of ``size`` bytes of content sent one byte per HTTP
    chunk (written in large batches, so the server is not what is slow)."""
    head = b'data: {"choices": [{"index": 0, "delta": {"content": "'
    tail = b'"}, "finish_reason": "stop"}]}\n\n'
    wire = b"".join(b"1\r\n%s\r\n" % head[i:i + 1] for i in range(len(head)))
    wire += b"1\r\na\r\n" * size + b"%x\r\n%s\r\n0\r\n\r\n" % (len(tail), tail)
    return hostile.Endless(lambda: (wire[i:i + hostile.PIECE] for i in range(0, len(wire), hostile.PIECE)),
                           framing="raw")


@pytest.mark.integration
def test_verbose_traces_a_line_sent_a_byte_per_chunk_in_linear_time(exe, api):
    # urllib3's read_chunked yields every HTTP chunk on its own, however small. The -v trace
    # joined the unfinished line with each new piece: a 1 MiB line took ~700 s of CPU, all of
    # it outside --timeout (which counts waiting for the server only).
    size = hostile.MiB - 1024
    api.add(byte_per_chunk_line(size))
    args = [exe, "-v", "-b", api.base_url, "-k", SENTINEL, "--timeout", "5", *NO_RETRY, "chat", "create",
            "--stream", "-g", "user", "x"]
    proc = subprocess.run(args, capture_output=True, timeout=HUNG)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == b"a" * size + b"\n"
    assert b"< data: {\"choices\"" in proc.stderr


# ---------------------------------------------------------------------------- the model list


@pytest.mark.parametrize("data", [[1], [None], ["x"], [{"id": {"a": 1}}], [{"id": 5}], [{}],
                                  [{"id": "good"}, {"object": "model"}]])
@pytest.mark.parametrize("as_json", [False, True])
def test_a_model_list_entry_that_is_not_a_model_is_an_error(cli, api, data, as_json):
    # It printed {'a': 1} (Python's repr), an empty line, or nothing at all, with exit 0.
    api.add(Json({"object": "list", "data": data}), path=MODELS_PATH, method="GET")
    result = cli("models", "list", *(["--json"] if as_json else []), globals_=NO_RETRY)
    assert result.exit_code == 1, result
    assert result.stdout == ""
    if not as_json:
        assert "the model list holds an entry that is not a model with a text id" in error_line(result.stderr)


def test_a_model_list_of_models_is_still_listed(cli, api):
    api.add(Json({"object": "list", "data": [{"id": "a", "object": "model"}, {"id": "b"}]}),
            path=MODELS_PATH, method="GET")
    result = cli("models", "list", globals_=NO_RETRY)
    assert (result.exit_code, result.stdout) == (0, "a\nb\n"), result


@pytest.mark.integration
@pytest.mark.skipif(not hasattr(os, "wait4"), reason="needs os.wait4")
@pytest.mark.parametrize("body, stream", [
    (b"\x1b" * (4 * hostile.MiB - 64), False),
    ("\u0085".encode() * (2 * hostile.MiB - 32), False),
    (b"data: " + b"\x1b" * (hostile.MiB - 64) + b"\n\n", True),
], ids=["4 MiB of ESC", "4 MiB of U+0085", "a 1 MiB stream line of ESC"])
def test_verbose_escapes_a_body_of_controls_within_100_MiB(exe, api, tmp_path, body, stream):
    # re.sub with a function keeps each replacement as its own str until it joins them: a body
    # that is all controls cost ~90 bytes of memory a byte when escaped for -v (351 MiB).
    api.add(Raw(body, content_type="text/event-stream" if stream else "application/json"))
    args = ["-v", "-b", api.base_url, "-k", SENTINEL, *NO_RETRY, "chat", "create", "-g", "user", "x"]
    code, stderr, peak = run_measured(exe, args + (["--stream"] if stream else []), tmp_path)
    assert code == (6 if stream else 1), stderr[-2000:]
    assert "\\x1b\\x1b" in stderr or "\\x85\\x85" in stderr
    assert peak < MEMORY_LIMIT_KIB, "peak RSS {} MiB".format(peak // 1024)


# ---------------------------------------------------------------------------- 1xx


@pytest.mark.parametrize("stream", [False, True])
def test_an_informational_status_before_the_reply_is_a_network_error_not_retried(cli, api, stream):
    # http.client skips "100 Continue" only; a 103 Early Hints (which some proxies and CDNs
    # send) is returned as the reply, bodiless. It was a retryable "server error" (exit 1),
    # re-sending the POST max-retries times.
    for _ in range(3):
        api.add(hostile.Verbatim(
            b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (len(OK_BODY), OK_BODY)))
    result = chat(cli, stream, "--max-retries", "2")
    assert result.exit_code == 6, result
    assert "HTTP 103 Early Hints, an informational status" in error_line(result.stderr)
    assert "retrying" not in result.stderr and len(api.requests) == 1


# ---------------------------------------------------------------------------- JSON value count


@pytest.mark.integration
@pytest.mark.parametrize("stream", [False, True])
def test_counting_the_values_of_a_text_of_escaped_quotes_takes_linear_time(exe, api, stream):
    # More than VALUE_LIMIT commas, so the strings are stripped before counting; an unterminated
    # string of \",\",\", made the string pattern fail and restart at each quote: quadratic,
    # hours of CPU for 1 MiB, none of it counted by --timeout.
    text = b'{"choices": [], "x": "' + b'\\",' * ((hostile.MiB - 64) // 3)
    body = b"data: " + text + b"\n\n" if stream else text
    api.add(Raw(body, content_type="text/event-stream" if stream else "application/json"))
    args = [exe, "-b", api.base_url, "-k", SENTINEL, "--timeout", "5", *NO_RETRY, "chat", "create", "-g", "user",
            "x"] + (["--stream"] if stream else [])
    proc = subprocess.run(args, capture_output=True, timeout=HUNG, text=True)
    assert proc.returncode == (6 if stream else 1), proc.stderr[-2000:]
    assert "not JSON" in error_line(proc.stderr) or "malformed" in error_line(proc.stderr)


def test_commas_inside_strings_still_do_not_count_as_values(cli, api):
    content = "a," * 60_000  # 120000 commas in one string: far more than VALUE_LIMIT, yet one value
    api.add(Json({"choices": [{"index": 0, "message": {"content": content}, "finish_reason": "stop"}]}))
    result = chat(cli, False)
    assert (result.exit_code, result.stdout) == (0, content + "\n"), result


@pytest.mark.parametrize("depth", [990, 50_000])
def test_a_reply_nested_too_deeply_says_so(cli, api, depth):
    # It said "the reply is not JSON", which it is.
    api.add(Raw(b'{"choices": [], "x": ' + b"[" * depth + b"]" * depth + b"}", content_type="application/json"))
    result = chat(cli, False)
    assert result.exit_code == 1, result
    assert "the reply nests lists or objects deeper than interncli reads" in error_line(result.stderr)
