"""The HTTP layer, and the only module that imports requests: session, timeouts, proxy,
TLS, verbose traces with the token redacted, and retries with backoff."""

from __future__ import annotations

import os
import random
import ssl
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, TypeVar

import requests
import requests.adapters
import urllib3.exceptions

from interncli.credentials import redact
from interncli.deadlines import KEEPER, Watch
from interncli.errors import (
    MAX_RETRY_AFTER,
    InternCliError,
    NetworkError,
    ReplyTooLarge,
    RequestRejected,
    StreamError,
    UsageError,
    error_from_response,
    size_text,
)
from interncli.safetext import escape_line
from interncli.wire import encode_body, join_url, parse_retry_after, redact_headers, request_headers

T = TypeVar("T")
Trace = Callable[[str], None]

MAX_BACKOFF = 30.0
READ_SIZE = 65536
# Limits on what a server can make interncli hold (the README's Security section: memory stays
# bounded whatever the server sends). A non-streamed reply is read whole and parsed, and parsing can
# take several times the body's size, so the body is capped well below the memory budget.
BODY_LIMIT = 4 << 20
ERROR_BODY_LIMIT = 1 << 20
# requests' own timeouts end a plain stall before the status line; the watch on the socket
# fires only this much later, so that those keep their own, more precise, messages.
HEADER_GRACE = 1.0
# A -v trace holds a line until it ends: a longer line is named, not shown.
TRACE_LINE_LIMIT = 1 << 20
# A traced line is escaped this many characters at a time (see _escape_long).
ESCAPE_SLICE = 1 << 16


def backoff_delay(attempt: int, retry_after: Optional[float], rand: Callable[[], float] = random.random) -> float:
    """How long to wait before retry number ``attempt`` (0-based): Retry-After if given,
    else exponential backoff with jitter so that many clients do not retry in step."""
    if retry_after is not None:
        return retry_after
    ceiling = min(MAX_BACKOFF, 0.5 * (2 ** attempt))
    return ceiling / 2 + rand() * ceiling / 2


