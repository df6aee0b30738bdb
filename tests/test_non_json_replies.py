"""Replies that are not the JSON the API documents (HTML from a proxy, empty bodies, other JSON):
an error line quoting the start of the body (interface.md section 6)."""

from __future__ import annotations

import pytest

from tests.apiserver import (
    Json,
    Raw,
    html_error,
)
from tests.clierrors import (
    RA0,
    chat,
    error_and_hint,
)

# One server for the whole module (see conftest.api); each test still starts with no queued
# reply and no recorded request.
SHARED_SERVER = True


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
