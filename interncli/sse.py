"""Incremental Server-Sent-Events decoder: bytes in, events out, no I/O.

Follows the WHATWG event-stream parsing rules, with two deliberate deviations:

* ``data:`` with an empty value still makes the block dispatch an event
  (with ``data == ""``), whereas the spec only dispatches a non-empty buffer.
* Lines whose field name is not ``data``/``event``/``id``/``retry`` are not
  dropped but surfaced as :class:`StrayLine`, so a caller can report a stream
  that is really a raw JSON error body or an HTML page.

Optional limits bound what a stream can make it hold: ``max_line`` bytes of one line, and
``max_event`` characters of data in one event; past either it raises :class:`LimitExceeded`.
"""

from __future__ import annotations

from typing import Iterable, Iterator, List, NamedTuple, Optional, Union

__all__ = ["LimitExceeded", "ServerSentEvent", "StrayLine", "SSEDecoder", "decode_events"]

_BOM = b"\xef\xbb\xbf"
_LINE_ENDS = (b"\n", b"\r")
_DIGITS = frozenset("0123456789")
# int() refuses more than 4300 digits with a ValueError; a retry of 10**18 ms is no wait anyone
# means either, so a longer value is ignored like any other that is not a number.
_RETRY_DIGITS = 18


class ServerSentEvent(NamedTuple):
    """One dispatched event."""

    event: str
    data: str
    #: The last event ID seen on the stream (it persists across events, per spec).
    id: Optional[str] = None
    #: A valid ``retry`` value given in this event's block, if any.
    retry: Optional[int] = None


class StrayLine(NamedTuple):
    """A line that is not SSE syntax (unknown field name), without its line ending."""

    text: str


Item = Union[ServerSentEvent, StrayLine]


class LimitExceeded(ValueError):
    """A line or an event grew past the decoder's limit; ``what`` names it, ``limit`` is the size."""

    def __init__(self, what: str, limit: int) -> None:
        super().__init__("{} is longer than {}".format(what, limit))
        self.what = what
        self.limit = limit


class SSEDecoder:
    """Incremental event-stream decoder; feed it bytes as they arrive."""

    def __init__(self, max_line: Optional[int] = None, max_event: Optional[int] = None) -> None:
        self._max_line = max_line
        self._max_event = max_event
        # Bytes of the current unterminated line, kept as a list of chunks so a
        # very long line spread over many feeds is joined once, not re-copied.
        self._parts: List[bytes] = []
        self._parts_size = 0
        # The previous chunk ended in "\r": a leading "\n" in the next chunk is
        # the second half of the same "\r\n" and must not end another line.
        self._after_cr = False
        self._at_stream_start = True
        self._data: List[str] = []
        self._data_size = 0
        self._data_seen = False
        self._event = ""
        self._retry: Optional[int] = None
        self._block_open = False  # a field was seen since the last blank line
        self._last_id: Optional[str] = None

    @property
    def pending(self) -> bool:
        """True if there is an undispatched partial event or an unterminated line."""
        return self._block_open or bool(self._parts)

    def feed(self, chunk: bytes) -> List[Item]:
        """Consume a chunk of bytes; return the events and stray lines it completed."""
        out: List[Item] = []
        if not chunk:
            return out
        if not isinstance(chunk, bytes):
            chunk = bytes(chunk)  # accept bytearray/memoryview from transports
        if self._after_cr:
            self._after_cr = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
                if not chunk:
                    return out
        # bytes.splitlines breaks only on \r, \n and \r\n, exactly the SSE set.
        pieces = chunk.splitlines(True)
        last = pieces[-1]
        unterminated = last[-1:] not in _LINE_ENDS
        if unterminated:
            pieces.pop()
        else:
            self._after_cr = last[-1:] == b"\r"
        for piece in pieces:
            line = piece.rstrip(b"\r\n")
            self._check_line(self._parts_size + len(line))
            if self._parts:
                self._parts.append(line)
                line = b"".join(self._parts)
                self._parts = []
                self._parts_size = 0
            self._line(line, out)
        if unterminated:
            self._parts.append(last)
            self._parts_size += len(last)
            self._check_line(self._parts_size)
        return out

    def _check_line(self, size: int) -> None:
        if self._max_line is not None and size > self._max_line:
            raise LimitExceeded("one line of the stream", self._max_line)

    def flush(self) -> List[Item]:
        """End of stream: process a final unterminated line; never dispatch a partial event.

        Check :attr:`pending` afterwards to tell a cut stream from a clean end.
        """
        out: List[Item] = []
        self._after_cr = False
        if self._parts:
            line = b"".join(self._parts)
            self._parts = []
            self._parts_size = 0
            self._line(line, out)
        return out

    def _line(self, raw: bytes, out: List[Item]) -> None:
        if self._at_stream_start:
            self._at_stream_start = False
            if raw.startswith(_BOM):
                raw = raw[3:]
        line = raw.decode("utf-8", "replace")
        if not line:
            self._dispatch(out)
            return
        if line[0] == ":":
            return
        name, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data_size += len(value) + 1
            if self._max_event is not None and self._data_size > self._max_event:
                raise LimitExceeded("one event of the stream", self._max_event)
            self._data.append(value)
            self._data_seen = True
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" in value:
                return
            self._last_id = value
        elif name == "retry":
            # str.isdigit() would accept non-ASCII digits, which the spec rejects.
            if not value or len(value) > _RETRY_DIGITS or not _DIGITS.issuperset(value):
                return
            self._retry = int(value)
        else:
            out.append(StrayLine(line))
            return
        self._block_open = True

    def _dispatch(self, out: List[Item]) -> None:
        if self._data_seen:
            out.append(
                ServerSentEvent(
                    self._event or "message",
                    "\n".join(self._data),
                    self._last_id,
                    self._retry,
                )
            )
        self._data = []
        self._data_size = 0
        self._data_seen = False
        self._event = ""
        self._retry = None
        self._block_open = False


def decode_events(chunks: Iterable[bytes], max_line: Optional[int] = None,
                  max_event: Optional[int] = None) -> Iterator[Item]:
    """Decode an iterable of byte chunks, yielding events and stray lines, then flush."""
    decoder = SSEDecoder(max_line, max_event)
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.flush()
