"""What interncli sends, per server kind (`api`: intern, lmdeploy, openai), checked against the
per-version test servers of tests/servers/lmdeploy.py by what each one recorded: the `api`
setting itself, --thinking, -u/--usage, --tools with --stream, -O/--option and -H/--header."""

from __future__ import annotations

import json
from typing import Any, Dict

import pytest

from tests.conftest import SENTINEL, Result, invoke
from tests.servers.fixtures import GATEWAY_MODEL, model_of
from tests.servers.lmdeploy import LMDEPLOY_PROFILES, Engine, ProfileServer

# The profiles that read a thinking switch at all (LMDeploy 0.9+; README §4), and the gateway.
THINKING_PROFILES = tuple(p for p in LMDEPLOY_PROFILES if p != "lmdeploy-0.6")


def run(server: ProfileServer, *args: str, api: str = "", globals_: tuple = (), env: Dict[str, str] = None,
        input: str = None) -> Result:
    """``interncli -b URL -k KEY [globals] chat create -m MODEL ARGS`` against ``server``; the
    gateway profile (on 127.0.0.1, so not the official host) is told it is ``intern``."""
    environ = dict(env or {})
    kind = api or ("intern" if server.profile_name == "gateway" else "")
    if kind:
        environ["INTERN_API"] = kind
    argv = ["-b", server.base_url, "-k", SENTINEL, *globals_, "chat", "create", "-m", model_of(server), *args]
    result = invoke(argv, env=environ, input=input)
    assert SENTINEL not in result.stdout and SENTINEL not in result.stderr
    return result


def sent(server: ProfileServer) -> Dict[str, Any]:
    """The body of the last chat request the server received."""
    return server.calls()[-1].json


# ------------------------------------------------------------------------ the `api` setting


def config_api(*args: str, env: Dict[str, str] = None) -> Dict[str, Any]:
    result = invoke([*args, "config", "list", "--json"], env=env)
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    return {"api": doc["settings"]["api"], "source": doc["sources"]["api"]}


def test_api_defaults_to_intern_for_the_official_host_and_lmdeploy_elsewhere(config_dir):
    assert config_api() == {"api": "intern", "source": "default"}
    assert config_api("-b", "https://CHAT.intern-ai.org.cn./api/v1") == {"api": "intern", "source": "default"}
    assert config_api("-b", "http://127.0.0.1:23333/v1") == {"api": "lmdeploy", "source": "default"}
    assert config_api(env={"INTERN_BASE_URL": "http://gpu-box:23333/v1"})["api"] == "lmdeploy"


def test_api_from_the_environment_beats_the_profile(config_dir):
    assert invoke(["config", "set", "api", "openai"]).exit_code == 0
    assert config_api("-b", "http://127.0.0.1:23333/v1") == {"api": "openai", "source": "profile"}
    assert config_api(env={"INTERN_API": "LMDeploy"}) == {"api": "lmdeploy", "source": "env"}
    text = invoke(["config", "list"]).stdout
    assert any(line.split()[:3] == ["api", "openai", "(profile)"] for line in text.splitlines())


@pytest.mark.parametrize("where", ["env", "set"])
def test_an_unknown_api_kind_is_refused_with_the_kinds(config_dir, where):
    if where == "env":
        result = invoke(["config", "list"], env={"INTERN_API": "vllm"})
    else:
        result = invoke(["config", "set", "api", "vllm"])
    assert result.exit_code == 2
    assert "must be one of intern, lmdeploy, openai, not 'vllm'" in result.stderr
    assert "hint:" in result.stderr and "Traceback" not in result.stderr


# ------------------------------------------------------------------------ --thinking by kind


@pytest.mark.parametrize("profile", THINKING_PROFILES)
@pytest.mark.parametrize("stream", [False, True])
def test_thinking_reaches_every_lmdeploy_that_reads_a_switch(serve, profile, stream):
    server = serve(profile)
    server.script(Engine(text="answer", reasoning="hmm"))
    result = run(server, "--thinking", "--show-reasoning", *(["--stream"] if stream else []), "-g", "user", "hi")
    assert result.exit_code == 0, result.stderr
    assert server.seen[-1].thinking is True
    body = sent(server)
    assert "thinking_mode" not in body
    assert body["enable_thinking"] is True and body["chat_template_kwargs"] == {"enable_thinking": True}
    assert result.stdout == "answer\n" and "hmm" in result.stderr


