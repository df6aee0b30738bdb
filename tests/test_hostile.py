"""Hostile or broken servers (issue 8): whatever a server sends, interncli's memory stays
bounded, its waits end within --timeout, and it says what was wrong with exit 6, never a
traceback, a hang or a silently cut reply with exit 0.

What these tests rely on, learned from requests 2.3x and urllib3 2.x:
* ``requests`` with ``stream=True`` leaves the body unread; ``Response.content`` would read it
  all into memory, whatever its size (a 300 MB reply took 930 MiB).
* urllib3's ``HTTPResponse.read1(amt)`` returns after one socket read; ``read_chunked(amt)``
  yields at most ``amt`` bytes of a chunk at a time, but without ``amt`` it reads a whole chunk,
  however large its header says it is.
* ``decode_content=True`` decompresses gzip and deflate (and "gzip, gzip" chains); since urllib3
  2.6 at most ``amt`` decoded bytes per call, keeping the rest of the compressed input for the
  next call. Before 2.6 each piece was expanded whole: 2 MB of gzip became 2 GiB at once
  (CVE-2025-66471; Brotli until 2.7, CVE-2026-44432). Hence urllib3>=2.7 in setup.cfg.
* the ``timeout`` given to requests is applied to each socket read (and the connect), never to
  a whole body: a server sending one byte a second, or a keep-alive comment a second, never
  times out. Worse, urllib3 reads a chunk (``_safe_read``), a chunk-size line and the trailers
  (``readline``) in loops of socket reads, so even a per-read timeout set to what is left
  cannot bound them. interncli's one deadline thread (interncli.deadlines) shuts the socket
  (for an HTTPS proxy's TLS-in-TLS tunnel, the socket under it) down at the deadline, which
  makes the blocked read return at once.
* http.client reads the status line and headers with ``readline``, each ``recv`` under that
  per-read timeout, and no socket is reachable through requests before ``Session.request``
  returns: urllib3's connection classes, subclassed, hand the socket over as it is made
  (``_new_conn``, before TLS and a proxy's CONNECT) or reused from the pool (``request``).
* urllib3 retries nothing here (requests' default adapter gives it ``Retry(0, read=False)``):
  every retry is interncli's.
* with ``trust_env`` on and no ``auth`` given, requests reads ``~/.netrc`` and its Basic
  credentials replace an Authorization header set by the caller.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from tests import hostile
from tests.apiserver import MODELS_PATH, Hang, Json, Raw, Stream, stream_chunks
from tests.conftest import SENTINEL, invoke
from tests.hostilecli import HUNG, MEMORY_LIMIT_KIB, NO_RETRY, chat, error_line, run_measured

LONG_LINE = "one line of the reply stream is longer than 1 MiB"
# Each hostile mode: the reply, whether to ask for a stream, and what the message must say.
MODES = {
    "300 MB reply": (lambda: hostile.big_body(), False, "larger than 4 MiB"),
    "gzip bomb": (lambda: hostile.bomb_reply("gzip"), False, "larger than 4 MiB"),
    "deflate bomb": (lambda: hostile.bomb_reply("deflate"), False, "larger than 4 MiB"),
    "gzip bomb, chunked": (lambda: hostile.bomb_reply("gzip", "chunked"), False, "larger than 4 MiB"),
    "gzip bomb in a chunked stream": (lambda: hostile.bomb_reply("gzip", "chunked", stream=True), True,
                                      LONG_LINE),
    "deflate bomb in a close-delimited stream": (lambda: hostile.bomb_reply("deflate", "close", stream=True),
                                                 True, LONG_LINE),
    "endless line": (lambda: hostile.endless_line(), True, LONG_LINE),
    "endless line, close-delimited": (lambda: hostile.Endless(hostile.repeat(b"data: ", b"a" * 65536),
                                                              framing="close"), True, LONG_LINE),
    "one chunk claiming 1 GiB": (lambda: hostile.huge_chunk(), True, LONG_LINE),
    "endless event": (lambda: hostile.endless_event(), True, "one event of the reply stream is longer than 1 MiB"),
    "endless non-SSE lines": (lambda: hostile.endless_strays(), True, "more than 1 MiB that is not an event"),
    "endless reply": (lambda: hostile.endless_reply(), True, "the reply is larger than 4 MiB"),
    "endless tool calls": (lambda: hostile.endless_calls(), True, "more than 128 tool calls"),
    "JSON that parses 25 times larger": (lambda: hostile.json_amplifier(), False, "more than 100000 JSON values"),
}


@pytest.mark.parametrize("mode", list(MODES))
def test_a_hostile_reply_ends_in_exit_6_naming_the_limit(cli, api, mode):
    make, stream, words = MODES[mode]
    api.add(make())
    result = chat(cli, stream)
    assert result.exit_code == 6, result
    assert words in error_line(result.stderr)
    assert len(api.requests) == 1  # too large is not retried: it would be again


@pytest.mark.parametrize("make, words", [(hostile.big_body, "larger than 4 MiB"),
                                         (lambda: hostile.bomb_reply("gzip"), "larger than 4 MiB"),
                                         pytest.param(hostile.Drip, "did not arrive within --timeout 1s",
                                                      marks=pytest.mark.integration)])
def test_the_model_list_is_held_to_the_same_limits(cli, api, make, words):
    api.add(make(), path=MODELS_PATH, method="GET")
    result = cli("models", "list", globals_=("--timeout", "1") + NO_RETRY)
    assert result.exit_code == 6, result
    assert words in error_line(result.stderr)


@pytest.mark.integration
@pytest.mark.skipif(not hasattr(os, "wait4"), reason="needs os.wait4")
@pytest.mark.parametrize("mode", list(MODES))
def test_the_installed_command_stays_within_100_MiB_against(exe, api, tmp_path, mode):
    make, stream, words = MODES[mode]
    api.add(make())
    args = ["-b", api.base_url, "-k", SENTINEL, *NO_RETRY, "chat", "create", "-g", "user", "x"]
    code, stderr, peak = run_measured(exe, args + (["--stream"] if stream else []), tmp_path)
    assert code == 6, stderr
    assert words in error_line(stderr)
    assert peak < MEMORY_LIMIT_KIB, "peak RSS {} MiB".format(peak // 1024)


@pytest.mark.integration
@pytest.mark.skipif(not hasattr(os, "wait4"), reason="needs os.wait4")
@pytest.mark.parametrize("stream", [False, True])
def test_a_well_formed_reply_near_the_limits_stays_within_100_MiB(exe, api, tmp_path, stream):
    # The largest reply accepted, printed and saved in a conversation: the limits leave room
    # for what the command itself does with it. Emoji make every string 4 bytes a character:
    # 4 MB of them (under 4 MiB), in one body or in a stream of 250 pieces.
    if stream:
        api.add(Stream(stream_chunks(["😀" * 4000] * 250)))
    else:
        api.add(Json({"choices": [{"index": 0, "message": {"role": "assistant", "content": "😀" * 1_000_000},
                                   "finish_reason": "stop"}]}))
    args = ["-b", api.base_url, "-k", SENTINEL, "chat", "create", "-g", "user", "x",
            "--conversation", str(tmp_path / "c.json")] + (["--stream"] if stream else [])
    code, stderr, peak = run_measured(exe, args, tmp_path)
    assert code == 0, stderr
    assert (tmp_path / "c.json").stat().st_size > 4_000_000
    assert peak < MEMORY_LIMIT_KIB, "peak RSS {} MiB".format(peak // 1024)


# ---------------------------------------------------------------------------- time


@pytest.mark.integration
def test_timeout_bounds_a_whole_reply_that_drips(cli, api):
    # A byte every 0.2 s: each socket read succeeds well within the timeout, forever.
    api.add(hostile.Drip(interval=0.2))
    start = time.monotonic()
    result = chat(cli, False, "--timeout", "1", *NO_RETRY)
    assert time.monotonic() - start < HUNG
    assert result.exit_code == 6, result
    assert "did not arrive within --timeout 1s" in error_line(result.stderr)


@pytest.mark.integration
@pytest.mark.parametrize("phase", ["data", "size", "trailer"])
@pytest.mark.parametrize("stream", [False, True])
def test_timeout_bounds_a_chunked_body_that_drips(cli, api, phase, stream):
    # urllib3 reads a chunk's data, its size line and the trailers with loops of socket reads:
    # each read is timed, the loop is not. A watchdog ends the wait at the deadline.
    api.add(hostile.DripChunked(phase, stream, interval=0.2))
    start = time.monotonic()
    result = chat(cli, stream, "--timeout", "1", *NO_RETRY)
    assert time.monotonic() - start < HUNG
    assert result.exit_code == 6, result
    words = "no content came for 1s" if stream else "did not arrive within --timeout 1s"
    assert words in error_line(result.stderr)


@pytest.mark.integration
@pytest.mark.parametrize("stream", [False, True])
def test_timeout_bounds_a_status_line_and_headers_that_drip(cli, api, stream):
    api.add(hostile.DripHeaders(interval=0.2))
    start = time.monotonic()
    result = chat(cli, stream, "--timeout", "1", *NO_RETRY)
    assert time.monotonic() - start < HUNG
    assert result.exit_code == 6, result
    assert "headers were still arriving" in error_line(result.stderr)


@pytest.mark.integration
@pytest.mark.parametrize("beat", [b": keep-alive\n\n", b"data:\n\n", b"\n\n", hostile.EMPTY_DELTA],
                         ids=["comment", "empty event", "blank lines", "empty delta"])
def test_keep_alives_do_not_reset_the_stream_timeout(cli, api, beat):
    api.add(hostile.KeepAlive(beat, interval=0.2))
    start = time.monotonic()
    result = chat(cli, True, "--timeout", "1", *NO_RETRY)
    assert time.monotonic() - start < HUNG
    assert result.exit_code == 6, result
    assert result.stdout == "Hel"  # what was printed is kept
    assert "no content came for 1s" in error_line(result.stderr)


@pytest.mark.integration
def test_content_resets_the_stream_timeout(cli, api):
    # Eight pieces 0.3 s apart: 2.4 s in all, more than --timeout, but no wait is longer than it.
    api.add(Stream(stream_chunks(list("abcdefgh")), delay=0.3))
    result = chat(cli, True, "--timeout", "1", *NO_RETRY)
    assert (result.exit_code, result.stdout) == (0, "abcdefgh\n"), result


@pytest.mark.integration
def test_time_spent_writing_to_a_full_pipe_is_not_a_stall(exe, api):
    # stdout is a pipe nobody reads for 2.5 s (a pager the user has not scrolled): the writes
    # block for longer than --timeout, but that wait is ours, not the server's.
    pieces = ["x" * 1024] * 400
    api.add(Stream(stream_chunks(pieces)))
    proc = subprocess.Popen([exe, "-b", api.base_url, "-k", SENTINEL, "--timeout", "1", *NO_RETRY, "chat", "create",
                             "--stream", "-g", "user", "x"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(2.5)
        out, err = proc.communicate(timeout=HUNG)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert out == b"x" * 1024 * 400 + b"\n"


@pytest.mark.integration
@pytest.mark.parametrize("reply", [Hang(5), hostile.KeepAlive(first=False, interval=0.2, seconds=5)],
                         ids=["before the status line", "after the status line"])
def test_a_read_timeout_is_never_retried(cli, api, reply):
    # The rule: --timeout is the wait the user accepted, so a read timeout ends the run with
    # exit 6 before the status line as after it (connect failures are still retried).
    api.add(reply)
    result = cli("chat", "create", "-g", "user", "x", "--stream", globals_=("--timeout", "0.5"))
    assert result.exit_code == 6, result
    assert "retrying" not in result.stderr
    assert len(api.requests) == 1


# ---------------------------------------------------------------------------- shape


@pytest.mark.parametrize("event", ['{"status": "overloaded"}', "[1, 2]", "5", '"text"', "null"])
def test_a_stream_object_that_is_neither_chunk_nor_error_is_malformed(cli, api, event):
    api.add(Stream(stream_chunks(["Hel"])[:1] + ["data: " + event + "\n\n"] + stream_chunks(["lo"])[1:]))
    result = chat(cli, True)
    assert result.exit_code == 6, result
    assert "malformed" in error_line(result.stderr)


def test_a_usage_only_last_chunk_is_fine(cli, api):
    usage = '{"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}'
    api.add(Stream(stream_chunks(["Hel", "lo"]) + ["data: " + usage + "\n\n"]))
    assert chat(cli, True).exit_code == 0


@pytest.mark.parametrize("body, words", [
    (b'{"choices": [{"index": 0, "message": {"content": 0}, "finish_reason": "stop"}]}',
     "the reply's content is a number, not text"),
    (b'{"choices": [{"index": 0, "message": {"content": false}, "finish_reason": "stop"}]}',
     "the reply's content is true/false, not text"),
    (b'{"choices": [{"index": true, "message": {"content": "x"}, "finish_reason": "stop"}]}',
     "the reply's index is true/false, not a number"),
    (b'{"choices": [{"index": 0, "message": {"content": "x"}, "finish_reason": ["stop"]}]}',
     "the reply's finish_reason is a list, not text"),
    (b'{"choices": [{"index": 0, "message": {"content": "x"}, "finish_reason": "stop"}], "n": 1e999}',
     "the reply holds a number too large for JSON (1e999)"),
    (b'{"choices": [{"index": 0, "message": {"content": "x"}, "finish_reason": "stop"}], "n": NaN}',
     "the reply holds NaN, which is not a JSON number"),
    (b'{"choices": [], "n": ' + b"9" * 5000 + b"}", "the reply holds a number with 5000 digits"),
    (b'{"choices": [{"index": 0, "message": {"content": "caf\xff"}}]}',
     "the reply is not valid UTF-8 (byte 0xff at offset 53)"),
])
def test_a_reply_says_what_is_wrong_with_it(cli, api, body, words):
    api.add(Raw(body, content_type="application/json"))
    result = chat(cli, False)
    assert result.exit_code == 1, result
    assert words in error_line(result.stderr)
    assert result.stdout == ""


@pytest.mark.parametrize("delta, words", [
    ('{"content": 0}', "a chunk's content is a number, not text"),
    ('{"content": "x", "reasoning_content": {}}', "a chunk's reasoning_content is an object, not text"),
])
def test_a_chunk_says_what_is_wrong_with_it(cli, api, delta, words):
    api.add(Stream(['data: {"choices": [{"index": 0, "delta": ' + delta + '}]}\n\n']))
    result = chat(cli, True)
    assert result.exit_code == 6, result
    assert words in error_line(result.stderr)


def test_a_number_too_large_in_a_stream_is_named(cli, api):
    api.add(Stream(['data: {"choices": [{"index": 0, "delta": {"content": "x"}}], "n": -1e999}\n\n']))
    result = chat(cli, True)
    assert result.exit_code == 6, result
    assert "a number too large for JSON (-1e999)" in error_line(result.stderr)


# ---------------------------------------------------------------------------- netrc, CA bundle


def write_netrc(home) -> None:
    path = home / ".netrc"
    path.write_text("machine 127.0.0.1 login netrc-user password netrc-secret\n"
                    "machine intern.test login netrc-user password netrc-secret\n"
                    "default login netrc-user password netrc-secret\n")
    path.chmod(0o600)


def test_netrc_never_replaces_the_token(cli, api, isolated_env):
    write_netrc(isolated_env)
    assert chat(cli, False).exit_code == 0
    assert api.last.headers["authorization"] == "Bearer " + SENTINEL


def test_netrc_is_not_consulted_without_a_token(api, isolated_env):
    # A private server without a token: requests would send the netrc password as Basic auth.
    write_netrc(isolated_env)
    result = invoke(["-b", api.base_url, "chat", "create", "-g", "user", "x"])
    assert result.exit_code == 0, result
    assert "authorization" not in api.last.headers


def test_netrc_is_not_consulted_through_an_environment_proxy_either(api, isolated_env, monkeypatch):
    # trust_env stays on: HTTP_PROXY is still used while netrc is not.
    write_netrc(isolated_env)
    monkeypatch.setenv("HTTP_PROXY", api.url)
    monkeypatch.setenv("INTERN_ALLOW_HTTP", "1")  # intern.test is not this machine: plain http needs the opt-in
    result = invoke(["-b", "http://intern.test/v1", "-k", SENTINEL, "chat", "create", "-g", "user", "x"])
    assert result.exit_code == 0, result
    assert api.last.path == "http://intern.test/v1/chat/completions"
    assert api.last.headers["authorization"] == "Bearer " + SENTINEL


@pytest.mark.parametrize("content, words", [
    (b"not a certificate\n", "holds no PEM certificate"),
    (b"", "holds no PEM certificate"),
    (b"\x30\x82\x01\x0a\x02\x82\x01\x01\x00", "holds no PEM certificate"),
    (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "holds no PEM certificate"),
])
@pytest.mark.parametrize("how", ["flag", "env"])
def test_a_ca_bundle_that_is_not_pem_is_a_usage_error(tmp_path, monkeypatch, content, words, how):
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(content)
    flag = ["--ca-bundle", str(bundle)] if how == "flag" else []
    if how == "env":
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    # Over https (nothing listens on port 9: a connection attempt would be exit 6, not 2).
    result = invoke(["-b", "https://127.0.0.1:9/v1", "-k", SENTINEL, *flag, "chat", "create", "-g", "user", "x"])
    assert result.exit_code == 2, result
    assert words in error_line(result.stderr) and "hint:" in result.stderr


def test_a_ca_bundle_is_only_parsed_when_tls_is_used(api, tmp_path):
    # Parsing the system bundle costs tens of milliseconds a run; a plain-http server never
    # reads it (requests does not either), so only its existence is checked.
    bundle = tmp_path / "ca.pem"
    bundle.write_text("not a certificate\n")
    result = invoke(["-b", api.base_url, "-k", SENTINEL, "--ca-bundle", str(bundle), "chat", "create",
                     "-g", "user", "x"])
    assert result.exit_code == 0, result
    proxied = invoke(["-b", api.base_url, "-k", SENTINEL, "--proxy", "https://127.0.0.1:9", "--ca-bundle", str(bundle),
                      "chat", "create", "-g", "user", "x"])
    assert proxied.exit_code == 2 and "holds no PEM certificate" in error_line(proxied.stderr)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_ca_bundle_is_a_usage_error(tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("x")
    bundle.chmod(0)
    result = invoke(["-b", "https://127.0.0.1:9/v1", "-k", SENTINEL, "--ca-bundle", str(bundle), "chat", "create",
                     "-g", "user", "x"])
    assert result.exit_code == 2 and "cannot read CA bundle" in error_line(result.stderr)


# ---------------------------------------------------------------------------- -v traces


def test_verbose_traces_escape_what_the_server_sent(cli, api):
    # U+009B (CSI) may stand raw in a JSON string; ESC may not, so it comes in a header.
    body = b'{"choices": [{"index": 0, "message": {"content": "ok"}, "finish_reason": "stop"}], "x": "\xc2\x9b2J"}'
    api.add(hostile.Verbatim(
        b"HTTP/1.1 200 OK\x1b]0;title\x07\r\n"
        b"Content-Type: application/json\r\n"
        b"X-Evil: \x1b]52;c;cHduZWQ=\x07\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body))
    result = cli("chat", "create", "-g", "user", "x", globals_=("-v",))
    assert result.exit_code == 0, result
    assert not any(c in result.stderr for c in "\x1b\x07\x9b")
    assert "OK\\x1b]0;title\\x07" in result.stderr
    assert "X-Evil: \\x1b]52;c;cHduZWQ=\\x07" in result.stderr
    assert '"x": "\\x9b2J"' in result.stderr


def test_verbose_stream_traces_escape_each_line(cli, api):
    # json.dumps escapes ESC inside strings, but a comment line carries it raw.
    api.add(Stream([b": \x1b]0;pwned\x07\n\n"] + stream_chunks(["Hel", "lo"])))
    result = cli("chat", "create", "-g", "user", "x", "--stream", globals_=("-v",))
    assert result.exit_code == 0, result
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert "< : \\x1b]0;pwned\\x07" in result.stderr


def test_verbose_does_not_hold_an_endless_line(cli, api):
    api.add(hostile.endless_line())
    result = cli("chat", "create", "-g", "user", "x", "--stream", globals_=("-v",) + NO_RETRY)
    assert result.exit_code == 6, result
    assert "< (a line longer than 1 MiB, not shown)" in result.stderr
    assert len(result.stderr) < 2 * hostile.MiB
