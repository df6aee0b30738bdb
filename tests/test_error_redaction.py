"""The token never shows in an error: -v traces of failures and retries, and a token the
server echoes back (interface.md sections 3 and 6)."""

from __future__ import annotations

import pytest

from tests.apiserver import (
    Drop,
    Stream,
    err_code,
    err_msgcode,
    stream_chunks,
)
from tests.clierrors import (
    NO_RETRY,
    RA0,
    assert_error,
    chat,
)
from tests.conftest import SENTINEL

# One server for the whole module (see conftest.api); each test still starts with no queued
# reply and no recorded request.
SHARED_SERVER = True


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