def test_thinking_reaches_the_oldest_lmdeploy_harmlessly(serve):
    server = serve("lmdeploy-0.6")  # reads no switch at all (README §4): the fields are dropped
    result = run(server, "--thinking", "-g", "user", "hi")
    assert result.exit_code == 0 and result.stdout == "echo: hi\n"
    assert server.seen[-1].ignored == ("chat_template_kwargs", "enable_thinking")


def test_thinking_to_the_official_service_is_thinking_mode(serve):
    server = serve("gateway")
    result = run(server, "--thinking", "-g", "user", "hi")
    assert result.exit_code == 0, result.stderr
    assert server.seen[-1].thinking is True and server.seen[-1].ignored == ()
    assert sent(server)["thinking_mode"] is True


def test_thinking_to_an_openai_compatible_server_is_chat_template_kwargs(serve):
    server = serve("lmdeploy-0.12")
    result = run(server, "--thinking", "-g", "user", "hi", api="openai")
    assert result.exit_code == 0, result.stderr
    assert server.seen[-1].thinking is True
    assert server.seen[-1].thinking_from == "chat_template_kwargs.enable_thinking"
    assert {"enable_thinking", "thinking_mode"}.isdisjoint(sent(server))


def test_a_system_message_with_thinking_is_refused_only_for_the_official_service(serve):
    gateway = serve("gateway")
    refused = run(gateway, "--thinking", "-g", "system", "be brief", "-g", "user", "hi")
    assert refused.exit_code == 2 and "system message" in refused.stderr
    assert gateway.calls() == []
    server = serve("lmdeploy-0.18")
    result = run(server, "--thinking", "-g", "system", "be brief", "-g", "user", "hi")
    assert result.exit_code == 0, result.stderr
    assert server.seen[-1].thinking is True


# ------------------------------------------------------------------------ -u/--usage


def usage_line(stderr: str) -> Dict[str, int]:
    """The counts of the one ``interncli: usage: k=v ...`` line of stderr."""
    lines = [line for line in stderr.splitlines() if line.startswith("interncli: usage: ")]
    assert len(lines) == 1, stderr
    return {k: int(v) for k, v in (pair.split("=") for pair in lines[0].split(": ", 2)[2].split())}


def last_usage(jsonl: str) -> Dict[str, Any]:
    """The last usage object among the chunks of a --json stream."""
    found = [chunk["usage"] for chunk in map(json.loads, jsonl.splitlines()) if chunk.get("usage")]
    assert found, jsonl
    return found[-1]


def counts_of(usage: Dict[str, Any]) -> Dict[str, int]:
    return {k: usage[k] for k in ("prompt_tokens", "completion_tokens", "total_tokens")}


@pytest.mark.parametrize("profile", LMDEPLOY_PROFILES)
def test_usage_of_a_stream_is_asked_for_and_the_last_one_seen_is_shown(serve, profile):
    server = serve(profile)
    raw = run(server, "--stream", "--json", "-u", "-g", "user", "count these four words")
    assert raw.exit_code == 0, raw.stderr
    assert sent(server)["stream_options"] == {"include_usage": True}
    expected = counts_of(last_usage(raw.stdout))
    assert [json.loads(line) for line in raw.stderr.splitlines()] == [{"usage": expected}]
    text = run(server, "--stream", "-u", "-g", "user", "count these four words")
    assert text.exit_code == 0 and text.stdout == "echo: count these four words\n"
    assert usage_line(text.stderr) == expected


def test_usage_is_the_running_total_of_the_last_chunk_where_every_chunk_has_one(serve):
    server = serve("lmdeploy-0.6")  # usage on every chunk, growing (README §3.2)
    raw = run(server, "--stream", "--json", "-u", "-g", "user", "one two three four five six seven")
    totals = [c["usage"]["completion_tokens"] for c in map(json.loads, raw.stdout.splitlines())]
    assert len(set(totals)) > 1  # the placement under test: a running count
    text = run(server, "--stream", "-u", "-g", "user", "one two three four five six seven")
    assert usage_line(text.stderr)["completion_tokens"] == totals[-1]


