"""Unit tests of the transport's pure parts: URL joining, Retry-After, backoff and the retry loop."""

from __future__ import annotations

import email.utils

import pytest

from interncli.errors import NetworkError, RateLimitError, RequestRejected
from interncli.transport import MAX_RETRY_AFTER, backoff_delay, call_with_retries
from interncli.wire import join_url, parse_retry_after, redact_headers


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
