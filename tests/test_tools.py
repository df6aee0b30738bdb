"""`interncli tools validate|list|run` and `chat create --tools`: the spec loader with its line
numbers, the tool-calling round trip against the test server, schema failures, approval (also on
a real pseudo-terminal), max_turns and the --json transcript. The runner's own guarantees
(environment, working directory, timeouts, output cap, argv) are in test_toolrun.py."""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path
from typing import List, Sequence, Tuple

import pytest

from tests.apiserver import Completion
from tests.conftest import SENTINEL, invoke
from tests.ptyrun import run_on_pty
from tests.toolhelpers import (
    ECHO,
    TOOLS,
    WEATHER_PARAMS,
    chat_bodies,
    ran,
    tool_calls_reply,
    tool_messages,
    weather_tool,
    write_spec,
)

ROOT = Path(__file__).resolve().parent.parent
SEED_ARGS = "{'location': 'shanghai', 'unit': 'celsius'}"



# ----------------------------------------------------------------------------- helpers


def problems(stderr: str, spec: Path) -> List[Tuple[int, str]]:
    """``tools validate``'s ``SPEC:LINE: message`` lines as (line, message)."""
    out = []
    for line in stderr.splitlines():
        match = re.match(re.escape(str(spec)) + r":(\d+): (.*)$", line)
        assert match, "not a SPEC:LINE: message line: {!r}".format(line)
        out.append((int(match.group(1)), match.group(2)))
    return out