@pytest.mark.parametrize("profile", ["lmdeploy-0.6", "lmdeploy-0.14", "lmdeploy-0.18", "gateway"])
def test_usage_of_a_whole_reply_is_the_replys(serve, profile):
    server = serve(profile)
    raw = run(server, "--json", "-u", "-g", "user", "hi there")
    assert raw.exit_code == 0, raw.stderr
    assert "stream_options" not in sent(server)
    expected = counts_of(json.loads(raw.stdout)["usage"])
    assert [json.loads(line) for line in raw.stderr.splitlines()] == [{"usage": expected}]
    assert usage_line(run(server, "-u", "-g", "user", "hi there").stderr) == expected


def test_usage_is_not_asked_of_the_official_service_and_its_absence_is_said_once(serve):
    server = serve("gateway")
    result = run(server, "--stream", "-u", "-g", "user", "hi")
    assert result.exit_code == 0, result.stderr
    assert "stream_options" not in sent(server) and server.seen[-1].ignored == ()
    assert result.stderr == "interncli: warning: the server sent no token usage\n"


def test_without_u_nothing_about_usage_is_sent_or_shown(serve):
    server = serve("lmdeploy-0.18")
    result = run(server, "--stream", "-g", "user", "hi")
    assert (result.exit_code, result.stderr) == (0, "")
    assert "stream_options" not in sent(server)


# ------------------------------------------------------------------------ --tools with --stream

SPEC = ("tools:\n  - name: get_weather\n    parameters:\n      type: object\n"
        "      properties: {city: {type: string}}\n    command: [echo, '{city}']\n")
CALL = ("get_weather", {"city": "上海"})


@pytest.fixture
def spec(tmp_path) -> str:
    path = tmp_path / "spec.yaml"
    path.write_text(SPEC, encoding="utf-8")
    return str(path)


def tool_call_of(stdout: str) -> tuple:
    kind, _, name, arguments = stdout.splitlines()[-1].split(" ", 3)
    return kind, name, json.loads(arguments)


@pytest.mark.parametrize("command", [["chat", "create"], ["api", "chat.completions.create"]])
def test_tools_with_stream_go_unstreamed_to_the_official_service_said_once(serve, spec, command):
    server = serve("gateway")
    server.script(Engine(text="Let me check.", tool_call=CALL))
    result = invoke(["-b", server.base_url, "-k", SENTINEL, *command, "-m", GATEWAY_MODEL, "--stream",
                     "--tools", spec, "-g", "user", "weather?"], env={"INTERN_API": "intern"})
    assert result.exit_code == 0, result.stderr
    assert server.seen[-1].stream is False and sent(server).get("stream", False) is False
    assert tool_call_of(result.stdout) == ("tool_call", "get_weather", {"city": "上海"})
    assert result.stderr == ("interncli: the official service does not stream replies with tools: "
                             "sending without --stream\n")


def test_tools_with_stream_under_json_print_the_whole_reply(serve, spec):
    server = serve("gateway")
    server.script(Engine(text="Let me check.", tool_call=CALL))
    result = run(server, "--stream", "--json", "--tools", spec, "-g", "user", "weather?")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["object"] == "chat.completion"
    assert [json.loads(line) for line in result.stderr.splitlines()] == [
        {"info": "the official service does not stream replies with tools: sending without --stream"}]


@pytest.mark.parametrize("profile", ["lmdeploy-0.6", "lmdeploy-0.14", "lmdeploy-0.18"])
def test_tools_with_stream_stream_to_lmdeploy(serve, spec, profile):
    server = serve(profile)
    server.script(Engine(text="Let me check.", tool_call=CALL))
    result = run(server, "--stream", "--tools", spec, "-g", "user", "weather?")
    assert result.exit_code == 0, result.stderr
    assert sent(server)["stream"] is True and result.stderr == ""
    assert tool_call_of(result.stdout) == ("tool_call", "get_weather", {"city": "上海"})


# ------------------------------------------------------------------------ -O/--option


def test_options_reach_lmdeploy_as_json_values_or_strings(serve):
    server = serve("lmdeploy-0.18")
    result = run(server, "-O", "top_k", "40", "-O", "repetition_penalty", "1.1", "-O", "seed", "7",
                 "-O", "skip_special_tokens", "false", "-O", "user", "alice", "-O", "stop", '["END", "STOP"]',
                 "-g", "user", "hi")
    assert result.exit_code == 0, result.stderr
    body = sent(server)
    assert {k: body[k] for k in ("top_k", "repetition_penalty", "seed", "skip_special_tokens", "user", "stop")} == {
        "top_k": 40, "repetition_penalty": 1.1, "seed": 7, "skip_special_tokens": False, "user": "alice",
        "stop": ["END", "STOP"]}
    assert server.seen[-1].ignored == ()


