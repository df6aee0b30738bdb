"""A real, scriptable Intern ChatAPI server on 127.0.0.1 for tests (stdlib only).

    with APIServer() as server:
        server.add(Stream(stream_chunks(["Hel", "lo"])))
        server.add(err_code(-20053, "too many requests", status=429), times=2)
        ...  # point the client at server.base_url, then inspect server.requests

Without a queued reply the server answers like the service: chat completions echo the last
user message (streamed when the body says ``"stream": true``), ``GET /v1/models`` lists three
models; like a private OpenAI-compatible server, text completions (``POST /v1/completions``)
echo the prompt and ``GET /v1/models/ID`` shows a listed model; anything else is a 404.
Proxy-style absolute URIs in the request line are accepted.
"""

from __future__ import annotations

import collections
import json
import selectors
import socket
import socketserver
import struct
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union
from urllib.parse import urlsplit

CHAT_PATH = "/v1/chat/completions"
COMPLETIONS_PATH = "/v1/completions"
MODELS_PATH = "/v1/models"
MODELS = ["intern-latest", "intern-s1", "internvl2.5-latest"]
NO_MODERATION = {"sensitive": False, "category": ""}
# A client that goes away mid-reply is normal in tests (timeouts, Ctrl-C): not a server error.
_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, socket.timeout)


@dataclass
class Recorded:
    """One request as received. ``path`` is verbatim (absolute for proxy requests, query kept);
    ``route`` is the path part used for routing; ``at`` is ``time.monotonic()`` on arrival."""

    method: str
    path: str
    headers: Dict[str, str]
    body: bytes
    json: Any = None
    route: str = ""
    at: float = field(default_factory=time.monotonic)


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def _as_bytes(data: Union[bytes, str]) -> bytes:
    return data if isinstance(data, bytes) else data.encode("utf-8")


# ---------------------------------------------------------------------------- replies


class Reply:
    """Base of all scripted replies: ``respond`` writes the whole answer through the handler."""

    status = 200
    headers: Optional[Dict[str, str]] = None

    def respond(self, h: _Handler, req: Recorded) -> None:
        raise NotImplementedError


class Raw(Reply):
    """A body sent as is, with Content-Length."""

    def __init__(self, body: Union[bytes, str], status: int = 200, content_type: str = "text/html",
                 headers: Optional[Dict[str, str]] = None) -> None:
        self.body, self.status, self.content_type, self.headers = _as_bytes(body), status, content_type, headers

    def respond(self, h: _Handler, req: Recorded) -> None:
        h.send_body(self.status, self.content_type, self.body, self.headers)


class Json(Raw):
    """A JSON document (UTF-8, not ASCII-escaped)."""

    def __init__(self, obj: Any, status: int = 200, headers: Optional[Dict[str, str]] = None) -> None:
        super().__init__(_dumps(obj), status, "application/json", headers)
        self.obj = obj


class Completion(Reply):
    """A well-formed non-streamed chat completion. ``content`` may be a list (one per choice);
    ``tool_calls`` is a list of ``(id, name, arguments_string)`` (dicts are sent verbatim);
    ``model`` defaults to the request's model."""

    def __init__(self, content: Union[str, None, Sequence[Optional[str]]] = "ok", n: int = 1,
                 tool_calls: Optional[Sequence[Any]] = None, finish_reason: Optional[str] = None,
                 reasoning: Optional[str] = None, moderation: Optional[Dict[str, Any]] = None,
                 model: Optional[str] = None, status: int = 200,
                 headers: Optional[Dict[str, str]] = None) -> None:
        self.contents = list(content) if isinstance(content, (list, tuple)) else [content] * n
        self.tool_calls, self.reasoning, self.moderation, self.model = tool_calls, reasoning, moderation, model
        self.finish_reason = finish_reason or ("tool_calls" if tool_calls else "stop")
        self.status, self.headers = status, headers

    def build(self, req: Optional[Recorded] = None) -> Dict[str, Any]:
        """The response object for ``req``."""
        body = req.json if req is not None and isinstance(req.json, dict) else {}
        choices = []
        for index, text in enumerate(self.contents):
            message: Dict[str, Any] = {"role": "assistant", "content": text}
            if self.reasoning is not None:
                message["reasoning_content"] = self.reasoning
            if self.tool_calls:
                message["tool_calls"] = [_tool_call(tc) for tc in self.tool_calls]
            choices.append({"index": index, "message": message, "finish_reason": self.finish_reason})
        prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or []
                     if isinstance(m, dict))
        completion = sum(len((t or "").split()) for t in self.contents)
        return {
            "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
            "model": self.model or body.get("model") or "intern-latest", "choices": choices,
            "moderation": self.moderation if self.moderation is not None else dict(NO_MODERATION),
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion},
        }

    def respond(self, h: _Handler, req: Recorded) -> None:
        h.send_body(self.status, "application/json", _dumps(self.build(req)), self.headers)


