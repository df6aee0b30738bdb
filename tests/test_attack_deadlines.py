"""Attacks on the one-thread deadline design (interncli.deadlines, transport._WatchedConnection):
a server or proxy that drips, keep-alive connections shared by requests whose watches could
fire late, many requests in flight, signals, forks. Each hostile peer is a raw socket server
on 127.0.0.1 whose every wait is bounded, so a client that does hang fails the test instead
of holding it for ever.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import ssl
import subprocess
import threading
import time
from typing import Any, Callable, Dict, List, Optional
from urllib.parse import urlsplit

import pytest

from interncli.deadlines import KEEPER, SWEEP_AT
from interncli.errors import InternCliError, NetworkError, ReplyTooLarge, RequestRejected
from interncli.transport import HEADER_GRACE, Transport
from tests import hostile
from tests.apiserver import (
    APIServer,
    Drop,
    Hang,
    Json,
    Raw,
    Recorded,
    Reply,
    Stream,
    _Handler,
    _HTTPServer,
    default_reply,
    last_user_text,
    stream_chunks,
)
from tests.batchhelpers import request_line, rows
from tests.conftest import SENTINEL, invoke, wait_until
from tests.hostilecli import HUNG, MEMORY_LIMIT_KIB, error_line, run_measured
from tests.tls import CertPair, make_self_signed_cert

# How long a hostile peer keeps dripping: far past any --timeout used here, so a client that
# is not bounded by it fails the test (with the wrong exit code) rather than hanging it.
DRIP_SECONDS = 20.0
DRIP_INTERVAL = 0.2
OK_BODY = b'{"choices": [{"index": 0, "message": {"content": "ok"}, "finish_reason": "stop"}]}'


class RawServer:
    """A TCP server on 127.0.0.1 that runs ``handle(conn, server)`` for each connection in a
    thread of its own, over TLS when given a server ``context``. Leaving the ``with`` block
    wakes every handler (``stopping`` is set) and closes every connection. ``ran_out`` is set
    when a drip reached DRIP_SECONDS: the peer, not the client, ended the wait."""

    def __init__(self, handle: Callable[[socket.socket, "RawServer"], None],
                 context: Optional[ssl.SSLContext] = None) -> None:
        self._handle = handle
        self._context = context
        self.stopping = threading.Event()
        self.ran_out = threading.Event()
        self.accepted = threading.Event()  # for a handler to say the client is in its hands
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = "{}://127.0.0.1:{}".format("https" if context else "http", self.port)
        self._conns: List[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> "RawServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stopping.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes accept(), which close() would not
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            for conn in self._conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._thread.join(5)

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(DRIP_SECONDS)
            if self._context is not None:
                conn = self._context.wrap_socket(conn, server_side=True)
            self._handle(conn, self)
        except (OSError, ssl.SSLError):
            pass  # the client went away: what these peers expect
        finally:
            conn.close()


def drip(conn: socket.socket, data: bytes, server: RawServer) -> None:
    """Send ``data`` a byte at a time (over TLS, a record a byte) until the client goes away,
    for at most DRIP_SECONDS."""
    for count, byte in enumerate(data):
        if count * DRIP_INTERVAL > DRIP_SECONDS:
            server.ran_out.set()
            return
        if server.stopping.wait(DRIP_INTERVAL):
            return
        conn.sendall(bytes([byte]))


def read_head(conn: socket.socket) -> bytes:
    """A request's line and headers (what a proxy reads of a CONNECT)."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(65536)
        if not piece:
            break
        data += piece
    return data


ENDLESS_HEAD = b"HTTP/1.1 200 Connection established\r\nX-Slow: " + b"a" * 10000
# A TLS handshake record that claims 16 KiB: the client reads it whole before answering.
ENDLESS_HANDSHAKE = b"\x16\x03\x03\x40\x00" + b"\x02" * 16384


@pytest.fixture(scope="module")
def cert(tmp_path_factory) -> CertPair:
    pair = make_self_signed_cert(str(tmp_path_factory.mktemp("tls")))
    if pair is None:
        pytest.skip("`openssl` is not installed (apt-get install openssl): the TLS tests need it to make a cert")
    return pair


def server_context(pair: CertPair) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pair.cert, pair.key)
    return context