def spec_text(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------ validate / list / chat --tools

GOOD = """\
model: intern-latest
system: You are a helpful assistant.
max_turns: 3
tools:
  - name: get_current_weather
    description: Get the current weather in a given location
    parameters:
      type: object
      properties:
        location: {type: string}
        unit: {type: string, enum: [celsius, fahrenheit]}
      required: [location]
    command: ["./weather.sh", "--city", "{location}", "--unit", "{unit}"]
    timeout: 30
  - name: ping
    command: [ping, -c, "1", localhost]
"""


def test_validate_ok(tmp_path):
    spec = spec_text(tmp_path, GOOD)
    result = invoke(["tools", "validate", str(spec)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "{}: ok, 2 tools\n".format(spec)
    assert result.stderr == ""


def test_validate_reports_every_problem_with_its_line(tmp_path):
    spec = spec_text(tmp_path, """\
model: intern-latest
tools:
  - name: a
    command:
      - ./x
      - "{nope}"
  - description: no name
    command: [./y]
  - name: empty
    command: []
  - name: a
    command: [./z]
  - name: blank
    command: [""]
  - name: schema
    parameters:
      type: nonsense
    command: [./w]
  - name: nocommand
""")
    result = invoke(["tools", "validate", str(spec)])
    assert result.exit_code == 2
    assert result.stdout == ""
    found = problems(result.stderr, spec)
    lines = [line for line, _ in found]
    assert lines == sorted(lines)
    expected = [
        (6, "{nope}"),            # placeholder naming an undeclared parameter: the argv element's line
        (7, "'name' is a required property"),
        (10, "non-empty"),        # command: []
        (11, "used twice"),       # the second 'a'
        (14, "non-empty"),        # command: [""]
        (17, "not a valid JSON Schema"),
        (19, "'command' is a required property"),
    ]
    for line, text in expected:
        assert any(n == line and text in m for n, m in found), (line, text, found)
    assert len(found) == len(expected), found


@pytest.mark.parametrize("text, line, key", [
    ("model: intern-latest\ncolour: blue\ntools:\n  - name: a\n    command: [./a]\n", 2, "colour"),
    ("tools:\n  - name: a\n    description: d\n    comand: [./a]\n    command: [./a]\n", 4, "comand"),
], ids=["top-level", "in-a-tool"])
def test_validate_unknown_key_reported_at_its_own_line(tmp_path, text, line, key):
    spec = spec_text(tmp_path, text)
    result = invoke(["tools", "validate", str(spec)])
    assert result.exit_code == 2
    found = problems(result.stderr, spec)
    assert len(found) == 1 and key in found[0][1], found
    assert found[0][0] == line, "the unknown key {!r} is on line {}, reported as line {}".format(
        key, line, found[0][0])


def test_validate_placeholder_without_any_parameters(tmp_path):
    spec = spec_text(tmp_path, "tools:\n  - name: a\n    command: [./a, \"--x={x}\"]\n")
    result = invoke(["tools", "validate", str(spec)])
    assert result.exit_code == 2
    assert problems(result.stderr, spec) == [(3, "placeholder {x} names no declared parameter")]


def test_validate_bad_yaml_names_the_line_of_the_syntax_error(tmp_path):
    spec = spec_text(tmp_path, "tools:\n  - name: a\n    description: one: two\n    command: [./a]\n")
    result = invoke(["tools", "validate", str(spec)])
    assert result.exit_code == 2
    found = problems(result.stderr, spec)
    assert len(found) == 1
    assert found[0][0] == 3 and "not valid YAML" in found[0][1], found


@pytest.mark.parametrize("text", ["", "# only a comment\n\n"], ids=["empty", "comment-only"])
def test_validate_empty_file(tmp_path, text):
    spec = spec_text(tmp_path, text)
    result = invoke(["tools", "validate", str(spec)])
    assert result.exit_code == 2
    assert "empty" in result.stderr and "tools" in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_missing_file_is_a_usage_error(tmp_path):
    result = invoke(["tools", "validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "interncli: error:" in result.stderr


def test_list_plain_and_json(tmp_path):
    spec = spec_text(tmp_path, GOOD)
    result = invoke(["tools", "list", str(spec)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == ["get_current_weather\tGet the current weather in a given location",
                                          "ping\t"]
    result = invoke(["tools", "list", "--json", str(spec)])
    assert result.exit_code == 0, result.stderr
    listed = json.loads(result.stdout)
    assert [t["name"] for t in listed] == ["get_current_weather", "ping"]
    assert listed[0]["parameters"]["required"] == ["location"]
    assert listed[0]["command"] == ["./weather.sh", "--city", "{location}", "--unit", "{unit}"]


BAD_TWO = "tools:\n  - name: a\n    command: []\n  - name: a\n    command: [./b]\n"


def test_list_reports_every_problem_as_validate_does(tmp_path):
    # It used to print one error line cut from the problems; now the same SPEC:LINE: lines.
    spec = spec_text(tmp_path, BAD_TWO)
    result = invoke(["tools", "list", str(spec)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == invoke(["tools", "validate", str(spec)]).stderr
    found = problems(result.stderr, spec)
    assert [line for line, _ in found] == [3, 4], found
    assert "non-empty" in found[0][1] and "used twice" in found[1][1]


def test_chat_create_tools_shares_the_loader(cli, api, tmp_path):
    spec = spec_text(tmp_path, BAD_TWO)
    result = cli("chat", "create", "--tools", str(spec), "-g", "user", "hi")
    assert result.exit_code == 2
    assert "2 problems" in result.stderr and "line 3" in result.stderr and "line 4" in result.stderr
    assert api.calls() == []  # nothing was sent


def test_chat_create_tools_offers_but_never_runs(cli, api, tmp_path):
    spec = write_spec(tmp_path, [weather_tool()])
    api.add(tool_calls_reply(("97102", "get_current_weather", SEED_ARGS)))
    result = cli("chat", "create", "--tools", str(spec), "-g", "user", "weather?")
    assert result.exit_code == 0, result.stderr
    body = api.last.json
    assert body["tools"] == [{"type": "function", "function": {
        "name": "get_current_weather", "description": "Get the current weather in a given location",
        "parameters": WEATHER_PARAMS}}]
    assert "tool_call 97102 get_current_weather" in result.stdout
    assert ran(tmp_path) == []


def test_run_with_a_bad_spec_sends_nothing_and_lists_every_problem(cli, api, tmp_path):
    spec = spec_text(tmp_path, BAD_TWO)
    result = cli("tools", "run", str(spec), "--yes", "hi")
    assert result.exit_code == 2
    assert api.calls() == []
    assert [line for line, _ in problems(result.stderr, spec)] == [3, 4]


# ------------------------------------------------------------------------------ round trip


@pytest.mark.parametrize("arguments", [SEED_ARGS, '{"location": "shanghai", "unit": "celsius"}'],
                         ids=["seed-single-quoted", "json"])
def test_round_trip(cli, api, tmp_path, arguments):
    spec = write_spec(tmp_path, [weather_tool()], system="Be brief.")
    api.add(tool_calls_reply(("97102", "get_current_weather", arguments)))
    api.add(Completion("It is 40 degrees in Shanghai."))
    result = cli("tools", "run", str(spec), "--yes", "What's", "the", "weather?")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "It is 40 degrees in Shanghai.\n"

    first, second = chat_bodies(api)
    expected_tools = [{"type": "function", "function": {
        "name": "get_current_weather", "description": "Get the current weather in a given location",
        "parameters": WEATHER_PARAMS}}]
    for body in (first, second):
        assert body["tools"] == expected_tools
        assert body.get("stream") is not True
    assert first["messages"] == [{"role": "system", "content": "Be brief."},
                                 {"role": "user", "content": "What's the weather?"}]
    assert second["messages"][:2] == first["messages"]
    assistant, tool = second["messages"][2:]
    assert assistant["role"] == "assistant"
    assert assistant["tool_calls"] == [{"id": "97102", "type": "function", "function": {
        "name": "get_current_weather", "arguments": arguments}}]
    assert tool["role"] == "tool" and tool["tool_call_id"] == "97102"
    report = json.loads(tool["content"])  # the tool's stdout, verbatim
    assert report["argv"] == ["--city", "shanghai"]
    assert json.loads(report["stdin"]) == {"location": "shanghai", "unit": "celsius"}
    assert ran(tmp_path) == [["--city", "shanghai"]]

    size = len(tool["content"].encode("utf-8"))
    assert '→ get_current_weather {"location": "shanghai", "unit": "celsius"}' in result.stderr
    assert "← {} bytes, exit 0".format(size) in result.stderr


def test_several_calls_in_one_turn_answered_in_order(cli, api, tmp_path):
    spec = write_spec(tmp_path, [weather_tool()])
    api.add(tool_calls_reply(("call-a", "get_current_weather", "{'location': 'Paris'}"),
                             ("call-b", "get_current_weather", '{"location": "Oslo"}'),
                             ("call-c", "get_current_weather", "{'location': 'Lima'}")))
    api.add(Completion("done"))
    result = cli("tools", "run", str(spec), "--yes", "three cities")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "done\n"
    second = chat_bodies(api)[1]
    assert [m["role"] for m in second["messages"]] == ["user", "assistant", "tool", "tool", "tool"]
    answers = tool_messages(second)
    assert [m["tool_call_id"] for m in answers] == ["call-a", "call-b", "call-c"]
    assert [json.loads(m["content"])["argv"][1] for m in answers] == ["Paris", "Oslo", "Lima"]
    assert ran(tmp_path) == [["--city", "Paris"], ["--city", "Oslo"], ["--city", "Lima"]]
    assert result.stderr.count("← ") == 3


def test_several_turns_keep_the_whole_conversation(cli, api, tmp_path):
    spec = write_spec(tmp_path, [weather_tool()])
    api.add(tool_calls_reply(("t1", "get_current_weather", "{'location': 'Paris'}")))
    api.add(tool_calls_reply(("t2", "get_current_weather", "{'location': 'Rome'}")))
    api.add(Completion("both"))
    result = cli("tools", "run", str(spec), "--yes", "two cities, one at a time")
    assert result.exit_code == 0, result.stderr
    bodies = chat_bodies(api)
    assert len(bodies) == 3
    assert [m["role"] for m in bodies[2]["messages"]] == ["user", "assistant", "tool", "assistant", "tool"]
    assert [m["tool_call_id"] for m in tool_messages(bodies[2])] == ["t1", "t2"]
    assert bodies[2]["messages"][:3] == bodies[1]["messages"]


def test_messages_from_g_and_model_from_spec(cli, api, tmp_path):
    spec = write_spec(tmp_path, [weather_tool()], model="intern-s1")
    api.add(Completion("hello"))
    result = cli("tools", "run", str(spec), "--yes", "-g", "system", "sys", "-g", "user", "hi")
    assert result.exit_code == 0, result.stderr
    body = api.last.json
    assert body["model"] == "intern-s1"
    assert body["messages"] == [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}]
    result = cli("tools", "run", str(spec), "--yes", "-m", "intern-latest", "hi")
    assert api.last.json["model"] == "intern-latest"


# ------------------------------------------------------------------------- schema failures


@pytest.mark.parametrize("arguments, why", [
    ("{'unit': 'celsius'}", "location"),                               # missing required
    ('{"location": 5}', "string"),                                      # wrong type
    ("{'location': 'Paris', 'unit': 'kelvin'}", "kelvin"),              # enum violation
    ('["shanghai", "celsius"]', "object"),                              # not an object
    ("{'location': 'Paris'", "object"),                                 # not parseable
    ("__import__('os').system('touch {marker}')", "object"),            # never eval
], ids=["missing-required", "wrong-type", "enum", "array", "unparseable", "code"])
def test_schema_failure_is_reported_to_the_model_and_nothing_runs(cli, api, tmp_path, arguments, why):
    spec = write_spec(tmp_path, [weather_tool()])
    arguments = arguments.replace("{marker}", str(tmp_path / "ran.log"))
    api.add(tool_calls_reply(("bad-1", "get_current_weather", arguments)))
    api.add(Completion("sorry, let me ask again"))
    result = cli("tools", "run", str(spec), "--yes", "weather?")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "sorry, let me ask again\n"
    assert not (tmp_path / "ran.log").exists(), "the tool ran with arguments that fail its schema"
    second = chat_bodies(api)[1]
    (answer,) = tool_messages(second)
    assert answer["tool_call_id"] == "bad-1"
    error = json.loads(answer["content"])["error"]
    assert why in error
    assert "get_current_weather" in result.stderr and "refused" in result.stderr


def test_unknown_tool_is_reported_to_the_model(cli, api, tmp_path):
    spec = write_spec(tmp_path, [weather_tool()])
    api.add(tool_calls_reply(("x1", "rm_rf", "{'path': '/'}"),
                             ("x2", "get_current_weather", "{'location': 'Paris'}")))
    api.add(Completion("fine"))
    result = cli("tools", "run", str(spec), "--yes", "go")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "fine\n"
    first, second = tool_messages(chat_bodies(api)[1])
    assert first["tool_call_id"] == "x1"
    error = json.loads(first["content"])["error"]
    assert "rm_rf" in error and "get_current_weather" in error
    assert second["tool_call_id"] == "x2" and json.loads(second["content"])["argv"] == ["--city", "Paris"]
    assert ran(tmp_path) == [["--city", "Paris"]]


# ------------------------------------------------------------------------------- approval


def test_no_terminal_and_no_yes_runs_nothing(cli, api, tmp_path):
    spec = write_spec(tmp_path, [weather_tool()])
    api.add(tool_calls_reply(("97102", "get_current_weather", SEED_ARGS),
                             ("97103", "get_current_weather", SEED_ARGS)))
    api.add(Completion("never reached"))
    result = cli("tools", "run", str(spec), "weather?")
    assert result.exit_code == 7
    assert not (tmp_path / "ran.log").exists()
    assert result.stdout == ""
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("interncli: error:")]
    assert len(error_lines) == 1, result.stderr
    assert "get_current_weather" in error_lines[0] and "approved" in error_lines[0]
    assert "--yes" in result.stderr  # says how to proceed
    assert len(api.calls()) == 1


def test_yes_runs_every_call(cli, api, tmp_path):
    spec = write_spec(tmp_path, [weather_tool()])
    api.add(tool_calls_reply(("1", "get_current_weather", "{'location': 'A'}"),
                             ("2", "get_current_weather", "{'location': 'B'}")))
    api.add(Completion("ok"))
    result = cli("tools", "run", str(spec), "--yes", "weather?")
    assert result.exit_code == 0, result.stderr
    assert ran(tmp_path) == [["--city", "A"], ["--city", "B"]]


@pytest.mark.integration
def test_pty_yes_runs_and_the_prompt_shows_the_exact_argv(api, tmp_path):
    spec = write_spec(tmp_path, [weather_tool(command=[ECHO, "--city", "{location}", "--unit={unit}"])])
    api.add(tool_calls_reply(("97102", "get_current_weather", "{'location': 'New York', 'unit': 'celsius'}")))
    api.add(Completion("Sunny."))
    code, out, seen, prompt = run_on_pty(api, ["tools", "run", str(spec), "weather?"], b"y\r")
    assert prompt is not None, seen
    assert code == 0, seen
    assert out == "Sunny.\n"
    assert ran(tmp_path) == [["--city", "New York", "--unit=celsius"]]
    shown = prompt.decode()
    # every element, in order; the one with a space quoted so the argv is unambiguous
    assert '{} --city "New York" --unit=celsius'.format(ECHO) in shown, shown
    assert "get_current_weather" in shown


@pytest.mark.integration
@pytest.mark.parametrize("answer", [b"n\r", b"\r"], ids=["n", "enter"])
def test_pty_no_runs_nothing(api, tmp_path, answer):
    spec = write_spec(tmp_path, [weather_tool()])
    api.add(tool_calls_reply(("97102", "get_current_weather", SEED_ARGS)))
    api.add(Completion("never"))
    code, out, seen, prompt = run_on_pty(api, ["tools", "run", str(spec), "weather?"], answer)
    assert prompt is not None, seen
    assert code == 7, seen
    assert out == ""
    assert not (tmp_path / "ran.log").exists()
    assert seen.count(b"interncli: error:") == 1, seen
    assert len(api.calls()) == 1


@pytest.mark.integration
def test_pty_prompt_does_not_pass_terminal_escapes_through(api, tmp_path):
    # A model-chosen value must not be able to rewrite what the approval prompt shows.
    spec = write_spec(tmp_path, [weather_tool()])
    api.add(tool_calls_reply(("e1", "get_current_weather", json.dumps({"location": "evil\x1b[2K\x1b[1Gsafe"}))))
    code, out, seen, prompt = run_on_pty(api, ["tools", "run", str(spec), "weather?"], b"n\r")
    assert prompt is not None, seen
    assert code == 7
    assert b"\x1b" not in prompt, "the approval prompt passed raw escape sequences: {!r}".format(prompt)


# ------------------------------------------------------------------------------ max_turns


def test_max_turns_flag(cli, api, tmp_path):
    spec = write_spec(tmp_path, [weather_tool()])
    api.add(tool_calls_reply(("loop", "get_current_weather", "{'location': 'X'}")), times=10)
    result = cli("tools", "run", str(spec), "--yes", "--max-turns", "2", "loop")
    assert result.exit_code == 7
    assert "2 turns" in result.stderr
    assert result.stderr.count("interncli: error:") == 1
    assert len(api.calls()) == 2
    assert result.stdout == ""


def test_max_turns_from_spec(cli, api, tmp_path):
    spec = write_spec(tmp_path, [weather_tool()], max_turns=3)
    api.add(tool_calls_reply(("loop", "get_current_weather", "{'location': 'X'}")), times=10)
    result = cli("tools", "run", str(spec), "--yes", "loop")
    assert result.exit_code == 7
    assert "turns" in result.stderr
    assert len(api.calls()) == 3


@pytest.mark.parametrize("flag, expected", [("1", 1), ("4", 4)])
def test_max_turns_flag_beats_spec(cli, api, tmp_path, flag, expected):
    spec = write_spec(tmp_path, [weather_tool()], max_turns=2)
    api.add(tool_calls_reply(("loop", "get_current_weather", "{'location': 'X'}")), times=10)
    result = cli("tools", "run", str(spec), "--yes", "--max-turns", flag, "loop")
    assert result.exit_code == 7
    assert len(api.calls()) == expected


def test_max_turns_enough_to_finish(cli, api, tmp_path):
    spec = write_spec(tmp_path, [weather_tool()], max_turns=2)
    api.add(tool_calls_reply(("t", "get_current_weather", "{'location': 'X'}")))
    api.add(Completion("answer"))
    result = cli("tools", "run", str(spec), "--yes", "q")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "answer\n"


# ------------------------------------------------------------------------------- --json


def test_json_transcript(cli, api, tmp_path):
    spec = write_spec(tmp_path, [weather_tool(), {"name": "fails", "command": [str(TOOLS / "fail.sh")]}])
    api.add(tool_calls_reply(("97102", "get_current_weather", SEED_ARGS), ("f1", "fails", "{}")))
    api.add(Completion("It is warm."))
    result = cli("tools", "run", str(spec), "--yes", "--json", "weather?")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["final"] == "It is warm."
    assert doc["turns"] == 2
    assert doc["model"] == "intern-latest"
    assert [m["role"] for m in doc["messages"]] == ["user", "assistant", "tool", "tool", "assistant"]
    assert doc["messages"][2]["tool_call_id"] == "97102"
    assert doc["messages"][3]["tool_call_id"] == "f1"
    assert doc["messages"][-1]["content"] == "It is warm."
    first, second = doc["tool_runs"]
    assert first["tool_call_id"] == "97102" and first["name"] == "get_current_weather"
    assert first["argv"] == [ECHO, "--city", "shanghai"]
    assert first["arguments"] == {"location": "shanghai", "unit": "celsius"}
    assert first["exit_code"] == 0
    assert first["bytes"] == len(doc["messages"][2]["content"].encode())
    assert second["argv"] == [str(TOOLS / "fail.sh")] and second["exit_code"] == 3
    for run in (first, second):
        assert isinstance(run["duration"], (int, float)) and 0 <= run["duration"] < 10


# --------------------------------------------------------------------------- the example


def _weather_example(api, args: Sequence[str], cwd: Path) -> None:
    api.add(tool_calls_reply(("97102", "get_current_weather", SEED_ARGS)))
    api.add(Completion("It is 22 °C in Shanghai."))
    old = os.getcwd()
    os.chdir(str(cwd))
    try:
        result = invoke(["-b", api.base_url, "-k", SENTINEL, *args])
    finally:
        os.chdir(old)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "It is 22 °C in Shanghai.\n"
    (answer,) = tool_messages(chat_bodies(api)[1])
    assert answer["tool_call_id"] == "97102"
    assert json.loads(answer["content"]) == {"location": "shanghai", "temperature": "22", "unit": "celsius"}
    assert "exit 0" in result.stderr


def test_example_weather_spec_works(api):
    _weather_example(api, ["tools", "run", "examples/weather.yaml", "--yes", "What's the weather in Shanghai?"],
                     ROOT)
    assert invoke(["tools", "validate", str(ROOT / "examples" / "weather.yaml")]).exit_code == 0


def test_readme_walks_through_the_tools_example(api):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = [line.strip().lstrip("$ ").split("#")[0].strip() for line in readme.splitlines()
                if "interncli tools run examples/weather.yaml" in line]
    assert commands, "README.md has no `interncli tools run examples/weather.yaml ...` example (issue 4)"
    args = shlex.split(commands[0])[1:]
    if "--yes" not in args:
        args.append("--yes")  # no terminal here to approve on
    _weather_example(api, args, ROOT)