def _tool_call(tc: Any) -> Dict[str, Any]:
    if isinstance(tc, dict):
        return tc
    call_id, name, arguments = tc
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


class Stream(Reply):
    """A Server-Sent-Events reply. Events: dict -> ``data: <json>\\n\\n``; str/bytes verbatim.

    framing "chunked": HTTP/1.1 chunked, one chunk per event; "close": HTTP/1.0, body ends when
    the connection closes. ``cut``: close abruptly after the events (no [DONE], no final chunk).
    ``hold_after=k``: after the k-th event (1-based, [DONE] included) wait for ``release`` (at most
    ``hold_timeout`` s). State for tests: ``held`` (Event, set when the hold starts), ``released``
    (None before the hold, then True/False), ``sent`` (events written), ``finished`` (Event),
    ``error`` (name of the exception if the client went away)."""

    def __init__(self, events: Sequence[Union[Dict[str, Any], str, bytes]], framing: str = "chunked",
                 done: bool = True, delay: float = 0.0, cut: bool = False,
                 hold_after: Optional[int] = None, release: Optional[threading.Event] = None,
                 status: int = 200, headers: Optional[Dict[str, str]] = None,
                 hold_timeout: float = 10.0) -> None:
        if framing not in ("chunked", "close"):
            raise ValueError(f"framing must be 'chunked' or 'close', not {framing!r}")
        if hold_after is not None and release is None:
            raise ValueError("hold_after needs a release Event")
        self.events, self.framing, self.done, self.delay, self.cut = list(events), framing, done, delay, cut
        self.hold_after, self.release, self.hold_timeout = hold_after, release, hold_timeout
        self.status, self.headers = status, headers
        self.held, self.finished = threading.Event(), threading.Event()
        self.released: Optional[bool] = None
        self.sent = 0
        self.error: Optional[str] = None

    def payloads(self) -> List[bytes]:
        """The bytes of each event, in order, [DONE] included when ``done`` and not ``cut``."""
        out = [b"data: " + _dumps(e) + b"\n\n" if isinstance(e, dict) else _as_bytes(e) for e in self.events]
        if self.done and not self.cut:
            out.append(b"data: [DONE]\n\n")
        return out

    def respond(self, h: _Handler, req: Recorded) -> None:
        chunked = self.framing == "chunked"
        try:
            h.start_stream(self.status, self.headers, chunked)
            for number, payload in enumerate(self.payloads(), 1):
                if number > 1 and self.delay:
                    time.sleep(self.delay)
                h.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload) if chunked else payload)
                h.wfile.flush()
                self.sent = number
                if number == self.hold_after:
                    self._hold(h.server.stopping)
            if self.cut:
                h.abort()
            elif chunked:
                h.wfile.write(b"0\r\n\r\n")
        except _GONE as exc:
            self.error = type(exc).__name__
            raise
        finally:
            self.finished.set()

    def _hold(self, stopping: threading.Event) -> None:
        assert self.release is not None
        self.held.set()
        deadline = time.monotonic() + self.hold_timeout
        while not self.release.wait(0.02) and time.monotonic() < deadline and not stopping.is_set():
            pass
        self.released = self.release.is_set()


