"""``--schema`` (chat create, its api alias, tools run): the schema read and checked, never
fetching; replies that are prose, invalid JSON, JSON of the wrong shape, then right; the re-ask
carrying each error's path and message; ``response_format`` only where the server kind takes it.

What LMDeploy reads (``lmdeploy/serve/openai/protocol.py``, read at v0.6.0, v0.10.2, v0.14.0 and
v0.16.0; tests/servers/README.md §6): ``response_format`` is ``{"type": "json_schema",
"json_schema": {"name": ..., "schema": {...}, "strict": false}}`` in every release, ``name``
required (a validation error without it), ``schema`` under that alias, ``strict`` unused. Up to
0.10.1 the default TurboMind backend answers 400 ``only pytorch backend can use response_format
now`` (api_server.py); from 0.10.2 both backends take it. The official service documents no such
field and refuses unknown ones, so it is told the schema in the messages instead.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from interncli import structured
from tests.apiserver import APIServer, Completion, Stream, err_object, stream_chunks
from tests.conftest import SENTINEL, invoke
from tests.fakeio import fake_io, run_with
from tests.servers.lmdeploy import LMDEPLOY_PROFILES, Engine
from tests.toolhelpers import chat_bodies, weather_tool, write_spec

SHARED_SERVER = True
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

PERSON = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name", "age"]}
PERSON_TEXT = json.dumps(PERSON)
INTERN = {"INTERN_API": "intern"}  # the test server is on 127.0.0.1: lmdeploy unless told
GOOD = '{"name": "Ada", "age": 36}'
# Prose, invalid JSON, JSON of the wrong shape in a fence, then right.
ATTEMPTS = ["Sure! Ada is 36.", '{"name": "Ada", "age": ', '```json\n{"name": "Ada", "age": "36"}\n```', GOOD]


def user_texts(body):
    return [m["content"] for m in body["messages"] if m["role"] == "user"]


# ------------------------------------------------------------------------------ the schema


def test_the_example_schema_takes_the_example_record():
    schema = structured.load_schema(str(EXAMPLES / "person.json"))
    assert schema.name == "person"
    record = {"name": "Ada Lovelace", "born": 1815, "known_for": "The first computer program."}
    assert structured.check_reply(schema, json.dumps(record)) == (record, [])
    assert (EXAMPLES / "bio.txt").read_text().startswith("Ada Lovelace")


def test_the_schema_s_own_draft_is_used(cli, api):
    draft4 = {"$schema": "http://json-schema.org/draft-04/schema#", "type": "integer", "maximum": 5,
              "exclusiveMaximum": True}  # draft 4's boolean form: 5 itself is out
    api.add(Completion("5"))
    api.add(Completion("4"))
    result = cli("chat", "create", "-g", "user", "hi", "--schema", json.dumps(draft4))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "4\n"
    assert "5 is greater than or equal to the maximum of 5" in chat_bodies(api)[1]["messages"][-1]["content"]


def test_inline_file_and_shorthand_schemas(tmp_path):
    path = tmp_path / "person.json"
    path.write_text(PERSON_TEXT)
    assert structured.load_schema(str(path)).document == PERSON
    assert structured.load_schema(str(path)).name == "person"
    assert structured.load_schema(PERSON_TEXT).document == PERSON
    assert structured.load_schema("name, age int, bio: one sentence").document == {
        "type": "object", "required": ["name", "age", "bio"], "additionalProperties": False,
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"},
                       "bio": {"type": "string", "description": "one sentence"}}}


def test_shorthand_on_several_lines_takes_commas_in_descriptions():
    assert structured.parse_shorthand("kind: feat, fix or docs\nsummary str\n")["properties"] == {
        "kind": {"type": "string", "description": "feat, fix or docs"}, "summary": {"type": "string"}}


@pytest.mark.parametrize("value", ["person.json", "name", "people/x", "name, name"])
def test_what_is_no_file_and_not_the_shorthand_is_a_usage_error(cli, api, value):
    result = cli("chat", "create", "-g", "user", "hi", "--schema", value)
    assert result.exit_code == 2
    assert "no such file" in result.stderr and "hint:" in result.stderr
    assert api.calls() == []


@pytest.mark.parametrize("schema, said", [
    ('{"type": "object", "properties": {"a": {"type": 5}}}', "not a valid JSON Schema: /properties/a/type"),
    ('{"type": "object", "required": "name"}', "not a valid JSON Schema: /required"),
    ("[1, 2]", "must be a JSON object"),
    ('{"type": "object",', "not valid JSON"),
    ('{"minimum": NaN}', "not valid JSON"),
    ('{"$schema": 7}', "is not a known JSON Schema version"),
])
def test_a_schema_that_is_not_json_schema_is_exit_2(cli, api, schema, said):
    result = cli("chat", "create", "-g", "user", "hi", "--schema", schema)
    assert result.exit_code == 2, result.stderr
    assert said in result.stderr and "hint:" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == "" and api.calls() == []


def test_a_schema_with_remote_references_never_fetches(cli, api):
    with APIServer() as remote:  # records every request that reaches it
        where = remote.base_url + "/person.json"
        for schema in ({"$ref": where}, {"$id": where, "$ref": "other.json"},
                       {"$schema": where, "type": "object"},
                       {"type": "object", "properties": {"a": {"$dynamicRef": where + "#x"}}}):
            result = cli("chat", "create", "-g", "user", "hi", "--schema", json.dumps(schema))
            assert result.exit_code == 2, result.stderr
            assert "nothing is fetched" in result.stderr
        assert remote.requests == []
    assert api.calls() == []


def test_a_pattern_that_backtracks_is_stopped_not_hung(cli, api, monkeypatch):
    monkeypatch.setattr(structured, "CHECK_TIME_LIMIT", 0.05)
    api.add(Completion('"' + "a" * 40 + '!"'))
    result = cli("chat", "create", "-g", "user", "hi", "--schema-retries", "0",
                 "--schema", '{"type": "string", "pattern": "^(a+)+$"}')
    assert result.exit_code == 5
    assert "backtracks" in result.stderr and result.stdout == ""


# ------------------------------------------------------------------- told, validated, re-asked


def test_the_official_service_is_told_the_schema_and_re_asked_with_the_errors(cli, api):
    for text in ATTEMPTS:
        api.add(Completion(text))
    result = cli("chat", "create", "-g", "user", "Who is Ada?", "--schema", PERSON_TEXT, "--schema-retries", "3",
                 env=INTERN)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == GOOD + "\n"
    bodies = chat_bodies(api)
    assert len(bodies) == 4
    assert all("response_format" not in body for body in bodies)
    first = bodies[0]["messages"]
    assert len(first) == 1 and first[0]["content"].startswith("Who is Ada?\n\n")
    assert json.dumps(PERSON) in first[0]["content"]
    # Each re-ask holds the reply it answers and the problem, with its path for a schema error.
    last = bodies[3]["messages"]
    assert [m["role"] for m in last] == ["user", "assistant", "user", "assistant", "user", "assistant", "user"]
    assert [m["content"] for m in last[1::2]] == ATTEMPTS[:3]
    reasks = [m["content"] for m in last[2::2]]
    assert "it starts with text that is not a JSON value" in reasks[0]
    assert "the reply is not JSON (Expecting value: line 1 column 23" in reasks[1]
    assert "- /age: '36' is not of type 'integer'" in reasks[2]
    assert result.stderr.count("does not fit the schema") == 3 and "(3 of 3)" in result.stderr


def test_every_error_is_told_with_its_path(cli, api):
    api.add(Completion('{"name": 1, "age": "x", "extra": true}'))
    api.add(Completion(GOOD))
    schema = dict(PERSON, additionalProperties=False)
    result = cli("chat", "create", "-g", "user", "hi", "--schema", json.dumps(schema), env=INTERN)
    assert result.exit_code == 0, result.stderr
    reask = chat_bodies(api)[1]["messages"][-1]["content"]
    assert "- /: Additional properties are not allowed ('extra' was unexpected)" in reask
    assert "- /age: 'x' is not of type 'integer'" in reask
    assert "- /name: 1 is not of type 'string'" in reask


def test_retries_exhausted_is_exit_5_with_nothing_on_stdout(cli, api):
    api.add(Completion("I would rather \x1b]0;owned\x07 not."), times=3)
    result = cli("chat", "create", "-g", "user", "hi", "--schema", PERSON_TEXT, env=INTERN)
    assert result.exit_code == 5
    assert result.stdout == ""
    assert len(api.calls()) == 3  # the first ask and the 2 default re-asks
    assert "the last reply:\nI would rather \\x1b]0;owned\\x07 not.\n" in result.stderr  # escaped
    assert "\x1b" not in result.stderr
    assert "error: the reply does not fit the schema after 3 attempts" in result.stderr
    assert "hint:" in result.stderr


def test_schema_retries_zero_asks_once(cli, api):
    api.add(Completion('{"name": "Ada"}'))
    result = cli("chat", "create", "-g", "user", "hi", "--schema", PERSON_TEXT, "--schema-retries", "0",
                 env=INTERN)
    assert result.exit_code == 5 and len(api.calls()) == 1
    assert "/: 'age' is a required property" in result.stderr


def test_under_json_the_failure_is_json_lines_on_stderr(cli, api):
    api.add(Completion("nope"), times=2)
    result = cli("chat", "create", "-g", "user", "hi", "--schema", PERSON_TEXT, "--schema-retries", "1", "--json",
                 env=INTERN)
    assert result.exit_code == 5 and result.stdout == ""
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert {"info": "the last reply: nope"} in lines
    assert lines[-1]["error"]["exit_code"] == 5


def test_the_value_is_printed_on_one_line_and_safe_for_a_terminal(cli, api):
    api.add(Completion('{\n  "name": "A\\u001b[2Jda\\u009b",\n  "age": 36\n}'))
    result = cli("chat", "create", "-g", "user", "hi", "--schema", PERSON_TEXT, env=INTERN)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == '{"name": "A\\u001b[2Jda\\u009b", "age": 36}\n'
    assert json.loads(result.stdout) == {"name": "A\x1b[2Jda\x9b", "age": 36}


def test_thinking_left_in_the_content_is_not_the_answer(cli, api):
    api.add(Completion("<think>The user wants JSON.</think>\n" + GOOD))
    result = cli("chat", "create", "-g", "user", "hi", "--schema", PERSON_TEXT)
    assert result.exit_code == 0 and result.stdout == GOOD + "\n"


# ------------------------------------------------------------------- response_format per kind


@pytest.mark.parametrize("kind", ["lmdeploy", "openai"])
def test_servers_that_constrain_output_get_response_format_and_are_still_validated(cli, api, kind):
    api.add(Completion('{"name": "Ada"}'))
    api.add(Completion(GOOD))
    result = cli("chat", "create", "-g", "user", "hi", "--schema", PERSON_TEXT, env={"INTERN_API": kind})
    assert result.exit_code == 0, result.stderr
    assert result.stdout == GOOD + "\n"
    first, second = chat_bodies(api)
    expected = {"type": "json_schema", "json_schema": {"name": "output", "schema": PERSON}}
    assert first["response_format"] == second["response_format"] == expected
    assert first["messages"] == [{"role": "user", "content": "hi"}]  # not told: the server constrains
    assert "'age' is a required property" in second["messages"][-1]["content"]
    # The server did not hold the model to the schema: the re-ask tells it the schema.
    assert json.dumps(PERSON) in second["messages"][-1]["content"]


def test_a_model_told_the_schema_is_not_told_it_again(cli, api):
    api.add(Completion("prose"))
    api.add(Completion(GOOD))
    assert cli("chat", "create", "-g", "user", "hi", "--schema", PERSON_TEXT, env=INTERN).exit_code == 0
    assert json.dumps(PERSON) not in chat_bodies(api)[1]["messages"][-1]["content"]


def test_the_response_format_name_comes_from_the_title_or_the_file(cli, api, tmp_path):
    path = tmp_path / "my person.schema.json"
    path.write_text(PERSON_TEXT)
    api.add(Completion(GOOD), times=2)
    assert cli("chat", "create", "-g", "user", "hi", "--schema", str(path)).exit_code == 0
    titled = dict(PERSON, title="A person (v2)")
    assert cli("chat", "create", "-g", "user", "hi", "--schema", json.dumps(titled)).exit_code == 0
    names = [body["response_format"]["json_schema"]["name"] for body in chat_bodies(api)]
    assert names == ["my_person_schema", "A_person_v2"]


def test_an_option_response_format_is_the_users(cli, api):
    api.add(Completion(GOOD))
    result = cli("chat", "create", "-g", "user", "hi", "--schema", PERSON_TEXT,
                 "-O", "response_format", '{"type": "json_object"}')
    assert result.exit_code == 0
    assert api.last.json["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize("profile", LMDEPLOY_PROFILES + ("gateway",))
def test_each_lmdeploy_version_and_the_gateway_take_what_is_sent(serve, profile):
    server = serve(profile)
    server.script(Engine(text=GOOD))
    env = INTERN if profile == "gateway" else {}
    result = invoke(["-b", server.base_url, "-k", SENTINEL, "chat", "create", "-m", server.model
                     if profile != "gateway" else "intern-latest", "-g", "user", "hi", "--schema", PERSON_TEXT],
                    env=env)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(GOOD)
    body = server.calls()[-1].json
    # The gateway refuses fields it does not document: it would have answered -10002.
    assert ("response_format" in body) is (profile != "gateway")


def test_turbomind_refusing_response_format_falls_back_to_telling_the_model(cli, api):
    # LMDeploy 0.6.0 - 0.10.1 on TurboMind (tests/servers/README.md §6 and item 25).
    api.add(err_object("only pytorch backend can use response_format now", code=400, status=400))
    api.add(Completion(GOOD))
    result = cli("chat", "create", "-g", "user", "hi", "--schema", PERSON_TEXT)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == GOOD + "\n"
    refused, told = chat_bodies(api)
    assert "response_format" in refused and "response_format" not in told
    assert json.dumps(PERSON) in told["messages"][0]["content"]
    assert "cannot constrain its output" in result.stderr


def test_another_rejection_is_not_taken_for_turbomind(cli, api):
    api.add(err_object("The model 'x' does not exist.", code=404, status=404))
    result = cli("chat", "create", "-g", "user", "hi", "--schema", PERSON_TEXT)
    assert result.exit_code == 5 and len(api.calls()) == 1


@pytest.mark.parametrize("kind, told", [("intern", True), ("lmdeploy", False)])
def test_dry_run_shows_the_first_request(cli, api, kind, told):
    result = cli("chat", "create", "-g", "user", "hi", "--schema", PERSON_TEXT, "--dry-run", "--json",
                 env={"INTERN_API": kind})
    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout)["body"]
    assert ("response_format" in body) is not told
    assert (json.dumps(PERSON) in body["messages"][0]["content"]) is told
    assert api.calls() == []


# ------------------------------------------------------------------- with other flags


def test_json_prints_the_accepted_response_object(cli, api):
    api.add(Completion("prose"))
    api.add(Completion(GOOD))
    result = cli("chat", "create", "-g", "user", "hi", "--schema", PERSON_TEXT, "--json", env=INTERN)
    assert result.exit_code == 0, result.stderr
    reply = json.loads(result.stdout)
    assert reply["object"] == "chat.completion"
    assert reply["choices"][0]["message"]["content"] == GOOD


def test_stream_shows_the_text_on_stderr_and_the_json_on_stdout(cli, api):
    api.add(Stream(stream_chunks(["Here ", "you go"])))
    api.add(Stream(stream_chunks(['{"name": ', '"Ada", "age": 36}'])))
    result = cli("chat", "create", "-g", "user", "hi", "--schema", PERSON_TEXT, "--stream", env=INTERN)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == GOOD + "\n"
    assert result.stderr.startswith("Here you go\n")
    assert '{"name": "Ada", "age": 36}\n' in result.stderr
    assert all(body["stream"] is True for body in chat_bodies(api))


def test_stream_with_json_prints_the_accepted_reply_put_together(cli, api):
    api.add(Stream(stream_chunks(['{"name": ', '"Ada", "age": 36}'])))
    result = cli("chat", "create", "-g", "user", "hi", "--schema", PERSON_TEXT, "--stream", "--json", env=INTERN)
    assert result.exit_code == 0, result.stderr
    reply = json.loads(result.stdout)
    assert reply["object"] == "chat.completion"
    assert reply["choices"][0]["message"]["content"] == GOOD
    assert result.stderr == ""  # no text among the JSON lines of stderr


@pytest.mark.parametrize("stderr_tty, shown", [(True, "A\\x1b]0;t\\x07B "), (False, "A\x1b]0;t\x07B ")])
def test_streamed_text_on_stderr_is_escaped_on_a_terminal(api, stderr_tty, shown):
    api.add(Stream(stream_chunks(["A\x1b", "]0;t\x07B "])))
    api.add(Stream(stream_chunks([GOOD])))
    result = run_with(fake_io(stderr_tty=stderr_tty, environ={"NO_COLOR": "1"}),
                      ["-b", api.base_url, "-k", SENTINEL, "chat", "create", "-g", "user", "hi", "--stream",
                       "--schema", PERSON_TEXT])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == GOOD + "\n"
    assert result.stderr.startswith(shown + "\n")
    assert result.stderr.endswith("\n" + GOOD + "\n")
    assert ("\x1b" in result.stderr) is not stderr_tty


def test_usage_and_reasoning_go_to_stderr(cli, api):
    api.add(Completion(GOOD, reasoning="The user wants a person."))
    result = cli("chat", "create", "-g", "user", "hi", "--schema", PERSON_TEXT, "-u", "--show-reasoning")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == GOOD + "\n"
    assert result.stderr.startswith("The user wants a person.\n")
    assert "interncli: usage: prompt_tokens=" in result.stderr


def test_a_streamed_failure_is_not_shown_twice(cli, api):
    api.add(Stream(stream_chunks(["no JSON here"])))
    result = cli("chat", "create", "-g", "user", "hi", "--schema", PERSON_TEXT, "--stream", "--schema-retries", "0",
                 env=INTERN)
    assert result.exit_code == 5 and result.stdout == ""
    assert result.stderr.count("no JSON here") == 1


def test_the_conversation_keeps_only_the_accepted_reply(cli, api, tmp_path):
    store = tmp_path / "talk.json"
    api.add(Completion("prose"))
    api.add(Completion(GOOD))
    result = cli("chat", "create", "-g", "user", "Who is Ada?", "--schema", PERSON_TEXT, "--conversation",
                 str(store), env=INTERN)
    assert result.exit_code == 0, result.stderr
    assert json.loads(store.read_text()) == [{"role": "user", "content": "Who is Ada?"},
                                             {"role": "assistant", "content": GOOD}]


def test_a_failure_keeps_no_conversation(cli, api, tmp_path):
    store = tmp_path / "talk.json"
    api.add(Completion("prose"), times=3)
    result = cli("chat", "create", "-g", "user", "hi", "--schema", PERSON_TEXT, "--conversation", str(store))
    assert result.exit_code == 5
    assert not store.exists()


@pytest.mark.parametrize("flags, said", [
    (["-x"], "--schema and -x/--extract cannot be used together"),
    (["--extract-last"], "--schema and -x/--extract cannot be used together"),
    (["-n", "2"], "--schema takes one reply, not -n 2"),
])
def test_flags_schema_cannot_go_with(cli, api, flags, said):
    result = cli("chat", "create", "-g", "user", "hi", "--schema", PERSON_TEXT, *flags)
    assert result.exit_code == 2 and said in result.stderr and "hint:" in result.stderr
    assert api.calls() == []


def test_schema_with_tools_and_retries_without_schema_are_refused(cli, api, tmp_path):
    spec = write_spec(tmp_path, [weather_tool()])
    result = cli("chat", "create", "-g", "user", "hi", "--schema", PERSON_TEXT, "--tools", str(spec))
    assert result.exit_code == 2 and "tools run" in result.stderr
    result = cli("chat", "create", "-g", "user", "hi", "--schema-retries", "1")
    assert result.exit_code == 2 and "--schema-retries needs --schema" in result.stderr
    assert api.calls() == []


def test_the_api_alias_takes_schema(cli, api):
    api.add(Completion(GOOD))
    result = cli("api", "chat.completions.create", "-g", "user", "hi", "--schema", PERSON_TEXT)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == GOOD + "\n"
    assert api.last.json["stream"] is False and "response_format" in api.last.json


def test_shorthand_is_sent_as_its_json_schema(cli, api):
    api.add(Completion('{"name": "Ada", "age": 36}'))
    result = cli("chat", "create", "-g", "user", "hi", "--schema", "name, age int")
    assert result.exit_code == 0, result.stderr
    assert api.last.json["response_format"]["json_schema"]["schema"]["required"] == ["name", "age"]


# ------------------------------------------------------------------- tools run


def test_tools_run_checks_the_final_answer(cli, api, tmp_path):
    spec = write_spec(tmp_path, [weather_tool()])
    api.add(Completion(content="", tool_calls=[("c1", "get_current_weather", '{"location": "Paris"}')]))
    api.add(Completion("It is sunny in Paris."))
    api.add(Completion('{"city": "Paris", "sky": "sunny"}'))
    schema = '{"type": "object", "required": ["city", "sky"]}'
    result = cli("tools", "run", str(spec), "--yes", "--schema", schema, "Weather in Paris?")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == '{"city": "Paris", "sky": "sunny"}\n'
    first, _, third = chat_bodies(api)
    assert "response_format" not in first  # it would constrain the turns that call tools too
    assert schema in first["messages"][-1]["content"]
    assert third["messages"][-2] == {"role": "assistant", "content": "It is sunny in Paris."}
    assert "it starts with text that is not a JSON value" in third["messages"][-1]["content"]


def test_tools_run_json_carries_the_value(cli, api, tmp_path):
    spec = write_spec(tmp_path, [weather_tool()])
    api.add(Completion('{"city": "Paris"}'))
    result = cli("tools", "run", str(spec), "--yes", "--json", "--schema", "city str", "Weather?")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["value"] == {"city": "Paris"}


def test_tools_run_re_asks_do_not_count_as_tool_turns(cli, api, tmp_path):
    spec = write_spec(tmp_path, [weather_tool()], max_turns=1)
    api.add(Completion("prose"))
    api.add(Completion('{"city": "Paris"}'))
    result = cli("tools", "run", str(spec), "--yes", "--schema", "city str", "Weather?")
    assert result.exit_code == 0, result.stderr


def test_tools_run_gives_up_with_exit_5(cli, api, tmp_path):
    spec = write_spec(tmp_path, [weather_tool()])
    api.add(Completion("prose"), times=2)
    result = cli("tools", "run", str(spec), "--yes", "--schema", PERSON_TEXT, "--schema-retries", "1", "hi")
    assert result.exit_code == 5
    assert result.stdout == "" and "the last reply:\nprose" in result.stderr


def test_tools_run_refuses_a_bad_schema_before_sending(cli, api, tmp_path):
    spec = write_spec(tmp_path, [weather_tool()])
    result = cli("tools", "run", str(spec), "--yes", "--schema", '{"type": 1}', "hi")
    assert result.exit_code == 2 and api.calls() == []


# ------------------------------------------------------------------- end to end


@pytest.mark.integration
def test_the_installed_command_pipes_into_jq(exe, api, tmp_path):
    schema = tmp_path / "person.json"
    schema.write_text(PERSON_TEXT)
    api.add(Completion("Ada Lovelace, 36, wrote the first program."))
    api.add(Completion('```json\n{"name": "Ada Lovelace", "age": 36}\n```'))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "INTERN_API": "intern", "INTERN_API_KEY": SENTINEL,
           "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring", "INTERNCLI_CONFIG_DIR": str(tmp_path / "c")}
    # A real pipe into the real jq, no shell in between.
    producer = subprocess.Popen([exe, "-b", api.base_url, "chat", "create", "--schema", str(schema), "-g", "user",
                                 "Ada, 36"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert producer.stdout is not None
    jq = subprocess.run(["jq", "-r", ".name"], stdin=producer.stdout, env=env, capture_output=True, text=True,
                        timeout=60)
    producer.stdout.close()
    _, stderr = producer.communicate(timeout=60)
    assert (producer.returncode, jq.returncode) == (0, 0), stderr + jq.stderr
    assert jq.stdout == "Ada Lovelace\n"
    assert SENTINEL not in stderr