def chat_via(base_url: str, *flags: str, stream: bool = False):
    return invoke(["-b", base_url, "-k", SENTINEL, "--timeout", "1", "--max-retries", "0", *flags,
                   "chat", "create", "-g", "user", "x", *(["--stream"] if stream else [])])


# ---------------------------------------------------------------------------- an HTTPS proxy


def connect_reply_drips(conn: socket.socket, server: RawServer) -> None:
    read_head(conn)
    server.accepted.set()
    drip(conn, ENDLESS_HEAD, server)


def tunnel_handshake_drips(conn: socket.socket, server: RawServer) -> None:
    read_head(conn)
    conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
    drip(conn, ENDLESS_HANDSHAKE, server)


@pytest.mark.integration
@pytest.mark.parametrize("handle", [connect_reply_drips, tunnel_handshake_drips],
                         ids=["its CONNECT reply drips", "the TLS handshake in its tunnel drips"])
def test_an_https_proxy_that_drips_is_bounded_by_the_timeout(cert, handle):
    # TLS to the proxy replaces the socket the watch was handed (ssl detaches it), and the
    # CONNECT reply and the tunnel's handshake are read through the TLS socket, a byte a read.
    with RawServer(handle, server_context(cert)) as proxy:
        result = chat_via("https://127.0.0.1:9/v1", "--proxy", proxy.url, "--ca-bundle", cert.cert)
        assert not proxy.ran_out.is_set(), "interncli waited until the proxy stopped dripping"
    assert result.exit_code == 6, result
    assert "within 1s" in error_line(result.stderr)


def handshake_drips(conn: socket.socket, server: RawServer) -> None:
    drip(conn, ENDLESS_HANDSHAKE, server)


@pytest.mark.integration
def test_a_tls_handshake_that_drips_is_bounded_by_the_timeout(cert):
    # The watch's raw socket is detached by ssl as it wraps it, so this one rests on ssl
    # bounding a whole handshake by the socket timeout.
    with RawServer(handshake_drips) as server:
        result = chat_via(server.url.replace("http:", "https:") + "/v1", "--ca-bundle", cert.cert)
        assert not server.ran_out.is_set()
    assert result.exit_code == 6, result
    assert "within 1s" in error_line(result.stderr)


# ---------------------------------------------------------------------------- an http proxy


def headers_drip(conn: socket.socket, server: RawServer) -> None:
    read_head(conn)
    server.accepted.set()
    drip(conn, b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 10000, server)


def tunnel(conn: socket.socket, server: RawServer) -> None:
    """An http proxy: CONNECT opens a tunnel; a request naming an absolute URI is passed on
    to that host (as is: the test servers take either form)."""
    head = read_head(conn)
    server.accepted.set()
    method, target = head.split(b"\r\n")[0].split()[:2]
    if method == b"CONNECT":
        host, port = target.decode().rsplit(":", 1)
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        head = b""
    else:
        split = urlsplit(target.decode())
        host, port = split.hostname or "", str(split.port)
    with socket.create_connection((host, int(port)), timeout=DRIP_SECONDS) as upstream:
        upstream.sendall(head)
        ends = [conn, upstream]
        while not server.stopping.is_set():
            for end in select.select(ends, [], [], DRIP_INTERVAL)[0]:
                data = end.recv(65536)
                if not data:
                    return
                (upstream if end is conn else conn).sendall(data)


@pytest.mark.integration
@pytest.mark.parametrize("how", ["its CONNECT reply drips", "the https server behind its tunnel drips its headers",
                                 "the server it forwards to drips its headers"])
def test_an_http_proxy_or_what_is_behind_it_dripping_is_bounded_by_the_timeout(cert, how):
    # A CONNECT reply is read from the raw socket before TLS; behind the tunnel the status
    # line comes through the TLS socket, which the watch must have been handed by then.
    tls = how.startswith("the https")
    with RawServer(headers_drip, server_context(cert) if tls else None) as server, \
            RawServer(connect_reply_drips if how.startswith("its") else tunnel) as proxy:
        base = "https://127.0.0.1:9/v1" if how.startswith("its") else server.url + "/v1"
        result = chat_via(base, "--proxy", proxy.url, "--ca-bundle", cert.cert)
        assert not (server.ran_out.is_set() or proxy.ran_out.is_set()), "interncli waited until the drip stopped"
        assert proxy.accepted.is_set() and (server.accepted.is_set() or how.startswith("its"))
    assert result.exit_code == 6, result
    assert "headers were still arriving" in error_line(result.stderr)


