"""Tests of the test server itself, with http.client and raw sockets only."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

from tests.apiserver import (
    APIServer,
    Completion,
    Drop,
    Hang,
    Json,
    Raw,
    Stream,
    err_code,
    err_detail,
    err_msgcode,
    err_object,
    err_openai,
    html_error,
    split_text,
    stream_chunks,
)

CHAT = "/v1/chat/completions"


@pytest.fixture
def server() -> Iterator[APIServer]:
    with APIServer() as srv:
        yield srv
    assert srv.errors == []


def request(server: APIServer, method: str, path: str, body: Any = None,
            headers: Optional[Dict[str, str]] = None, timeout: float = 5) -> Tuple[http.client.HTTPResponse, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    data = json.dumps(body).encode() if body is not None else None
    conn.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
    resp = conn.getresponse()
    return resp, resp.read()


def chat_body(text: Any = "hello", **extra: Any) -> Dict[str, Any]:
    return {"model": "intern-latest", "messages": [{"role": "user", "content": text}], **extra}


def raw_exchange(server: APIServer, request_bytes: bytes, timeout: float = 5) -> bytes:
    """Send raw bytes, read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(request_bytes)
        data = b""
        while True:
            piece = sock.recv(65536)
            if not piece:
                return data
            data += piece


def raw_post(path: str, body: Dict[str, Any], host: str = "127.0.0.1") -> bytes:
    data = json.dumps(body).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n").encode() + data


def sse_data(body: bytes) -> List[str]:
    return [line[len("data: "):] for line in body.decode().split("\n") if line.startswith("data: ")]


def test_default_completion_has_the_seed_shape(server: APIServer) -> None:
    resp, body = request(server, "POST", CHAT, chat_body("hello", model="intern-s1"))
    assert resp.status == 200 and resp.getheader("Content-Type") == "application/json"
    doc = json.loads(body)
    assert doc["object"] == "chat.completion" and doc["model"] == "intern-s1"
    assert isinstance(doc["id"], str) and isinstance(doc["created"], int)
    assert doc["choices"] == [{"index": 0, "message": {"role": "assistant", "content": "echo: hello"},
                               "finish_reason": "stop"}]
    assert doc["moderation"] == {"sensitive": False, "category": ""}
    assert set(doc["usage"]) == {"prompt_tokens", "completion_tokens", "total_tokens"}


def test_default_completion_joins_text_parts_and_honours_n(server: APIServer) -> None:
    parts = [{"type": "text", "text": "describe"}, {"type": "image_url", "image_url": {"url": "data:x"}},
             {"type": "text", "text": "this"}]
    _, body = request(server, "POST", CHAT, chat_body(parts, n=2))
    choices = json.loads(body)["choices"]
    assert [(c["index"], c["message"]["content"]) for c in choices] == [
        (0, "echo 0: describe this"), (1, "echo 1: describe this")]


def test_default_stream_echoes_in_pieces(server: APIServer) -> None:
    resp, body = request(server, "POST", CHAT, chat_body("héllo wörld", stream=True))
    assert resp.getheader("Transfer-Encoding") == "chunked"
    assert resp.getheader("Content-Type") == "text/event-stream"
    data = sse_data(body)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    pieces = [c["choices"][0]["delta"].get("content", "") for c in chunks]
    assert len([p for p in pieces if p]) >= 2
    assert "".join(pieces) == "echo: héllo wörld"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(not c["choices"][0]["finish_reason"] for c in chunks[:-1])


def test_default_stream_with_n_gives_each_choice_its_echo(server: APIServer) -> None:
    _, body = request(server, "POST", CHAT, chat_body("hi", stream=True, n=3))
    texts: Dict[int, str] = {}
    finished = set()
    for d in sse_data(body)[:-1]:
        choice = json.loads(d)["choices"][0]
        texts[choice["index"]] = texts.get(choice["index"], "") + choice["delta"].get("content", "")
        if choice["finish_reason"]:
            finished.add(choice["index"])
    assert texts == {0: "echo 0: hi", 1: "echo 1: hi", 2: "echo 2: hi"} and finished == {0, 1, 2}


