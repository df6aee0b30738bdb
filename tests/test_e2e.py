"""End-to-end tests: the INSTALLED ``interncli`` command, run in a subprocess against the real
test server, with real pipes, signals, ``bash``, ``jq``, proxies and TLS.

What only a real process shows: that streamed text is flushed piece by piece through requests
and urllib3 (both HTTP framings), that ``| head`` and Ctrl-C end quietly with the right exit
codes, that the console script and ``python -m`` both work, that proxies and CA bundles from
flags and the environment reach requests, and that the token never leaks into any output.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from importlib import metadata as _metadata
from typing import Callable, Dict, List, Optional, Sequence

import pytest

from tests.apiserver import Completion, Hang, Stream, err_code, stream_chunks
from tests.conftest import SENTINEL, wait_until
from tests.tls import TLSAPIServer, make_self_signed_cert

pytestmark = pytest.mark.integration


PIECES = ["Hello", ", wor", "ld!"]
FULL = "".join(PIECES)
FIRST_PIECE_DEADLINE = 5.0
PROCESS_TIMEOUT = 20.0


# ------------------------------------------------------------------------------ helpers




def _env(**extra: str) -> Dict[str, str]:
    """The environment of a run: the (isolated) test environment, the sentinel token, and no
    PYTHONUNBUFFERED, so that only interncli's own flushes can make output arrive early."""
    env = dict(os.environ)
    env.pop("PYTHONUNBUFFERED", None)
    env["INTERN_API_KEY"] = SENTINEL
    env.update(extra)
    return env


def _no_leak(*texts) -> None:
    for text in texts:
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        assert SENTINEL not in (text or ""), "the API token leaked into the output"


def run(exe: str, args: Sequence[str], env: Optional[Dict[str, str]] = None,
        input: Optional[str] = None) -> subprocess.CompletedProcess:
    """Run interncli to completion; stdout and stderr as text; the token must not leak."""
    proc = subprocess.run([exe, *args], input=input, stdin=None if input is not None else subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env or _env(),
                          timeout=PROCESS_TIMEOUT)
    out, err = proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8")
    _no_leak(out, err)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def bash(script: str, env: Dict[str, str]) -> subprocess.CompletedProcess:
    """Run a script with real ``bash -c`` and ``set -o pipefail``; the token must not leak."""
    proc = subprocess.run(["bash", "-c", "set -o pipefail\n" + script], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, timeout=PROCESS_TIMEOUT)
    out, err = proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8")
    _no_leak(out, err)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