class Hang(Reply):
    """Read the request, send nothing for ``seconds`` (cut short by ``stop()``), then close."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def respond(self, h: _Handler, req: Recorded) -> None:
        h.server.stopping.wait(self.seconds)
        h.abort()


class Drop(Reply):
    """Close the connection without any response: FIN, or TCP RST when ``reset``."""

    def __init__(self, reset: bool = False) -> None:
        self.reset = reset

    def respond(self, h: _Handler, req: Recorded) -> None:
        h.abort(reset=self.reset)


class Slow(Reply):
    """The server's default answer, after ``seconds`` (cut short by ``stop()``): a batch that is
    still running when a test stops it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def respond(self, h: _Handler, req: Recorded) -> None:
        h.server.stopping.wait(self.seconds)
        default_reply(req).respond(h, req)


class Limited(Reply):
    """A rate limit, as the service enforces one: the default answer while fewer than
    ``rpm * window / 60`` requests arrived in the last ``window`` seconds, else 429 with code
    -20053 and a Retry-After. Queue it with a large ``times``; ``accepted`` and ``rejected``
    count the answers."""

    def __init__(self, rpm: float, window: float = 10.0, retry_after: float = 1.0) -> None:
        self.allowed = max(1, int(rpm * window / 60))
        self.window = window
        self.retry_after = retry_after
        self.accepted = 0
        self.rejected = 0
        self._arrivals: collections.deque = collections.deque()
        self._lock = threading.Lock()

    def respond(self, h: _Handler, req: Recorded) -> None:
        with self._lock:
            while self._arrivals and self._arrivals[0] <= req.at - self.window:
                self._arrivals.popleft()
            refused = len(self._arrivals) >= self.allowed
            if refused:
                self.rejected += 1
            else:
                self._arrivals.append(req.at)
                self.accepted += 1
        if refused:
            err_code(-20053, "Exceeded frequency limit", status=429,
                     headers={"Retry-After": "{:g}".format(self.retry_after)}).respond(h, req)
        else:
            default_reply(req).respond(h, req)


