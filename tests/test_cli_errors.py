"""End-to-end error handling of the CLI against the real test server: stdout and stderr apart,
the exit code, retries, streams cut or malformed, timeouts, usage errors
(interface.md section 6)."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from typing import Optional, Tuple

import pytest

from tests.apiserver import (
    Completion,
    Drop,
    Hang,
    Json,
    Raw,
    Stream,
    err_code,
    err_detail,
    err_msgcode,
    err_object,
    err_openai,
    html_error,
    stream_chunks,
)
from tests.conftest import SENTINEL, invoke

NO_RETRY = ("--max-retries", "0")
RA0 = {"Retry-After": "0"}
ERROR_PREFIX = "interncli: error: "

# The four shapes that carry a code: name -> (code, msg, status) -> scripted reply / body dict.
SHAPES = {
    "code": lambda code, msg, status=200, headers=None: err_code(code, msg, status, headers),
    "msgCode": lambda code, msg, status=200, headers=None: err_msgcode(code, msg, status, headers),
    "object": lambda code, msg, status=200, headers=None: err_object(msg, code, status, headers),
    "openai": lambda code, msg, status=200, headers=None: err_openai(msg, code, status, headers),
}
SHAPE_NAMES = sorted(SHAPES)


# One server for the whole module (see conftest.api); each test still starts with no queued
# reply and no recorded request.
SHARED_SERVER = True


def body_of(shape: str, code, msg: str) -> dict:
    """The JSON object of a shape, for use as a stream event."""
    return SHAPES[shape](code, msg).obj


def chat(cli, *extra: str, stream: bool = False, as_json: bool = False, globals_=NO_RETRY, env=None):
    args = ["chat", "create", "-g", "user", "hi"]
    if stream:
        args.append("--stream")
    if as_json:
        args.append("--json")
    return cli(*args, *extra, globals_=globals_, env=env)


def error_and_hint(stderr: str, strict: bool = True) -> Tuple[str, Optional[str]]:
    """The one ``interncli: error:`` line and the ``hint:`` line after it (None if absent).
    ``strict``: nothing else may be on stderr."""
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    indexes = [i for i, line in enumerate(lines) if line.startswith(ERROR_PREFIX)]
    assert len(indexes) == 1, stderr
    i = indexes[0]
    hint = lines[i + 1] if i + 1 < len(lines) and lines[i + 1].startswith("hint: ") else None
    rest = lines[i + 1 + (hint is not None):]
    assert rest == [], "unexpected lines after the error: {!r}".format(rest)
    if strict:
        assert i == 0, "unexpected lines before the error: {!r}".format(lines[:i])
    return lines[i], hint


def assert_error(result, exit_code: int, code, message: str, hint: bool = True, stdout: str = "",
                 strict: bool = True) -> Tuple[str, Optional[str]]:
    assert result.exit_code == exit_code, result
    assert result.stdout == stdout, result
    line, hint_line = error_and_hint(result.stderr, strict)
    expected = ERROR_PREFIX + ("[{}] ".format(code) if code is not None else "") + message
    assert line == expected, result
    if hint:
        assert hint_line is not None and len(hint_line) > len("hint: ") + 3, result
    return line, hint_line


def assert_usage_error(result, *words: str) -> str:
    assert result.exit_code == 2, result
    assert result.stdout == "", result
    line, hint = error_and_hint(result.stderr)
    assert hint is not None, result
    for word in words:
        assert word in line, result
    return line


def json_error(result) -> dict:
    """The one JSON line of stderr under --json, as a dict."""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result
    obj = json.loads(lines[0])
    assert list(obj) == ["error"]
    err = obj["error"]
    for key in ("code", "message", "http_status", "exit_code"):
        assert key in err, err
    assert err["exit_code"] == result.exit_code
    return err


# ====================================================================== error shapes × statuses

KNOWN = [("A0211", "Token expired", 3), (-20053, "Request rate over limit", 4),
         (-20018, "Incorrect message format", 5)]


@pytest.mark.parametrize("status", [200, 400, 401, 429, 500])
@pytest.mark.parametrize("shape", SHAPE_NAMES)
@pytest.mark.parametrize("code, msg, exit_code", KNOWN)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_known_code_in_whole_reply(api, cli, stream, code, msg, exit_code, shape, status):
    api.add(SHAPES[shape](code, msg, status))
    r = chat(cli, stream=stream)
    assert_error(r, exit_code, code, msg)
    assert len(api.calls()) == 1


@pytest.mark.parametrize("status, exit_code", [(200, 1), (400, 5), (401, 3), (429, 4), (500, 1)])
@pytest.mark.parametrize("shape", SHAPE_NAMES)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_unknown_code_follows_the_status(api, cli, stream, shape, status, exit_code):
    api.add(SHAPES[shape]("E4242", "the thing broke", status))
    r = chat(cli, stream=stream)
    assert_error(r, exit_code, "E4242", "the thing broke", hint=False)


@pytest.mark.parametrize("status", [200, 400, 500])
@pytest.mark.parametrize("shape", SHAPE_NAMES)
def test_unknown_code_error_has_a_hint_line(api, cli, shape, status):
    # Section 6: every error on stderr is "interncli: error: [CODE] message" *and* a hint line.
    api.add(SHAPES[shape]("E4242", "the thing broke", status))
    r = chat(cli)
    line, hint = error_and_hint(r.stderr)
    assert hint is not None, r


@pytest.mark.parametrize("status, exit_code", [(400, 5), (401, 3), (404, 5), (429, 4), (500, 1)])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_detail_string_follows_the_status(api, cli, stream, status, exit_code):
    api.add(err_detail("Something is off", status))
    r = chat(cli, stream=stream)
    assert_error(r, exit_code, status, "Something is off", hint=False)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_detail_list_422(api, cli, stream):
    detail = [{"loc": ["body", "messages", 0, "role"], "msg": "unexpected value", "type": "value_error"}]
    api.add(err_detail(detail, 422))
    r = chat(cli, stream=stream)
    assert r.exit_code == 5
    assert r.stdout == ""
    line, _ = error_and_hint(r.stderr)
    assert line.startswith(ERROR_PREFIX + "[422] ")
    assert json.loads(line[len(ERROR_PREFIX + "[422] "):]) == detail


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_detail_at_200_is_an_error(api, cli, stream):
    api.add(err_detail("quota exhausted"))
    r = chat(cli, stream=stream)
    assert r.exit_code == 1
    assert r.stdout == ""
    line, _ = error_and_hint(r.stderr)
    assert line.startswith(ERROR_PREFIX) and line.endswith("quota exhausted")


# ---------------------------------------------------------------------- errors inside a stream


@pytest.mark.parametrize("shape", SHAPE_NAMES)
@pytest.mark.parametrize("code, msg, exit_code", KNOWN)
def test_known_code_as_a_data_event(api, cli, shape, code, msg, exit_code):
    api.add(Stream([body_of(shape, code, msg)], done=False))
    r = chat(cli, stream=True)
    assert_error(r, exit_code, code, msg)


@pytest.mark.parametrize("shape", SHAPE_NAMES)
@pytest.mark.parametrize("code, msg, exit_code", KNOWN)
@pytest.mark.parametrize("newline", [True, False], ids=["line", "unterminated"])
def test_known_code_as_a_raw_line_in_the_stream(api, cli, shape, code, msg, exit_code, newline):
    raw = json.dumps(body_of(shape, code, msg)) + ("\n" if newline else "")
    api.add(Stream([raw], done=False))
    r = chat(cli, stream=True)
    assert_error(r, exit_code, code, msg)


def test_seed_example_raw_token_expired_line(api, cli):
    api.add(Stream(['{"code": "A0211", "msg": "Token expired"}\n'], done=False))
    r = chat(cli, stream=True)
    assert_error(r, 3, "A0211", "Token expired")


def test_error_event_with_event_error_field(api, cli):
    api.add(Stream(["event: error\ndata: " + json.dumps({"code": "A0202", "msg": "auth failed"}) + "\n\n"],
                   done=False))
    r = chat(cli, stream=True)
    assert_error(r, 3, "A0202", "auth failed")


def test_unknown_code_as_a_data_event_is_exit_1(api, cli):
    api.add(Stream([{"code": "E77", "msg": "engine failure"}], done=False))
    r = chat(cli, stream=True)
    assert_error(r, 1, "E77", "engine failure", hint=False)


def test_json_error_body_with_text_content_type_for_a_stream(api, cli):
    api.add(Raw(json.dumps({"msgCode": "A0202", "msg": "User authentication failed"}), 200, "text/plain"))
    r = chat(cli, stream=True)
    assert_error(r, 3, "A0202", "User authentication failed")


@pytest.mark.parametrize("code, msg, exit_code", [("A0211", "Token expired", 3), (-20053, "slow down", 4),
                                                  (-10002, "empty query", 5)])
def test_error_event_after_content_keeps_the_output_and_is_not_retried(api, cli, code, msg, exit_code):
    api.add(Stream(stream_chunks(["Hel", "lo"])[:1] + [{"code": code, "msg": msg}], done=False))
    r = chat(cli, stream=True, globals_=())  # default retries: must still not retry
    assert_error(r, exit_code, code, msg, stdout="Hel")
    assert len(api.calls()) == 1
    assert "retrying" not in r.stderr


# ====================================================================== the seed table end to end

SEED = [("-10002", 5), ("-20004", 3), ("-20013", 5), ("-20018", 5), ("-20035", 3), ("-20053", 4),
        ("A0202", 3), ("A0211", 3), ("C1114", 3)]


@pytest.mark.parametrize("code, exit_code", SEED)
def test_every_seed_code_end_to_end(api, cli, code, exit_code):
    value = int(code) if code.startswith("-") else code
    api.add(err_code(value, "message for " + code))
    r = chat(cli)
    assert_error(r, exit_code, value, "message for " + code)


# ====================================================================== --json errors


@pytest.mark.parametrize("shape", SHAPE_NAMES)
@pytest.mark.parametrize("status", [200, 401, 429])
def test_json_error_line(api, cli, shape, status):
    api.add(SHAPES[shape]("A0211", "Token expired", status))
    r = chat(cli, as_json=True)
    assert r.exit_code == 3
    assert r.stdout == ""
    err = json_error(r)
    assert err["code"] == "A0211"
    assert err["message"] == "Token expired"
    assert err["http_status"] == status
    assert err["exit_code"] == 3
    assert err.get("hint")


def test_json_error_line_for_a_stream_event(api, cli):
    api.add(Stream(stream_chunks(["Hel"])[:1] + [{"code": -20053, "msg": "slow down"}], done=False))
    r = chat(cli, stream=True, as_json=True)
    assert r.exit_code == 4
    out = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(out) == 1 and out[0]["choices"][0]["delta"]["content"] == "Hel"
    err = json_error(r)
    assert err["code"] == -20053
    assert err["message"] == "slow down"
    assert err["exit_code"] == 4


def test_json_error_line_for_html_502(api, cli):
    api.add(html_error(502))
    r = chat(cli, as_json=True)
    assert r.exit_code == 1
    err = json_error(r)
    assert err["http_status"] == 502
    assert err["code"] == 502
    assert "502" in err["message"] and "<html>" in err["message"]


def test_json_error_line_for_a_usage_error(api, cli):
    r = cli("chat", "create", "-n", "0", "-g", "user", "hi", "--json")
    assert r.exit_code == 2
    assert r.stdout == ""
    err = json_error(r)
    assert err["exit_code"] == 2
    assert "0" in err["message"]
    assert api.requests == []


def test_json_error_line_for_a_network_error(cli, closed_port_url):
    r = cli("chat", "create", "-g", "user", "hi", "--json", globals_=("-b", closed_port_url) + NO_RETRY)
    assert r.exit_code == 6
    err = json_error(r)
    assert err["exit_code"] == 6
    assert err["http_status"] is None


def test_json_after_retries_ends_with_the_json_line(api, cli):
    api.add(err_code(-20053, "slow down", 429, RA0), times=2)
    r = chat(cli, as_json=True, globals_=("--max-retries", "1"))
    assert r.exit_code == 4
    last = json.loads(r.stderr.splitlines()[-1])
    assert last["error"]["code"] == -20053 and last["error"]["exit_code"] == 4


# ====================================================================== non-JSON bodies


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_html_502_from_a_proxy(api, cli, stream):
    api.add(html_error(502, "Bad Gateway"))
    r = chat(cli, stream=stream)
    assert r.exit_code == 1
    assert r.stdout == ""
    line, hint = error_and_hint(r.stderr)
    assert "502" in line
    assert "<html><body><h1>502 Bad Gateway</h1>" in line
    assert hint is not None


def test_html_502_is_retried_then_reported(api, cli):
    api.add(html_error(502, headers=RA0), times=3)
    r = chat(cli, globals_=())
    assert r.exit_code == 1
    assert len(api.calls()) == 3
    line, _ = error_and_hint(r.stderr, strict=False)
    assert "502" in line


def test_html_at_200_is_a_failure_with_the_start_of_the_body(api, cli):
    api.add(Raw("<html><body>Please log in to the Wi-Fi</body></html>", 200))
    r = chat(cli)
    assert r.exit_code == 1
    assert r.stdout == ""
    line, hint = error_and_hint(r.stderr)
    assert "Please log in to the Wi-Fi" in line
    assert hint is not None


def test_empty_503(api, cli):
    api.add(Raw(b"", 503))
    r = chat(cli)
    assert r.exit_code == 1
    line, _ = error_and_hint(r.stderr)
    assert "503" in line


def test_non_completion_json_is_a_failure(api, cli):
    api.add(Json({"hello": "world"}))
    r = chat(cli)
    assert r.exit_code == 1
    assert r.stdout == ""
    line, hint = error_and_hint(r.stderr)
    assert '{"hello": "world"}' in line
    assert hint is not None


# ====================================================================== retries


def test_429_then_success_is_retried(api, cli):
    api.add(err_code(-20053, "Request rate over limit", 429, RA0))
    api.add(Completion("hello there"))
    r = chat(cli, globals_=())
    assert r.exit_code == 0, r
    assert r.stdout == "hello there\n"
    assert "retrying" in r.stderr
    assert "-20053" in r.stderr
    assert ERROR_PREFIX not in r.stderr
    assert len(api.calls()) == 2
    # Retry-After: 0 is honoured: the notice announces no wait (backoff alone would be > 0.2 s).
    delays = [float(d) for d in re.findall(r"retrying in ([0-9.]+)s", r.stderr)]
    assert delays == [0.0], r.stderr


def test_retry_after_is_honoured(api, cli):
    api.add(err_code(-20053, "Request rate over limit", 429, {"Retry-After": "1"}))
    api.add(Completion("later"))
    start = time.monotonic()
    r = chat(cli, globals_=())
    elapsed = time.monotonic() - start
    assert r.exit_code == 0, r
    assert r.stdout == "later\n"
    assert 0.9 <= elapsed < 3
    second = api.calls()[1].at - api.calls()[0].at
    assert second >= 0.9


def test_503_then_success_is_retried(api, cli):
    api.add(err_openai("overloaded", "server_busy", 503, RA0))
    api.add(Completion("fine"))
    r = chat(cli, globals_=())
    assert r.exit_code == 0, r
    assert r.stdout == "fine\n"
    assert "retrying" in r.stderr and "overloaded" in r.stderr
    assert len(api.calls()) == 2


def test_500_without_retry_after_is_retried_with_backoff(api, cli):
    api.add(err_code("E1", "internal", 500))
    api.add(Completion("fine"))
    r = chat(cli, globals_=("--max-retries", "1"))
    assert r.exit_code == 0, r
    assert r.stdout == "fine\n"
    assert len(api.calls()) == 2


def test_429_stream_then_success_is_retried(api, cli):
    api.add(err_code(-20053, "Request rate over limit", 429, RA0))
    api.add(Stream(stream_chunks(["Hel", "lo"])))
    r = chat(cli, stream=True, globals_=())
    assert r.exit_code == 0, r
    assert r.stdout == "Hello\n"
    assert "retrying" in r.stderr
    assert len(api.calls()) == 2


def test_max_retries_0_does_not_retry(api, cli):
    api.add(err_code(-20053, "Request rate over limit", 429, RA0))
    api.add(Completion("never seen"))
    r = chat(cli, globals_=NO_RETRY)
    assert_error(r, 4, -20053, "Request rate over limit")
    assert "retrying" not in r.stderr
    assert len(api.calls()) == 1


def test_plain_429_without_code(api, cli):
    api.add(Raw("Too Many Requests", 429, "text/plain", RA0))
    r = chat(cli)
    assert r.exit_code == 4
    line, hint = error_and_hint(r.stderr)
    assert "429" in line and "Too Many Requests" in line
    assert hint is not None


def test_retries_exhausted(api, cli):
    api.add(err_code(-20053, "Request rate over limit", 429, RA0), times=3)
    api.add(Completion("never seen"))
    r = chat(cli, globals_=())  # default max-retries: 2
    assert r.exit_code == 4, r
    assert r.stdout == ""
    assert len(api.calls()) == 3
    notices = [line for line in r.stderr.splitlines() if "retrying" in line]
    assert len(notices) == 2
    assert "1 of 2" in notices[0] and "2 of 2" in notices[1]
    assert_error(r, 4, -20053, "Request rate over limit", strict=False)


def test_intern_max_retries_env(api, cli):
    api.add(err_code(-20053, "slow down", 429, RA0), times=3)
    r = chat(cli, globals_=(), env={"INTERN_MAX_RETRIES": "1"})
    assert r.exit_code == 4
    assert len(api.calls()) == 2


def test_max_retries_flag_beats_env(api, cli):
    api.add(err_code(-20053, "slow down", 429, RA0), times=3)
    r = chat(cli, globals_=NO_RETRY, env={"INTERN_MAX_RETRIES": "2"})
    assert r.exit_code == 4
    assert len(api.calls()) == 1


@pytest.mark.parametrize("reply, exit_code", [
    (lambda: err_code(-10002, "Invalid parameter", 400, RA0), 5),
    (lambda: err_detail("bad request", 400, RA0), 5),
    (lambda: err_msgcode("A0202", "User authentication failed", 401, RA0), 3),
    (lambda: err_code("A0211", "Token expired", 500, RA0), 3),
    (lambda: err_code(-20013, "Requested model does not exist", 200), 5),
])
def test_client_errors_are_never_retried(api, cli, reply, exit_code):
    api.add(reply(), times=3)
    r = chat(cli, globals_=())
    assert r.exit_code == exit_code
    assert len(api.calls()) == 1
    assert "retrying" not in r.stderr


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "rst"])
def test_connection_drop_then_success_is_retried(api, cli, reset):
    api.add(Drop(reset=reset))
    api.add(Completion("after the drop"))
    r = chat(cli, globals_=())
    assert r.exit_code == 0, r
    assert r.stdout == "after the drop\n"
    assert "retrying" in r.stderr
    assert len(api.calls()) == 2


def test_connection_drop_without_retries_is_exit_6(api, cli):
    api.add(Drop())
    r = chat(cli)
    assert r.exit_code == 6
    assert r.stdout == ""
    _, hint = error_and_hint(r.stderr)
    assert hint is not None


def test_stream_dropped_then_success(api, cli):
    api.add(Drop())
    api.add(Stream(stream_chunks(["Hello", " world"])))
    r = chat(cli, stream=True, globals_=())
    assert r.exit_code == 0, r
    assert r.stdout == "Hello world\n"
    assert len(api.calls()) == 2


def test_stream_cut_before_content_then_success(api, cli):
    api.add(Stream(stream_chunks([])[:1], done=False, cut=True))  # only the role chunk
    api.add(Stream(stream_chunks(["Hello", " world"])))
    r = chat(cli, stream=True, globals_=())
    assert r.exit_code == 0, r
    assert r.stdout == "Hello world\n"
    assert "retrying" in r.stderr
    assert len(api.calls()) == 2


def test_stream_malformed_before_content_then_success(api, cli):
    api.add(Stream(["data: not json\n\n"], done=False))
    api.add(Stream(stream_chunks(["Hello"])))
    r = chat(cli, stream=True, globals_=())
    assert r.exit_code == 0, r
    assert r.stdout == "Hello\n"
    assert len(api.calls()) == 2


def test_rate_limit_event_before_content_is_retried(api, cli):
    api.add(Stream([{"code": -20053, "msg": "slow down"}], done=False))
    api.add(Stream(stream_chunks(["ok"])))
    r = chat(cli, stream=True, globals_=())
    assert r.exit_code == 0, r
    assert r.stdout == "ok\n"
    assert len(api.calls()) == 2


def test_auth_event_before_content_is_not_retried(api, cli):
    api.add(Stream([{"code": "A0211", "msg": "Token expired"}], done=False), times=3)
    r = chat(cli, stream=True, globals_=())
    assert_error(r, 3, "A0211", "Token expired")
    assert len(api.calls()) == 1


def test_stream_cut_before_any_choice_printed_n2_retry_prints_only_the_second_reply(api, cli):
    # With n>1 nothing is printed until a choice finishes, so a cut before that is retried;
    # the retried reply must not be glued onto the pieces of the first attempt.
    api.add(Stream(stream_chunks([["Hel"], ["Wor"]], n=2)[:2], done=False, cut=True))
    api.add(Stream(stream_chunks([["Hello"], ["World"]], n=2)))
    r = chat(cli, "-n", "2", stream=True, globals_=())
    assert r.exit_code == 0, r
    assert len(api.calls()) == 2
    assert r.stdout == "===== Chat Completion 0 =====\nHello\n===== Chat Completion 1 =====\nWorld\n"


def test_stream_cut_during_tool_call_retry_prints_the_call_once(api, cli):
    call = {"index": 0, "id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    first = {"id": "c", "object": "chat.completion.chunk", "model": "intern-latest",
             "choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [call]}, "finish_reason": ""}]}
    last = {"id": "c", "object": "chat.completion.chunk", "model": "intern-latest",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}
    api.add(Stream([first], done=False, cut=True))
    api.add(Stream([first, last]))
    r = chat(cli, stream=True, globals_=())
    assert r.exit_code == 0, r
    assert len(api.calls()) == 2
    assert r.stdout == 'tool_call call_1 get_weather {"city": "Paris"}\n'


def test_stream_cut_after_content_is_exit_6_and_never_retried(api, cli):
    api.add(Stream(stream_chunks(["Hel", "lo"])[:1], done=False, cut=True))
    api.add(Stream(stream_chunks(["never", " seen"])))
    r = chat(cli, stream=True, globals_=())
    assert r.exit_code == 6, r
    assert r.stdout == "Hel"
    line, hint = error_and_hint(r.stderr)
    assert "stream" in line
    assert hint is not None
    assert len(api.calls()) == 1
    assert "retrying" not in r.stderr


def test_stream_cut_after_two_pieces(api, cli):
    api.add(Stream(stream_chunks(["Hel", "lo"])[:2], done=False, cut=True))
    r = chat(cli, stream=True, globals_=())
    assert r.exit_code == 6, r
    assert r.stdout == "Hello"
    assert "stream" in error_and_hint(r.stderr)[0]
    assert len(api.calls()) == 1


def test_stream_garbage_after_content_is_exit_6(api, cli):
    api.add(Stream(stream_chunks(["Hel", "lo"])[:1] + ["data: not json\n\n"], done=False))
    r = chat(cli, stream=True, globals_=())
    assert r.exit_code == 6, r
    assert r.stdout == "Hel"
    line, hint = error_and_hint(r.stderr)
    assert "malformed" in line and "not json" in line
    assert hint is not None
    assert len(api.calls()) == 1


def test_stream_stray_text_after_content_is_exit_6(api, cli):
    api.add(Stream(stream_chunks(["Hel"])[:1] + ["<html>oops</html>\n"], done=False))
    r = chat(cli, stream=True, globals_=())
    assert r.exit_code == 6
    assert r.stdout == "Hel"
    assert "<html>oops</html>" in error_and_hint(r.stderr)[0]


def test_json_stream_cut_after_first_chunk_is_not_retried(api, cli):
    api.add(Stream(stream_chunks([])[:1], done=False, cut=True))
    r = chat(cli, stream=True, as_json=True, globals_=())
    assert r.exit_code == 6
    assert len(r.stdout.splitlines()) == 1  # the chunk already printed stays
    assert len(api.calls()) == 1
    assert json_error(r)["exit_code"] == 6


# ====================================================================== stream framing


@pytest.mark.parametrize("framing", ["close", "chunked"])
def test_stream_without_done_or_finish_reason_is_exit_6(api, cli, framing):
    api.add(Stream(stream_chunks(["Hi", " there"])[:2], framing=framing, done=False))
    r = chat(cli, stream=True, globals_=())
    assert r.exit_code == 6, r
    assert r.stdout == "Hi there"
    line, hint = error_and_hint(r.stderr)
    assert "stream" in line
    assert hint is not None
    assert len(api.calls()) == 1


@pytest.mark.parametrize("framing", ["close", "chunked"])
def test_stream_without_done_but_finished_is_ok(api, cli, framing):
    api.add(Stream(stream_chunks(["Hi", " there"]), framing=framing, done=False))
    r = chat(cli, stream=True)
    assert r.exit_code == 0, r
    assert r.stdout == "Hi there\n"
    assert r.stderr == ""


def test_stream_n2_without_done_one_choice_unfinished_is_exit_6(api, cli):
    chunks = stream_chunks([["A"], ["B"]], n=2)
    api.add(Stream(chunks[:-1], framing="close", done=False))  # choice 1 never finishes
    r = chat(cli, "-n", "2", stream=True)
    assert r.exit_code == 6, r
    assert "stream" in error_and_hint(r.stderr)[0]


def test_stream_n2_without_done_all_finished_is_ok(api, cli):
    api.add(Stream(stream_chunks([["A"], ["B"]], n=2), framing="close", done=False))
    r = chat(cli, "-n", "2", stream=True)
    assert r.exit_code == 0, r
    assert r.stdout == "===== Chat Completion 0 =====\nA\n===== Chat Completion 1 =====\nB\n"


def test_empty_stream_is_exit_6(api, cli):
    api.add(Stream([], framing="close", done=False))
    r = chat(cli, stream=True)
    assert r.exit_code == 6
    assert r.stdout == ""


# ====================================================================== timeouts


def test_timeout(api, cli):
    api.add(Hang(3))
    start = time.monotonic()
    r = chat(cli, globals_=("--timeout", "0.5") + NO_RETRY)
    elapsed = time.monotonic() - start
    assert r.exit_code == 6, r
    assert r.stdout == ""
    line, hint = error_and_hint(r.stderr)
    assert "0.5s" in line
    assert hint is not None and "--timeout" in hint
    assert elapsed < 2.5


def test_timeout_from_env(api, cli):
    api.add(Hang(3))
    r = chat(cli, env={"INTERN_TIMEOUT": "0.5"})
    assert r.exit_code == 6
    assert "0.5s" in error_and_hint(r.stderr)[0]


def test_timeout_mid_stream_keeps_output(api, cli):
    release = threading.Event()
    api.add(Stream(stream_chunks(["Hel", "lo"]), hold_after=1, release=release, hold_timeout=3))
    r = chat(cli, stream=True, globals_=("--timeout", "0.5"))
    release.set()
    assert r.exit_code == 6, r
    assert r.stdout == "Hel"
    assert "stream" in error_and_hint(r.stderr)[0]
    assert len(api.calls()) == 1


def test_timeout_not_a_number(api, cli):
    r = chat(cli, globals_=("--timeout", "abc"))
    assert_usage_error(r, "--timeout", "abc")
    assert api.requests == []


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf"])
def test_intern_timeout_env_invalid(api, cli, value):
    r = chat(cli, env={"INTERN_TIMEOUT": value})
    assert_usage_error(r, "INTERN_TIMEOUT")
    assert api.requests == []


@pytest.mark.parametrize("value", ["-1", "x", "1.5"])
def test_max_retries_invalid(api, cli, value):
    r = chat(cli, globals_=("--max-retries", value))
    assert_usage_error(r, "--max-retries")
    r = chat(cli, globals_=(), env={"INTERN_MAX_RETRIES": value})
    assert_usage_error(r, "INTERN_MAX_RETRIES")
    assert api.requests == []


# ====================================================================== connection


@pytest.fixture
def closed_port_url():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return "http://127.0.0.1:{}/v1".format(port)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_connection_refused(cli, closed_port_url, stream):
    r = chat(cli, stream=stream, globals_=("-b", closed_port_url) + NO_RETRY)
    assert r.exit_code == 6, r
    assert r.stdout == ""
    line, hint = error_and_hint(r.stderr)
    assert "refused" in line
    assert closed_port_url.split("//")[1].split("/")[0] in line
    assert hint is not None and "-b" in hint


def test_connection_refused_is_retried(cli, closed_port_url):
    r = chat(cli, globals_=("-b", closed_port_url, "--max-retries", "1"))
    assert r.exit_code == 6
    assert len([line for line in r.stderr.splitlines() if "retrying" in line]) == 1
    error_and_hint(r.stderr, strict=False)


@pytest.mark.parametrize("url", ["notaurl", "ftp://example.com/v1", "http://"])
def test_invalid_base_url_is_a_usage_error(api, cli, url):
    r = chat(cli, globals_=("-b", url) + NO_RETRY)
    assert_usage_error(r)
    assert "retrying" not in r.stderr


# ====================================================================== usage errors


def test_unknown_flag(api, cli):
    r = cli("chat", "create", "--bogus", "-g", "user", "hi")
    assert_usage_error(r, "--bogus")
    assert "chat create --help" in r.stderr
    assert api.requests == []


def test_unknown_global_flag(api, cli):
    r = cli("--bogus", "chat", "create", "-g", "user", "hi")
    assert_usage_error(r, "--bogus")


def test_unknown_command(api, cli):
    r = cli("chat", "destroy")
    assert_usage_error(r, "destroy")


def test_bad_role(api, cli):
    r = cli("chat", "create", "-g", "robot", "hi")
    assert_usage_error(r, "robot")
    assert api.requests == []


@pytest.mark.parametrize("args, word", [(("chat", "create", "-g", "user"), "-g"),
                                        (("chat", "create", "-g", "user", "hi", "-m"), "-m")])
def test_option_missing_its_value(api, cli, args, word):
    r = cli(*args)
    assert_usage_error(r, word)


@pytest.mark.parametrize("flag, value", [("-n", "0"), ("-n", "x"), ("-t", "3"), ("-P", "1.5"), ("-M", "-1")])
def test_bad_numbers(api, cli, flag, value):
    r = cli("chat", "create", flag, value, "-g", "user", "hi")
    assert_usage_error(r, value)
    assert api.requests == []


def test_thinking_with_system_message(api, cli):
    r = cli("chat", "create", "--thinking", "-g", "system", "be brief", "-g", "user", "hi",
            env={"INTERN_API": "intern"})
    assert_usage_error(r, "--thinking", "system")
    assert api.requests == []


def test_image_missing_file(api, cli, tmp_path):
    missing = str(tmp_path / "missing.png")
    r = cli("chat", "create", "-g", "user", "what is this", "--image", missing)
    assert_usage_error(r, missing)
    assert api.requests == []


def test_image_not_an_image(api, cli, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    r = cli("chat", "create", "-g", "user", "what is this", "--image", str(path))
    assert_usage_error(r, "notes.txt")


def test_conversation_invalid_json(api, cli, tmp_path):
    path = tmp_path / "conv.json"
    path.write_text("{not json")
    r = cli("chat", "create", "--conversation", str(path), "-g", "user", "hi")
    assert_usage_error(r, str(path))
    assert path.read_text() == "{not json"  # left alone
    assert api.requests == []


def test_conversation_not_a_list(api, cli, tmp_path):
    path = tmp_path / "conv.json"
    path.write_text('{"role": "user"}')
    r = cli("chat", "create", "--conversation", str(path), "-g", "user", "hi")
    assert_usage_error(r, str(path))


def test_conversation_is_a_directory(api, cli, tmp_path):
    r = cli("chat", "create", "--conversation", str(tmp_path), "-g", "user", "hi")
    assert_usage_error(r)


def test_no_message_and_empty_stdin(api, cli):
    r = cli("chat", "create", input="")
    assert_usage_error(r, "no message")
    assert api.requests == []


def test_tool_choice_without_tools(api, cli):
    r = cli("chat", "create", "-g", "user", "hi", "--tool-choice", "get_weather")
    assert_usage_error(r, "get_weather")


def test_missing_tools_spec(api, cli, tmp_path):
    r = cli("chat", "create", "-g", "user", "hi", "--tools", str(tmp_path / "nope.yaml"))
    assert r.exit_code == 2
    assert "Traceback" not in r.stderr
    assert r.stdout == ""


def test_no_token_for_the_official_service():
    r = invoke(["chat", "create", "-g", "user", "hi"])
    assert r.exit_code == 3, r
    assert r.stdout == ""
    line, hint = error_and_hint(r.stderr)
    assert "token" in line
    assert hint is not None and "INTERN_API_KEY" in hint


# ====================================================================== other commands


def test_models_list_auth_error(api, cli):
    api.add(err_msgcode("A0202", "User authentication failed", 401), path="/v1/models", method="GET")
    r = cli("models", "list", globals_=NO_RETRY)
    assert_error(r, 3, "A0202", "User authentication failed")


def test_api_alias_rejected(api, cli):
    api.add(err_code(-20013, "Requested model does not exist", 400))
    r = cli("api", "chat.completions.create", "-m", "nope", "-g", "user", "hi", globals_=NO_RETRY)
    assert_error(r, 5, -20013, "Requested model does not exist")


# ====================================================================== the token never shows


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_verbose_error_trace_hides_the_token(api, cli, stream):
    api.add(err_msgcode("A0202", "User authentication failed", 401))
    r = chat(cli, stream=stream, globals_=("-v",) + NO_RETRY)  # the fixture checks the token
    assert r.exit_code == 3
    assert r.stdout == ""
    assert "Bearer ***" in r.stderr
    assert "< HTTP 401" in r.stderr
    assert_error(r, 3, "A0202", "User authentication failed", strict=False)


def test_verbose_retries_hide_the_token(api, cli):
    api.add(err_code(-20053, "slow down", 429, RA0))
    api.add(Drop())
    api.add(Stream(stream_chunks(["fine"])))
    r = chat(cli, stream=True, globals_=("-v",))
    assert r.exit_code == 0
    assert r.stdout == "fine\n"
    assert r.stderr.count("> POST") == 3


def test_verbose_stream_error_hides_the_token(api, cli):
    api.add(Stream(stream_chunks(["Hel"])[:1] + [{"code": "A0211", "msg": "Token expired"}], done=False))
    r = chat(cli, stream=True, globals_=("-v",))
    assert r.exit_code == 3
    assert r.stdout == "Hel"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_token_echoed_by_the_server_is_redacted_from_the_error(api, cli, stream):
    # Some gateways echo the credential they refused. The contract (section 3): the token never
    # appears in any error message. The cli fixture fails the test if it reaches stderr.
    api.add(err_msgcode("A0202", "invalid credential: Bearer " + SENTINEL, 401))
    r = chat(cli, stream=stream)
    assert r.exit_code == 3


def test_token_echoed_in_a_stream_event_is_redacted(api, cli):
    api.add(Stream([{"code": "A0202", "msg": "bad token " + SENTINEL}], done=False))
    r = chat(cli, stream=True)
    assert r.exit_code == 3
