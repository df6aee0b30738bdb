"""Holes found by attacking the issue-8 hardening (secrets, terminal safety, files), each shown
by a test that failed before its fix.

What real libraries do, as relied on here (requests 2.34, urllib3 2.8, CPython 3.x, glibc):
- urlsplit() and urllib3 read some authorities differently: urllib3 ends the authority at a
  backslash (as browsers do), urlsplit does not, and urlsplit takes a bracketed part anywhere in
  the netloc as the IPv6 host. So ``http://evil.example\\[::1]/v1`` is host ``::1`` to urlsplit
  and ``evil.example`` to requests.
- requests sends a request for 127.0.0.1 or localhost through HTTP_PROXY/ALL_PROXY unless
  NO_PROXY exempts it, and through an explicit ``proxies=`` always: a plain-http request for
  this machine can still cross the network in clear, to the proxy.
- glibc without systemd-resolved does not resolve ``*.localhost`` itself: it asks DNS, so a
  name under .localhost is not this machine by its name alone.
- getaddrinfo() reads "2130706433" as 127.0.0.1 (inet_aton), while no name check here takes it
  for this machine: a proxy at that address is "another machine" that still stays on loopback.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess

import pytest

from interncli.config import host_of, is_this_machine, parse_base_url, parse_proxy
from interncli.errors import UsageError
from tests.apiserver import Json, Raw, Stream
from tests.conftest import SENTINEL, invoke

HI = ["chat", "create", "-g", "user", "hi"]
DECIMAL_LOOPBACK = "2130706433"  # 127.0.0.1 to the resolver, a stranger to a name check


# ------------------------------------------------------------ URLs read alike by everyone

@pytest.mark.parametrize("url", [
    "http://evil.example\\[::1]/v1",
    "http://evil.example\\[::1]:23333/v1",
    "https://evil.example\\\\[::1]/v1",
    "http://evil.example[::1]/v1",
    "http://[::1].evil.example/v1",
    "http://127.0.0.1\\.evil.example/v1",
])
def test_a_base_url_whose_host_libraries_read_differently_is_refused(url):
    with pytest.raises(UsageError):
        parse_base_url(url, "--base-url")


def test_a_backslash_url_cannot_pass_for_this_machine_to_get_the_token_over_http(api):
    # Before: host_of() said "::1" (this machine, no opt-in needed) while requests went to the
    # host before the backslash; here that host is the test server, named by its decimal form.
    url = "http://{}:{}\\[::1]/v1".format(DECIMAL_LOOPBACK, api.port)
    result = invoke(["-b", url, "-k", SENTINEL] + HI)
    assert result.exit_code == 2 and "not a valid URL" in result.stderr
    assert api.requests == []


@pytest.mark.parametrize("url", ["http://proxy\\@127.0.0.1:3128", "http://u:p@proxy.example\\[::1]:3128"])
def test_a_proxy_url_whose_host_libraries_read_differently_is_refused(url):
    with pytest.raises(UsageError):
        parse_proxy(url, "--proxy")


@pytest.mark.parametrize("url, host", [
    ("https://chat.intern-ai.org.cn/api/v1", "chat.intern-ai.org.cn"),
    ("http://[::1]:23333/v1", "::1"),
    ("http://[fe80::1%25eth0]:23333/v1", "fe80::1%25eth0"),
    ("http://gpu_box.lan:23333/v1", "gpu_box.lan"),
    ("http://例え.テスト/v1", "例え.テスト"),
])
def test_ordinary_base_urls_still_parse(url, host):
    assert host_of(parse_base_url(url, "--base-url")) == host


# ------------------------------------------------------------ plain http through a proxy

def test_a_token_for_this_machine_is_not_sent_in_clear_through_a_proxy_elsewhere(api):
    # The proxy (the test server, as "another machine") would read the Authorization header.
    proxy = "http://{}:{}".format(DECIMAL_LOOPBACK, api.port)
    for how in (["--proxy", proxy], []):
        env = {} if how else {"HTTP_PROXY": proxy}
        result = invoke(["-b", "http://localhost:9/v1", "-k", SENTINEL] + how + HI, env=env)
        assert result.exit_code == 2, result.stderr
        assert "plain http://" in result.stderr and "proxy" in result.stderr and DECIMAL_LOOPBACK in result.stderr
        assert api.requests == [] and SENTINEL not in result.stderr


def test_a_proxy_elsewhere_with_the_opt_in_gets_the_token_with_a_warning(api):
    proxy = "http://{}:{}".format(DECIMAL_LOOPBACK, api.port)
    result = invoke(["-b", "http://localhost:9/v1", "-k", SENTINEL, "--proxy", proxy] + HI,
                    env={"INTERN_ALLOW_HTTP": "1"})
    assert result.exit_code == 0, result.stderr
    assert "warning" in result.stderr and DECIMAL_LOOPBACK in result.stderr
    assert [r.headers.get("authorization") for r in api.requests] == ["Bearer " + SENTINEL]


@pytest.mark.parametrize("no_proxy", ["localhost", "127.0.0.1,localhost", "*", ".localhost"])
def test_no_proxy_for_this_machine_keeps_the_request_local_and_allowed(api, no_proxy):
    result = invoke(["-b", "http://localhost:{}/v1".format(api.port), "-k", SENTINEL] + HI,
                    env={"HTTP_PROXY": "http://{}:9".format(DECIMAL_LOOPBACK), "NO_PROXY": no_proxy})
    assert result.exit_code == 0, result.stderr
    assert "warning" not in result.stderr and api.last.headers.get("authorization") == "Bearer " + SENTINEL


def test_a_proxy_on_this_machine_is_no_reason_to_refuse(api):
    result = invoke(["-b", "http://localhost:9/v1", "-k", SENTINEL, "--proxy", api.url] + HI)
    assert result.exit_code == 0, result.stderr
    assert api.last.path == "http://localhost:9/v1/chat/completions"


def test_an_https_base_url_through_a_proxy_elsewhere_is_a_tunnel_and_needs_no_opt_in():
    from interncli.config import proxy_for

    assert proxy_for("https://chat.intern-ai.org.cn/api/v1", None, {"HTTP_PROXY": "http://p:1"}) is None
    assert proxy_for("https://x/v1", None, {"HTTPS_PROXY": "http://p:1"}) == "http://p:1"
    assert proxy_for("http://x/v1", None, {"ALL_PROXY": "socks5://p:1"}) == "socks5://p:1"
    assert proxy_for("http://x/v1", None, {"http_proxy": "http://low:1", "HTTP_PROXY": "http://up:1"}) \
        == "http://low:1"
    assert proxy_for("http://x/v1", "http://flag:1", {"NO_PROXY": "*"}) == "http://flag:1"


# ------------------------------------------------------------ *.localhost asks DNS

def test_a_name_under_localhost_is_not_this_machine_by_name_alone():
    assert is_this_machine("localhost") and is_this_machine("LOCALHOST".lower())
    assert not is_this_machine("api.localhost")


# ------------------------------------------------------------ lone surrogates from the server
# JSON may carry "\ud800" (a lone surrogate); json.loads gives it as is, and no UTF-8 stream
# can take it. Before, every such reply ended in "unexpected UnicodeEncodeError", exit 1, and a
# --conversation lost the turn.

LONE = b'{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,' \
       b'"message":{"role":"assistant","content":"a\\ud800b\\ud83d\\ude00"},"finish_reason":"stop"}]}'


def lone_reply():
    return Raw(LONE, content_type="application/json")


def test_a_lone_surrogate_in_a_reply_is_printed_as_a_replacement_character(api, cli):
    api.add(lone_reply())
    result = cli(*HI)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "a\ufffdb\U0001f600\n"


def test_a_lone_surrogate_under_json_stays_the_same_json_value(api, cli):
    api.add(lone_reply())
    result = cli(*HI, "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["choices"][0]["message"]["content"] == "a\ud800b\U0001f600"


def test_a_lone_surrogate_does_not_lose_the_conversation_turn(api, cli, tmp_path):
    store = tmp_path / "talk.json"
    api.add(lone_reply())
    assert cli(*HI, "--conversation", str(store)).exit_code == 0
    saved = json.loads(store.read_text(encoding="utf-8"))
    assert [m["role"] for m in saved] == ["user", "assistant"]
    assert saved[1]["content"] == "a\ufffdb\U0001f600"
    # And the next turn sends it: a hand-written "\udc00" is sent as U+FFFD too.
    store.write_text(json.dumps(saved + [{"role": "user", "content": "x\udc00"}]), encoding="utf-8")
    assert cli(*HI, "--conversation", str(store)).exit_code == 0
    sent = api.last.json["messages"]
    assert sent[1]["content"] == "a\ufffdb\U0001f600" and sent[2]["content"] == "x\ufffd"


def test_a_lone_surrogate_in_a_stream_piece_is_printed(api, cli):
    chunk = {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m",
             "choices": [{"index": 0, "delta": {"content": "p\ud800q"}, "finish_reason": None}]}
    last = dict(chunk, choices=[{"index": 0, "delta": {"content": ""}, "finish_reason": "stop"}])
    # As ASCII-escaped JSON text: the test server cannot encode a lone surrogate either.
    api.add(Stream(["data: {}\n\n".format(json.dumps(c)) for c in (chunk, last)]))
    result = cli(*HI, "--stream")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "p\ufffdq\n"


def test_the_escapers_spell_a_lone_surrogate_so_any_stream_can_take_it():
    from interncli.safetext import escape_controls, escape_json_text, escape_line, replace_surrogates

    for escape in (escape_controls, escape_line):
        shown = escape(")\ud800(")
        assert shown == ")\\ud800(" and shown.encode("utf-8")
    assert escape_json_text('"\udfff"') == '"\\udfff"'
    assert replace_surrogates("\ud83d\ude00|\ude00\ud83d") == "\U0001f600|\ufffd\ufffd"


# ------------------------------------------------------------ controls in settings and local text
# YAML's double-quoted "\e" is ESC: a config file (copied from a web page, say) could hold
# escape sequences that `auth status` and `config list` printed to the terminal as they were.

@pytest.mark.parametrize("entry", [
    'base_url: "http://127.0.0.1:9/v1\\e]0;PWNED\\a"',
    'model: "m\\e[2J"',
    'ca_bundle: "/tmp/ca\\x9b31m.pem"',
    'models: ["a", "b\\e[2J"]',
])
def test_a_setting_with_control_characters_is_refused(config_dir, entry):
    (config_dir / "config.yaml").write_text("profiles:\n  default: {" + entry + "}\n")
    for args in (["-k", SENTINEL, "auth", "status"], ["config", "list"]):
        result = invoke(args)
        assert result.exit_code == 2, result.stdout
        assert "control characters" in result.stderr
        assert not any(c in result.stdout + result.stderr for c in "\x1b\x07\x9b")


@pytest.mark.parametrize("name, value", [("INTERN_BASE_URL", "http://127.0.0.1:9/\x1b[2J"),
                                         ("REQUESTS_CA_BUNDLE", "/tmp/\x1b]0;x\x07")])
def test_an_environment_setting_with_control_characters_is_refused(name, value):
    result = invoke(["-k", SENTINEL, "config", "list"], env={name: value})
    assert result.exit_code == 2 and "control characters" in result.stderr
    assert "\x1b" not in result.stdout + result.stderr


def test_a_profile_name_with_control_characters_is_refused(config_dir):
    (config_dir / "config.yaml").write_text(
        'default_profile: "\\e[2Jp"\nprofiles:\n  "\\e[2Jp": {model: m}\n')
    result = invoke(["-k", SENTINEL, "auth", "status"])
    assert result.exit_code == 2 and "control characters" in result.stderr
    assert "\x1b" not in result.stdout + result.stderr


def test_a_tampered_hosts_file_cannot_write_escapes_into_auth_status(config_dir):
    (config_dir / "credentials.yaml").write_text("profiles:\n  default: {token: abcdefghijklmnop}\n")
    (config_dir / "credentials.yaml").chmod(0o600)
    (config_dir / "token-hosts.yaml").write_text('profiles:\n  default: {host: "evil\\e]0;PWNED\\a"}\n')
    result = invoke(["auth", "status"])
    assert result.exit_code == 2 and "token-hosts.yaml" in result.stderr
    assert not any(c in result.stdout + result.stderr for c in "\x1b\x07")


# ------------------------------------------------------------ the token given to auth login

def test_a_keyring_error_quoting_the_login_token_does_not_show_it(config_dir):
    import keyring

    from tests.hostilekeyring import QuotingKeyring

    keyring.set_keyring(QuotingKeyring())
    result = invoke(["auth", "login", "--with-token"], input="Bearer " + SENTINEL + "\n")
    assert result.exit_code == 3 and "cannot store" in result.stderr
    assert SENTINEL not in result.stdout + result.stderr


# ------------------------------------------------------------ config files too big to show

def _alias_bomb(use: str) -> str:
    """A YAML "billion laughs": nine levels of nine aliases, 9**9 strings once expanded (PyYAML
    builds shared references, so loading is cheap; str(), repr() or a walk of it is not)."""
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for previous, name in zip("abcdefgh", "bcdefghi"):
        lines.append("{0}: &{0} [{1}]".format(name, ",".join(["*" + previous] * 9)))
    return "\n".join(lines) + "\n" + use + "\n"


def _run_bounded(exe: str, args: list, config_dir) -> "subprocess.CompletedProcess[str]":
    def limit_memory() -> None:  # so that the old code failed fast instead of filling the machine
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    env = dict(os.environ, INTERNCLI_CONFIG_DIR=str(config_dir))
    try:
        return subprocess.run([exe] + args, env=env, capture_output=True, text=True, timeout=60,
                              preexec_fn=limit_memory, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise AssertionError("interncli did not finish within 60 s on the config file") from None


@pytest.mark.integration
@pytest.mark.parametrize("use", ["default_profile: *i", "profiles: {default: {model: *i}}",
                                 "profiles: {default: {models: *i}}", "loop: &l [*l]\ndefault_profile: *l"])
def test_a_yaml_alias_bomb_in_the_config_is_refused_at_once(exe, config_dir, use):
    (config_dir / "config.yaml").write_text(_alias_bomb(use))
    result = _run_bounded(exe, ["config", "list"], config_dir)
    assert result.returncode == 2, result.stderr[-500:]
    assert "too large" in result.stderr and "Traceback" not in result.stderr


def test_a_config_file_over_a_mebibyte_is_refused(config_dir):
    (config_dir / "config.yaml").write_text("# " + "x" * (1 << 20) + "\nprofiles: {}\n")
    result = invoke(["config", "list"])
    assert result.exit_code == 2 and "too large" in result.stderr


def test_yaml_merge_keys_in_profiles_still_work(config_dir):
    (config_dir / "config.yaml").write_text(
        "base: &base {timeout: 30, model: m}\nprofiles:\n  default: {<<: *base, max_retries: 1}\n")
    result = invoke(["config", "list", "--json"])
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["settings"]["timeout"] == 30


def test_wide_aliases_are_refused_without_filling_memory(config_dir):
    # 2,000 uses of a 2,000-item list: 4 million values from a 14 kB file.
    wide = "w: &w [" + ",".join(["1"] * 2000) + "]\nv: [" + ",".join(["*w"] * 2000) + "]\n"
    (config_dir / "config.yaml").write_text(wide)
    result = invoke(["config", "list"])
    assert result.exit_code == 2 and "too large" in result.stderr


# ------------------------------------------------------------ warnings that quote the server

@pytest.mark.parametrize("flags", [[], ["--json"], ["--stream"], ["--stream", "--json"], ["--stream", "-n", "2"]])
def test_a_moderation_category_echoing_the_token_does_not_show_it(api, flags):
    from tests.apiserver import Completion, stream_chunks

    moderation = {"sensitive": True, "category": "politics " + SENTINEL}
    if "--stream" in flags:
        chunks = stream_chunks(["a"], n=2 if "-n" in flags else 1)
        api.add(Stream([dict(c, moderation=moderation) for c in chunks]))
    else:
        api.add(Completion("a", moderation=moderation))
    result = invoke(["-b", api.base_url, "-k", SENTINEL] + HI + flags)
    # Under --json stdout is the reply as received, data for jq; the warning is a message.
    assert result.exit_code == 0 and "(category: politics ***)" in result.stderr
    assert SENTINEL not in result.stderr


# ------------------------------------------------------------ --debug tracebacks

def test_a_debug_traceback_does_not_show_the_token(api, monkeypatch):
    # No reply known today makes interncli fail unexpectedly, so a bug is planted: one whose
    # message quotes the token (as a message built from a server's text could).
    from interncli import output

    def broken(lines, out):
        raise RuntimeError("bug while printing for Bearer " + SENTINEL + " \x1b]0;x\x07")

    monkeypatch.setattr(output, "write_lines", broken)
    result = invoke(["-b", api.base_url, "-k", SENTINEL, "--debug", "models", "list"])
    assert result.exit_code == 1
    assert "Traceback (most recent call last)" in result.stderr and "RuntimeError: bug while printing" in result.stderr
    assert SENTINEL not in result.stderr and "\x1b" not in result.stderr


@pytest.mark.integration
def test_config_get_escapes_what_the_file_holds_on_a_terminal(exe, config_dir):
    # `config get` shows a value as stored, unparsed (so that a bad one can be seen and fixed),
    # so it escapes instead. (click.echo strips CSI sequences in a pipe, not OSC ones, and
    # strips nothing on a terminal.)
    from tests.terminal import run_on_terminal

    (config_dir / "config.yaml").write_text(
        'profiles:\n  default: {base_url: "http://h/\\e]0;PWNED\\a", models: ["a\\e[2J", "b"]}\n')
    env = dict(os.environ, INTERNCLI_CONFIG_DIR=str(config_dir))
    run = run_on_terminal(exe, ["config", "get", "base_url"], env=env)
    assert run.exit_code == 0 and run.stdout == b"http://h/\\x1b]0;PWNED\\x07\n"
    run = run_on_terminal(exe, ["config", "get", "models"], env=env)
    assert run.exit_code == 0 and run.stdout == b"a\\x1b[2J,b\n"


# ------------------------------------------------------------ a stdout that is not UTF-8

@pytest.mark.integration
@pytest.mark.parametrize("flags", [[], ["--json"], ["--stream"]])
def test_a_reply_stdout_cannot_encode_is_printed_escaped(exe, api, flags):
    # PYTHONIOENCODING=ascii stands for a legacy locale (latin-1, a cp936 console): before, the
    # reply ended in "unexpected UnicodeEncodeError", exit 1, with nothing printed.
    env = dict(os.environ, PYTHONIOENCODING="ascii", INTERN_API_KEY=SENTINEL)
    result = subprocess.run([exe, "-b", api.base_url, "chat", "create", "-g", "user", "你好"] + flags,
                            env=env, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert b"\\u4f60\\u597d" in result.stdout
    if "--json" in flags:
        assert json.loads(result.stdout)["choices"][0]["message"]["content"] == "echo: 你好"


# ------------------------------------------------------------ URLs urlsplit() cannot read
# urlsplit() raises ValueError for "http://[::1" (an unclosed bracket) and for a netloc that
# NFKC turns into a "/" or "@". The redaction read every proxy URL with it, inside the error
# handler, so any such URL ended in a double Python traceback.

@pytest.mark.integration
@pytest.mark.parametrize("args, env", [
    (["-b", "http://[::1/v1"], {}),
    (["-b", "http://chat.intern-ai.org.cn\uff0f/v1"], {}),
    (["--proxy", "http://u:secret-pw@[::1"], {}),
    (["--timeout", "0"], {"HTTPS_PROXY": "http://u:secret-pw@[x"}),
])
def test_a_url_urlsplit_cannot_read_is_a_usage_error(exe, args, env):
    full = dict(os.environ, INTERN_API_KEY=SENTINEL, **env)
    result = subprocess.run([exe] + args + ["auth", "status"], env=full, capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 2, result.stderr[-300:]
    assert "Traceback" not in result.stderr and result.stderr.startswith("interncli: error:")
    assert "secret-pw" not in result.stderr


def test_a_proxy_variable_urlsplit_cannot_read_is_still_refused_for_plain_http(api):
    # requests reads the variable itself, unchecked: the plain-http check must cope with it.
    result = invoke(["-b", "http://localhost:9/v1", "-k", SENTINEL] + HI, env={"HTTP_PROXY": "http://[x"})
    assert result.exit_code == 2 and "refusing" in result.stderr


# ------------------------------------------------------------ a token stored without its host

@pytest.mark.parametrize("change", [["config", "set", "base_url", "http://localhost:{port}/v1"],
                                    ["config", "unset", "base_url"]])
def test_config_set_base_url_keeps_an_unrecorded_token_with_its_old_host(memory_keyring, config_dir, api, change):
    # A token put in the keyring without a record of its host (by an older interncli) belonged
    # to whatever the profile's base URL was: `config set base_url` moved it to the new host,
    # which `auth --help` promises it does not.
    (config_dir / "config.yaml").write_text("profiles:\n  default: {{base_url: '{}'}}\n".format(api.base_url))
    memory_keyring.set_password("interncli", "default", SENTINEL)
    assert invoke([part.format(port=api.port) for part in change]).exit_code == 0
    result = invoke(["-b", "http://localhost:{}/v1".format(api.port)] + HI)
    assert result.exit_code == 0 and api.last.headers.get("authorization") is None
    # Its own host still gets it.
    assert invoke(["-b", api.base_url] + HI).exit_code == 0
    assert api.last.headers.get("authorization") == "Bearer " + SENTINEL


# ------------------------------------------------------------ redaction in linear time
# The redaction pattern allowed any run of backslashes before a JSON escape ("\\+u0073"), so a
# run of N backslashes cost N*N steps: an error message of 500,000 backslashes (a 1 MiB body)
# took hours to redact, past any --timeout.

@pytest.mark.integration
def test_an_error_message_of_backslashes_is_redacted_at_once(exe, api):
    api.add(Json({"code": "E1", "msg": "\\" * 500000}, status=400))
    env = dict(os.environ, INTERN_API_KEY=SENTINEL)
    for verbose in ([], ["-v"]):
        try:
            result = subprocess.run([exe, "-b", api.base_url, "--max-retries", "0"] + verbose + HI, env=env,
                                    capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise AssertionError("redacting the error took over 60 s") from None
        assert result.returncode == 5 and "[E1]" in result.stderr
        api.add(Json({"code": "E1", "msg": "\\" * 500000}, status=400))


def test_escaped_forms_up_to_eight_backslashes_deep_are_still_redacted():
    from interncli.credentials import redact

    token = "tok/1234"
    for depth in (1, 2, 4, 8):
        quoted = token.replace("t", "\\" * depth + "u0074").replace("/", "\\" * depth + "/")
        assert redact("x " + quoted + " y", [token]) == "x *** y"
        split = ("\\" * depth + "n").join(token)
        assert redact(split, [token]) == "***"


# ------------------------------------------------------------ error codes nested very deep

@pytest.mark.parametrize("status, globals_, flags", [(400, [], []), (400, [], ["--json"]),
                                                     (500, ["--max-retries", "1"], [])])
def test_an_error_code_nested_900_deep_is_shown_cut(api, status, globals_, flags):
    # json.loads takes 900 levels; redacting (or printing) them again ran out of stack inside
    # the error handler: a RecursionError traceback.
    body = '{"code": ' + "[" * 900 + "1" + "]" * 900 + ', "msg": "deep"}'
    api.add(Raw(body, status=status, content_type="application/json"), times=2)
    result = invoke(["-b", api.base_url, "-k", SENTINEL] + globals_ + HI + flags)
    assert result.exit_code == (5 if status == 400 else 1), result.stderr[-300:]
    assert "deep" in result.stderr and "…" in result.stderr and "Traceback" not in result.stderr


# ------------------------------------------------------------ a reader that leaves early

@pytest.mark.integration
@pytest.mark.parametrize("flags", [[], ["--stream"], ["--json"], ["--stream", "--json"]])
def test_the_turn_is_kept_when_the_reader_of_stdout_leaves_early(exe, api, tmp_path, flags):
    # `... --conversation c.json | head -c 10`: the write fails with EPIPE once head has gone
    # (a reply over the pipe's 64 KiB buffer makes sure of it). Before, the run stopped quietly
    # there, and the turn, whose reply had come whole, was never written.
    from tests.apiserver import Completion, stream_chunks

    store = tmp_path / "talk.json"
    text = "y" * 300000
    api.add(Stream(stream_chunks([[text[i:i + 1000] for i in range(0, len(text), 1000)]]))
            if "--stream" in flags else Completion(text))
    env = dict(os.environ, INTERN_API_KEY=SENTINEL)
    proc = subprocess.Popen([exe, "-b", api.base_url, "chat", "create", "--conversation", str(store),
                             "-g", "user", "hi"] + flags, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None and proc.stdout.read(10)
    proc.stdout.close()  # the reader leaves
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("interncli did not finish after its reader left") from None
    assert proc.returncode == 0, err[-300:]
    saved = json.loads(store.read_text(encoding="utf-8"))
    assert [m["role"] for m in saved] == ["user", "assistant"] and saved[1]["content"] == text
