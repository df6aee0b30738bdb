from __future__ import annotations

import itertools
import random

import pytest

from interncli.sse import LimitExceeded, ServerSentEvent, SSEDecoder, StrayLine, decode_events

# A representative stream: BOM, comments, all three line endings, multi-line
# data, multi-byte UTF-8 (CJK + a 4-byte emoji), event/id/retry fields, a field
# with no colon, a raw JSON error line, ignored id/retry values and [DONE].
STREAM = (
    b"\xef\xbb\xbf: keep-alive comment\r\n"
    b"event: greet\r\n"
    b"id: 1\r\n"
    b"retry: 3000\r\n"
    + "data: 你好\r\n".encode("utf-8")
    + "data: 😀 world\n".encode("utf-8")
    + b"\r\n"
    + b"data:no-space\n"
    b"data\n"
    b":comment without space\n"
    b"\r"
    b'{"code": -20053, "msg": "x"}\n'
    b"id: bad\x00id\r"
    b"retry: 12a\r"
    b"event: delta\r"
    b"data:  two spaces\r"
    b"\r"
    b"\r\n"
    b"\n"
    b"data: [DONE]\r\n"
    b"\r\n"
)

EXPECTED = [
    ServerSentEvent("greet", "你好\n😀 world", "1", 3000),
    ServerSentEvent("message", "no-space\n", "1", None),
    StrayLine('{"code": -20053, "msg": "x"}'),
    ServerSentEvent("delta", " two spaces", "1", None),
    ServerSentEvent("message", "[DONE]", "1", None),
]


def run(chunks):
    """Feed chunks through one decoder, flush, and return (items, pending)."""
    dec = SSEDecoder()
    items = []
    for chunk in chunks:
        items.extend(dec.feed(chunk))
    items.extend(dec.flush())
    return items, dec.pending


def test_whole_stream_in_one_feed():
    assert run([STREAM]) == (EXPECTED, False)


def test_every_single_split_point():
    # One test, as the pairs below: a test per split point cost pytest and xdist more than the
    # split does (238 tests, ~4 ms of overhead each for a few microseconds of decoding).
    bad = [i for i in range(len(STREAM) + 1) if run([STREAM[:i], STREAM[i:]]) != (EXPECTED, False)]
    assert bad == []


def test_every_pair_of_split_points():
    n = len(STREAM)
    bad = []
    for i, j in itertools.combinations(range(n + 1), 2):
        if run([STREAM[:i], STREAM[i:j], STREAM[j:]]) != (EXPECTED, False):
            bad.append((i, j))
    assert bad == []


def test_byte_by_byte():
    chunks = [STREAM[i : i + 1] for i in range(len(STREAM))]
    assert run(chunks) == (EXPECTED, False)


def test_byte_by_byte_with_empty_chunks_interleaved():
    chunks = []
    for i in range(len(STREAM)):
        chunks += [b"", STREAM[i : i + 1]]
    assert run(chunks + [b""]) == (EXPECTED, False)


def test_random_chunkings():
    rng = random.Random(1234)
    for _ in range(300):
        cuts = sorted(rng.sample(range(1, len(STREAM)), rng.randint(1, 40)))
        bounds = [0] + cuts + [len(STREAM)]
        chunks = [STREAM[a:b] for a, b in zip(bounds, bounds[1:])]
        assert run(chunks) == (EXPECTED, False), cuts


def test_decode_events_generator_matches():
    chunks = [STREAM[i : i + 7] for i in range(0, len(STREAM), 7)]
    assert list(decode_events(chunks)) == EXPECTED
    assert list(decode_events(iter([]))) == []


def test_bytearray_and_memoryview_chunks_accepted():
    assert run([bytearray(STREAM[:50]), memoryview(STREAM[50:])]) == (EXPECTED, False)


# --- line endings -----------------------------------------------------------


def test_crlf_split_across_feeds_is_one_line_ending():
    dec = SSEDecoder()
    assert dec.feed(b"data: a\r") == []
    # The "\n" completes the same "\r\n"; only the following "\r\n" is the
    # blank line, so exactly one event, dispatched only now.
    assert dec.feed(b"\n") == []
    assert dec.pending
    assert dec.feed(b"\r\n") == [ServerSentEvent("message", "a")]
    assert not dec.pending


def test_crlf_split_does_not_dispatch_between_data_lines():
    dec = SSEDecoder()
    out = dec.feed(b"data: a\r")
    out += dec.feed(b"\ndata: b\r\n\r")
    out += dec.feed(b"\n")
    out += dec.feed(b"data: c\n\n")
    assert out == [
        ServerSentEvent("message", "a\nb"),
        ServerSentEvent("message", "c"),
    ]