class StatusThenDrip(Reply):
    """A whole status line at once, then a header line that drips and never ends: at the
    deadline, http.client reads the shut-down socket's end as the end of the headers."""

    def __init__(self, status: bytes) -> None:
        self.status = status
        self.ran_out = threading.Event()

    def respond(self, h: _Handler, req: Recorded) -> None:
        h.wfile.write(self.status + b"\r\nX-Slow: ")
        h.wfile.flush()
        end = time.monotonic() + DRIP_SECONDS
        while not h.server.stopping.wait(DRIP_INTERVAL):
            if time.monotonic() > end:
                self.ran_out.set()
                break
            h.wfile.write(b"a")
            h.wfile.flush()
        h.close_connection = True


@pytest.mark.integration
@pytest.mark.parametrize("status", [b"HTTP/1.1 200 OK", b"HTTP/1.1 503 Service Unavailable",
                                    b"HTTP/1.1 302 Found"])
@pytest.mark.parametrize("stream", [False, True])
def test_headers_cut_short_by_the_deadline_are_not_taken_for_a_reply(cli, api, status, stream):
    # The headers were still arriving: not a 503 to retry, a redirect to report, or a 200 whose
    # body did not come.
    reply = api.add(StatusThenDrip(status))
    result = cli("chat", "create", "-g", "user", "x", *(["--stream"] if stream else []),
                 globals_=("--timeout", "1", "--max-retries", "1"))
    assert not reply.ran_out.is_set()
    assert result.exit_code == 6, result
    assert "headers were still arriving" in error_line(result.stderr)
    assert len(api.requests) == 1


# ---------------------------------------------------------------------------- 1xx


class EndlessContinue(Reply):
    """"100 Continue" after "100 Continue", as fast as the client reads them, for at most
    DRIP_SECONDS: http.client skips each one, looking for the real status line."""

    def __init__(self) -> None:
        self.ran_out = threading.Event()

    def respond(self, h: _Handler, req: Recorded) -> None:
        end = time.monotonic() + DRIP_SECONDS
        while not h.server.stopping.is_set():
            if time.monotonic() > end:
                self.ran_out.set()
                break
            h.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n" * 100)
            h.wfile.flush()
        h.close_connection = True


@pytest.mark.integration
def test_an_endless_run_of_100_continue_is_bounded_by_the_timeout(cli, api):
    # Every read returns at once, so requests' per-read timeout never trips: only the watch
    # ends it, while http.client is still skipping informational replies.
    reply = api.add(EndlessContinue())
    result = cli("chat", "create", "-g", "user", "x", globals_=("--timeout", "1", "--max-retries", "0"))
    assert not reply.ran_out.is_set()
    assert result.exit_code == 6, result
    assert "headers were still arriving" in error_line(result.stderr)


# ---------------------------------------------------------------------------- keep-alive reuse


class HeldBody(Reply):
    """A reply with a length whose headers go at once and whose body waits for ``release``
    (at most DRIP_SECONDS); records the client's port, to show which connection it came on."""

    def __init__(self, release: Optional[threading.Event] = None) -> None:
        self.release = release
        self.port: Optional[int] = None

    def respond(self, h: _Handler, req: Recorded) -> None:
        self.port = h.client_address[1]
        h._send_headers(200, "application/json", {"Content-Length": str(len(OK_BODY))}, [])
        h.wfile.flush()
        if self.release is not None:
            self.release.wait(DRIP_SECONDS)
        h.wfile.write(OK_BODY)
        h.wfile.flush()


@pytest.mark.integration
def test_a_watch_never_shuts_a_connection_it_gave_back_to_the_pool(api):
    # Reading the last bytes of a reply with a length puts its connection back in the pool
    # before the reader sees the body end: a deadline passing in between (a reply read just at
    # it; many threads waiting for the GIL) must not shut the socket that the next request,
    # from this thread or another, is using by then. Here the first reply's deadline is made
    # to pass in that gap on purpose, and its keeper given the time to act on it.
    release = threading.Event()
    first, second = api.add(HeldBody()), api.add(HeldBody(release))
    transport = Transport(api.base_url, token=SENTINEL, timeout=0.2, environ={})
    reply = transport.send("POST", "chat/completions", {})
    pieces = reply.iter_bytes()
    assert next(pieces) == OK_BODY  # all of it: the connection is back in the pool
    following = transport.send("POST", "chat/completions", {})
    assert second.port == first.port  # the same connection
    reply._watch.deadline = time.monotonic()  # the first reply's time runs out
    marker = KEEPER.watch(time.monotonic() + HEADER_GRACE + 0.5)  # fires after the first's entry is looked at
    wait_until(lambda: marker.fired, "the watch to fire", DRIP_SECONDS)
    release.set()
    assert following.read() == OK_BODY
    assert list(pieces) == []
    following.close()
    reply.close()