class Live:
    """A running interncli whose stdout is read as it arrives."""

    def __init__(self, exe: str, args: Sequence[str], env: Optional[Dict[str, str]] = None) -> None:
        self.proc = subprocess.Popen([exe, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env or _env())
        self.out = b""

    def read_until(self, done: Callable[[bytes], bool], what: str,
                   deadline: float = FIRST_PIECE_DEADLINE) -> bytes:
        """Read stdout (raw fd, select with a deadline) until ``done(output so far)``."""
        fd = self.proc.stdout.fileno()
        end = time.monotonic() + deadline
        while not done(self.out):
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("no {} on stdout within {:g}s; got {!r}".format(what, deadline, self.out))
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                data = os.read(fd, 65536)
                if not data:
                    done = self.proc.poll() is not None
                    err = self.proc.stderr.read().decode("utf-8", errors="replace") if done else ""
                    raise AssertionError("stdout closed before {}; got {!r}; stderr {!r}".format(what, self.out, err))
                self.out += data
        return self.out

    def finish(self, timeout: float = 10.0):
        """Wait for the exit; (exit code, all stdout, stderr)."""
        rest, err = self.proc.communicate(timeout=timeout)
        self.out += rest
        _no_leak(self.out, err)
        return self.proc.returncode, self.out, err.decode("utf-8", errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def _free_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _assert_clean_stderr(err: str) -> None:
    for bad in ("Traceback", "Exception ignored", "BrokenPipeError", "KeyboardInterrupt"):
        assert bad not in err, "stderr shows {!r}:\n{}".format(bad, err)


# --------------------------------------------------------- 1. streaming, flushed piece by piece


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_stream_text_is_written_and_flushed_piece_by_piece(api, exe, framing):
    release = threading.Event()
    stream = api.add(Stream(stream_chunks(PIECES), framing=framing, hold_after=1, release=release))
    live = Live(exe, ["-b", api.base_url, "chat", "create", "--stream", "-g", "user", "hi"])
    try:
        first = live.read_until(lambda out: b"Hello" in out, "first piece")
        # The server is still holding the rest back: the piece crossed requests, urllib3 and
        # Python's stdout buffer on its own.
        assert stream.held.wait(5) and stream.released is None and not release.is_set()
        assert first == b"Hello"
        release.set()
        code, out, err = live.finish()
    finally:
        live.kill()
    assert stream.released is True  # the hold ended because of the release, not its timeout
    assert code == 0, err
    assert out.decode("utf-8") == FULL + "\n"
    assert err == ""
    assert len(api.calls()) == 1


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_stream_jsonl_lines_are_flushed_one_by_one(api, exe, framing):
    release = threading.Event()
    chunks = stream_chunks(PIECES)
    stream = api.add(Stream(chunks, framing=framing, hold_after=1, release=release))
    live = Live(exe, ["-b", api.base_url, "chat", "create", "--stream", "--json", "-g", "user", "hi"])
    try:
        first = live.read_until(lambda out: b"\n" in out, "first JSONL line")
        assert stream.held.wait(5) and stream.released is None and not release.is_set()
        assert first.count(b"\n") == 1 and first.endswith(b"\n")
        assert json.loads(first)["choices"][0]["delta"]["content"] == "Hello"
        release.set()
        code, out, err = live.finish()
    finally:
        live.kill()
    assert stream.released is True
    assert code == 0, err
    lines = out.decode("utf-8").splitlines()
    assert [json.loads(line) for line in lines] == chunks  # one line per chunk, as received
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in map(json.loads, lines)) == FULL
    assert err == ""


# ------------------------------------------------------------------------------ 2. into jq


@pytest.fixture
def jq() -> str:
    path = shutil.which("jq")
    if path is None:
        pytest.skip("`jq` is not installed (apt-get install jq): the pipeline tests need the real jq")
    return path


def _pipe_env(api, exe) -> Dict[str, str]:
    return _env(INTERNCLI=exe, BASE=api.base_url)


def test_jq_reads_the_non_streamed_json(api, exe, jq):
    result = bash('"$INTERNCLI" -b "$BASE" chat create --json -g user hi '
                  "| jq -r '.choices[0].message.content'", _pipe_env(api, exe))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "echo: hi\n"
    assert result.stderr == ""


def test_jq_reads_the_streamed_jsonl(api, exe, jq):
    api.add(Stream(stream_chunks(PIECES)))
    result = bash('"$INTERNCLI" -b "$BASE" chat create --stream --json -g user hi '
                  "| jq -r '.choices[0].delta.content // empty'", _pipe_env(api, exe))
    assert result.returncode == 0, result.stderr
    assert "".join(result.stdout.splitlines()) == FULL
    assert [line for line in result.stdout.splitlines() if line] == PIECES
    assert result.stderr == ""
    assert api.last.json["stream"] is True


def test_jq_parses_the_json_error_line_on_stderr(api, exe, jq):
    api.add(err_code(-10002, "the query is empty", status=400))
    result = bash('"$INTERNCLI" -b "$BASE" --max-retries 0 chat create --json -g user hi 2>&1 >/dev/null '
                  "| jq .error.exit_code", _pipe_env(api, exe))
    assert result.stdout == "5\n", result.stderr
    assert result.returncode == 5  # pipefail: interncli's own exit code
    assert result.stderr == ""  # jq parsed the line without complaint


# ------------------------------------------------------------------------ 3. | head -c 5


def _long_stream() -> Stream:
    return Stream(stream_chunks(["{:04d}".format(i) + "x" * 96 for i in range(3000)]))


@pytest.mark.parametrize("reply, flags", [
    pytest.param(_long_stream, ["--stream"], id="stream-text"),
    pytest.param(_long_stream, ["--stream", "--json"], id="stream-jsonl"),
    pytest.param(lambda: Completion("0000" + "y" * 300000), [], id="whole"),
])
def test_head_closing_the_pipe_ends_quietly(api, exe, reply, flags):
    api.add(reply())
    script = ('"$INTERNCLI" -b "$BASE" chat create {} -g user hi | head -c 5\n'
              'echo "${{PIPESTATUS[0]}} ${{PIPESTATUS[1]}}" > "$STATUS_FILE"').format(" ".join(flags))
    status_file = os.path.join(os.environ["HOME"], "pipestatus")
    result = bash(script, _env(INTERNCLI=exe, BASE=api.base_url, STATUS_FILE=status_file))
    with open(status_file) as f:
        interncli_code, head_code = f.read().split()
    assert result.stdout == ('{"id"' if "--json" in flags else "0000x" if "--stream" in flags else "0000y")
    assert result.stderr == "", "stderr was not empty:\n" + result.stderr
    assert (interncli_code, head_code) == ("0", "0")


# --------------------------------------------------------------------------------- 4. Ctrl-C


def test_ctrl_c_mid_stream_keeps_the_output_and_exits_130(api, exe):
    release = threading.Event()  # never set: the server holds until the test ends
    stream = api.add(Stream(stream_chunks(PIECES), hold_after=1, release=release))
    live = Live(exe, ["-b", api.base_url, "chat", "create", "--stream", "-g", "user", "hi"])
    try:
        live.read_until(lambda out: b"Hello" in out, "first piece")
        assert stream.released is None  # still holding: interncli is waiting in the middle of the stream
        live.proc.send_signal(signal.SIGINT)
        code, out, err = live.finish()
    finally:
        live.kill()
    assert code == 130, err
    assert out.startswith(b"Hello") and b"wor" not in out
    assert [line for line in err.splitlines() if "interrupted" in line] == ["interncli: interrupted"]
    assert [line for line in err.splitlines() if line.strip()] == ["interncli: interrupted"]
    _assert_clean_stderr(err)
    assert len(api.calls()) == 1  # an interrupt is not retried


def test_ctrl_c_while_waiting_for_the_reply_exits_130(api, exe):
    api.add(Hang(30))
    live = Live(exe, ["-b", api.base_url, "chat", "create", "-g", "user", "hi"])
    try:
        wait_until(lambda: len(api.calls()) == 1, "the request to reach the server")
        live.proc.send_signal(signal.SIGINT)
        code, out, err = live.finish()
    finally:
        live.kill()
    assert code == 130, err
    assert out == b""
    assert [line for line in err.splitlines() if line.strip()] == ["interncli: interrupted"]
    _assert_clean_stderr(err)
    assert len(api.calls()) == 1


# -------------------------------------------------------------------------------- 5. version


def test_version_from_the_console_script(exe):
    expected = "interncli {}\n".format(_metadata.version("interncli"))
    for flag in ("--version", "-V"):
        result = run(exe, [flag])
        assert result.returncode == 0, result.stderr
        assert result.stdout == expected
        assert result.stderr == ""


def test_version_with_python_dash_m(exe):
    proc = subprocess.run([sys.executable, "-m", "interncli", "--version"], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), timeout=PROCESS_TIMEOUT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode() == "interncli {}\n".format(_metadata.version("interncli"))
    assert proc.stderr == b""


# ---------------------------------------------------------------------------------- 6. proxy

PROXIED_BASE = "http://intern.test/v1"  # .test never resolves: only a proxy can reach it
# Without a token: one over plain http:// to another host is refused unless the user opts in
# (interface.md section 2; tests/test_token_hosts.py), and these tests are about the proxy path.
NO_TOKEN = {"INTERN_API_KEY": ""}
PROXIED_URL = PROXIED_BASE + "/chat/completions"


def _assert_went_through_proxy(api, result) -> None:
    assert result.returncode == 0, result.stderr
    assert result.stdout == "echo: via proxy\n"
    assert result.stderr == ""
    [request] = api.requests
    assert request.path == PROXIED_URL  # absolute URI in the request line: a proxy request
    assert request.headers.get("host") == "intern.test"


def test_proxy_flag(api, exe):
    result = run(exe, ["-b", PROXIED_BASE, "--proxy", api.url, "--max-retries", "0",
                       "chat", "create", "-g", "user", "via proxy"], env=_env(**NO_TOKEN))
    _assert_went_through_proxy(api, result)


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY"])
def test_proxy_from_the_environment(api, exe, variable):
    result = run(exe, ["-b", PROXIED_BASE, "--max-retries", "0", "chat", "create", "-g", "user", "via proxy"],
                 env=_env(**{variable: api.url}, **NO_TOKEN))
    _assert_went_through_proxy(api, result)


def test_proxy_flag_wins_over_the_environment(api, exe):
    # Precedence is flag > environment (interface.md section 2): the environment names a
    # proxy where nothing listens, the flag names the working one.
    dead = "http://127.0.0.1:{}".format(_free_port())
    result = run(exe, ["-b", PROXIED_BASE, "--proxy", api.url, "--max-retries", "0",
                       "chat", "create", "-g", "user", "via proxy"],
                 env=_env(HTTP_PROXY=dead, HTTPS_PROXY=dead, **NO_TOKEN))
    _assert_went_through_proxy(api, result)


def test_no_proxy_bypasses_the_environment_proxy(api, exe):
    dead = "http://127.0.0.1:{}".format(_free_port())
    result = run(exe, ["-b", api.base_url, "--max-retries", "0", "chat", "create", "-g", "user", "direct"],
                 env=_env(HTTP_PROXY=dead, NO_PROXY="127.0.0.1"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "echo: direct\n"
    [request] = api.requests
    assert request.path == "/v1/chat/completions"  # origin-form: no proxy in between


# ------------------------------------------------------------------------------------ 7. TLS


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    pair = make_self_signed_cert(str(tmp_path_factory.mktemp("tls")))
    if pair is None:
        pytest.skip("`openssl` is not installed (apt-get install openssl): the TLS tests need it to make a cert")
    return pair


@pytest.fixture
def tls_api(cert):
    with TLSAPIServer(cert) as server:
        yield server


def _tls_args(server, *extra: str) -> List[str]:
    return ["-b", server.base_url, "--max-retries", "0", *extra, "chat", "create", "-g", "user", "secure"]


def test_tls_untrusted_certificate_is_a_network_error_with_a_hint(tls_api, exe):
    result = run(exe, _tls_args(tls_api))
    assert result.returncode == 6, result.stderr
    assert result.stdout == ""
    assert "--ca-bundle" in "".join(line for line in result.stderr.splitlines() if line.startswith("hint:"))
    _assert_clean_stderr(result.stderr)
    assert tls_api.requests == []  # nothing was sent over the untrusted connection
    wait_until(lambda: tls_api.tls_failures >= 1, "the server to see the refused handshake")


def test_tls_ca_bundle_flag(tls_api, exe, cert):
    result = run(exe, _tls_args(tls_api, "--ca-bundle", cert.cert))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "echo: secure\n"
    assert tls_api.last.headers["authorization"] == "Bearer " + SENTINEL


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"])
def test_tls_ca_bundle_from_the_environment(tls_api, exe, cert, variable):
    result = run(exe, _tls_args(tls_api), env=_env(**{variable: cert.cert}))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "echo: secure\n"
    assert len(tls_api.calls()) == 1


def test_tls_missing_ca_bundle_is_a_usage_error(tls_api, exe):
    result = run(exe, _tls_args(tls_api, "--ca-bundle", "/nonexistent/ca.pem"))
    assert result.returncode == 2, result.stderr
    assert "/nonexistent/ca.pem" in result.stderr
    assert result.stdout == ""
    _assert_clean_stderr(result.stderr)
    assert tls_api.requests == []


# -------------------------------------------------------------------------------- 8. verbose


def test_verbose_traces_the_exchange_on_stderr_with_the_token_redacted(api, exe):
    result = run(exe, ["-v", "-b", api.base_url, "chat", "create", "-m", "intern-s1", "-g", "user", "hi"])
    assert result.returncode == 0, result.stderr
    assert result.stdout == "echo: hi\n"  # the trace stays off stdout
    err = result.stderr
    lines = err.splitlines()
    assert "> POST {}/chat/completions".format(api.base_url) in lines
    assert "> Authorization: Bearer ***" in lines
    assert "> Content-Type: application/json" in lines
    body_lines = [line[2:] for line in lines if line.startswith("> {")]
    assert [json.loads(b) for b in body_lines] == [{"model": "intern-s1",
                                                    "messages": [{"role": "user", "content": "hi"}]}]
    assert any(line.startswith("< HTTP 200") for line in lines)
    assert any(line.startswith("< Content-Type: application/json") for line in lines)
    assert any(line.startswith("< {") and "echo: hi" in line for line in lines)
    # The token was really sent, and only redacted in the trace.
    assert api.last.headers["authorization"] == "Bearer " + SENTINEL


def test_verbose_streamed_keeps_stdout_to_the_reply(api, exe):
    api.add(Stream(stream_chunks(PIECES)))
    result = run(exe, ["--verbose", "-b", api.base_url, "chat", "create", "--stream", "-g", "user", "hi"])
    assert result.returncode == 0, result.stderr
    assert result.stdout == FULL + "\n"
    assert "> Authorization: Bearer ***" in result.stderr.splitlines()
    assert "< HTTP 200" in result.stderr
    assert "data: " in result.stderr  # the events, as received