def test_an_option_overrides_interncli_s_own_field_and_the_last_of_a_key_wins(serve):
    server = serve("lmdeploy-0.14")
    result = run(server, "-M", "100", "-O", "max_tokens", "5", "-O", "top_k", "1", "-O", "top_k", "2",
                 "-g", "user", "hi")
    assert result.exit_code == 0, result.stderr
    assert (sent(server)["max_tokens"], sent(server)["top_k"]) == (5, 2)


def test_a_chat_template_kwargs_option_is_merged_with_thinking_its_keys_winning(serve):
    server = serve("lmdeploy-0.12")
    server.script(Engine(text="answer", reasoning="hmm"))
    result = run(server, "--thinking", "-O", "chat_template_kwargs", '{"enable_thinking": false, "x": 1}',
                 "-g", "user", "hi")
    assert result.exit_code == 0, result.stderr
    assert sent(server)["chat_template_kwargs"] == {"enable_thinking": False, "x": 1}
    assert server.seen[-1].thinking is False
    kept = run(server, "--thinking", "-O", "chat_template_kwargs", '{"x": 1}', "-g", "user", "hi")
    assert kept.exit_code == 0 and sent(server)["chat_template_kwargs"] == {"enable_thinking": True, "x": 1}
    assert server.seen[-1].thinking is True


@pytest.mark.parametrize("value", ["NaN", "Infinity", "not json", "", "{unclosed", "[" * 5000])
def test_a_value_that_is_not_json_is_sent_as_the_string_given(serve, value):
    server = serve("lmdeploy-0.16")
    result = run(server, "-O", "user", value, "-g", "user", "hi")
    assert result.exit_code == 0, result.stderr
    assert sent(server)["user"] == value


@pytest.mark.parametrize("key, instead", [("messages", "-g ROLE CONTENT"), ("stream", "--stream")])
def test_an_option_interncli_sends_itself_is_refused(serve, key, instead):
    server = serve("lmdeploy-0.18")
    result = run(server, "-O", key, "true", "-g", "user", "hi")
    assert result.exit_code == 2 and server.calls() == []
    assert "-O {} cannot be set".format(key) in result.stderr and instead in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("key", ["", " top_k", "to\x1bp"])
def test_a_malformed_option_name_is_refused(serve, key):
    server = serve("lmdeploy-0.18")
    result = run(server, "-O", key, "1", "-g", "user", "hi")
    assert result.exit_code == 2 and server.calls() == [] and "\x1b" not in result.stderr
    assert "hint:" in result.stderr


def test_an_option_to_the_official_service_goes_with_a_warning(serve):
    server = serve("gateway")
    result = run(server, "-O", "top_k", "5", "-O", "temperature", "0.5", "-g", "user", "hi")
    assert server.seen[-1].ignored == ("top_k",) and sent(server)["temperature"] == 0.5
    assert "interncli: warning: the official service refuses fields it does not document, sent all the " \
           "same: top_k\n" in result.stderr
    assert "temperature" not in result.stderr.split("warning")[1].split("\n")[0]
    assert result.exit_code == 5  # the gateway's -10002
    documented = run(server, "-O", "temperature", "0.5", "-g", "user", "hi")
    assert (documented.exit_code, documented.stderr) == (0, "")


def test_dry_run_shows_the_options_in_the_body(serve):
    server = serve("lmdeploy-0.18")
    result = run(server, "--dry-run", "--json", "-O", "seed", "3", "-g", "user", "hi")
    assert result.exit_code == 0 and server.calls() == []
    assert json.loads(result.stdout)["body"]["seed"] == 3


def test_a_wrong_type_for_a_known_field_meets_the_server_s_validation(serve):
    server = serve("lmdeploy-0.10")
    result = run(server, "-O", "max_tokens", '"many"', "-g", "user", "hi")
    assert result.exit_code == 5 and result.stdout == ""


# ------------------------------------------------------------------------ -H/--header

SECRET_HEADER = "X-Api-Key: gw-SECRET-header-9f8e7d6c"
SECRET_VALUE = SECRET_HEADER.split(": ")[1]


