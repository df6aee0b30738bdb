"""Retries: what is retried (429, 5xx, drops, streams cut before content) and what never is,
--max-retries and INTERN_MAX_RETRIES, Retry-After and the retry notices (interface.md section 6)."""

from __future__ import annotations

import re

import pytest

from tests.apiserver import (
    Completion,
    Drop,
    Raw,
    Stream,
    err_code,
    err_detail,
    err_msgcode,
    err_openai,
    stream_chunks,
)
from tests.clierrors import (
    ERROR_PREFIX,
    NO_RETRY,
    RA0,
    assert_error,
    chat,
    error_and_hint,
)

# One server for the whole module (see conftest.api); each test still starts with no queued
# reply and no recorded request.
SHARED_SERVER = True


# ====================================================================== retries


def test_429_then_success_is_retried(api, cli, sleeps):
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
    assert sleeps.delays == [0.0]


def test_retry_after_is_honoured(api, cli, sleeps):
    api.add(err_code(-20053, "Request rate over limit", 429, {"Retry-After": "1"}))
    api.add(Completion("later"))
    r = chat(cli, globals_=())
    assert r.exit_code == 0, r
    assert r.stdout == "later\n"
    assert "retrying in 1.0s (1 of 2)" in r.stderr
    # The wait asked for is the server's, exactly (no jitter, no backoff on top).
    assert sleeps.delays == [1.0]
    assert len(api.calls()) == 2


@pytest.mark.parametrize("value", ["2.5", "120"])
def test_retry_after_up_to_the_limit_is_waited_for(api, cli, sleeps, value):
    api.add(err_code(-20053, "slow down", 429, {"Retry-After": value}))
    api.add(Completion("later"))
    r = chat(cli, globals_=())
    assert r.exit_code == 0, r
    assert sleeps.delays == [float(value)]


def test_a_retry_after_beyond_the_limit_is_reported_not_waited_for(api, cli, sleeps):
    api.add(err_code(-20053, "Request rate over limit", 429, {"Retry-After": "121"}))
    api.add(Completion("never seen"))
    r = chat(cli, globals_=())
    assert_error(r, 4, -20053, "Request rate over limit")
    assert sleeps.delays == []
    assert len(api.calls()) == 1


def test_503_then_success_is_retried(api, cli):
    api.add(err_openai("overloaded", "server_busy", 503, RA0))
    api.add(Completion("fine"))
    r = chat(cli, globals_=())
    assert r.exit_code == 0, r
    assert r.stdout == "fine\n"
    assert "retrying" in r.stderr and "overloaded" in r.stderr
    assert len(api.calls()) == 2


def test_500_without_retry_after_is_retried_with_backoff(api, cli, sleeps):
    api.add(err_code("E1", "internal", 500))
    api.add(Completion("fine"))
    r = chat(cli, globals_=("--max-retries", "1"))
    assert r.exit_code == 0, r
    assert r.stdout == "fine\n"
    assert len(api.calls()) == 2
    # The first backoff: 0.5 s with jitter down to half of it.
    assert len(sleeps.delays) == 1 and 0.25 <= sleeps.delays[0] <= 0.5, sleeps.delays


def test_backoff_doubles_and_the_notices_announce_the_waits(api, cli, sleeps):
    api.add(err_code("E1", "internal", 500), times=4)
    api.add(Completion("fine"))
    r = chat(cli, globals_=("--max-retries", "4"))
    assert r.exit_code == 0, r
    ceilings = [0.5, 1.0, 2.0, 4.0]
    assert len(sleeps.delays) == 4
    for delay, ceiling in zip(sleeps.delays, ceilings):
        assert ceiling / 2 <= delay <= ceiling, sleeps.delays
    announced = [float(d) for d in re.findall(r"retrying in ([0-9.]+)s", r.stderr)]
    assert announced == [round(d, 1) for d in sleeps.delays], r.stderr


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


def test_retries_exhausted(api, cli, sleeps):
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
    assert sleeps.delays == [0.0, 0.0]  # no wait after the last attempt


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
