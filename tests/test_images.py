"""--image: a local file's MIME type comes from its bytes, not its name; a file that is none of
the types the models take is refused before anything is sent; images go to this turn's last user
message, never to one from --conversation history (issue 10). Bodies as the server received them."""

from __future__ import annotations

import base64
import json
import struct

import pytest

from tests.conftest import PNG

SHARED_SERVER = True
VISION = ("-m", "internvl2.5-latest")

# The first bytes of each accepted type (enough for the sniffer), and the MIME type they get.
HEADS = [
    (PNG, "image/png"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01", "image/jpeg"),
    (b"GIF89a\x01\x00\x01\x00\x00\x00", "image/gif"),
    (b"GIF87a\x01\x00\x01\x00\x00\x00", "image/gif"),
    (b"RIFF\x1a\x00\x00\x00WEBPVP8L", "image/webp"),
    # A 1x1 24-bit BMP's file header and the start of its 40-byte info header.
    (b"BM" + struct.pack("<IHHI", 58, 0, 0, 54) + struct.pack("<Iii", 40, 1, 1), "image/bmp"),
]


def data_url(mime: str, data: bytes) -> str:
    return "data:{};base64,{}".format(mime, base64.b64encode(data).decode("ascii"))


def image_parts(body):
    return [part for part in body["messages"][-1]["content"] if part["type"] == "image_url"]


def test_a_png_named_jpg_is_sent_as_image_png(cli, api, tmp_path):
    path = tmp_path / "holiday.jpg"
    path.write_bytes(PNG)
    result = cli("chat", "create", *VISION, "-g", "user", "Describe", "--image", str(path))
    assert result.exit_code == 0, result.stderr
    assert image_parts(api.last.json) == [{"type": "image_url", "image_url": {"url": data_url("image/png", PNG)}}]


@pytest.mark.parametrize("head,mime", HEADS, ids=[m + "-" + h[:4].hex() for h, m in HEADS])
def test_each_accepted_type_is_told_by_its_bytes_whatever_the_name(cli, api, tmp_path, head, mime):
    path = tmp_path / "picture.txt"
    path.write_bytes(head)
    assert cli("chat", "create", *VISION, "-g", "user", "x", "--image", str(path)).exit_code == 0
    assert image_parts(api.last.json)[0]["image_url"]["url"] == data_url(mime, head)


@pytest.mark.parametrize("content", [b"just some notes\n", b"", b"%PDF-1.7\n", b"II*\x00\x08\x00\x00\x00",
                                     b"BMW service notes: oil, brakes, tyres\n", b"RIFF\x04\x00\x00\x00WAVEfmt "],
                         ids=["text", "empty", "pdf", "tiff", "text-starting-BM", "wav"])
def test_a_file_of_another_type_named_png_is_refused_before_anything_is_sent(cli, api, tmp_path, content):
    path = tmp_path / "photo.png"
    path.write_bytes(content)
    result = cli("chat", "create", *VISION, "-g", "user", "Describe", "--image", str(path))
    assert result.exit_code == 2
    error, hint = result.stderr.splitlines()
    assert error.startswith("interncli: error: " + str(path) + " ")
    assert "PNG, JPEG, GIF, WebP or BMP" in error
    assert hint.startswith("hint: ")
    assert result.stdout == "" and api.requests == []


def test_urls_pass_as_they_are(cli, api):
    urls = ["https://static.example.invalid/a.txt", "http://127.0.0.1:1/b", "data:image/png;base64,AAAA"]
    args = [arg for url in urls for arg in ("--image", url)]
    assert cli("chat", "create", *VISION, "-g", "user", "x", *args).exit_code == 0
    assert [part["image_url"]["url"] for part in image_parts(api.last.json)] == urls


def test_history_keeps_its_user_message_and_this_turn_gets_the_image(cli, api, tmp_path):
    store = tmp_path / "talk.json"
    history = [{"role": "user", "content": "earlier question"}, {"role": "assistant", "content": "earlier answer"}]
    store.write_text(json.dumps(history))
    image = tmp_path / "dot.png"
    image.write_bytes(PNG)
    result = cli("chat", "create", *VISION, "--conversation", str(store), "-g", "user", "and this?",
                 "--image", str(image))
    assert result.exit_code == 0, result.stderr
    sent = api.last.json["messages"]
    assert sent[:2] == history
    assert sent[2] == {"role": "user", "content": [
        {"type": "text", "text": "and this?"},
        {"type": "image_url", "image_url": {"url": data_url("image/png", PNG)}}]}
    kept = json.loads(store.read_text())
    assert kept[:2] == history and kept[2] == sent[2]


def test_the_last_user_message_of_this_turn_gets_the_image(cli, api, tmp_path):
    image = tmp_path / "dot.png"
    image.write_bytes(PNG)
    result = cli("chat", "create", *VISION, "-g", "user", "first", "-g", "assistant", "a", "-g", "user", "second",
                 "-g", "system", "s", "--image", str(image))
    assert result.exit_code == 0, result.stderr
    sent = api.last.json["messages"]
    assert sent[0]["content"] == "first" and sent[3] == {"role": "system", "content": "s"}
    assert sent[2]["content"] == [{"type": "text", "text": "second"},
                                  {"type": "image_url", "image_url": {"url": data_url("image/png", PNG)}}]


def test_stdins_message_gets_the_image(cli, api, tmp_path):
    image = tmp_path / "dot.png"
    image.write_bytes(PNG)
    result = cli("chat", "create", *VISION, "--image", str(image), input="what is this?")
    assert result.exit_code == 0, result.stderr
    assert api.last.json["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": data_url("image/png", PNG)}}]}]


def test_without_a_user_message_in_this_turn_history_does_not_count(cli, api, tmp_path):
    store = tmp_path / "talk.json"
    store.write_text(json.dumps([{"role": "user", "content": "earlier"}]))
    result = cli("chat", "create", *VISION, "--conversation", str(store), "-g", "system", "be brief",
                 "--image", "https://static.example.invalid/a.png")
    assert result.exit_code == 2
    assert "--image needs a user message in this turn" in result.stderr and "hint: " in result.stderr
    assert api.requests == []
    assert json.loads(store.read_text()) == [{"role": "user", "content": "earlier"}]