def write_profile(config_dir, **profile: Any) -> None:
    import yaml

    (config_dir / "config.yaml").write_text(yaml.safe_dump({"profiles": {"default": profile}}), encoding="utf-8")


def test_headers_reach_the_server_on_chat_and_models(serve):
    server = serve("lmdeploy-0.18")
    result = run(server, "-g", "user", "hi", globals_=("-H", "X-Team: search", "--header", "X-Trace:  a b "))
    assert result.exit_code == 0, result.stderr
    assert (server.last.headers["x-team"], server.last.headers["x-trace"]) == ("search", "a b")
    listed = invoke(["-b", server.base_url, "-k", SENTINEL, "-H", "X-Team: search", "models", "list"])
    assert listed.exit_code == 0 and server.last.headers["x-team"] == "search"


def test_flag_headers_beat_the_profile_s_name_by_name(serve, config_dir):
    server = serve("lmdeploy-0.16")
    write_profile(config_dir, base_url=server.base_url, headers={"X-Team": "a", "X-Env": "prod"})
    result = invoke(["-k", SENTINEL, "-H", "x-team: b", "-H", "User-Agent: my-agent/1", "chat", "create",
                     "-m", server.model, "-g", "user", "hi"])
    assert result.exit_code == 0, result.stderr
    assert (server.last.headers["x-team"], server.last.headers["x-env"]) == ("b", "prod")
    assert server.last.headers["user-agent"] == "my-agent/1"
    assert server.last.headers["content-type"] == "application/json"
    doc = json.loads(invoke(["-H", "x-team: b", "config", "list", "--json"]).stdout)
    assert (doc["settings"]["headers"], doc["sources"]["headers"]) == ({"X-Env": "prod", "x-team": "b"}, "flag")


@pytest.mark.parametrize("header, says", [
    ("X Team: a", "not a valid header name"), ("X-Team", "is not NAME: VALUE"), (": a", "not a valid header name"),
    ("X-Team: a\r\nX-Evil: b", "printable ASCII"), ("X-Team: a\nb", "printable ASCII"),
    ("X-Team: caf\u00e9", "printable ASCII"), ("Content-Type: text/plain", "interncli sets it"),
    ("Host: elsewhere", "interncli sets it"), ("Content-Length: 0", "interncli sets it")])
def test_a_malformed_or_managed_header_is_refused_before_sending(serve, header, says):
    server = serve("lmdeploy-0.18")
    result = run(server, "-g", "user", "hi", globals_=("-H", header))
    assert result.exit_code == 2 and server.calls() == []
    assert says in result.stderr and "hint:" in result.stderr and "Traceback" not in result.stderr


def test_a_malformed_profile_header_is_refused(config_dir):
    write_profile(config_dir, headers={"X-Team": ["a"]})
    result = invoke(["config", "list"])
    assert result.exit_code == 2 and "the value of X-Team must be text" in result.stderr


def test_profile_header_values_written_as_yaml_numbers_and_switches_go_as_written(serve, config_dir):
    server = serve("lmdeploy-0.18")
    write_profile(config_dir, base_url=server.base_url, headers={"X-Version": 2, "X-Debug": True, "X-Ratio": 0.5})
    result = invoke(["-k", SENTINEL, "chat", "create", "-m", server.model, "-g", "user", "hi"])
    assert result.exit_code == 0, result.stderr
    headers = server.last.headers
    assert (headers["x-version"], headers["x-debug"], headers["x-ratio"]) == ("2", "true", "0.5")


def test_a_credential_header_is_redacted_in_verbose_dry_run_errors_and_config(serve, config_dir):
    server = serve("lmdeploy-0.18")
    traced = run(server, "-g", "user", "hi", globals_=("-v", "-H", SECRET_HEADER))
    assert traced.exit_code == 0 and server.last.headers["x-api-key"] == SECRET_VALUE
    assert "> X-Api-Key: ***" in traced.stderr and SECRET_VALUE not in traced.stderr
    dry = run(server, "--dry-run", "-g", "user", "hi", globals_=("-H", SECRET_HEADER))
    assert "X-Api-Key: ***" in dry.stdout and SECRET_VALUE not in dry.stdout + dry.stderr
    from tests.apiserver import Json

    server.add(Json({"object": "error", "message": "key {} is not allowed".format(SECRET_VALUE), "code": 403}, 403))
    refused = run(server, "--json", "-g", "user", "hi", globals_=("-H", SECRET_HEADER))
    assert refused.exit_code == 3 and "***" in refused.stderr and SECRET_VALUE not in refused.stderr
    bad = invoke(["-H", "X-Api-Key: {}\x07".format(SECRET_VALUE), "config", "list"])
    assert bad.exit_code == 2 and SECRET_VALUE not in bad.stderr
    assert invoke(["config", "set", "headers", SECRET_HEADER]).exit_code == 0
    assert SECRET_VALUE in (config_dir / "config.yaml").read_text(encoding="utf-8")
    shown = invoke(["config", "list"]).stdout + invoke(["config", "get", "headers"]).stdout
    assert "X-Api-Key: ***" in shown and SECRET_VALUE not in shown


