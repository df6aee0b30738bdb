"""Unit tests of interncli.transport: URL joining, Retry-After, backoff and the retry loop, and
Transport itself against the real test server on 127.0.0.1 (no command line involved)."""

from __future__ import annotations

import email.utils
import threading

import pytest

from interncli.errors import AuthError, NetworkError, RateLimitError, ReplyTooLarge, RequestRejected
from interncli.transport import MAX_RETRY_AFTER, Transport, backoff_delay, call_with_retries
from interncli.wire import join_url, parse_retry_after, redact_headers
from tests.apiserver import Json, Raw, err_code, err_msgcode


@pytest.mark.parametrize("base", ["https://h/api/v1", "https://h/api/v1/", "https://h/api/v1//"])
def test_base_url_with_or_without_trailing_slash(base):
    assert join_url(base, "chat/completions") == "https://h/api/v1/chat/completions"


def test_retry_after_seconds_and_http_date():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("0") == 0.0
    now = 1_700_000_000.0
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, abs=1)
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_backoff_grows_exponentially_with_jitter_and_honours_retry_after():
    assert backoff_delay(3, retry_after=4.0) == 4.0
    lows = [backoff_delay(i, None, rand=lambda: 0.0) for i in range(4)]
    highs = [backoff_delay(i, None, rand=lambda: 1.0) for i in range(4)]
    assert lows == [0.25, 0.5, 1.0, 2.0] and highs == [0.5, 1.0, 2.0, 4.0]
    assert backoff_delay(30, None, rand=lambda: 1.0) == 30.0  # capped


def _failing(errors, result="ok"):
    calls = []

    def attempt():
        calls.append(1)
        if len(calls) <= len(errors):
            raise errors[len(calls) - 1]
        return result

    return attempt, calls


def test_retries_then_succeeds_and_notifies_each_retry():
    attempt, calls = _failing([RateLimitError("slow", retryable=True, retry_after=0.0),
                               NetworkError("down", retryable=True)])
    notices, sleeps = [], []
    assert call_with_retries(attempt, 2, lambda e, d, n: notices.append(n), sleep=sleeps.append) == "ok"
    assert len(calls) == 3 and notices == [1, 2] and sleeps[0] == 0.0


def test_gives_up_after_max_retries():
    attempt, calls = _failing([RateLimitError("slow", retryable=True, retry_after=0.0)] * 5)
    with pytest.raises(RateLimitError):
        call_with_retries(attempt, 2, lambda *a: None, sleep=lambda s: None)
    assert len(calls) == 3


def test_non_retryable_errors_and_vetoed_retries_raise_at_once():
    attempt, calls = _failing([RequestRejected("bad")])
    with pytest.raises(RequestRejected):
        call_with_retries(attempt, 5, lambda *a: None, sleep=lambda s: None)
    attempt, calls2 = _failing([NetworkError("cut", retryable=True)])
    with pytest.raises(NetworkError):
        call_with_retries(attempt, 5, lambda *a: None, may_retry=lambda e: False, sleep=lambda s: None)
    assert len(calls) == 1 and len(calls2) == 1


def test_a_retry_after_longer_than_the_limit_is_reported_not_waited_for():
    attempt, calls = _failing([RateLimitError("slow", retryable=True, retry_after=MAX_RETRY_AFTER + 1)])
    with pytest.raises(RateLimitError):
        call_with_retries(attempt, 2, lambda *a: None, sleep=lambda s: pytest.fail("slept"))
    assert len(calls) == 1


def test_authorization_is_redacted():
    headers = redact_headers({"Authorization": "Bearer abc", "Accept": "x"})
    assert headers == {"Authorization": "Bearer ***", "Accept": "x"}


# ------------------------------------------------------------------------- Transport

TOKEN = "sk-transport-unit-0123456789"
SHARED_SERVER = True  # one server for the module (see conftest.api)


def test_send_returns_the_reply_and_sends_the_token_in_the_header_only(api):
    api.add(Json({"ok": True}))
    transport = Transport(api.base_url, token=TOKEN, timeout=5, environ={})
    response = transport.send("POST", "chat/completions", {"model": "m"})
    try:
        assert response.status == 200 and response.content_type == "application/json"
        assert response.read() == b'{"ok": true}'
    finally:
        response.close()
    (request,) = api.requests
    assert request.headers["authorization"] == "Bearer " + TOKEN
    assert request.json == {"model": "m"} and TOKEN.encode() not in request.body


def test_a_request_starts_no_thread_of_its_own(api):
    # The deadlines of every request are kept by one thread per process (interncli.deadlines):
    # a thread per request cost chat batch a third of its speed at concurrency 64.
    transport = Transport(api.base_url, token=None, timeout=5, environ={})
    for _ in range(6):
        api.add(Json({"ok": True}))
    transport.send("POST", "chat/completions", {"model": "m"}).read()  # may start the deadline thread
    before = threading.active_count()
    for _ in range(5):
        response = transport.send("POST", "chat/completions", {"model": "m"})
        assert threading.active_count() == before
        assert response.read() == b'{"ok": true}'
    assert threading.active_count() == before


def test_an_error_status_raises_the_mapped_error_with_its_retry_after(api):
    api.add(err_code(-20053, "slow down", 429, {"Retry-After": "3"}))
    with pytest.raises(RateLimitError) as caught:
        Transport(api.base_url, token=TOKEN, timeout=5, environ={}).send("POST", "chat/completions", {})
    assert caught.value.retry_after == 3.0 and caught.value.retryable
    assert caught.value.http_status == 429


def test_an_auth_error_is_not_retryable(api):
    api.add(err_msgcode("A0202", "User authentication failed", 401))
    with pytest.raises(AuthError) as caught:
        Transport(api.base_url, token=TOKEN, timeout=5, environ={}).send("POST", "chat/completions", {})
    assert not caught.value.retryable


def test_a_redirect_is_reported_not_followed(api):
    api.add(Raw("", 307, headers={"Location": "http://127.0.0.1:9/elsewhere"}))
    with pytest.raises(RequestRejected) as caught:
        Transport(api.base_url, token=TOKEN, timeout=5, environ={}).send("POST", "chat/completions", {})
    assert "http://127.0.0.1:9/elsewhere" in caught.value.message
    assert len(api.requests) == 1  # nothing was sent to where it points


def test_a_body_over_the_limit_is_refused_as_too_large(api):
    api.add(Raw(b"x" * 2000, 200, "application/json"), path="/v1/models", method="GET")
    response = Transport(api.base_url, token=TOKEN, timeout=5, environ={}).send("GET", "models")
    try:
        with pytest.raises(ReplyTooLarge) as caught:
            response.read(limit=1000)
    finally:
        response.close()
    assert not caught.value.retryable


def test_a_refused_connection_is_a_retryable_network_error(closed_port_url):
    with pytest.raises(NetworkError) as caught:
        Transport(closed_port_url, token=TOKEN, timeout=5, environ={}).send("GET", "models")
    assert caught.value.retryable and "refused" in caught.value.message


def test_the_trace_shows_the_exchange_with_the_token_redacted(api):
    api.add(Json({"echo": "token " + TOKEN}))
    lines = []
    response = Transport(api.base_url, token=TOKEN, timeout=5, environ={}, trace=lines.append).send(
        "POST", "chat/completions", {"note": TOKEN})
    try:
        response.read()
    finally:
        response.close()
    text = "\n".join(lines)
    assert lines[0] == "> POST {}/chat/completions".format(api.base_url)
    assert "> Authorization: Bearer ***" in lines and "< HTTP 200 OK" in lines
    assert TOKEN not in text and text.count("***") >= 3
