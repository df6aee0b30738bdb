"""Hostile and broken replies for tests/apiserver.APIServer: bodies too large to hold, bombs,
endless lines, servers that drip or only send keep-alives. Each writes raw bytes through the
handler and is bounded in time and size (``limit`` bytes, ``seconds``, or until the client goes
away or the server stops), so a client that does hold on cannot make a test run forever.

    server.add(EndlessLine())   # then run interncli against server.base_url
"""

from __future__ import annotations

import functools
import json
import struct
import time
import zlib
from typing import Any, Callable, Dict, Iterable, Iterator, Optional

from tests.apiserver import Recorded, Reply, _Handler

MiB = 1 << 20
PIECE = 64 * 1024
START = b'{"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": {"content": "'


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def repeat(head: bytes, piece: bytes) -> Callable[[], Iterator[bytes]]:
    """A body: ``head``, then ``piece`` forever."""

    def pieces() -> Iterator[bytes]:
        yield head
        while True:
            yield piece

    return pieces


class Endless(Reply):
    """Headers, then the pieces ``body()`` gives, ``limit`` bytes at most. ``framing``: "length"
    (Content-Length: limit), "chunked" (one HTTP chunk per piece), "close" (HTTP/1.0, ends
    when the connection closes) or "raw" (the pieces carry their own chunked framing)."""

    def __init__(self, body: Callable[[], Iterable[bytes]], limit: int = 1 << 30, framing: str = "chunked",
                 content_type: str = "text/event-stream", headers: Optional[Dict[str, str]] = None) -> None:
        self.body, self.limit, self.framing = body, limit, framing
        self.content_type, self.extra = content_type, headers or {}
        self.sent = 0

    def respond(self, h: _Handler, req: Recorded) -> None:
        headers = dict(self.extra)
        if self.framing == "length":
            headers["Content-Length"] = str(self.limit)
        elif self.framing in ("chunked", "raw"):
            headers["Transfer-Encoding"] = "chunked"
        else:
            h.protocol_version = "HTTP/1.0"
        h.close_connection = True
        h._send_headers(200, self.content_type, headers, [])
        for data in self.body():
            if self.sent >= self.limit or h.server.stopping.is_set():
                break
            data = data[: self.limit - self.sent]
            if data:  # an empty chunk would end a chunked body
                h.wfile.write(_chunk(data) if self.framing == "chunked" else data)
                self.sent += len(data)
        if self.framing == "chunked":
            h.wfile.write(b"0\r\n\r\n")


def big_body(limit: int = 300 * MiB) -> Endless:
    """A non-streamed reply of ``limit`` bytes: one JSON string that never ends."""
    return Endless(repeat(START, b"a" * PIECE), limit, framing="length", content_type="application/json")


def endless_line() -> Endless:
    """An event stream whose first line never ends."""
    return Endless(repeat(b"data: ", b"a" * PIECE))


def endless_event() -> Endless:
    """An event stream of ``data:`` lines without the blank line that would end the event."""
    return Endless(repeat(b"", b"data: " + b"a" * 1000 + b"\n"))


def endless_strays() -> Endless:
    """Lines that are not SSE, forever (a proxy's page that does not end, say)."""
    return Endless(repeat(b"", b"<p>this is not an event stream</p>\n"))


def endless_reply() -> Endless:
    """A well-formed stream whose reply never ends: 64 KiB of content per chunk."""
    chunk = {"choices": [{"index": 0, "delta": {"content": "a" * PIECE}, "finish_reason": None}]}
    return Endless(repeat(b"", b"data: " + json.dumps(chunk).encode() + b"\n\n"))


