"""`chat create` and its openai alias, in-process against the real test server: every flag of
section 5, the request body each sends, and what lands on stdout and on stderr."""

from __future__ import annotations

import base64
import json
import os

import pytest

from tests.apiserver import Completion, Json, Stream, stream_chunks
from tests.conftest import PNG, SENTINEL, invoke


def test_plain_reply_and_minimal_body(cli, api):
    result = cli("chat", "create", "-g", "user", "hello")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "echo: hello\n", "")
    assert api.last.json == {"model": "intern-latest", "messages": [{"role": "user", "content": "hello"}]}
    assert api.last.headers["authorization"] == "Bearer " + SENTINEL
    assert api.last.path == "/v1/chat/completions"


def test_every_flag_reaches_the_body(cli, api):
    result = cli("chat", "create", "-g", "system", "be brief", "-g", "user", "hi", "-m", "intern-s1", "-n", "1",
                 "-t", "0.3", "-P", "0.8", "-M", "50", "--stop", "END", "--stop", "STOP")
    assert result.exit_code == 0
    assert api.last.json == {
        "model": "intern-s1",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "temperature": 0.3, "stop": ["END", "STOP"], "top_p": 0.8, "n": 1, "max_tokens": 50,
    }


@pytest.mark.parametrize("spelling", ["-P", "--top-p", "--top_p"])
def test_top_p_spellings(cli, api, spelling):
    assert cli("chat", "create", "-g", "user", "x", spelling, "0.5").exit_code == 0
    assert api.last.json["top_p"] == 0.5


def test_openai_alias_sends_the_openai_cli_body_and_prints_the_same(cli, api):
    result = cli("api", "chat.completions.create", "-m", "intern-latest", "-g", "user", "hello", "--top_p", "0.9")
    assert (result.exit_code, result.stdout) == (0, "echo: hello\n")
    assert api.last.json == {"model": "intern-latest", "messages": [{"role": "user", "content": "hello"}],
                             "stream": False, "top_p": 0.9}
    streamed = cli("api", "chat.completions.create", "-m", "intern-latest", "-g", "user", "hello", "--stream")
    assert (streamed.exit_code, streamed.stdout) == (0, "echo: hello\n")
    assert api.last.json["stream"] is True


def test_stdin_is_the_user_message_without_g(cli, api):
    result = cli("chat", "create", input="what is 2+2?\n")
    assert result.exit_code == 0
    assert api.last.json["messages"] == [{"role": "user", "content": "what is 2+2?\n"}]


def test_dash_reads_stdin_into_that_message(cli, api):
    result = cli("chat", "create", "-g", "system", "Review this", "-g", "user", "-", input="diff --git a b\n")
    assert result.exit_code == 0
    assert api.last.json["messages"] == [{"role": "system", "content": "Review this"},
                                         {"role": "user", "content": "diff --git a b\n"}]


def test_empty_stdin_without_g_is_a_usage_error(cli, api):
    result = cli("chat", "create", input="")
    assert result.exit_code == 2 and "no message" in result.stderr and "hint:" in result.stderr
    assert api.requests == []


@pytest.mark.parametrize("piped", ["", " \n\t\n"])
def test_dash_with_an_empty_stdin_is_a_usage_error(cli, api, piped):
    # printf '' | interncli chat create -g user -  sent an empty message before.
    result = cli("chat", "create", "-g", "system", "Be brief", "-g", "user", "-", input=piped)
    assert result.exit_code == 2 and "stdin was empty" in result.stderr and "hint:" in result.stderr
    assert api.requests == []


def test_n_greater_than_one_prints_headers(cli, api):
    result = cli("chat", "create", "-g", "user", "hi", "-n", "2")
    assert result.stdout == "===== Chat Completion 0 =====\necho 0: hi\n===== Chat Completion 1 =====\necho 1: hi\n"