def test_models_and_not_found(server: APIServer) -> None:
    _, body = request(server, "GET", "/v1/models")
    assert [m["id"] for m in json.loads(body)["data"]] == ["intern-latest", "intern-s1", "internvl2.5-latest"]
    resp, body = request(server, "GET", "/v1/nothing")
    assert resp.status == 404 and json.loads(body) == {"detail": "Not Found"}
    resp, _ = request(server, "POST", "/v1//chat/completions", chat_body())
    assert resp.status == 404


def test_chunked_framing_on_the_wire(server: APIServer) -> None:
    server.add(Stream([{"a": 1}, ": comment\n\n"]))
    raw = raw_exchange(server, raw_post(CHAT, chat_body(stream=True)))
    head, _, wire = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0].startswith("HTTP/1.1 200")
    assert "Transfer-Encoding: chunked" in lines
    assert not any(line.lower().startswith("content-length") for line in lines)
    assert wire == (b'10\r\ndata: {"a": 1}\n\n\r\n' + b"b\r\n: comment\n\n\r\n"
                    + b"e\r\ndata: [DONE]\n\n\r\n" + b"0\r\n\r\n")


def test_close_framing_on_the_wire(server: APIServer) -> None:
    server.add(Stream([{"a": 1}, "garbage line\n\n"], framing="close"))
    raw = raw_exchange(server, raw_post(CHAT, chat_body(stream=True)))
    head, _, wire = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0].startswith("HTTP/1.0 200")
    assert "Content-Type: text/event-stream" in lines
    assert not any(line.lower().startswith(("content-length", "transfer-encoding")) for line in lines)
    assert wire == b'data: {"a": 1}\n\ngarbage line\n\ndata: [DONE]\n\n'


def test_queued_replies_are_fifo_per_route_then_default(server: APIServer) -> None:
    server.add(Json({"first": True}))
    server.add(err_code(-20053, "slow down", status=429, headers={"Retry-After": "0"}), times=2)
    server.add(Json({"models": "scripted"}), path="/v1/models", method="GET")
    assert server.pending() == 4 and server.pending(CHAT) == 3
    answers = [request(server, "POST", CHAT, chat_body()) for _ in range(4)]
    assert json.loads(answers[0][1]) == {"first": True}
    for resp, body in answers[1:3]:
        assert resp.status == 429 and resp.getheader("Retry-After") == "0"
        assert json.loads(body) == {"code": -20053, "msg": "slow down"}
    assert json.loads(answers[3][1])["choices"][0]["message"]["content"] == "echo: hello"
    assert json.loads(request(server, "GET", "/v1/models")[1]) == {"models": "scripted"}
    assert server.pending() == 0


def test_requests_are_recorded_in_order(server: APIServer) -> None:
    request(server, "GET", "/v1/models?limit=2", headers={"Authorization": "Bearer tok"})
    request(server, "POST", CHAT, chat_body("one"), headers={"X-Trace": "abc"})
    first, second = server.requests
    assert (first.method, first.path, first.route) == ("GET", "/v1/models?limit=2", "/v1/models")
    assert first.headers["authorization"] == "Bearer tok" and first.body == b"" and first.json is None
    assert second is server.last and second.headers["x-trace"] == "abc"
    assert second.headers["content-type"] == "application/json"
    assert second.json == chat_body("one") and json.loads(second.body) == chat_body("one")
    assert first.at <= second.at and [r.method for r in server.calls()] == ["POST"]


