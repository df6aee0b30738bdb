"""Errors inside a stream and streams cut, malformed or badly framed: what was printed stays,
the error line and exit code follow (interface.md section 6)."""

from __future__ import annotations

import json

import pytest

from tests.apiserver import (
    Raw,
    Stream,
    stream_chunks,
)
from tests.clierrors import (
    KNOWN,
    SHAPE_NAMES,
    assert_error,
    body_of,
    chat,
    error_and_hint,
    json_error,
)

# One server for the whole module (see conftest.api); each test still starts with no queued
# reply and no recorded request.
SHARED_SERVER = True


# ====================================================================== errors inside a stream


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



# ====================================================================== streams cut or malformed after content


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