def endless_calls() -> Endless:
    """A stream that opens a new tool call in every chunk, forever."""

    def pieces() -> Iterator[bytes]:
        for index in range(10 ** 9):
            call = {"index": index, "id": str(index), "function": {"name": "f", "arguments": ""}}
            chunk = {"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]}
            yield b"data: " + json.dumps(chunk).encode() + b"\n\n"

    return Endless(pieces)


def huge_chunk() -> Endless:
    """One HTTP chunk whose header claims 1 GiB, then its bytes (a reader must not wait to
    take the chunk whole)."""
    return Endless(repeat(b"40000000\r\ndata: ", b"a" * PIECE), framing="raw")


def json_amplifier(size: int = 4 * MiB - 4096) -> Endless:
    """A body under the size cap whose parsed form would be 25 times larger: ``[{}, {}, ...]``."""
    head = b'{"choices": [{"index": 0, "message": {"content": "x"}}], "x": ['
    return Endless(repeat(head, b"{}," * (PIECE // 3)), size, framing="length", content_type="application/json")


@functools.lru_cache(maxsize=None)
def bomb(encoding: str, expanded: int = 256 * MiB, stream: bool = False) -> bytes:
    """``expanded`` bytes compressed with ``encoding`` ("gzip" or "deflate"): 256 KiB on
    the wire at 256 MiB. For a stream, a valid first event, then one line that never ends.

    Compressing 256 MiB took over a second a bomb; instead one MiB is compressed once and its
    deflate blocks repeated. A full flush ends each piece on a byte boundary with the window
    reset, so the repeated pieces decode the same wherever they stand; the container's header
    and checksum (gzip's CRC-32 and size, zlib's Adler-32) are then written around them."""
    head = START if not stream else (
        b'data: {"choices": [{"index": 0, "delta": {"content": "boom"}}]}\n\ndata: ')
    block = (b"a" if stream else b" ") * MiB
    count = expanded // MiB

    def raw_deflate(data: bytes, mode: int) -> bytes:
        packer = zlib.compressobj(9, zlib.DEFLATED, -15)
        return packer.compress(data) + packer.flush(mode)

    body = raw_deflate(head, zlib.Z_FULL_FLUSH) + raw_deflate(block, zlib.Z_FULL_FLUSH) * count + raw_deflate(
        b"", zlib.Z_FINISH)
    if encoding == "gzip":
        crc = zlib.crc32(head)
        for _ in range(count):
            crc = zlib.crc32(block, crc)
        size = len(head) + count * len(block)
        return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff" + body + struct.pack("<II", crc, size & 0xFFFFFFFF)
    adler = zlib.adler32(head)
    for _ in range(count):
        adler = zlib.adler32(block, adler)
    return b"\x78\xda" + body + struct.pack(">I", adler)


def bomb_reply(encoding: str, framing: str = "length", stream: bool = False) -> Endless:
    """A decompression bomb as a reply: Content-Length, chunked or close-delimited."""
    body = bomb(encoding, stream=stream)
    return Endless(lambda: (body[i:i + PIECE] for i in range(0, len(body), PIECE)), len(body), framing=framing,
                   content_type="text/event-stream" if stream else "application/json",
                   headers={"Content-Encoding": encoding})


class Drip(Reply):
    """A non-streamed reply sent one byte every ``interval`` seconds (Content-Length framing),
    for at most ``seconds``."""

    def __init__(self, interval: float = 0.2, seconds: float = 60.0) -> None:
        self.interval, self.seconds = interval, seconds
        self.body = START + b"a" * 100000

    def respond(self, h: _Handler, req: Recorded) -> None:
        h._send_headers(200, "application/json", {"Content-Length": str(len(self.body))}, [])
        h.wfile.flush()
        end = time.monotonic() + self.seconds
        for byte in self.body:
            if time.monotonic() > end or h.server.stopping.wait(self.interval):
                break
            h.wfile.write(bytes([byte]))
            h.wfile.flush()
        h.close_connection = True


class DripChunked(Reply):
    """A chunked body that drips, a byte every ``interval`` seconds for at most ``seconds``, in
    one ``phase``: "data" (inside a chunk that claims 64 KiB), "size" (a chunk-size line that
    never ends) or "trailer" (trailer lines after the last chunk, forever). A reader that takes
    a chunk, a size line or the trailers whole is held however short each socket read is."""

    def __init__(self, phase: str, stream: bool, interval: float = 0.2, seconds: float = 60.0) -> None:
        self.phase, self.stream, self.interval, self.seconds = phase, stream, interval, seconds

    def respond(self, h: _Handler, req: Recorded) -> None:
        h.close_connection = True
        h._send_headers(200, "text/event-stream" if self.stream else "application/json",
                        {"Transfer-Encoding": "chunked"}, [])
        event = b'data: {"choices": [{"index": 0, "delta": {"content": "Hel"}}]}\n\n'
        head = _chunk(event) if self.stream else _chunk(START)
        drip = {"data": b"10000\r\n" + b"a" * 65536, "size": b"1" * 65536,
                "trailer": b"0\r\n" + b"X-Trailer: a\r\n" * 10000}[self.phase]
        h.wfile.write(head)
        h.wfile.flush()
        end = time.monotonic() + self.seconds
        for byte in drip:
            if time.monotonic() > end or h.server.stopping.wait(self.interval):
                break
            h.wfile.write(bytes([byte]))
            h.wfile.flush()


class DripHeaders(Reply):
    """A status line and headers that never end, sent a byte every ``interval`` seconds for at
    most ``seconds``."""

    def __init__(self, interval: float = 0.2, seconds: float = 60.0) -> None:
        self.interval, self.seconds = interval, seconds

    def respond(self, h: _Handler, req: Recorded) -> None:
        end = time.monotonic() + self.seconds
        data = b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 10000
        for byte in data:
            if time.monotonic() > end or h.server.stopping.wait(self.interval):
                break
            h.wfile.write(bytes([byte]))
            h.wfile.flush()
        h.close_connection = True


class KeepAlive(Reply):
    """A stream that sends one piece of content ("Hel", unless ``first`` is False), then only
    ``beat`` (a comment by default) every ``interval`` seconds, for at most ``seconds``."""

    def __init__(self, beat: bytes = b": keep-alive\n\n", interval: float = 0.2, seconds: float = 60.0,
                 first: bool = True) -> None:
        self.beat, self.interval, self.seconds, self.first = beat, interval, seconds, first

    def respond(self, h: _Handler, req: Recorded) -> None:
        h._send_headers(200, "text/event-stream", {"Transfer-Encoding": "chunked"}, [])
        if self.first:
            chunk: Dict[str, Any] = {"choices": [{"index": 0, "delta": {"content": "Hel"}}]}
            h.wfile.write(_chunk(b"data: " + json.dumps(chunk).encode() + b"\n\n"))
        h.wfile.flush()
        end = time.monotonic() + self.seconds
        while time.monotonic() < end and not h.server.stopping.wait(self.interval):
            h.wfile.write(_chunk(self.beat))
            h.wfile.flush()
        h.close_connection = True


class Verbatim(Reply):
    """The whole response, status line and headers included, exactly as given; then close."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def respond(self, h: _Handler, req: Recorded) -> None:
        h.wfile.write(self.data)
        h.wfile.flush()
        h.close_connection = True


EMPTY_DELTA = b'data: {"choices": [{"index": 0, "delta": {}}]}\n\n'