def test_the_token_s_authorization_wins_over_a_header_s(serve):
    server = serve("lmdeploy-0.14")
    result = run(server, "-g", "user", "hi", globals_=("-H", "Authorization: Bearer sk-other-value-123"))
    assert result.exit_code == 0, result.stderr
    assert server.last.headers["authorization"] == "Bearer " + SENTINEL
    assert "the Authorization header given is not sent" in result.stderr and "sk-other" not in result.stderr


def test_an_authorization_header_goes_where_no_token_does(serve):
    server = serve("lmdeploy-0.14")  # the server wants SENTINEL, given here as a header, not a token
    result = invoke(["-v", "-b", server.base_url, "-H", "Authorization: Bearer " + SENTINEL, "chat", "create",
                     "-m", server.model, "-g", "user", "hi"])
    assert result.exit_code == 0, result.stderr
    assert server.last.headers["authorization"] == "Bearer " + SENTINEL
    assert SENTINEL not in result.stdout + result.stderr and "> Authorization: Bearer ***" in result.stderr


def test_a_profile_s_credential_header_stays_with_the_profile_s_host(serve, config_dir):
    server = serve("lmdeploy-0.18")
    own = server.base_url.replace("127.0.0.1", "localhost")
    write_profile(config_dir, base_url=own, headers={"X-Api-Key": SECRET_VALUE, "X-Team": "a"})
    home = invoke(["-k", SENTINEL, "chat", "create", "-m", server.model, "-g", "user", "hi"])
    assert home.exit_code == 0 and server.last.headers["x-api-key"] == SECRET_VALUE
    moved = invoke(["-b", server.base_url, "-k", SENTINEL, "chat", "create", "-m", server.model, "-g", "user", "hi"])
    assert moved.exit_code == 0, moved.stderr
    assert "x-api-key" not in server.last.headers and server.last.headers["x-team"] == "a"
    assert moved.stderr == ("interncli: warning: the profile's X-Api-Key not sent to 127.0.0.1: it is for the "
                            "profile's own base URL\n")
    given = invoke(["-b", server.base_url, "-k", SENTINEL, "-H", SECRET_HEADER, "chat", "create", "-m",
                    server.model, "-g", "user", "hi"])
    assert given.exit_code == 0 and server.last.headers["x-api-key"] == SECRET_VALUE
    assert given.stderr == ""


# ------------------------------------------------------------------------ the installed command


@pytest.mark.integration
@pytest.mark.parametrize("profile", ["lmdeploy-0.6", "lmdeploy-0.12", "lmdeploy-0.18"])
def test_the_installed_command_sends_thinking_options_headers_and_shows_usage(serve, exe, profile, tmp_path):
    import os
    import subprocess

    server = serve(profile)
    server.script(Engine(text="answer", reasoning="hmm"))
    env = {**os.environ, "INTERN_API_KEY": SENTINEL, "INTERNCLI_CONFIG_DIR": str(tmp_path)}
    done = subprocess.run([exe, "-b", server.base_url, "-H", "X-Team: search", "chat", "create", "-m", server.model,
                           "--thinking", "--stream", "-u", "-O", "top_k", "40", "-g", "user", "hi"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert SENTINEL not in done.stdout + done.stderr
    body = sent(server)
    assert (body["top_k"], body["stream_options"], server.last.headers["x-team"]) == (
        40, {"include_usage": True}, "search")
    assert server.seen[-1].thinking is (None if profile == "lmdeploy-0.6" else True)
    assert "answer" in done.stdout and usage_line(done.stderr)["prompt_tokens"] > 0