def test_crlf_split_with_empty_chunk_between():
    dec = SSEDecoder()
    out = dec.feed(b"data: a\r") + dec.feed(b"") + dec.feed(b"\ndata: b\n\n")
    assert out == [ServerSentEvent("message", "a\nb")]


def test_cr_cr_is_two_line_endings():
    assert list(decode_events([b"data: a\r", b"\r"])) == [ServerSentEvent("message", "a")]
    assert list(decode_events([b"data: a\r\r"])) == [ServerSentEvent("message", "a")]


def test_lf_cr_is_two_line_endings():
    # "\n\r" is not a single line ending, so this is a line then a blank line.
    assert list(decode_events([b"data: a\n\r"])) == [ServerSentEvent("message", "a")]


# --- UTF-8 and BOM ------------------------------------------------------------


def test_multibyte_char_split_across_feeds():
    raw = "data: 你好😀\n\n".encode("utf-8")
    for i in range(len(raw) + 1):
        assert list(decode_events([raw[:i], raw[i:]])) == [
            ServerSentEvent("message", "你好😀")
        ]


def test_invalid_utf8_is_replaced_not_fatal():
    assert list(decode_events([b"data: a\xffb\n\n"])) == [
        ServerSentEvent("message", "a\ufffdb")
    ]


def test_bom_split_across_feeds_is_stripped():
    raw = b"\xef\xbb\xbfdata: x\n\n"
    for i in range(len(raw) + 1):
        assert list(decode_events([raw[:i], raw[i:]])) == [ServerSentEvent("message", "x")]


def test_bom_only_stripped_at_stream_start():
    out = list(decode_events([b"data: a\n\n\xef\xbb\xbfdata: b\n\n"]))
    # The second BOM becomes part of the field name, so it is not "data".
    assert out == [ServerSentEvent("message", "a"), StrayLine("\ufeffdata: b")]


