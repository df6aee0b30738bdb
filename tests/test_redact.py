"""The pure helpers that keep secrets out of what is shown: credentials.redact and friends,
and the URL helpers of config (masking, the secrets a URL holds, which hosts are this machine)."""

from __future__ import annotations

import base64
import json
import random
import urllib.parse

import pytest

from interncli.config import host_of, is_this_machine, mask_url, url_secrets
from interncli.credentials import _redaction_pattern, argv_tokens, clean_token, redact, redact_value

# A token with the characters encodings treat specially ('/', '+', '='), as a proxy password may.
TOKEN = "sk-Ab/cd+ef=gh-0123456789"


def b64(data: str, urlsafe: bool = False) -> str:
    return (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(data.encode()).decode()


FORMS = {
    "as is": TOKEN,
    "percent-encoded": urllib.parse.quote(TOKEN, safe=""),
    "percent-encoded, safe /": urllib.parse.quote(TOKEN),
    "percent-encoded, lower-case hex": "".join("%{:02x}".format(b) for b in TOKEN.encode()),
    "form-encoded": urllib.parse.quote_plus(TOKEN),
    "json \\/": json.dumps(TOKEN).strip('"').replace("/", "\\/"),
    "json \\u, every char": "".join("\\u{:04X}".format(ord(c)) for c in TOKEN),
    "json \\u, first char": "\\u0073" + TOKEN[1:],
    "json \\u, doubled backslash": "\\\\u0073" + TOKEN[1:],
    "base64": b64(TOKEN),
    "base64 unpadded": b64(TOKEN).rstrip("="),
    "base64 urlsafe": b64(TOKEN, urlsafe=True),
    "base64 urlsafe unpadded": b64(TOKEN, urlsafe=True).rstrip("="),
    "base64 of Bearer": b64("Bearer " + TOKEN),
    "base64 of Bearer, urlsafe unpadded": b64("Bearer " + TOKEN, urlsafe=True).rstrip("="),
    "split by a newline": TOKEN[:9] + "\n" + TOKEN[9:],
    "split by spaces": TOKEN[:3] + " " + TOKEN[3:15] + " \t " + TOKEN[15:],
    "split by an escaped newline": TOKEN[:9] + "\\n" + TOKEN[9:],
    "split by CRLF": TOKEN[:12] + "\r\n" + TOKEN[12:],
}


@pytest.mark.parametrize("name", sorted(FORMS))
def test_every_form_of_the_token_is_redacted(name):
    assert redact("before " + FORMS[name] + " after", [TOKEN]) == "before *** after"


@pytest.mark.parametrize("prefix", ["", "x", "xy", "Authorization: Bearer ", "user:"])
def test_the_token_inside_a_longer_base64_text_is_redacted_at_any_alignment(prefix):
    encoded = b64(prefix + TOKEN + "\r\nHost: example")
    shown = redact(encoded, [TOKEN])
    assert "***" in shown
    # What is left decodes to at most the few bytes of the token that share a base64 group
    # with the text around it.
    assert len(shown.replace("***", "")) <= len(encoded) - len(b64(TOKEN)) + 8


def test_a_token_given_with_bearer_or_whitespace_is_redacted_cleaned_too():
    assert redact("token " + TOKEN + ".", ["Bearer " + TOKEN + "\n"]) == "token ***."


def test_text_without_a_secret_is_unchanged():
    text = "an ordinary error: 401 Unauthorized, see https://example/doc?x=1 \u4e2d\u6587"
    assert redact(text, [TOKEN]) == text
    assert redact(text, []) == text


def test_the_shortcut_for_text_without_percent_or_backslash_answers_as_the_full_pattern():
    # redact() skips the full pattern (50 ms to compile) when a text without "%" or "\\" cannot
    # hold a secret: on texts built from pieces of the token and its forms, split and surrounded
    # by whitespace (Unicode's too) and other text, it must answer exactly as the pattern does.
    rng = random.Random(9)
    secrets = [TOKEN, " pass word "]
    pieces = [TOKEN, TOKEN[:7], TOKEN[7:], b64(TOKEN), b64("Bearer " + TOKEN, urlsafe=True), "pass", "word",
              "Bearer", " ", "\n", "\u2003", "\x1f", "\t", "x", "=", "/", "é", "%", "\\"]
    wanted = tuple(sorted({s for raw in secrets for s in (raw, clean_token(raw)) if len(s) >= 4}))
    pattern = _redaction_pattern(wanted)
    assert pattern is not None
    shortcut = 0
    for _ in range(1000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        if "%" not in text and "\\" not in text:
            shortcut += 1
        assert redact(text, secrets) == pattern.sub("***", text), repr(text)
    assert shortcut > 300


def test_strings_too_short_to_be_secrets_are_not_redacted():
    assert redact("abc abc", ["abc"]) == "abc abc"


def test_non_ascii_secrets_in_their_encoded_forms():
    secret = "pässwörd-1"
    for form in (secret, urllib.parse.quote(secret), json.dumps(secret)[1:-1]):
        assert redact("[" + form + "]", [secret]) == "[***]", form


def test_redact_value_walks_dicts_and_lists():
    value = {"code": [TOKEN, 1, None, True], TOKEN: {"inner": "Bearer " + TOKEN}, "n": 12}
    assert redact_value(value, [TOKEN]) == {"code": ["***", 1, None, True], "***": {"inner": "Bearer ***"}, "n": 12}
    assert redact_value(123456789, ["123456789"]) == "***"
    assert redact_value(None, [TOKEN]) is None


@pytest.mark.parametrize("argv, found", [
    (["-k", "TOKEN1", "x"], ["TOKEN1"]),
    (["-kTOKEN1"], ["TOKEN1"]),
    (["-vk", "TOKEN1"], ["TOKEN1"]),
    (["-vkTOKEN1"], ["TOKEN1"]),
    (["--api-key", "TOKEN1", "--api-key=TOKEN2"], ["TOKEN1", "TOKEN2"]),
    (["-b", "http://h/v1", "chat", "create", "-k", "TOKEN1"], ["TOKEN1"]),
    (["-bk", "x"], []),  # -b takes "k" as its value
    (["--", "-k", "TOKEN1"], []),
    (["-k"], []),
])
def test_argv_tokens_finds_every_way_of_giving_k(argv, found):
    assert argv_tokens(argv) == found


@pytest.mark.parametrize("url, shown", [
    ("http://u:secret@proxy:3128", "http://u:***@proxy:3128"),
    ("socks5h://user:p%40ss@10.0.0.1:1080/", "socks5h://user:***@10.0.0.1:1080/"),
    ("http://u:a@b@proxy:3128", "http://u:***@proxy:3128"),
    ("http://u@proxy:3128", "http://u@proxy:3128"),
    ("http://proxy:3128", "http://proxy:3128"),
    ("not a url", "not a url"),
])
def test_mask_url(url, shown):
    assert mask_url(url) == shown


def test_url_secrets_give_the_password_and_the_user_password_pair_as_written_and_decoded():
    assert set(url_secrets("http://us%65r:p%40ss@proxy:3128")) == {"p%40ss", "us%65r:p%40ss", "p@ss", "user:p@ss"}
    assert url_secrets("http://user@proxy") == [] and url_secrets(None) == [] and url_secrets("proxy:3128") == []


@pytest.mark.parametrize("host, local", [
    # Not api.localhost: glibc (without systemd-resolved) asks DNS for it (test_attack_sec.py).
    ("localhost", True), ("api.localhost", False), ("127.0.0.1", True), ("127.9.8.7", True), ("::1", True),
    ("::ffff:127.0.0.1", True), ("10.0.0.1", False), ("192.168.1.5", False), ("localhost.example", False),
    ("chat.intern-ai.org.cn", False), ("0.0.0.0", True), ("::", True), ("127.0.0.1.example", False),
])
def test_is_this_machine_by_name_alone(host, local):
    assert is_this_machine(host) is local


def test_host_of_compares_names_as_dns_does():
    assert host_of("https://Chat.Intern-AI.org.cn./api/v1") == "chat.intern-ai.org.cn"
    assert host_of("http://[::1]:23333/v1") == "::1"
    assert host_of("http://127.0.0.1:1/v1") == host_of("http://127.0.0.1:2/v2")