@pytest.mark.parametrize("framing", ["chunked", "close"])
def test_stream_prints_pieces_then_a_final_newline(cli, api, framing):
    api.add(Stream(stream_chunks(["Liu ", "Cixin ", "won."]), framing=framing))
    result = cli("chat", "create", "-g", "user", "hi", "--stream")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "Liu Cixin won.\n", "")
    assert api.last.json["stream"] is True
    assert api.last.headers["accept"] == "text/event-stream"


def test_streamed_n_prints_each_choice_whole_when_it_finishes(cli, api):
    api.add(Stream(stream_chunks([["a1", "a2"], ["b1", "b2"]], n=2)))
    result = cli("chat", "create", "-g", "user", "hi", "--stream", "-n", "2")
    assert result.exit_code == 0
    assert result.stdout == "===== Chat Completion 0 =====\na1a2\n===== Chat Completion 1 =====\nb1b2\n"


def test_tool_calls_print_one_line_each_with_arguments_as_json(cli, api):
    api.add(Completion(content="get_current_weather", tool_calls=[
        ("97102", "get_current_weather", "{'location': 'shanghai', 'unit': 'celsius'}"),
        ("97103", "get_time", '{"tz": "Asia/Shanghai"}')]))
    result = cli("chat", "create", "-g", "user", "weather?")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "get_current_weather"
    assert lines[1] == 'tool_call 97102 get_current_weather {"location": "shanghai", "unit": "celsius"}'
    assert lines[2] == 'tool_call 97103 get_time {"tz": "Asia/Shanghai"}'


def test_tool_call_without_content_prints_only_the_call(cli, api):
    api.add(Completion(content=None, tool_calls=[("1", "f", "{}")]))
    assert cli("chat", "create", "-g", "user", "x").stdout == "tool_call 1 f {}\n"


def test_null_content_without_tool_calls_is_an_empty_reply_not_none(cli, api):
    # issue 10 (#7, #9): the openai CLI prints "None"; it is an empty reply, said on stderr.
    api.add(Completion(content=None))
    result = cli("chat", "create", "-g", "user", "x")
    assert (result.exit_code, result.stdout) == (0, "")
    assert "empty reply" in result.stderr


def test_length_cut_warns_on_stderr_only(cli, api):
    api.add(Completion(content="partial", finish_reason="length"))
    result = cli("chat", "create", "-g", "user", "x", "-M", "3")
    assert result.stdout == "partial\n"
    assert "max_tokens" in result.stderr and "warning" in result.stderr
    api.add(Stream(stream_chunks(["par", "tial"], finish_reason="length")))
    streamed = cli("chat", "create", "-g", "user", "x", "-M", "3", "--stream")
    assert streamed.stdout == "partial\n" and "max_tokens" in streamed.stderr


def test_sensitive_reply_warns_with_its_category_and_prints_content(cli, api):
    api.add(Completion(content="text", moderation={"sensitive": True, "category": "ad"}))
    result = cli("chat", "create", "-g", "user", "x")
    assert result.stdout == "text\n"
    assert "sensitive" in result.stderr and "ad" in result.stderr


def test_reasoning_goes_to_stderr_only_when_asked(cli, api):
    api.add(Completion(content="42", reasoning="think hard"), times=2)
    quiet = cli("chat", "create", "-g", "user", "x")
    assert (quiet.stdout, quiet.stderr) == ("42\n", "")
    shown = cli("chat", "create", "-g", "user", "x", "--show-reasoning")
    assert shown.stdout == "42\n" and "think hard" in shown.stderr
    api.add(Stream(stream_chunks(["4", "2"], reasoning=["thin", "king"])))
    streamed = cli("chat", "create", "-g", "user", "x", "--stream", "--show-reasoning")
    assert streamed.stdout == "42\n" and "thinking" in streamed.stderr