def test_only_one_bom_stripped():
    out = list(decode_events([b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\n"]))
    assert out == [StrayLine("\ufeffdata: a")]


# --- fields -------------------------------------------------------------------


@pytest.mark.parametrize(
    "line, data",
    [
        (b"data:x", "x"),
        (b"data: x", "x"),
        (b"data:  x", " x"),
        (b"data: x ", "x "),
        (b"data:", ""),
        (b"data: ", ""),
        (b"data", ""),
        (b"data: a:b: c", "a:b: c"),
    ],
)
def test_data_value_parsing(line, data):
    assert list(decode_events([line + b"\n\n"])) == [ServerSentEvent("message", data)]


def test_empty_data_field_still_dispatches():
    # Deliberate deviation from the spec, which would dispatch nothing here.
    assert list(decode_events([b"data:\n\n"])) == [ServerSentEvent("message", "")]
    assert list(decode_events([b"data:\ndata:\n\n"])) == [ServerSentEvent("message", "\n")]


def test_blank_lines_without_data_dispatch_nothing():
    assert list(decode_events([b"\n\r\n\r\n\n"])) == []


def test_event_only_block_is_not_dispatched_and_type_resets():
    out = list(decode_events([b"event: ping\n\ndata: x\n\n"]))
    assert out == [ServerSentEvent("message", "x")]


def test_event_field_without_colon_means_default_type():
    assert list(decode_events([b"event\ndata: x\n\n"])) == [ServerSentEvent("message", "x")]


def test_unknown_field_without_colon_is_stray():
    out = list(decode_events([b"hello\ndata: x\n\n"]))
    assert out == [StrayLine("hello"), ServerSentEvent("message", "x")]


def test_field_names_are_case_sensitive():
    assert list(decode_events([b"Data: x\n\n"])) == [StrayLine("Data: x")]


def test_stray_lines_keep_order_and_whitespace():
    raw = b"data: a\n<html>\n  <body>oops</body>  \r\n\ndata: b\n\n"
    assert list(decode_events([raw])) == [
        StrayLine("<html>"),
        StrayLine("  <body>oops</body>  "),
        ServerSentEvent("message", "a"),
        ServerSentEvent("message", "b"),
    ]


def test_comment_lines_are_ignored():
    out = list(decode_events([b":\n: hi\n:data: x\ndata: y\n\n"]))
    assert out == [ServerSentEvent("message", "y")]


def test_id_persists_and_nul_id_is_ignored():
    dec = SSEDecoder()
    out = dec.feed(b"id: 7\ndata: a\n\nid: x\x00y\ndata: b\n\nid\ndata: c\n\n")
    assert out == [
        ServerSentEvent("message", "a", "7"),
        ServerSentEvent("message", "b", "7"),
        ServerSentEvent("message", "c", ""),
    ]


@pytest.mark.parametrize("value", [b"", b"12a", b"-5", b"  5", b"1.5", "١٢".encode("utf-8")])
def test_invalid_retry_is_ignored(value):
    dec = SSEDecoder()
    assert dec.feed(b"retry:" + value + b"\ndata: x\n\n") == [ServerSentEvent("message", "x")]


def test_retry_is_per_block():
    dec = SSEDecoder()
    out = dec.feed(b"retry: 0250\ndata: a\n\ndata: b\n\n")
    assert out == [
        ServerSentEvent("message", "a", None, 250),
        ServerSentEvent("message", "b", None, None),
    ]


# --- end of stream ------------------------------------------------------------


def test_flush_with_partial_event_sets_pending_and_does_not_dispatch():
    dec = SSEDecoder()
    assert dec.feed(b"data: one\n\ndata: partial\n") == [ServerSentEvent("message", "one")]
    assert dec.pending
    assert dec.flush() == []
    assert dec.pending


def test_flush_with_unterminated_line_sets_pending():
    dec = SSEDecoder()
    assert dec.feed(b"data: cut") == []
    assert dec.pending
    assert dec.flush() == []
    assert dec.pending


def test_unterminated_line_alone_makes_pending():
    dec = SSEDecoder()
    dec.feed(b"data: a\n\n:comm")
    assert dec.pending
    assert dec.flush() == []
    # A final comment is no partial event once processed.
    assert not dec.pending


def test_clean_end_is_not_pending():
    dec = SSEDecoder()
    assert not dec.pending
    assert dec.feed(b"data: a\n\n") == [ServerSentEvent("message", "a")]
    assert not dec.pending
    assert dec.flush() == []
    assert not dec.pending


def test_flush_reports_unterminated_stray_line():
    # A bare JSON error body with no trailing newline must still be surfaced.
    dec = SSEDecoder()
    assert dec.feed(b'{"code": -20053, ') == []
    assert dec.feed(b'"msg": "x"}') == []
    assert dec.flush() == [StrayLine('{"code": -20053, "msg": "x"}')]
    assert not dec.pending


def test_trailing_cr_then_flush_is_clean():
    dec = SSEDecoder()
    assert dec.feed(b"data: a\r\r") == [ServerSentEvent("message", "a")]
    assert dec.flush() == []
    assert not dec.pending


# --- scale --------------------------------------------------------------------


def test_many_small_chunks_and_a_long_line():
    events = b"".join(b"data: %d\r\n\r\n" % i for i in range(5000))
    long_line = b"data: " + b"x" * 200_000 + b"\n\n"
    raw = events + long_line
    chunks = [raw[i : i + 11] for i in range(0, len(raw), 11)]
    assert len(chunks) > 20_000
    out = list(decode_events(chunks))
    assert out[:3] == [ServerSentEvent("message", str(i)) for i in range(3)]
    assert len(out) == 5001
    assert out[-1] == ServerSentEvent("message", "x" * 200_000)


# ---------------------------------------------------------------------------- limits


def _feed_split(decoder, data, size):
    out = []
    for i in range(0, len(data), size):
        out.extend(decoder.feed(data[i:i + size]))
    return out


@pytest.mark.parametrize("size", [1, 7, 4096])
def test_a_line_at_the_limit_passes_and_one_byte_more_raises(size):
    line = b"data: " + b"a" * 94  # 100 bytes without its ending
    events = _feed_split(SSEDecoder(max_line=100), line + b"\r\n\r\n", size)
    assert events == [ServerSentEvent("message", "a" * 94)]
    with pytest.raises(LimitExceeded) as caught:
        _feed_split(SSEDecoder(max_line=100), line + b"a", size)  # unterminated: raised as it grows
    assert caught.value.limit == 100 and "line" in caught.value.what


def test_a_long_line_in_one_feed_raises_too():
    with pytest.raises(LimitExceeded):
        SSEDecoder(max_line=100).feed(b"data: " + b"a" * 200 + b"\n\n")


def test_an_event_that_never_ends_raises_at_its_limit():
    decoder = SSEDecoder(max_line=100, max_event=1000)
    with pytest.raises(LimitExceeded) as caught:
        for _ in range(100):
            decoder.feed(b"data: " + b"a" * 50 + b"\n")  # no blank line ever
    assert "event" in caught.value.what


def test_the_event_limit_counts_one_event_only():
    decoder = SSEDecoder(max_event=100)
    events = []
    for _ in range(100):
        events.extend(decoder.feed(b"data: " + b"a" * 60 + b"\n\n"))
    assert len(events) == 100


def test_comments_and_unknown_fields_are_held_to_the_line_limit():
    decoder = SSEDecoder(max_line=100)
    assert decoder.feed(b": " + b"k" * 90 + b"\n") == []
    with pytest.raises(LimitExceeded):
        decoder.feed(b": " + b"k" * 200)


def test_without_limits_nothing_is_refused():
    assert list(decode_events([b"data: " + b"a" * 100000 + b"\n\n"]))[0].data == "a" * 100000
