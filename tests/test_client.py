"""Unit tests of the request builder and reply helpers in interncli.client."""

from __future__ import annotations

import base64
import json

import pytest

from interncli.client import (
    ChatRequest,
    StreamAssembler,
    attach_images,
    build_chat_body,
    image_url,
    parse_arguments,
    tool_choice_value,
)
from interncli.errors import UsageError
from tests.conftest import PNG


def test_body_has_only_model_and_messages_when_nothing_else_is_set():
    body = build_chat_body(ChatRequest(model="m", messages=[{"role": "user", "content": "hi"}]))
    assert body == {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def test_body_carries_every_set_field_in_the_openai_cli_order():
    req = ChatRequest(model="m", messages=[], n=2, temperature=0.5, top_p=0.9, max_tokens=10,
                      stop=("x",), stream=True, thinking=True, tool_choice="auto",
                      tools=[{"type": "function", "function": {"name": "f"}}])
    body = build_chat_body(req)
    assert list(body) == ["model", "messages", "temperature", "stop", "top_p", "n", "stream", "max_tokens",
                          "thinking_mode", "tools", "tool_choice"]
    assert body["stop"] == "x" and body["thinking_mode"] is True and body["stream"] is True


def test_zero_values_are_sent_because_they_were_set():
    body = build_chat_body(ChatRequest(model="m", messages=[], temperature=0.0, max_tokens=0))
    assert body["temperature"] == 0.0 and body["max_tokens"] == 0


def test_several_stops_are_a_list():
    assert build_chat_body(ChatRequest(model="m", messages=[], stop=("a", "b")))["stop"] == ["a", "b"]


def test_openai_alias_sends_stream_false_like_the_openai_cli():
    body = build_chat_body(ChatRequest(model="m", messages=[], always_send_stream=True))
    assert list(body) == ["model", "messages", "stream"] and body["stream"] is False


@pytest.mark.parametrize("choice, expected", [
    ("auto", "auto"), ("none", "none"), ("required", "required"),
    ("get_weather", {"type": "function", "function": {"name": "get_weather"}}),
])
def test_tool_choice(choice, expected):
    assert tool_choice_value(choice) == expected


@pytest.mark.parametrize("raw, expected", [
    ('{"location": "shanghai"}', {"location": "shanghai"}),
    ("{'location': 'shanghai', 'unit': 'celsius'}", {"location": "shanghai", "unit": "celsius"}),
    ("{'ok': True, 'n': None}", {"ok": True, "n": None}),
    ("not data at all", "not data at all"),
    ("__import__('os').system('echo pwned')", "__import__('os').system('echo pwned')"),
    ({"already": "parsed"}, {"already": "parsed"}),
])
def test_parse_arguments_accepts_json_and_python_literals_but_never_evaluates(raw, expected):
    assert parse_arguments(raw) == expected


def test_local_image_becomes_a_data_url_with_its_mime_type(tmp_path):
    path = tmp_path / "dot.png"
    path.write_bytes(PNG)
    url = image_url(str(path))
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == PNG


def test_jpeg_gets_the_jpeg_mime_type(tmp_path):
    path = tmp_path / "photo.JPG"
    path.write_bytes(b"\xff\xd8\xff")
    assert image_url(str(path)).startswith("data:image/jpeg;base64,")


def test_image_urls_pass_through():
    assert image_url("https://example.invalid/a.png") == "https://example.invalid/a.png"


def test_non_image_and_missing_files_are_usage_errors(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hi")
    with pytest.raises(UsageError, match="does not look like an image"):
        image_url(str(text))
    with pytest.raises(UsageError, match="cannot read image"):
        image_url(str(tmp_path / "missing.png"))


def test_images_attach_to_the_last_user_message(tmp_path):
    messages = [{"role": "user", "content": "first"}, {"role": "assistant", "content": "a"},
                {"role": "user", "content": "Describe"}]
    attach_images(messages, ["https://example.invalid/1.png", "https://example.invalid/2.png"])
    assert messages[0]["content"] == "first"
    assert messages[2]["content"] == [
        {"type": "text", "text": "Describe"},
        {"type": "image_url", "image_url": {"url": "https://example.invalid/1.png"}},
        {"type": "image_url", "image_url": {"url": "https://example.invalid/2.png"}},
    ]


def test_images_need_a_user_message():
    with pytest.raises(UsageError, match="needs a user message"):
        attach_images([{"role": "system", "content": "s"}], ["https://example.invalid/1.png"])


def test_assembler_merges_content_reasoning_and_tool_call_deltas():
    asm = StreamAssembler()
    asm.add({"choices": [{"index": 0, "delta": {"role": "assistant", "reasoning_content": "think"}}]})
    asm.add({"choices": [{"index": 0, "delta": {"content": "Hel"}}]})
    asm.add({"choices": [{"index": 0, "delta": {"content": "lo", "tool_calls": [
        {"index": 0, "id": "c1", "function": {"name": "get_", "arguments": "{\"a\""}}]}}]})
    asm.add({"choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "function": {"name": "weather", "arguments": ": 1}"}}]}, "finish_reason": "tool_calls"}]})
    assert asm.choice(0).reasoning == "think"
    assert asm.choice(0).finish_reason == "tool_calls"
    message = asm.message(0)
    assert message["content"] == "Hello"
    assert message["tool_calls"] == [{"id": "c1", "type": "function",
                                      "function": {"name": "get_weather", "arguments": '{"a": 1}'}}]
    assert json.loads(message["tool_calls"][0]["function"]["arguments"]) == {"a": 1}


def test_assembler_keeps_choices_apart_and_joins_many_pieces():
    asm = StreamAssembler()
    for i in range(5000):
        asm.add({"choices": [{"index": i % 2, "delta": {"content": str(i % 10)}}]})
    assert asm.choice(0).content == "02468" * 500
    assert asm.choice(1).content == "13579" * 500
    assert asm.message(1) == {"role": "assistant", "content": "13579" * 500}


def test_assembler_joins_one_character_pieces_of_tool_call_arguments():
    # Kept as batches, not one str grown by += (which copies it whole each time).
    asm = StreamAssembler()
    text = "".join(chr(97 + i % 26) for i in range(20000))
    # The name comes in the first delta, as servers send it (a call that never gets one is left out).
    asm.add({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"name": "f"}}]}}]})
    for ch in text:
        asm.add({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ch}}]}}]})
    assert asm.message(0)["tool_calls"][0]["function"]["arguments"] == text
    assert asm.choice(0).tool_calls[0]["function"]["arguments"] == text


@pytest.mark.parametrize("text, count", [
    ('{"a": [1, 2, 3]}', 4),
    ('{"a": "' + "," * 200_000 + '"}', 1),  # commas inside strings are not values
    ('{"a": "\\"' + "," * 200_000 + '"}', 1),  # nor after an escaped quote
])
def test_value_count_ignores_what_is_inside_strings(text, count):
    from interncli.client import VALUE_LIMIT, _value_count

    assert (_value_count(text) > VALUE_LIMIT) == (count > VALUE_LIMIT)


def test_parse_json_refuses_too_many_values_before_parsing():
    from interncli.client import VALUE_LIMIT, parse_json
    from interncli.errors import ReplyTooLarge

    assert parse_json("[" + "{}," * (VALUE_LIMIT // 3) + "{}]", "reply")  # "{}," counts twice
    with pytest.raises(ReplyTooLarge, match="more than 100000 JSON values"):
        parse_json("[" + "{}," * VALUE_LIMIT + "{}]", "reply")
