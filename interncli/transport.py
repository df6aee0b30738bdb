"""The HTTP layer, and the only module that imports requests: session, timeouts, proxy,
TLS, verbose traces with the token redacted, and retries with backoff."""

from __future__ import annotations

import os
import random
import time
from typing import Callable, Dict, Iterator, List, Optional, TypeVar

import requests
import urllib3.exceptions

from interncli.credentials import redact
from interncli.errors import InternCliError, NetworkError, RequestRejected, StreamError, UsageError, error_from_response
from interncli.wire import encode_body, join_url, parse_retry_after, redact_headers, request_headers

T = TypeVar("T")
Trace = Callable[[str], None]

# Retry-After values above this are not waited for: the error is reported instead.
MAX_RETRY_AFTER = 120.0
MAX_BACKOFF = 30.0
READ_SIZE = 65536
ERROR_BODY_LIMIT = 1 << 20


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
    """An HTTP reply whose status was 2xx; its body is read all at once or as it arrives."""

    def __init__(self, raw: requests.Response, timeout: float, redact: Callable[[str], str],
                 trace: Optional[Trace]) -> None:
        self._raw = raw
        self._timeout = timeout
        self._redact = redact
        self._trace = trace
        self.status = raw.status_code
        self.headers = raw.headers

    @property
    def content_type(self) -> str:
        """The media type, lower-cased, without parameters."""
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()

    def read(self) -> bytes:
        """The whole body."""
        try:
            body = self._raw.content
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise NetworkError("the connection broke while reading the reply: {}".format(_reason(exc)),
                               retryable=True) from exc
        if self._trace:
            self._trace("< " + self._redact(body.decode("utf-8", errors="replace")))
        return body

    def iter_bytes(self) -> Iterator[bytes]:
        """The body in pieces as they arrive: chunk by chunk when chunked, else (a body that
        ends when the connection closes) what each socket read gives, never a full buffer."""
        raw = self._raw.raw
        if raw.chunked and raw.supports_chunked_reads():
            pieces: Iterator[bytes] = raw.read_chunked(decode_content=True)
        else:
            pieces = iter(lambda: raw.read1(READ_SIZE, decode_content=True), b"")
        partial = b""  # traced by whole lines, so the redaction sees a token whole
        try:
            for data in pieces:
                if self._trace:
                    lines = (partial + data).split(b"\n")
                    partial = lines.pop()
                    for line in lines:
                        self._trace("< " + self._redact(line.decode("utf-8", errors="replace")))
                yield data
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise StreamError("the reply stream stalled: nothing came for {:g}s".format(self._timeout),
                              retryable=True, hint="Raise --timeout, or try again.") from exc
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise StreamError("the reply stream was cut: the connection closed before the reply was complete",
                              retryable=True) from exc
        finally:
            if self._trace and partial:
                self._trace("< " + self._redact(partial.decode("utf-8", errors="replace")))

    def close(self) -> None:
        """Release the connection (also stops a stream that is still arriving)."""
        self._raw.close()


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
    ) -> None:
        if ca_bundle and not os.path.exists(ca_bundle):
            raise UsageError("CA bundle {} does not exist".format(ca_bundle),
                             hint="Pass an existing PEM file to --ca-bundle (or REQUESTS_CA_BUNDLE).")
        self.base_url = base_url
        self._token = token
        self._timeout = timeout
        self._trace = trace
        self._session = requests.Session()
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
        url = self.url(path)
        headers = request_headers(self._token, body)
        data = encode_body(body) if body is not None else None
        if self._trace:
            self._trace_request(method, url, headers, data)
        try:
            raw = self._session.request(method, url, headers=headers, data=data, stream=True,
                                        timeout=self._timeout, verify=self._verify, proxies=self._proxies,
                                        allow_redirects=False)
        except requests.exceptions.RequestException as exc:
            raise self._failure(url, exc) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise NetworkError("cannot reach {}: {}".format(url, _reason(exc)), retryable=True) from exc
        if self._trace:
            self._trace("< HTTP {} {}".format(raw.status_code, raw.reason or ""))
            for key, value in raw.headers.items():
                self._trace("< {}: {}".format(key, self.redact(value)))
            self._trace("<")
        if 300 <= raw.status_code < 400:
            raw.close()
            location = raw.headers.get("Location", "?")
            raise RequestRejected(
                "the server redirects {} to {} (HTTP {})".format(url, location, raw.status_code),
                code=raw.status_code, http_status=raw.status_code,
                hint="Use the address it redirects to as the base URL (-b); requests are not re-sent "
                     "to another address with your token.")
        if not 200 <= raw.status_code < 300:
            try:
                body_bytes = raw.raw.read(ERROR_BODY_LIMIT, decode_content=True) or b""
            except (urllib3.exceptions.HTTPError, OSError):
                body_bytes = b""
            finally:
                raw.close()
            if self._trace:
                self._trace("< " + self.redact(body_bytes.decode("utf-8", errors="replace")))
            err = error_from_response(raw.status_code, body_bytes, raw.reason or "")
            err.retry_after = parse_retry_after(raw.headers.get("Retry-After"))
            raise err
        return Response(raw, self._timeout, self.redact, self._trace)

    def _failure(self, url: str, exc: requests.exceptions.RequestException) -> InternCliError:
        """The error a requests exception stands for; never quoting headers (they hold the token)."""
        exceptions = requests.exceptions
        if isinstance(exc, exceptions.SSLError):
            return NetworkError("TLS failed for {}: {}".format(url, _reason(exc)),
                                hint="Pass the server's CA with --ca-bundle PATH, or check the base URL.")
        if isinstance(exc, exceptions.ProxyError):
            return NetworkError("the proxy failed: {}".format(_reason(exc)), retryable=True,
                                hint="Check --proxy / HTTPS_PROXY, or set NO_PROXY for this host.")
        if isinstance(exc, exceptions.ConnectTimeout):
            return NetworkError("timed out connecting to {} after {:g}s".format(url, self._timeout), retryable=True)
        if isinstance(exc, exceptions.Timeout):
            return NetworkError("no reply from {} within {:g}s".format(url, self._timeout),
                                hint="Raise --timeout, or try again later.")
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
            self._trace("> " + self.redact(data.decode("utf-8")))


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
