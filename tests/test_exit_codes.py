"""How an error reply of the API becomes the error line, its hint and the exit code: the
four error shapes at every status, the seed table of codes, other commands (interface.md section 6)."""

from __future__ import annotations

import json

import pytest

from tests.apiserver import (
    err_code,
    err_detail,
    err_msgcode,
)
from tests.clierrors import (
    ERROR_PREFIX,
    KNOWN,
    NO_RETRY,
    SHAPE_NAMES,
    SHAPES,
    assert_error,
    chat,
    error_and_hint,
)

# One server for the whole module (see conftest.api); each test still starts with no queued
# reply and no recorded request.
SHARED_SERVER = True


# ====================================================================== error shapes × statuses


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



# ====================================================================== the seed table end to end


SEED = [("-10002", 5), ("-20004", 3), ("-20013", 5), ("-20018", 5), ("-20035", 3), ("-20053", 4),
        ("A0202", 3), ("A0211", 3), ("C1114", 3)]


@pytest.mark.parametrize("code, exit_code", SEED)
def test_every_seed_code_end_to_end(api, cli, code, exit_code):
    value = int(code) if code.startswith("-") else code
    api.add(err_code(value, "message for " + code))
    r = chat(cli)
    assert_error(r, exit_code, value, "message for " + code)



# ====================================================================== other commands


def test_models_list_auth_error(api, cli):
    api.add(err_msgcode("A0202", "User authentication failed", 401), path="/v1/models", method="GET")
    r = cli("models", "list", globals_=NO_RETRY)
    assert_error(r, 3, "A0202", "User authentication failed")


def test_api_alias_rejected(api, cli):
    api.add(err_code(-20013, "Requested model does not exist", 400))
    r = cli("api", "chat.completions.create", "-m", "nope", "-g", "user", "hi", globals_=NO_RETRY)
    assert_error(r, 5, -20013, "Requested model does not exist")