def test_json_prints_the_response_object(cli, api):
    result = cli("chat", "create", "-g", "user", "hi", "--json")
    doc = json.loads(result.stdout)
    assert doc["choices"][0]["message"]["content"] == "echo: hi" and doc["object"] == "chat.completion"


def test_streamed_json_is_one_line_per_chunk_as_received(cli, api):
    chunks = stream_chunks(["a", "b", "c"])
    api.add(Stream(chunks))
    result = cli("chat", "create", "-g", "user", "hi", "--stream", "--json")
    lines = result.stdout.splitlines()
    assert [json.loads(line) for line in lines] == chunks


def test_dry_run_shows_the_request_without_the_token_and_sends_nothing(cli, api):
    result = cli("chat", "create", "-g", "user", "hi", "--dry-run", "-t", "0.5")
    assert result.exit_code == 0
    assert result.stdout.startswith("POST {}/chat/completions\n".format(api.base_url))
    assert "Authorization: Bearer ***" in result.stdout
    body = json.loads(result.stdout.split("\n\n", 1)[1])
    assert body == {"model": "intern-latest", "messages": [{"role": "user", "content": "hi"}], "temperature": 0.5}
    as_json = json.loads(cli("chat", "create", "-g", "user", "hi", "--dry-run", "--json").stdout)
    assert as_json["method"] == "POST" and as_json["headers"]["Authorization"] == "Bearer ***"
    assert api.requests == []


def test_dry_run_needs_no_token():
    result = invoke(["chat", "create", "-g", "user", "hi", "--dry-run"])
    assert result.exit_code == 0 and "Authorization" not in result.stdout


def test_no_token_for_the_official_service_is_an_auth_error():
    result = invoke(["chat", "create", "-g", "user", "hi"])
    assert result.exit_code == 3
    assert "no API token" in result.stderr and "INTERN_API_KEY" in result.stderr


def test_conversation_is_created_sent_first_and_appended(cli, api, tmp_path):
    path = tmp_path / "talk.json"
    assert cli("chat", "create", "--conversation", str(path), "-g", "user", "one").exit_code == 0
    assert json.loads(path.read_text()) == [{"role": "user", "content": "one"},
                                            {"role": "assistant", "content": "echo: one"}]
    api.add(Stream(stream_chunks(["two ", "back"])))
    assert cli("chat", "create", "--conversation", str(path), "-g", "user", "two", "--stream").exit_code == 0
    assert api.last.json["messages"][:2] == [{"role": "user", "content": "one"},
                                             {"role": "assistant", "content": "echo: one"}]
    saved = json.loads(path.read_text())
    assert saved[2:] == [{"role": "user", "content": "two"}, {"role": "assistant", "content": "two back"}]
    assert os.listdir(tmp_path) == ["talk.json"]  # no temporary file left behind


def test_conversation_is_untouched_when_the_request_fails(cli, api, tmp_path):
    path = tmp_path / "talk.json"
    path.write_text('[{"role": "user", "content": "kept"}]')
    api.add(Json({"code": "A0211", "msg": "Token expired"}, status=401))
    assert cli("chat", "create", "--conversation", str(path), "-g", "user", "more").exit_code == 3
    assert json.loads(path.read_text()) == [{"role": "user", "content": "kept"}]


def test_bad_conversation_file_is_a_usage_error(cli, api, tmp_path):
    path = tmp_path / "talk.json"
    path.write_text('{"not": "a list"}')
    result = cli("chat", "create", "--conversation", str(path), "-g", "user", "x")
    assert result.exit_code == 2 and "conversation" in result.stderr and api.requests == []