class OnPort(Reply):
    """``reply``, recording the client's port: which connection the request came on."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.port: Optional[int] = None

    def respond(self, h: _Handler, req: Recorded) -> None:
        self.port = h.client_address[1]
        self.reply.respond(h, req)


@pytest.mark.integration
def test_a_retry_on_the_kept_alive_connection_is_watched_too(cli, api):
    # The retry of a 503 goes on the connection the 503 came on, a socket handed to the
    # retry's watch when its request starts (not when a connection is made): its headers
    # dripping must end it as they would a first try's.
    first = api.add(OnPort(Json({"detail": "busy"}, 503)))
    second = api.add(OnPort(hostile.DripHeaders(DRIP_INTERVAL, DRIP_SECONDS)))
    result = cli("chat", "create", "-g", "user", "x", globals_=("--timeout", "1", "--max-retries", "1"))
    assert result.exit_code == 6, result
    assert "headers were still arriving" in error_line(result.stderr)
    assert first.port == second.port is not None


@pytest.mark.integration
def test_time_spent_tracing_the_reply_headers_is_not_the_servers(api):
    # -v writes the status line and headers to stderr as soon as they arrive; a stderr that
    # blocks (a pager not scrolled, a terminal stopped with Ctrl-S) is our wait, not the
    # server's, as it is while a stream's piece is printed.
    api.add(HeldBody())
    marker = KEEPER.watch(time.monotonic() + HEADER_GRACE + 0.5)  # past the request's own deadline

    def trace(line: str) -> None:
        if line.startswith("< HTTP"):
            wait_until(lambda: marker.fired, "the watch to fire", DRIP_SECONDS)

    transport = Transport(api.base_url, token=SENTINEL, timeout=0.2, environ={}, trace=trace)
    reply = transport.send("POST", "chat/completions", {})
    assert reply.read() == OK_BODY


# ---------------------------------------------------------------------------- many in flight


class _Backlogged(_HTTPServer):
    # 64 workers connect at once; socketserver's backlog of 5 would leave some SYNs to be
    # sent again a second later, a connect timeout at --timeout 1.
    request_queue_size = 128


class BusyAPIServer(APIServer):
    """The API server with a listen backlog for 64 connections arriving at once."""

    def __init__(self) -> None:
        super().__init__()
        self._httpd.server_close()
        self._httpd = _Backlogged(self)
        self.port = self._httpd.server_address[1]
        self.url = "http://127.0.0.1:{}".format(self.port)
        self.base_url = self.url + "/v1"


class ByText(Reply):
    """Each request's reply chosen by its user text: ``stall-<how>-N`` stalls, anything else is
    answered at once (the server's echo)."""

    STALLS: Dict[str, Callable[[], Reply]] = {
        "silent": lambda: Hang(DRIP_SECONDS),
        "headers": lambda: hostile.DripHeaders(DRIP_INTERVAL, DRIP_SECONDS),
        "body": lambda: hostile.Drip(DRIP_INTERVAL, DRIP_SECONDS),
    }

    def respond(self, h: _Handler, req: Recorded) -> None:
        text = last_user_text(req.json)
        how = text.split("-")[1] if text.startswith("stall-") else None
        (self.STALLS[how]() if how else default_reply(req)).respond(h, req)


STALL_WORDS = {"silent": "no reply from", "headers": "headers were still arriving",
               "body": "did not arrive within --timeout 2s"}


@pytest.mark.integration
def test_a_batch_of_64_in_flight_with_stalls_answers_every_fast_one_and_ends(exe, tmp_path):
    # A third of the requests stall past --timeout, in three ways; each of 64 workers sends
    # some of each kind on its own kept-alive connection, so a late watch, or one shutting
    # another worker's socket, would show as a fast request failed or a stalled one never ending.
    # (--timeout 2: a fast reply must come within it on a machine the whole suite is loading.)
    kinds = ["fast", "fast", "stall-silent", "fast", "stall-headers", "fast", "fast", "stall-body", "fast"]
    texts = ["{}-{}".format(kinds[i % len(kinds)], i) if kinds[i % len(kinds)] != "fast" else "hello {}".format(i)
             for i in range(128)]
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(request_line("r{}".format(i), text) + "\n" for i, text in enumerate(texts)))
    with BusyAPIServer() as api:
        api.add(ByText(), times=len(texts))
        proc = subprocess.run([exe, "-b", api.base_url, "--timeout", "2", "--max-retries", "0", "chat", "batch",
                               str(source), "-o", str(out), "--concurrency", "64"],
                              env=dict(os.environ, INTERN_API_KEY=SENTINEL), capture_output=True, text=True,
                              timeout=HUNG)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    found = {row["custom_id"]: row for row in rows(out)}
    assert len(found) == len(texts) == len(rows(out))  # none lost, none twice
    for i, text in enumerate(texts):
        row = found["r{}".format(i)]
        if text.startswith("stall-"):
            assert row["error"]["exit_code"] == 6, row
            assert STALL_WORDS[text.split("-")[1]] in row["error"]["message"], row
        else:
            assert row["error"] is None, row
            assert row["response"]["body"]["choices"][0]["message"]["content"] == "echo: " + text