def call_with_retries(
    attempt: Callable[[], T],
    max_retries: int,
    notify: Callable[[InternCliError, float, int], None],
    may_retry: Callable[[InternCliError], bool] = lambda err: err.retryable,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``attempt`` until it succeeds, retrying retryable errors up to ``max_retries`` times."""
    tries = 0
    while True:
        try:
            return attempt()
        except InternCliError as err:
            if tries >= max_retries or not may_retry(err):
                raise
            if err.retry_after is not None and err.retry_after > MAX_RETRY_AFTER:
                raise
            delay = backoff_delay(tries, err.retry_after)
            tries += 1
            notify(err, delay, tries)
            sleep(delay)


class Response:
    """An HTTP reply; its body is read in pieces, each at most READ_SIZE decoded bytes, within a
    budget of waiting: ``timeout`` seconds from when the request was sent, renewed by
    :meth:`renew_deadline` (a stream renews it whenever content arrives). Only time spent
    waiting for the server counts: while a piece is with the caller (printing it to a pipe
    that ``less`` holds, say) the clock stops."""

    def __init__(self, raw: requests.Response, watch: Watch, timeout: float, started: float,
                 redact: Callable[[str], str], trace: Optional[Trace]) -> None:
        self._raw = raw
        self._timeout = timeout
        self._budget = timeout - (time.monotonic() - started)  # seconds of waiting left
        # Its deadline is when the budget runs out, and None while not reading.
        self._watch = watch
        watch.deadline = None
        self._redact = redact
        self._trace = trace
        self.status = raw.status_code
        self.headers = raw.headers

    @property
    def content_type(self) -> str:
        """The media type, lower-cased, without parameters."""
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()

    def renew_deadline(self) -> None:
        """Content arrived: the next wait may take ``timeout`` seconds again."""
        self._budget = self._timeout

    def read(self, limit: int = BODY_LIMIT) -> bytes:
        """The whole body; a body over ``limit`` decoded bytes, or one that is still arriving
        when the deadline passes, raises NetworkError (exit 6) and is not retried."""
        body = bytearray()
        try:
            for data in self._pieces():
                body += data
                if len(body) > limit:
                    raise ReplyTooLarge("the reply is larger than {}, the most interncli accepts".format(
                        size_text(limit)))
        except _Deadline:
            raise NetworkError("the reply did not arrive within --timeout {:g}s".format(self._timeout),
                               hint="Raise --timeout, or try again later.") from None
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._broken(exc, NetworkError("the connection broke while reading the reply: {}".format(
                _reason(exc)), retryable=True)) from exc
        whole = bytes(body)
        del body
        self._trace_lines(whole)
        return whole

    def read_start(self, limit: int) -> bytes:
        """At most ``limit`` decoded bytes of the body (an error body: whatever part of it arrives
        before the deadline or a failure is enough to report it)."""
        body = bytearray()
        try:
            for data in self._pieces():
                body += data
                if len(body) >= limit:
                    break
        except (_Deadline, requests.RequestException, urllib3.exceptions.HTTPError, OSError):
            pass
        start = bytes(body[:limit])
        self._trace_lines(start)
        return start

    def iter_bytes(self) -> Iterator[bytes]:
        """The body in pieces as they arrive: chunk by chunk when chunked, else (a body that
        ends when the connection closes) what each socket read gives, never a full buffer."""
        # traced by whole lines, so the redaction sees a token whole
        lines = _LineTrace(self._trace_line, self._trace_skipped) if self._trace else None
        try:
            for data in self._pieces():
                if lines is not None:
                    lines.feed(data)
                yield data
        except _Deadline:
            raise StreamError("the reply stream stalled: no content came for {:g}s (--timeout)".format(
                self._timeout), hint="Raise --timeout, or try again.") from None
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._broken(exc, StreamError("the reply stream was cut: the connection closed before "
                                                "the reply was complete", retryable=True)) from exc
        finally:
            if lines is not None:
                lines.close()

    def close(self) -> None:
        """Release the connection (also stops a stream that is still arriving)."""
        self._watch.stop()
        self._raw.close()

    def _pieces(self) -> Iterator[bytes]:
        """Decoded pieces of the body, read under the deadline.

        What urllib3 (2.7 and later) does here, relied on for bounded memory and time:
        * ``read_chunked(amt)`` reads at most ``amt`` bytes of a chunk at a time; without ``amt``
          it reads a whole chunk, whatever size the chunk header claims.
        * ``read1(amt)`` returns after one socket read (it does not wait to fill ``amt``), so a
          close-delimited stream is seen as it arrives.
        * with ``decode_content=True`` both decompress at most ``amt`` bytes per call (gzip,
          deflate, brotli, and chains such as "gzip, gzip"), keeping the rest of the compressed
          input for the next call: a small gzip bomb is never expanded at once. urllib3 before
          2.6 decompressed each piece whole (CVE-2025-66471), and before 2.7 so did Brotli
          (CVE-2026-44432), hence the version floor in setup.cfg. The server chooses the
          encoding, whatever Accept-Encoding said: urllib3 decodes any it supports.
        * the timeout given to requests applies to each socket read, not to the whole body, and
          reading a chunk, a chunk-size line or the trailers loops over socket reads until they
          are whole: a server sending a byte a second would never time out. So the request's watch
          (interncli.deadlines) shuts the socket down when the deadline passes (the blocked read
          then returns), and the deadline is also checked between pieces.
        """
        raw = self._raw.raw
        if raw.chunked and raw.supports_chunked_reads():
            pieces: Iterator[bytes] = raw.read_chunked(READ_SIZE, decode_content=True)
        else:
            pieces = iter(lambda: raw.read1(READ_SIZE, decode_content=True), b"")
        watch = self._watch
        try:
            while True:
                if self._budget <= 0:
                    raise _Deadline()
                deadline = watch.deadline = time.monotonic() + self._budget
                try:
                    data = next(pieces, b"")
                except urllib3.exceptions.ReadTimeoutError:
                    raise _Deadline() from None
                except (urllib3.exceptions.HTTPError, OSError):
                    if watch.fired:  # the failure is the shut-down socket
                        raise _Deadline() from None
                    raise
                finally:
                    self._budget = deadline - time.monotonic()
                    watch.deadline = None
                if watch.fired:
                    raise _Deadline()
                if not data:
                    return
                yield data
        finally:
            watch.stop()

    def _broken(self, exc: BaseException, cut: NetworkError) -> NetworkError:
        """The error for a failure while the body arrives: ``cut`` (retryable, as nothing of the
        body was used yet unless the caller says so), or a corrupt encoding, which is not."""
        if isinstance(exc, urllib3.exceptions.DecodeError):
            encoding = escape_line(self.headers.get("Content-Encoding", "?"))
            return NetworkError("the reply's {} encoding is corrupt: it cannot be decompressed".format(encoding),
                                hint="Try again; if it persists, check any proxy in between.")
        return cut

    def _trace_lines(self, body: bytes) -> None:
        """A whole body on stderr, line by line: redacted as one text first, so a token that a
        server split over two lines is still found."""
        if self._trace:
            text = self._redact(body.decode("utf-8", errors="replace"))
            for line in text.split("\n"):
                self._trace("< " + _escape_long(line.rstrip("\r")))

    def _trace_skipped(self) -> None:
        assert self._trace is not None
        self._trace("< (a line longer than {}, not shown)".format(size_text(TRACE_LINE_LIMIT)))

    def _trace_line(self, line: bytes) -> None:
        """One body line on stderr: redacted, then escaped (it comes from the server)."""
        assert self._trace is not None
        self._trace("< " + _escape_long(self._redact(line.rstrip(b"\r").decode("utf-8", errors="replace"))))


class _LineTrace:
    """Whole lines of a streamed body for -v, from pieces as they arrive. The pieces of an
    unfinished line are kept in a list and joined once, when it ends: joining at every piece
    made a server sending a byte per chunk cost quadratic time (a 1 MiB line, minutes of CPU
    that --timeout does not see, since it counts only waiting for the server). A line over
    TRACE_LINE_LIMIT is not held: it is named, not shown (which also keeps a token in it from
    being cut in two before redaction)."""

    def __init__(self, line: Callable[[bytes], None], skipped: Callable[[], None]) -> None:
        self._line = line
        self._skipped = skipped
        self._parts: List[bytes] = []
        self._size = 0
        self._skipping = False

    def feed(self, data: bytes) -> None:
        """Trace the lines that ``data`` ends; hold (or skip) the rest."""
        *ended, rest = data.split(b"\n")
        for piece in ended:
            if self._skipping:
                self._skipped()
                self._skipping = False
            else:
                self._parts.append(piece)
                self._line(b"".join(self._parts))
            self._parts = []
            self._size = 0
        if rest and not self._skipping:
            self._parts.append(rest)
            self._size += len(rest)
            if self._size > TRACE_LINE_LIMIT:
                self._parts = []
                self._size = 0
                self._skipping = True

    def close(self) -> None:
        """The body ended: trace the unfinished last line, or name it if it was skipped."""
        if self._skipping:
            self._skipped()
        elif self._parts:
            self._line(b"".join(self._parts))
        self._parts = []
        self._size = 0
        self._skipping = False


class _Deadline(Exception):
    """The deadline passed while a body was arriving (turned into the caller's own error)."""


class Transport:
    """Sends requests to the API with the resolved network settings."""

    def __init__(
        self,
        base_url: str,
        *,
        token: Optional[str],
        timeout: float,
        proxy: Optional[str] = None,
        ca_bundle: Optional[str] = None,
        trace: Optional[Trace] = None,
        environ: Mapping[str, str],
        headers: Optional[Dict[str, str]] = None,
        pace: Optional[Callable[[], Any]] = None,
    ) -> None:
        """``pace``: called before every request is sent, retries included, and may wait (the
        shared rate budget's turn)."""
        if ca_bundle:
            check_ca_bundle(ca_bundle, full=_uses_tls(base_url, proxy, environ))
        self.base_url = base_url
        self._token = token
        self._headers = dict(headers or {})  # -H and the profile's, checked by config.parse_headers
        self._timeout = timeout
        self._trace = trace
        self._pace = pace
        self._session = _Session()
        for prefix in ("https://", "http://"):
            self._session.mount(prefix, _WatchedAdapter())
        # requests reads ~/.netrc (or $NETRC) whenever a request has no auth of its own, and its
        # Basic credentials then replace our Authorization header. An auth hook that leaves the
        # request as built keeps netrc from being read at all; trust_env stays on, so
        # HTTPS_PROXY, NO_PROXY and REQUESTS_CA_BUNDLE still work.
        self._session.auth = _as_built
        # Given per request: session-level proxies would lose to HTTP(S)_PROXY (psf/requests#2018),
        # and the flag must win over the environment.
        self._proxies = {"http": proxy, "https": proxy} if proxy else None
        self._verify = ca_bundle or True

    def url(self, path: str) -> str:
        """The full URL of an API path."""
        return join_url(self.base_url, path)

    def redact(self, text: str) -> str:
        """``text`` with the token replaced, wherever it occurs."""
        return redact(text, [self._token] if self._token else [])

    def send(self, method: str, path: str, body: Optional[dict] = None) -> Response:
        """One attempt at a request; a non-2xx reply or a network failure raises the mapped error."""
        if self._pace is not None:
            self._pace()
        url = self.url(path)
        headers = request_headers(self._token, body, self._headers)
        data = encode_body(body) if body is not None else None
        if self._trace:
            self._trace_request(method, url, headers, data)
        started = time.monotonic()
        # requests applies its timeout to each socket read, so a server that sends its status
        # line and headers a byte at a time would hold the call for ever: the watch shuts the
        # socket down at the deadline. The connection hands it the socket (_WatchedConnection).
        watch = KEEPER.watch(started + self._timeout + HEADER_GRACE)
        _ARMED.watch = watch
        try:
            raw = self._session.request(
                method, url, headers=headers, data=data, stream=True, timeout=self._timeout, verify=self._verify,
                proxies=self._proxies, allow_redirects=False)
        except BaseException as exc:
            watch.stop()
            if watch.fired and isinstance(exc, Exception):
                raise self._headers_late(url) from None
            if isinstance(exc, requests.exceptions.RequestException):
                raise self._failure(url, exc) from exc
            if isinstance(exc, (urllib3.exceptions.HTTPError, OSError)):
                raise NetworkError("cannot reach {}: {}".format(url, _reason(exc)), retryable=True) from exc
            raise
        finally:
            _ARMED.watch = None
        if watch.fired:
            # http.client reads the end of a shut-down socket in the middle of the headers as
            # their end: what came is cut short (a 503 to retry, a redirect, a 200 with no body
            # to come), not a reply.
            watch.stop()
            raw.close()
            raise self._headers_late(url)
        # First, so that the clock stops (the watch pauses) while the headers are traced: a
        # stderr that blocks is our wait, not the server's.
        response = Response(raw, watch, self._timeout, started, self.redact, self._trace)
        if self._trace:
            self._trace("< HTTP {} {}".format(raw.status_code, escape_line(raw.reason or "")))
            for key, value in raw.headers.items():
                self._trace("< {}: {}".format(escape_line(key), escape_line(self.redact(value))))
            self._trace("<")
        if raw.status_code < 200:
            # http.client skips only "100 Continue": any other 1xx (103 Early Hints) comes back
            # as the reply, with no body, and the real answer behind it on the connection is
            # lost. Not a server error to retry: the same request would meet the same 103.
            response.close()
            raise NetworkError("the server answered with HTTP {} {}, an informational status, instead of "
                               "its reply".format(raw.status_code, escape_line(raw.reason or "")).rstrip(),
                               hint="Check the base URL (-b) and any proxy in between: interncli cannot read "
                                    "a reply behind it.")
        if 300 <= raw.status_code < 400:
            response.close()
            location = raw.headers.get("Location", "?")
            raise RequestRejected(
                "the server redirects {} to {} (HTTP {})".format(url, location, raw.status_code),
                code=raw.status_code, http_status=raw.status_code,
                hint="Use the address it redirects to as the base URL (-b); requests are not re-sent "
                     "to another address with your token.")
        if not 200 <= raw.status_code < 300:
            try:
                body_bytes = response.read_start(ERROR_BODY_LIMIT)
            finally:
                response.close()
            err = error_from_response(raw.status_code, body_bytes, raw.reason or "", url)
            err.retry_after = parse_retry_after(raw.headers.get("Retry-After"))
            if err.retryable and err.retry_after is not None and err.retry_after > MAX_RETRY_AFTER:
                # Not waited for (call_with_retries): say that the server asked for the wait.
                err.hint = ("The server asked to wait {:.0f}s before trying again (Retry-After), longer than "
                            "interncli waits ({:.0f}s): try again later.".format(err.retry_after, MAX_RETRY_AFTER))
            raise err
        return response

    def _headers_late(self, url: str) -> NetworkError:
        """The error for a status line and headers that had not all come at the deadline."""
        return NetworkError("no reply from {} within {:g}s: its status line and headers were still "
                            "arriving".format(url, self._timeout), hint="Raise --timeout, or try again later.")

    def _failure(self, url: str, exc: requests.exceptions.RequestException) -> InternCliError:
        """The error a requests exception stands for; never quoting headers (they hold the token)."""
        exceptions = requests.exceptions
        if isinstance(exc, exceptions.SSLError):
            return NetworkError("TLS failed for {}: {}".format(url, _reason(exc)),
                                hint="Pass the server's CA with --ca-bundle PATH, or check the base URL.")
        if isinstance(exc, exceptions.ProxyError):
            return NetworkError("the proxy failed: {}".format(_reason(exc)), retryable=True,
                                hint="Check --proxy / HTTPS_PROXY, or set NO_PROXY for this host.")
        # The retry rule: a connect timeout, a refused or reset connection is retried (nothing
        # was received); a read timeout never is, before the status line as after it, since
        # --timeout is the wait the user accepted and a retry would double it.
        if isinstance(exc, exceptions.ConnectTimeout):
            return NetworkError("timed out connecting to {} after {:g}s".format(url, self._timeout), retryable=True)
        if isinstance(exc, exceptions.Timeout):
            return NetworkError("no reply from {} within {:g}s".format(url, self._timeout),
                                hint="Raise --timeout, or try again later.")
        if isinstance(exc, exceptions.InvalidHeader) and isinstance(exc.args[0] if exc.args else None,
                                                                     urllib3.exceptions.InvalidHeader):
            # urllib3's own InvalidHeader, re-raised under requests' name: the reply's headers
            # contradict each other (Content-Length twice, with two values), not ours.
            return NetworkError("the reply's headers are not valid: {}".format(_reason(exc)),
                                hint="Check the base URL (-b) and any proxy in between.")
        if isinstance(exc, exceptions.InvalidHeader):
            return UsageError("a request header is not valid", hint="Check the token: it must be one line of text.")
        if isinstance(exc, exceptions.InvalidSchema) and "SOCKS" in str(exc):
            return UsageError("a SOCKS proxy needs PySocks, which is not installed",
                              hint="pip install 'requests[socks]', or use an http:// proxy.")
        if isinstance(exc, (exceptions.InvalidURL, exceptions.MissingSchema, exceptions.InvalidSchema,
                            exceptions.InvalidProxyURL)):
            return UsageError("cannot send to {}: the base URL or proxy URL is not valid".format(url),
                              hint="For example: -b http://127.0.0.1:23333/v1 --proxy http://proxy:3128")
        return NetworkError("cannot reach {}: {}".format(url, _reason(exc)), retryable=True)

    def _trace_request(self, method: str, url: str, headers: Dict[str, str], data: Optional[bytes]) -> None:
        assert self._trace is not None
        self._trace("> {} {}".format(method, url))
        for key, value in redact_headers(headers).items():
            self._trace("> {}: {}".format(key, value))
        self._trace(">")
        if data is not None:
            self._trace("> " + _escape_long(self.redact(data.decode("utf-8"))))


class _Session(requests.Session):
    """requests' session, never following a redirect: Transport.send reports one instead."""

    def get_redirect_target(self, resp: requests.Response) -> None:
        # Even with allow_redirects=False, requests reads a redirect's body whole (to put the
        # connection back for the next hop it would not take) inside Session.request: a
        # 300 MB body, or a gzip bomb, in memory at once. With no target there is nothing to
        # follow, and the body is left unread (the connection is closed, not reused).
        return None


# The watch of the request this thread is sending, for the connection to hand its socket to.
_ARMED = threading.local()


class _WatchedConnection:
    """Mixed into urllib3's connection classes: hands the socket to the watch of the request
    being sent, before anything is read from it. ``_new_conn`` makes a new connection's raw
    socket (before TLS or a proxy's CONNECT, which read from it too); ``_connect_tls_proxy``
    the TLS socket to an https proxy; ``request`` starts each request, on a pooled connection
    too. All are urllib3 2.x's own names, its SOCKS connection included; the setup.cfg floor
    keeps them. The watch is kept, for the pool to stop it (_WatchedPool)."""

    sock: Any
    interncli_watch: Optional[Watch] = None

    def _new_conn(self) -> Any:
        sock = super()._new_conn()  # type: ignore[misc]
        self._hand_over(sock)
        return sock

    def _connect_tls_proxy(self, hostname: str, sock: Any) -> Any:
        # ssl detaches the raw socket it wraps, so the watch's hold on it is dead from here:
        # the CONNECT reply and the tunnel's own TLS handshake are read through this socket.
        # (A direct TLS handshake needs no such hand-over: ssl bounds it whole by the socket
        # timeout.)
        tls = super()._connect_tls_proxy(hostname, sock)  # type: ignore[misc]
        self._hand_over(tls)
        return tls

    def request(self, *args: Any, **kwargs: Any) -> Any:
        if self.sock is not None:
            self._hand_over(self.sock)
        return super().request(*args, **kwargs)  # type: ignore[misc]

    def _hand_over(self, sock: Any) -> None:
        watch = getattr(_ARMED, "watch", None)
        if watch is not None:
            self.interncli_watch = watch
            watch.attach(sock)


class _WatchedPool:
    """Mixed into urllib3's connection pool classes: a connection coming back to the pool is
    for the next request, so the watch of the last one is stopped there. urllib3 puts it back
    while reading the last bytes of a body, before interncli sees the body end and stops the
    watch itself: a deadline passing in between (a reply read just at it) would otherwise shut
    the socket that the next request, perhaps another thread's, is using by then."""

    def _put_conn(self, conn: Any) -> None:
        watch = getattr(conn, "interncli_watch", None)
        if watch is not None:
            conn.interncli_watch = None
            watch.stop()
        super()._put_conn(conn)  # type: ignore[misc]


_WATCHED_POOLS: Dict[type, type] = {}


def _watched_pool(pool: type) -> type:
    """A subclass of the connection pool class ``pool`` whose connections are watched."""
    if issubclass(pool, _WatchedPool):
        return pool
    if pool not in _WATCHED_POOLS:
        connection = type("Watched" + pool.ConnectionCls.__name__,  # type: ignore[attr-defined]
                          (_WatchedConnection, pool.ConnectionCls), {})  # type: ignore[attr-defined]
        _WATCHED_POOLS[pool] = type("Watched" + pool.__name__, (_WatchedPool, pool), {"ConnectionCls": connection})
    return _WATCHED_POOLS[pool]


def _watch_pools(manager: Any) -> None:
    """Make a urllib3 pool manager (direct, proxy or SOCKS) build watched pools."""
    manager.pool_classes_by_scheme = {scheme: _watched_pool(pool)
                                      for scheme, pool in manager.pool_classes_by_scheme.items()}


class _WatchedAdapter(requests.adapters.HTTPAdapter):
    """requests' adapter, with watched connections to servers and through proxies, and an https
    proxy's certificate checked whatever the URL's scheme."""

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        # requests checks a certificate only for an https URL, and turns checking off for any
        # other: a request to an http server through an https proxy (``conn`` is then the pool
        # of TLS connections to the proxy) went, token and all, to a proxy whose certificate
        # nobody checked (for an https server, urllib3 checks the proxy with the server's CAs).
        # The proxy is checked as an https server would be.
        if getattr(conn, "scheme", None) == "https" and url.lower().startswith("http:"):
            url = "https:" + url[len("http:"):]
        super().cert_verify(conn, url, verify, cert)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        _watch_pools(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        _watch_pools(manager)
        return manager


def check_ca_bundle(path: str, full: bool = True) -> None:
    """Refuse, as bad local input, a CA bundle that TLS could not use: checked before anything
    is sent, since requests would only fail at the first connection, as a network error.
    Parsing a system bundle takes tens of milliseconds, so without ``full`` (no TLS will be
    used: a plain-http server and proxy) only its existence is checked."""
    hint = "Pass a readable PEM file (or a directory of them) to --ca-bundle (or REQUESTS_CA_BUNDLE)."
    if not os.path.exists(path):
        raise UsageError("CA bundle {} does not exist".format(path), hint=hint)
    if not full:
        return
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # a few milliseconds: only when it is used
    try:
        if os.path.isdir(path):
            context.load_verify_locations(capath=path)
        else:
            context.load_verify_locations(cafile=path)
    except ssl.SSLError as exc:
        raise UsageError("CA bundle {} holds no PEM certificate ({})".format(
            path, exc.reason or "not PEM"), hint=hint) from exc
    except (OSError, ValueError) as exc:
        raise UsageError("cannot read CA bundle {}: {}".format(
            path, getattr(exc, "strerror", None) or exc), hint=hint) from exc


def _uses_tls(base_url: str, proxy: Optional[str], environ: Mapping[str, str]) -> bool:
    """Whether a request may use TLS, and so the CA bundle: an https base URL or proxy (the
    flag's, or one from the environment)."""
    proxies = [proxy or ""] + [environ.get(name, "") for name in (
        "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")]
    return any(url.strip().lower().startswith("https:") for url in [base_url] + proxies)


def _as_built(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """requests' auth hook, leaving the request as built (with the Bearer header, if any)."""
    return request



def _escape_long(text: str) -> str:
    """escape_line over ``text``, a slice at a time. re.sub with a function holds every
    replacement (a str of ~55 bytes each) until it joins them: a 4 MiB body of ESC bytes took
    350 MiB under -v. Escaping is character by character, so the slices give the same text."""
    if len(text) <= ESCAPE_SLICE:
        return escape_line(text)
    return "".join(escape_line(text[i:i + ESCAPE_SLICE]) for i in range(0, len(text), ESCAPE_SLICE))


def _reason(exc: BaseException) -> str:
    """The innermost useful sentence of a requests/urllib3 exception."""
    inner: Optional[BaseException] = exc
    seen: List[BaseException] = []
    while inner is not None and len(seen) < 6:
        seen.append(inner)
        if isinstance(inner, Exception) and inner.args and isinstance(inner.args[0], BaseException):
            inner = inner.args[0]
        else:
            inner = inner.__cause__ or inner.__context__
    text = str(seen[-1]) or type(seen[-1]).__name__
    for candidate in reversed(seen):
        if "Connection refused" in str(candidate):
            return "connection refused"
        if "Name or service not known" in str(candidate) or "nodename nor servname" in str(candidate):
            return "the host name could not be resolved"
    return " ".join(text.split())[:300]