def test_local_image_is_sent_as_a_data_url_on_the_last_user_message(cli, api, tmp_path):
    image = tmp_path / "dot.png"
    image.write_bytes(PNG)
    result = cli("chat", "create", "-m", "internvl2.5-latest", "-g", "user", "Describe", "--image", str(image),
                 "--image", "https://static.example.invalid/b.jpg")
    assert result.exit_code == 0
    parts = api.last.json["messages"][-1]["content"]
    assert parts[0] == {"type": "text", "text": "Describe"}
    assert parts[1]["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert parts[2]["image_url"]["url"] == "https://static.example.invalid/b.jpg"


def test_thinking_sets_thinking_mode_and_refuses_a_system_message(cli, api):
    intern = {"INTERN_API": "intern"}  # the test server is on 127.0.0.1, taken for LMDeploy by default
    assert cli("chat", "create", "-m", "intern-s1", "--thinking", "-g", "user", "x", env=intern).exit_code == 0
    assert api.last.json["thinking_mode"] is True
    refused = cli("chat", "create", "--thinking", "-g", "system", "s", "-g", "user", "x", env=intern)
    assert refused.exit_code == 2 and "--thinking" in refused.stderr and len(api.requests) == 1


SPEC = """\
tools:
  - name: get_current_weather
    description: Get the current weather in a given location
    parameters:
      type: object
      properties:
        location: {type: string}
        unit: {type: string, enum: [celsius, fahrenheit]}
      required: [location]
    command: ["./weather.sh", "--city", "{location}"]
"""


def test_tools_from_a_spec_and_tool_choice(cli, api, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    result = cli("chat", "create", "-g", "user", "weather?", "--tools", str(spec),
                 "--tool-choice", "get_current_weather")
    assert result.exit_code == 0
    tools = api.last.json["tools"]
    assert tools[0]["type"] == "function"
    assert tools[0]["function"]["name"] == "get_current_weather"
    assert tools[0]["function"]["parameters"]["required"] == ["location"]
    assert "command" not in tools[0]["function"]
    assert api.last.json["tool_choice"] == {"type": "function", "function": {"name": "get_current_weather"}}
    assert cli("chat", "create", "-g", "user", "x", "--tools", str(spec), "--tool-choice", "none").exit_code == 0
    assert api.last.json["tool_choice"] == "none"


def test_tool_choice_must_name_a_tool_of_the_spec(cli, api, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    result = cli("chat", "create", "-g", "user", "x", "--tools", str(spec), "--tool-choice", "nope")
    assert result.exit_code == 2 and "get_current_weather" in result.stderr
    assert cli("chat", "create", "-g", "user", "x", "--tool-choice", "nope").exit_code == 2
    assert api.requests == []


def test_a_bad_spec_reports_every_problem_with_line_numbers(cli, api, tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("tools:\n  - name: bad name\n    command: []\n  - name: ok\n    command: [x, '{nope}']\n")
    result = cli("chat", "create", "-g", "user", "x", "--tools", str(spec))
    assert result.exit_code == 2
    assert "line 2" in result.stderr and "line 3" in result.stderr and "line 5" in result.stderr
    assert api.requests == []


def test_models_list(cli, api):
    result = cli("models", "list")
    assert result.stdout == "intern-latest\nintern-s1\ninternvl2.5-latest\n"
    assert api.last.method == "GET" and api.last.path == "/v1/models"
    assert json.loads(cli("models", "list", "--json").stdout)["data"][0]["id"] == "intern-latest"


def test_base_url_trailing_slash(api):
    result = invoke(["-b", api.base_url + "/", "-k", SENTINEL, "chat", "create", "-g", "user", "x"])
    assert result.exit_code == 0 and api.last.path == "/v1/chat/completions"


def test_verbose_traces_request_and_response_with_the_token_redacted(cli, api):
    result = cli("chat", "create", "-g", "user", "hi", globals_=("-v",))
    assert result.stdout == "echo: hi\n"
    assert "> POST {}/chat/completions".format(api.base_url) in result.stderr
    assert "> Authorization: Bearer ***" in result.stderr
    assert '"content": "hi"' in result.stderr and "< HTTP 200" in result.stderr


def test_settings_precedence_flag_env_profile_default(api, config_dir, tmp_path):
    other = "http://127.0.0.1:9/v1"
    (config_dir / "config.yaml").write_text(
        "profiles:\n  default: {{model: from-default}}\n  local: {{base_url: '{}', model: from-profile}}\n"
        .format(api.base_url))
    env = {"INTERN_API_KEY": SENTINEL}
    # profile chosen by flag: its base URL and model
    assert invoke(["--profile", "local", "chat", "create", "-g", "user", "x"], env=env).exit_code == 0
    assert api.last.json["model"] == "from-profile"
    # environment beats the profile
    env_over = dict(env, INTERN_PROFILE="local", INTERN_BASE_URL=other)
    assert invoke(["--max-retries", "0", "chat", "create", "-g", "user", "x"], env=env_over).exit_code == 6
    # the flag beats the environment
    assert invoke(["-b", api.base_url, "chat", "create", "-g", "user", "x"], env=env_over).exit_code == 0
    # -m beats the profile's model
    assert invoke(["--profile", "local", "chat", "create", "-m", "m1", "-g", "user", "x"], env=env).exit_code == 0
    assert api.last.json["model"] == "m1"
    # the default profile's model, the default base URL (nothing sent: dry run)
    dry = invoke(["chat", "create", "-g", "user", "x", "--dry-run", "--json"], env=env)
    doc = json.loads(dry.stdout)
    assert doc["body"]["model"] == "from-default"
    assert doc["url"] == "https://chat.intern-ai.org.cn/api/v1/chat/completions"


def test_a_bad_config_key_is_refused_with_the_valid_ones(config_dir):
    (config_dir / "config.yaml").write_text("profiles:\n  default: {colour: blue}\n")
    result = invoke(["chat", "create", "-g", "user", "x", "--dry-run"])
    assert result.exit_code == 2 and "colour" in result.stderr and "base_url" in result.stderr


@pytest.mark.parametrize("reply", [
    {"choices": [1, 2]},
    {"choices": [{"index": 0, "message": {"content": ["not", "text"]}}]},
    {"choices": [{"index": 0, "message": {"content": "x", "tool_calls": "nope"}}]},
    {"id": "no choices at all"},
    [1, 2, 3],
])
def test_a_reply_of_the_wrong_shape_is_reported_not_crashed_on(cli, api, reply):
    api.add(Json(reply))
    result = cli("chat", "create", "-g", "user", "x")
    assert result.exit_code == 1 and "not a chat completion" in result.stderr
    assert result.stdout == "" and "Traceback" not in result.stderr


def test_a_chunk_of_the_wrong_shape_is_a_malformed_stream(cli, api):
    api.add(Stream([{"choices": [{"index": 0, "delta": {"content": 42}}]}]))
    result = cli("chat", "create", "-g", "user", "x", "--stream", globals_=("--max-retries", "0"))
    assert result.exit_code == 6 and "malformed" in result.stderr and "Traceback" not in result.stderr


def test_a_pretty_printed_json_error_sent_as_an_event_stream_keeps_its_code(cli, api):
    body = json.dumps({"code": -20053, "msg": "Exceeded frequency limit"}, indent=2) + "\n"
    api.add(Stream([body], done=False))
    result = cli("chat", "create", "-g", "user", "x", "--stream", globals_=("--max-retries", "0"))
    assert result.exit_code == 4 and "[-20053] Exceeded frequency limit" in result.stderr


@pytest.mark.integration
def test_a_stream_that_stalls_after_output_keeps_it_and_exits_6(cli, api):
    import threading

    stream = api.add(Stream(stream_chunks(["Hello", " world"]), hold_after=1, release=threading.Event()))
    result = cli("chat", "create", "-g", "user", "x", "--stream", globals_=("--timeout", "0.5"))
    stream.release.set()
    assert result.exit_code == 6 and result.stdout == "Hello"
    assert "stalled" in result.stderr and len(api.requests) == 1