# ---------------------------------------------------------------------------- signals


def never_reads(conn: socket.socket, server: RawServer) -> None:
    server.accepted.set()
    server.stopping.wait(DRIP_SECONDS)  # the request's body fills the socket's buffers, then blocks


@pytest.mark.integration
@pytest.mark.parametrize("handle", [never_reads, headers_drip],
                         ids=["while the request is being sent", "while the headers drip"])
@pytest.mark.parametrize("name, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_during_a_request_ends_it_at_once_without_a_traceback(exe, tmp_path, handle, name, code):
    # The request is sent in the main thread (no send thread to join): the signal reaches it
    # inside a blocking send or read, and the watch is stopped on the way out.
    prompt = tmp_path / "prompt"
    prompt.write_bytes(b"x" * (32 << 20))  # more than the socket buffers hold
    with RawServer(handle) as server, open(prompt, "rb") as stdin:
        proc = subprocess.Popen([exe, "-b", server.url + "/v1", "-k", SENTINEL, "--timeout", "30",
                                 "--max-retries", "0", "chat", "create", "-g", "user", "-"],
                                stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert server.accepted.wait(HUNG)
            time.sleep(0.3)  # into the blocking send, or a byte or two of the headers
            proc.send_signal(getattr(signal, name))
            out, err = proc.communicate(timeout=HUNG)
        finally:
            proc.kill()
            proc.wait()
        assert not server.ran_out.is_set()
    assert proc.returncode == code, err
    assert "Traceback" not in err and out == ""


# ---------------------------------------------------------------------------- the heap


def _one_of_each(transport: Transport, api: APIServer) -> None:
    """A request of each way a reply ends: read whole, an error status, a redirect, a stream
    given up after its first piece, a body over the limit, a connection the server drops."""
    api.add(Raw(OK_BODY, content_type="application/json"))
    assert transport.send("POST", "chat/completions", {}).read() == OK_BODY
    api.add(Json({"detail": "boom"}, 500))
    with pytest.raises(InternCliError):
        transport.send("POST", "chat/completions", {})
    api.add(Raw(b"", 302, headers={"Location": "http://127.0.0.1:9/"}))
    with pytest.raises(RequestRejected):
        transport.send("POST", "chat/completions", {})
    api.add(Stream(stream_chunks(["a", "b", "c"])))
    stream = transport.send("POST", "chat/completions", {})
    next(stream.iter_bytes())
    stream.close()
    api.add(Raw(OK_BODY, content_type="application/json"))
    with pytest.raises(ReplyTooLarge):
        transport.send("POST", "chat/completions", {}).read(limit=10)
    api.add(Drop())
    with pytest.raises(NetworkError):
        transport.send("POST", "chat/completions", {})


@pytest.mark.integration
def test_the_heap_holds_no_more_than_what_is_in_flight_however_a_reply_ends(api):
    # A long --timeout keeps every watch's deadline far away: only stopping them, whichever
    # way the reply ended, keeps the heap from growing with every request of a long session.
    # Stopped entries are swept once they are SWEEP_AT and as many as the live ones (those of
    # the process, other tests' included, at most ``before``); a watch left running on any one
    # of the paths would add one live entry a round: 2 * SWEEP_AT over this many rounds.
    transport = Transport(api.base_url, token=SENTINEL, timeout=3600, environ={})
    before = KEEPER.pending()
    for _ in range(2 * SWEEP_AT):
        _one_of_each(transport, api)
    assert KEEPER.pending() - before <= max(SWEEP_AT, before)


# ---------------------------------------------------------------------------- fork


@pytest.mark.integration
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_has_a_keeper_of_its_own_even_if_forked_while_the_lock_was_held():
    # A fork copies the keeper's lock as it is (held, if the parent was inside it) but not
    # its thread: without the reset at fork, the child's first request would wait for ever.
    parent = KEEPER.watch(time.monotonic() + 3600)
    with KEEPER.lock:
        pid = os.fork()
    if pid == 0:  # the child: exits 0 only if a watch of its own fires on its socket
        code = 1
        try:
            ours, theirs = socket.socketpair()
            ours.settimeout(5)
            watch = KEEPER.watch(time.monotonic() + 0.05)
            watch.attach(ours)
            code = 0 if ours.recv(1) == b"" and watch.fired else 2
        finally:
            os._exit(code)
    end = time.monotonic() + HUNG
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done or time.monotonic() > end:
            break
        time.sleep(0.01)
    if not done:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    assert done and os.waitstatus_to_exitcode(status) == 0
    assert not parent.fired
    parent.stop()


# ---------------------------------------------------------------------------- error bodies


class DripError(Reply):
    """An error status whose JSON body then drips, a byte every DRIP_INTERVAL (the first 60
    bytes faster, so that the error's message is in what arrives in time)."""

    BODY = b'{"code": -1, "msg": "overloaded, try later"}' + b" " * 100000

    def __init__(self, status: int) -> None:
        self.status = status
        self.ran_out = threading.Event()

    def respond(self, h: _Handler, req: Recorded) -> None:
        h._send_headers(self.status, "application/json", {"Content-Length": str(len(self.BODY))}, [])
        h.wfile.flush()
        end = time.monotonic() + DRIP_SECONDS
        for count, byte in enumerate(self.BODY):
            if time.monotonic() > end:
                self.ran_out.set()
                break
            if h.server.stopping.wait(0.01 if count < 60 else DRIP_INTERVAL):
                break
            h.wfile.write(bytes([byte]))
            h.wfile.flush()
        h.close_connection = True


@pytest.mark.integration
@pytest.mark.parametrize("status, code, tries", [(400, 5, 1), (503, 1, 2)])
def test_an_error_body_that_drips_is_reported_from_what_arrived_in_time(cli, api, status, code, tries):
    # read_start takes what arrived before the deadline: the error is reported with its own
    # exit code, and a retryable one is retried, each try within --timeout.
    reply = api.add(DripError(status), times=tries)
    result = cli("chat", "create", "-g", "user", "x", globals_=("--timeout", "1", "--max-retries", "1"))
    assert not reply.ran_out.is_set()
    assert result.exit_code == code, result
    assert "[-1] overloaded, try later" in error_line(result.stderr)
    assert len(api.requests) == tries


# ---------------------------------------------------------------------------- redirects


class HugeRedirect(Reply):
    """A redirect whose body is ``size`` bytes of a JSON-looking string (what requests reads
    whole to free the connection for following it), or a gzip bomb."""

    def __init__(self, bomb: bool) -> None:
        self.bomb = bomb

    def respond(self, h: _Handler, req: Recorded) -> None:
        body = hostile.bomb("gzip") if self.bomb else None
        size = len(body) if body is not None else 300 * hostile.MiB
        headers = {"Location": "http://127.0.0.1:9/v1", "Content-Length": str(size)}
        if self.bomb:
            headers["Content-Encoding"] = "gzip"
        h._send_headers(302, "application/json", headers, [])
        if body is not None:
            h.wfile.write(body)
            return
        piece = b"a" * hostile.PIECE
        for _ in range(size // len(piece)):
            if h.server.stopping.is_set():
                return
            h.wfile.write(piece)


@pytest.mark.integration
@pytest.mark.skipif(not hasattr(os, "wait4"), reason="needs os.wait4")
@pytest.mark.parametrize("bomb", [False, True], ids=["300 MB body", "gzip bomb"])
def test_a_redirect_with_a_huge_body_stays_within_100_MiB(exe, api, tmp_path, bomb):
    # A redirect is reported, not followed; nothing of its body is needed, and reading it
    # whole (requests does, to put the connection back for the next hop) is the server's
    # choice of size in memory, bounded only by what it can send in --timeout.
    api.add(HugeRedirect(bomb))
    code, stderr, peak = run_measured(exe, ["-b", api.base_url, "-k", SENTINEL, "--max-retries", "0", "chat",
                                            "create", "-g", "user", "x"], tmp_path)
    assert code == 5, stderr
    assert "redirects" in error_line(stderr)
    assert peak < MEMORY_LIMIT_KIB, "peak RSS {} MiB".format(peak // 1024)


# ---------------------------------------------------------------------------- an https proxy's certificate


@pytest.mark.integration
@pytest.mark.parametrize("trusted", [False, True], ids=["untrusted", "trusted with --ca-bundle"])
def test_an_https_proxy_for_an_http_server_has_its_certificate_checked(api, cert, trusted):
    # requests checks certificates only for an https URL: through an https proxy, a request
    # to an http server went to a proxy whose certificate nobody checked, token and all.
    with RawServer(tunnel, server_context(cert)) as proxy:
        result = invoke(["-b", api.base_url, "-k", SENTINEL, "--max-retries", "0", "--proxy", proxy.url,
                         *(["--ca-bundle", cert.cert] if trusted else []), "chat", "create", "-g", "user", "x"])
    if trusted:
        assert (result.exit_code, result.stdout) == (0, "echo: x\n"), result
        assert proxy.accepted.is_set()
    else:
        assert result.exit_code == 6, result
        assert "certificate verify failed" in error_line(result.stderr)
        assert api.requests == []  # the token went nowhere


# ---------------------------------------------------------------------------- a TLS socket shut down


@pytest.mark.integration  # the certificate is made by the openssl command
def test_a_watch_firing_on_a_tls_socket_leaves_its_tls_in_place(cert):
    # ssl.SSLSocket.shutdown drops the socket's TLS state before it shuts the connection, and
    # SSLSocket.send, finding none, falls back to the plain socket: a request still being sent
    # in the owner's thread could put its next bytes on the wire in clear text in between. The
    # watch shuts the connection down under TLS instead.
    client_context = ssl.create_default_context(cafile=cert.cert)
    ours, theirs = socket.socketpair()
    served: List[ssl.SSLSocket] = []
    server = threading.Thread(target=lambda: served.append(server_context(cert).wrap_socket(theirs, server_side=True)))
    server.start()
    try:
        with client_context.wrap_socket(ours, server_hostname="127.0.0.1") as tls:
            server.join(DRIP_SECONDS)
            tls.settimeout(DRIP_SECONDS)
            watch = KEEPER.watch(time.monotonic())
            watch.attach(tls)
            wait_until(lambda: watch.fired, "the watch to fire", DRIP_SECONDS)
            assert tls.cipher() is not None  # still TLS: whatever is sent now is encrypted, or fails
            assert tls.recv(10) == b""  # and the connection is shut down
    finally:
        theirs.close()
        for sock in served:
            sock.close()


def chunk_drips(kind: bytes) -> Callable[[socket.socket, RawServer], None]:
    """A reply of type ``kind`` whose first chunk claims 64 KiB and drips."""

    def handle(conn: socket.socket, server: RawServer) -> None:
        read_head(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: " + kind + b"\r\nTransfer-Encoding: chunked\r\n\r\n10000\r\n")
        drip(conn, b"a" * 65536, server)

    return handle


@pytest.mark.integration
@pytest.mark.parametrize("stream", [False, True])
def test_a_tls_body_that_drips_inside_a_chunk_is_bounded_by_the_timeout(cert, stream):
    # The connection is shut down under TLS: the blocked TLS read must still end at once.
    kind = b"text/event-stream" if stream else b"application/json"
    with RawServer(chunk_drips(kind), server_context(cert)) as server:
        result = chat_via(server.url + "/v1", "--ca-bundle", cert.cert, stream=stream)
        assert not server.ran_out.is_set()
    assert result.exit_code == 6, result
    words = "no content came for 1s" if stream else "did not arrive within --timeout 1s"
    assert words in error_line(result.stderr)
