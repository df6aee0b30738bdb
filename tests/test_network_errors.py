"""Timeouts and connection errors: exit 6 with the address or the timeout named
(interface.md section 6)."""

from __future__ import annotations

import threading
import time

import pytest

from tests.apiserver import (
    Hang,
    Stream,
    stream_chunks,
)
from tests.clierrors import (
    NO_RETRY,
    chat,
    error_and_hint,
)

# One server for the whole module (see conftest.api); each test still starts with no queued
# reply and no recorded request.
SHARED_SERVER = True


# ====================================================================== timeouts


@pytest.mark.integration
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


@pytest.mark.integration
def test_timeout_from_env(api, cli):
    api.add(Hang(3))
    r = chat(cli, env={"INTERN_TIMEOUT": "0.5"})
    assert r.exit_code == 6
    assert "0.5s" in error_and_hint(r.stderr)[0]


@pytest.mark.integration
def test_timeout_mid_stream_keeps_output(api, cli):
    release = threading.Event()
    api.add(Stream(stream_chunks(["Hel", "lo"]), hold_after=1, release=release, hold_timeout=3))
    r = chat(cli, stream=True, globals_=("--timeout", "0.5"))
    release.set()
    assert r.exit_code == 6, r
    assert r.stdout == "Hel"
    assert "stream" in error_and_hint(r.stderr)[0]
    assert len(api.calls()) == 1



# ====================================================================== connection


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