def split_text(text: str, parts: int = 3) -> List[str]:
    """``text`` cut into up to ``parts`` non-empty pieces of near-equal length."""
    size = max(1, -(-len(text) // parts))
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]


def stream_chunks(texts: Sequence[Any], n: int = 1, finish_reason: str = "stop",
                  reasoning: Optional[Sequence[Any]] = None, model: str = "intern-latest",
                  pending_finish_reason: Optional[str] = "") -> List[Dict[str, Any]]:
    """Chunk dicts for ``Stream``. Each choice: its ``reasoning`` pieces (``delta.reasoning_content``),
    then its content pieces; the first delta of a choice also carries ``role: assistant``; then a
    final chunk ``delta {"content": ""}`` with ``finish_reason``. ``texts`` (and ``reasoning``) may
    be a list of lists, one per choice, else every one of the ``n`` choices gets the same pieces.
    Choices are interleaved piece by piece. Unfinished chunks carry ``pending_finish_reason``
    ("" as in the seed document; pass None for OpenAI's null)."""

    def per_choice(pieces: Optional[Sequence[Any]], count: int) -> List[List[str]]:
        if pieces and all(isinstance(p, (list, tuple)) for p in pieces):
            return [list(p) for p in pieces]
        return [list(pieces or [])] * count

    contents = per_choice(texts, n)
    thoughts = per_choice(reasoning, len(contents))
    thoughts += [[]] * (len(contents) - len(thoughts))
    deltas = [[{"reasoning_content": r} for r in thoughts[i]] + [{"content": t} for t in contents[i]]
              for i in range(len(contents))]
    for choice in deltas:
        if not choice:
            choice.append({"content": ""})
        choice[0] = {"role": "assistant", **choice[0]}
    created = int(time.time())

    def chunk(index: int, delta: Dict[str, Any], finish: Optional[str]) -> Dict[str, Any]:
        return {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": created,
                "model": model, "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
                "moderation": dict(NO_MODERATION)}

    out = [chunk(i, choice[step], pending_finish_reason)
           for step in range(max(len(c) for c in deltas))
           for i, choice in enumerate(deltas) if step < len(choice)]
    out += [chunk(i, {"content": ""}, finish_reason) for i in range(len(deltas))]
    return out


# ------------------------------------------------------------------------ error shapes


def err_code(code: Any, msg: str, status: int = 200, headers: Optional[Dict[str, str]] = None) -> Json:
    """``{"code": ..., "msg": ...}`` (the service's documented error codes)."""
    return Json({"code": code, "msg": msg}, status, headers)


def err_msgcode(code: Any, msg: str, status: int = 200, headers: Optional[Dict[str, str]] = None) -> Json:
    """``{"msgCode": ..., "msg": ...}`` (the gateway's auth errors, e.g. A0202)."""
    return Json({"msgCode": code, "msg": msg}, status, headers)


def err_object(message: str, code: Any = None, status: int = 200,
               headers: Optional[Dict[str, str]] = None) -> Json:
    """``{"object": "error", "message": ..., "code": ...}`` (LMDeploy)."""
    return Json({"object": "error", "message": message, "code": code}, status, headers)


def err_openai(message: str, code: Any = None, status: int = 200,
               headers: Optional[Dict[str, str]] = None) -> Json:
    """``{"error": {"message": ..., "code": ...}}`` (OpenAI style)."""
    return Json({"error": {"message": message, "code": code}}, status, headers)


def err_detail(detail: Any, status: int = 200, headers: Optional[Dict[str, str]] = None) -> Json:
    """``{"detail": ...}`` (FastAPI)."""
    return Json({"detail": detail}, status, headers)


def html_error(status: int = 502, title: str = "Bad Gateway", headers: Optional[Dict[str, str]] = None) -> Raw:
    """An HTML page such as a proxy sends."""
    return Raw(f"<html><body><h1>{status} {title}</h1></body></html>", status, "text/html", headers)


# ----------------------------------------------------------------------------- default


def last_user_text(body: Any) -> str:
    """The last user message's text; for list content, its text parts joined with spaces."""
    messages = body.get("messages") if isinstance(body, dict) else None
    for message in reversed(messages if isinstance(messages, list) else []):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(str(p.get("text", "")) for p in content
                                if isinstance(p, dict) and p.get("type") == "text")
            return "" if content is None else str(content)
    return ""


UNKNOWN_MODEL = "no-such-model"


def text_completion_reply(body: Any) -> Reply:
    """A text completion echoing the prompt (``echo: …``; ``echo i: …`` for each of n > 1),
    streamed when asked, in the shape openai's Completion has."""
    body = body if isinstance(body, dict) else {}
    prompt = body.get("prompt")
    n = body.get("n") if isinstance(body.get("n"), int) and body.get("n") > 1 else 1
    texts = [f"echo: {prompt}"] if n == 1 else [f"echo {i}: {prompt}" for i in range(n)]
    base = {"id": "cmpl-test", "object": "text_completion", "created": int(time.time()),
            "model": str(body.get("model") or "intern-latest")}
    if body.get("stream") is True:
        events: List[Union[Dict[str, Any], str, bytes]] = [
            {**base, "choices": [{"index": i, "text": piece, "logprobs": None, "finish_reason": None}]}
            for i, text in enumerate(texts) for piece in split_text(text)]
        events += [{**base, "choices": [{"index": i, "text": "", "logprobs": None, "finish_reason": "stop"}]}
                   for i in range(n)]
        return Stream(events)
    words = sum(len(t.split()) for t in texts)
    return Json({**base, "choices": [{"index": i, "text": t, "logprobs": None, "finish_reason": "stop"}
                                     for i, t in enumerate(texts)],
                 "usage": {"prompt_tokens": 1, "completion_tokens": words, "total_tokens": words + 1}})


def default_reply(req: Recorded) -> Reply:
    """What the server answers when nothing is queued for the request's route."""
    if req.method == "GET" and req.route == MODELS_PATH:
        return Json({"object": "list", "data": [{"id": m, "object": "model"} for m in MODELS]})
    if req.method == "GET" and req.route.startswith(MODELS_PATH + "/") and req.route[len(MODELS_PATH) + 1:] in MODELS:
        return Json({"id": req.route[len(MODELS_PATH) + 1:], "object": "model"})
    if req.method == "POST" and req.route == COMPLETIONS_PATH:
        return text_completion_reply(req.json)
    if req.method != "POST" or req.route != CHAT_PATH:
        return Json({"detail": "Not Found"}, 404)
    body = req.json
    if not isinstance(body, dict):
        return Json({"detail": "request body is not a JSON object"}, 400)
    if body.get("model") == UNKNOWN_MODEL:  # as the service answers a model it does not have
        return Json({"code": -20013, "msg": "Requested model does not exist"}, 400)
    text = last_user_text(body)
    n = body.get("n") if isinstance(body.get("n"), int) and body.get("n") > 1 else 1
    echoes = [f"echo: {text}"] if n == 1 else [f"echo {i}: {text}" for i in range(n)]
    if body.get("stream") is True:
        model = str(body.get("model") or "intern-latest")
        return Stream(stream_chunks([split_text(e) for e in echoes], model=model))
    return Completion(echoes)


# ------------------------------------------------------------------------------ server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "InternTestAPI/1.0"
    sys_version = ""
    # TCP_NODELAY, as real servers set it: the headers and the body are two writes, and with
    # Nagle's algorithm the second waits for the client's delayed ACK of the first, 40 ms, on a
    # kept-alive connection (a retry, a tool loop's second request) and between stream events.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def dispatch(self) -> None:
        body = self.read_body()
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        split = urlsplit(self.path)
        req = Recorded(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                       body, parsed, split.path or "/")
        api = self.server.api
        reply = api._record_and_take(req) or default_reply(req)
        try:
            reply.respond(self, req)
        except _GONE:
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = dispatch

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send_headers(self, status: int, content_type: str, extra: Optional[Dict[str, str]],
                      fixed: Sequence[Tuple[str, str]]) -> None:
        self.send_response(status)
        extra = dict(extra or {})
        if not any(k.lower() == "content-type" for k in extra):
            self.send_header("Content-Type", content_type)
        for key, value in list(fixed) + list(extra.items()):
            self.send_header(key, str(value))
        self.end_headers()

    def send_body(self, status: int, content_type: str, body: bytes, headers: Optional[Dict[str, str]]) -> None:
        """A complete response with Content-Length."""
        self._send_headers(status, content_type, headers, [("Content-Length", str(len(body)))])
        self.wfile.write(body)

    def start_stream(self, status: int, headers: Optional[Dict[str, str]], chunked: bool) -> None:
        """Status line and headers of an event stream: HTTP/1.1 chunked, or HTTP/1.0 close-delimited."""
        if chunked:
            self._send_headers(status, "text/event-stream", headers,
                               [("Cache-Control", "no-cache"), ("Transfer-Encoding", "chunked")])
        else:
            self.protocol_version = "HTTP/1.0"  # this instance only: the status line says 1.0
            self.close_connection = True
            self._send_headers(status, "text/event-stream", headers, [("Cache-Control", "no-cache")])

    def abort(self, reset: bool = False) -> None:
        """End the connection now, with FIN (or RST), whatever was or was not sent."""
        self.close_connection = True
        try:
            if reset:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.server.reset_on_close.add(self.connection)
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class PromptShutdown:
    """A socketserver mixin whose shutdown() wakes serve_forever at once. The stdlib's loop sees
    a shutdown only when its poll interval ends, so every stop cost up to that interval (0.05 s
    a test, with a server per test: a quarter of the fast suite)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._wake_r, self._wake_w = socket.socketpair()
        self._quit = False
        self._idle = threading.Event()
        self._idle.set()
        super().__init__(*args, **kwargs)

    def serve_forever(self, poll_interval: Optional[float] = None) -> None:
        """Handle requests until shutdown(); ``poll_interval`` is ignored (nothing polls)."""
        self._idle.clear()
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self, selectors.EVENT_READ)
                selector.register(self._wake_r, selectors.EVENT_READ)
                while not self._quit:
                    ready = selector.select()
                    if self._quit:
                        break
                    if any(key.fileobj is self for key, _ in ready):
                        self._handle_request_noblock()  # type: ignore[attr-defined]
        finally:
            self._idle.set()

    def shutdown(self) -> None:
        """Stop serve_forever and wait until it has returned."""
        self._quit = True
        self._wake_w.send(b"\0")
        self._idle.wait()

    def server_close(self) -> None:
        super().server_close()  # type: ignore[misc]
        self._wake_r.close()
        self._wake_w.close()


class _HTTPServer(PromptShutdown, ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, api: APIServer, port: int = 0) -> None:
        self.api = api
        self.stopping = threading.Event()
        self.open_sockets: set = set()
        self.reset_on_close: set = set()
        self.sockets_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.sockets_lock:
            self.open_sockets.discard(request)
            reset = request in self.reset_on_close
            self.reset_on_close.discard(request)
        if reset:  # no FIN first, so that close() sends the RST at once
            self.close_request(request)
        else:
            super().shutdown_request(request)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would resolve a host name (getfqdn), which can be slow.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], _GONE):
            self.api.errors.append(traceback.format_exc())
            super().handle_error(request, client_address)


class APIServer:
    """The test server: bound at construction, serving between ``start()`` and ``stop()``."""

    def __init__(self, port: int = 0) -> None:
        """``port`` 0 (the default) lets the system choose a free port."""
        self.errors: List[str] = []  # tracebacks of server-side bugs; a fixture may assert it empty
        self._lock = threading.Lock()
        self._requests: List[Recorded] = []
        self._queues: Dict[Tuple[str, str], collections.deque] = {}
        self._httpd = _HTTPServer(self, port)
        self._thread: Optional[threading.Thread] = None
        self.port: int = self._httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.base_url = self.url + "/v1"

    def start(self) -> APIServer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._httpd.serve_forever, name=f"apiserver-{self.port}",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake held or hanging replies, and close every open connection."""
        self._httpd.stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(5)
        with self._httpd.sockets_lock:
            open_sockets = list(self._httpd.open_sockets)
        for sock in open_sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._httpd.server_close()

    def __enter__(self) -> APIServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def add(self, reply: Reply, path: str = CHAT_PATH, method: str = "POST", times: int = 1) -> Reply:
        """Queue ``reply`` for the next ``times`` requests to ``method path`` (FIFO per route)."""
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._queues.setdefault((method.upper(), path), collections.deque()).append([reply, times])
        return reply

    def pending(self, path: Optional[str] = None, method: Optional[str] = None) -> int:
        """Queued replies not yet consumed (all routes, or one path and/or method)."""
        with self._lock:
            return sum(entry[1] for (m, p), queue in self._queues.items() for entry in queue
                       if (path is None or p == path) and (method is None or m == method.upper()))

    def reset(self) -> None:
        """Forget recorded requests and queued replies."""
        with self._lock:
            self._requests.clear()
            self._queues.clear()

    @property
    def requests(self) -> List[Recorded]:
        """A snapshot of the recorded requests, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def last(self) -> Recorded:
        with self._lock:
            if not self._requests:
                raise AssertionError("the server has received no request")
            return self._requests[-1]

    def calls(self, path: str = CHAT_PATH, method: Optional[str] = None) -> List[Recorded]:
        """The recorded requests routed to ``path`` (and ``method``)."""
        return [r for r in self.requests if r.route == path and (method is None or r.method == method.upper())]

    def _record_and_take(self, req: Recorded) -> Optional[Reply]:
        with self._lock:
            self._requests.append(req)
            queue = self._queues.get((req.method, req.route))
            if not queue:
                return None
            entry = queue[0]
            entry[1] -= 1
            if entry[1] == 0:
                queue.popleft()
            return entry[0]
