"""--json errors: stderr is one JSON error object with code, message, status and exit code
(interface.md section 6)."""

from __future__ import annotations

import json

import pytest

from tests.apiserver import (
    Stream,
    err_code,
    html_error,
    stream_chunks,
)
from tests.clierrors import (
    NO_RETRY,
    RA0,
    SHAPE_NAMES,
    SHAPES,
    chat,
    json_error,
)

# One server for the whole module (see conftest.api); each test still starts with no queued
# reply and no recorded request.
SHARED_SERVER = True


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