def test_proxy_style_absolute_uri(server: APIServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("POST", "http://intern.test/v1/chat/completions", body=json.dumps(chat_body("via proxy")),
                 headers={"Host": "intern.test", "Content-Type": "application/json"})
    doc = json.loads(conn.getresponse().read())
    assert doc["choices"][0]["message"]["content"] == "echo: via proxy"
    assert server.last.path == "http://intern.test/v1/chat/completions"
    assert server.last.route == CHAT and server.last.headers["host"] == "intern.test"


def test_keep_alive_connection_serves_several_requests(server: APIServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    for text in ("a", "b"):
        conn.request("POST", CHAT, body=json.dumps(chat_body(text, stream=text == "b")))
        body = conn.getresponse().read()
        assert f"echo: {text}" in body.decode() or text == "b"
    assert sse_data(body)[-1] == "[DONE]" and len(server.requests) == 2


def test_cut_chunked_stream_raises_incomplete_read(server: APIServer) -> None:
    stream = server.add(Stream(stream_chunks(["partial"]), cut=True))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("POST", CHAT, body=json.dumps(chat_body(stream=True)))
    resp = conn.getresponse()
    with pytest.raises(http.client.IncompleteRead) as info:
        resp.read()
    assert b"partial" in info.value.partial and b"[DONE]" not in info.value.partial
    assert stream.finished.wait(5)


def test_cut_close_stream_ends_early_without_done(server: APIServer) -> None:
    server.add(Stream(stream_chunks(["partial"]), framing="close", cut=True))
    resp, body = request(server, "POST", CHAT, chat_body(stream=True))
    assert resp.version == 10 and b"partial" in body and b"[DONE]" not in body


def test_hold_after_waits_for_release(server: APIServer) -> None:
    release = threading.Event()
    stream = server.add(Stream(stream_chunks(["first", "second"]), hold_after=1, release=release))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("POST", CHAT, body=json.dumps(chat_body(stream=True)))
    resp = conn.getresponse()
    first = resp.readline()
    assert b'"first"' in first and resp.readline() == b"\n"
    assert stream.held.wait(5) and stream.released is None and stream.sent == 1
    release.set()
    rest = resp.read()
    assert b'"second"' in rest and rest.endswith(b"data: [DONE]\n\n")
    assert stream.finished.wait(5) and stream.released is True


@pytest.mark.integration  # real time: it waits for the hold, the delay, the timeout
def test_hold_times_out_and_records_it(server: APIServer) -> None:
    stream = server.add(Stream(["data: 1\n\n", "data: 2\n\n"], hold_after=1, release=threading.Event(),
                               hold_timeout=0.2))
    _, body = request(server, "POST", CHAT, chat_body(stream=True))
    assert sse_data(body) == ["1", "2", "[DONE]"] and stream.released is False


@pytest.mark.integration  # real time: it waits for the hold, the delay, the timeout
def test_stream_delay_and_custom_status_and_headers(server: APIServer) -> None:
    server.add(Stream(['data: {"object": "error", "message": "boom", "code": 1}\n\n'] * 2, delay=0.1,
                      done=False, status=500, headers={"X-Request-Id": "r1"}))
    started = time.monotonic()
    resp, body = request(server, "POST", CHAT, chat_body(stream=True))
    assert time.monotonic() - started >= 0.1
    assert resp.status == 500 and resp.getheader("X-Request-Id") == "r1"
    assert [json.loads(d)["message"] for d in sse_data(body)] == ["boom", "boom"]


@pytest.mark.integration  # real time: it waits for the hold, the delay, the timeout
def test_hang_makes_a_client_time_out(server: APIServer) -> None:
    server.add(Hang(5))
    started = time.monotonic()
    with pytest.raises(socket.timeout):
        request(server, "POST", CHAT, chat_body(), timeout=0.3)
    assert time.monotonic() - started < 2 and len(server.requests) == 1


@pytest.mark.parametrize("reset", [False, True])
def test_drop_closes_without_response(server: APIServer, reset: bool) -> None:
    server.add(Drop(reset=reset))
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        request(server, "POST", CHAT, chat_body())
    assert server.last.json == chat_body()
    assert request(server, "POST", CHAT, chat_body())[0].status == 200


def test_client_leaving_mid_stream_is_quiet(server: APIServer) -> None:
    stream = server.add(Stream([{"i": i} for i in range(50)], delay=0.02))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("POST", CHAT, body=json.dumps(chat_body(stream=True)))
    conn.getresponse().readline()
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    conn.close()
    assert stream.finished.wait(5) and stream.error is not None and stream.sent < 50
    assert request(server, "GET", "/v1/models")[0].status == 200  # the fixture checks server.errors


def test_completion_builder(server: APIServer) -> None:
    args = "{'location': 'shanghai', 'unit': 'celsius'}"
    server.add(Completion("get_current_weather", tool_calls=[("97102", "get_current_weather", args)],
                          reasoning="thinking", moderation={"sensitive": True, "category": "ad"}))
    server.add(Completion("cut", finish_reason="length", model="other", n=2))
    doc = json.loads(request(server, "POST", CHAT, chat_body(model="intern-s1"))[1])
    choice = doc["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and doc["model"] == "intern-s1"
    assert choice["message"]["tool_calls"] == [{"id": "97102", "type": "function", "function": {
        "name": "get_current_weather", "arguments": args}}]
    assert choice["message"]["reasoning_content"] == "thinking"
    assert doc["moderation"] == {"sensitive": True, "category": "ad"}
    doc = json.loads(request(server, "POST", CHAT, chat_body())[1])
    assert doc["model"] == "other" and [c["finish_reason"] for c in doc["choices"]] == ["length", "length"]


def test_stream_chunks_helper() -> None:
    chunks = stream_chunks([["a", "b"], ["c"]], reasoning=[["r"], []], finish_reason="length")
    seq = [(c["choices"][0]["index"], c["choices"][0]["delta"], c["choices"][0]["finish_reason"]) for c in chunks]
    assert seq == [
        (0, {"role": "assistant", "reasoning_content": "r"}, ""), (1, {"role": "assistant", "content": "c"}, ""),
        (0, {"content": "a"}, ""), (0, {"content": "b"}, ""),
        (0, {"content": ""}, "length"), (1, {"content": ""}, "length"),
    ]
    same = stream_chunks(["x"], n=2, pending_finish_reason=None)
    assert [c["choices"][0]["index"] for c in same] == [0, 1, 0, 1]
    assert same[0]["choices"][0]["finish_reason"] is None
    assert "".join(split_text("echo: abcdef")) == "echo: abcdef" and len(split_text("echo: abcdef")) == 3


@pytest.mark.parametrize("reply, expected", [
    (err_code("A0211", "token expired", status=401), {"code": "A0211", "msg": "token expired"}),
    (err_msgcode("A0202", "auth failed"), {"msgCode": "A0202", "msg": "auth failed"}),
    (err_object("bad model", -20013, status=400), {"object": "error", "message": "bad model", "code": -20013}),
    (err_openai("nope", "invalid", status=422), {"error": {"message": "nope", "code": "invalid"}}),
    (err_detail("Method Not Allowed", status=405), {"detail": "Method Not Allowed"}),
])
def test_error_shapes(server: APIServer, reply: Json, expected: Dict[str, Any]) -> None:
    server.add(reply)
    resp, body = request(server, "POST", CHAT, chat_body())
    assert resp.status == reply.status and json.loads(body) == expected


def test_html_and_raw_replies(server: APIServer) -> None:
    server.add(html_error())
    server.add(Raw(b"\xff not json", status=200, content_type="application/json"))
    resp, body = request(server, "POST", CHAT, chat_body())
    assert resp.status == 502 and resp.getheader("Content-Type") == "text/html"
    assert body == b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    resp, body = request(server, "POST", CHAT, chat_body())
    assert resp.getheader("Content-Type") == "application/json" and body == b"\xff not json"


def test_stop_ends_a_hanging_reply_and_frees_the_port() -> None:
    srv = APIServer().start()
    srv.add(Hang(30))
    results: List[BaseException] = []

    def call() -> None:
        try:
            request(srv, "POST", CHAT, chat_body(), timeout=20)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            results.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    while not srv.requests:
        time.sleep(0.01)
    started = time.monotonic()
    srv.stop()
    caller.join(5)
    assert time.monotonic() - started < 3 and not caller.is_alive()
    assert len(results) == 1 and isinstance(results[0], (ConnectionError, http.client.HTTPException))
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", srv.port), timeout=1)
