"""Issue 8 for tools: what a hostile model (or server) must not get through `tools run`, and
what the person approving a call must see. Against the real test server on 127.0.0.1; the
approval prompt on a real pseudo-terminal with the installed command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict

import pytest

from interncli import toolrun
from tests.apiserver import Completion, err_openai
from tests.conftest import SENTINEL, invoke
from tests.processes import wait_gone
from tests.ptyrun import run_on_pty
from tests.recorder import Recorder
from tests.toolhelpers import (
    ECHO,
    TOOLS,
    ran,
    recursion_room,
    run_calls,
    tool_calls_reply,
    weather_tool,
    write_spec,
)


def error_of(message: Dict[str, Any]) -> str:
    return json.loads(message["content"])["error"]


# ------------------------------------------------------------ arguments: declared, complete


def test_undeclared_properties_are_a_schema_error_for_the_model_and_are_not_passed(cli, api, tmp_path):
    # The schema has no additionalProperties: false, and jsonschema alone would accept these.
    result, (answer,) = run_calls(cli, api, tmp_path, [weather_tool()], [
        ("c1", "get_current_weather", json.dumps({"location": "Oslo", "LD_PRELOAD": "/tmp/x.so"}))], "--yes")
    assert result.exit_code == 0, result.stderr
    error = error_of(answer)
    assert "'LD_PRELOAD' is not declared" in error and "location" in error
    assert ran(tmp_path) == []


def test_pattern_properties_count_as_declared(cli, api, tmp_path):
    tool = {"name": "t", "parameters": {"type": "object", "patternProperties": {"^tag_": {"type": "string"}}},
            "command": [ECHO]}
    result, (answer,) = run_calls(cli, api, tmp_path, [tool], [("c1", "t", json.dumps({"tag_a": "1"}))], "--yes")
    assert result.exit_code == 0, result.stderr
    assert json.loads(json.loads(answer["content"])["stdin"]) == {"tag_a": "1"}


@pytest.mark.parametrize("command, arguments", [
    ([ECHO, "{a}{b}"], {"a": "", "b": "-rf"}),       # the second value starts the element
    ([ECHO, "{a}-x"], {"a": "-o", "b": ""}),          # a value followed by text
    ([ECHO, "{a}{b}"], {"a": "-", "b": "x"}),
], ids=["{a}{b}", "{a}-x", "dash-then-text"])
def test_option_check_covers_composite_elements(cli, api, tmp_path, command, arguments):
    tool = {"name": "t", "parameters": {"type": "object", "properties": {"a": {"type": "string"},
                                                                          "b": {"type": "string"}}},
            "command": command}
    result, (answer,) = run_calls(cli, api, tmp_path, [tool], [("c1", "t", json.dumps(arguments))], "--yes")
    assert result.exit_code == 0, result.stderr
    assert "option" in error_of(answer)
    assert ran(tmp_path) == []


def test_option_check_skips_elements_after_a_literal_double_dash(cli, api, tmp_path):
    # After "--" a program takes every element as an operand: a leading "-" is plain data there.
    tool = {"name": "t", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}},
            "command": [ECHO, "--", "{a}"]}
    result, (answer,) = run_calls(cli, api, tmp_path, [tool], [("c1", "t", json.dumps({"a": "-rf"}))], "--yes")
    assert result.exit_code == 0, result.stderr
    assert json.loads(answer["content"])["argv"] == ["--", "-rf"]


# --------------------------------------------------------------------------------- limits


def test_at_most_16_calls_in_one_reply_run(cli, api, tmp_path):
    calls = [("c{}".format(n), "get_current_weather", json.dumps({"location": "L{}".format(n)}))
             for n in range(toolrun.CALLS_LIMIT)]
    result, answers = run_calls(cli, api, tmp_path, [weather_tool()], calls, "--yes")
    assert result.exit_code == 0, result.stderr
    assert len(answers) == 16 and len(ran(tmp_path)) == 16


def test_a_reply_with_more_than_16_calls_runs_none_of_them(cli, api, tmp_path):
    calls = [("c{}".format(n), "get_current_weather", json.dumps({"location": "L{}".format(n)}))
             for n in range(toolrun.CALLS_LIMIT + 1)]
    result, _ = run_calls(cli, api, tmp_path, [weather_tool()], calls, "--yes")
    assert result.exit_code == 7
    assert ran(tmp_path) == []
    assert "17 tool calls" in result.stderr and "at most 16" in result.stderr and "none" in result.stderr
    assert len(api.calls()) == 1


def test_arguments_over_64_kib_are_an_error_for_the_model_and_not_parsed(cli, api, tmp_path):
    big = json.dumps({"location": "x" * (64 * 1024)})
    result, (answer,) = run_calls(cli, api, tmp_path, [weather_tool()], [("c1", "get_current_weather", big)],
                                  "--yes")
    assert result.exit_code == 0, result.stderr
    error = error_of(answer)
    assert str(len(big)) in error and "65536" in error
    assert ran(tmp_path) == []


def test_arguments_just_under_64_kib_run(cli, api, tmp_path):
    value = "x" * (64 * 1024 - len(json.dumps({"location": ""})))
    result, _ = run_calls(cli, api, tmp_path, [weather_tool()],
                          [("c1", "get_current_weather", json.dumps({"location": value}))], "--yes")
    assert result.exit_code == 0, result.stderr
    assert ran(tmp_path) == [["--city", value]]


# ---------------------------------------------------------------- schemas never fetch


def _ref_spec(tmp_path: Path, parameters: Dict[str, Any]) -> Path:
    return write_spec(tmp_path, [{"name": "t", "parameters": parameters, "command": [ECHO]}])


@pytest.mark.parametrize("make", [
    lambda url, f: {"type": "object", "properties": {"a": {"$ref": url}}},
    lambda url, f: {"type": "object", "properties": {"a": {"$dynamicRef": url}}},
    lambda url, f: {"type": "object", "properties": {"a": {"$ref": f.as_uri()}}},
    lambda url, f: {"type": "object", "properties": {"a": {"$ref": f.name}}},
    lambda url, f: {"$id": url, "type": "object", "properties": {"a": {"$ref": "other.json"}}},
    lambda url, f: {"$schema": url, "type": "object"},
], ids=["remote-ref", "dynamic-ref", "file-uri", "relative-file", "id-relative", "schema"])
def test_validate_reports_references_that_would_be_fetched_and_fetches_none(tmp_path, make):
    local = tmp_path / "local.json"
    local.write_text(json.dumps({"type": "string"}))
    with Recorder() as server:
        spec = _ref_spec(tmp_path, make(server.url("/schema.json"), local))
        result = invoke(["tools", "validate", str(spec)])
        assert server.paths == []
    assert result.exit_code == 2
    assert "nothing is fetched" in result.stderr or "not inside the schema" in result.stderr
    line = int(result.stderr.split(":")[1])
    text = spec.read_text().splitlines()[line - 1]
    assert "$ref" in text or "$dynamicRef" in text or "$schema" in text, (line, text)


@pytest.mark.parametrize("key", ["$ref", "$dynamicRef"])
def test_checking_a_call_never_fetches_a_reference(tmp_path, key):
    # jsonschema's default registry fetches an unknown URL with urllib: this one must not.
    with Recorder() as server:
        tool = {"name": "t", "parameters": {"type": "object", "properties": {"a": {key: server.url("/s.json")}}}}
        call = toolrun.ToolCall({"function": {"name": "t", "arguments": '{"a": 1}'}}, "c1")
        why = toolrun.check_arguments(call, tool)
        assert server.paths == []
    assert why is not None and "cannot check" in why


def test_checking_a_call_never_opens_a_file(tmp_path):
    local = tmp_path / "s.json"
    local.write_text(json.dumps({"type": "integer"}))  # if it were opened, {"a": 1} would pass
    tool = {"name": "t", "parameters": {"type": "object", "properties": {"a": {"$ref": local.as_uri()}}}}
    call = toolrun.ToolCall({"function": {"name": "t", "arguments": '{"a": 1}'}}, "c1")
    assert "cannot check" in (toolrun.check_arguments(call, tool) or "")


@pytest.mark.parametrize("parameters, line_text", [
    ({"$ref": "#", "type": "object"}, '"$ref"'),
    ({"type": "object", "properties": {"a": {"$ref": "#/$defs/b"}},
      "$defs": {"b": {"allOf": [{"$ref": "#/$defs/c"}]}, "c": {"not": {"$ref": "#/$defs/b"}}}}, '"$ref"'),
], ids=["root", "cycle"])
def test_validate_reports_a_reference_that_loops_back_to_itself(tmp_path, parameters, line_text):
    # Before, validate accepted these and every call then failed with "cannot check".
    spec = _ref_spec(tmp_path, parameters)
    result = invoke(["tools", "validate", str(spec)])
    assert result.exit_code == 2
    assert "leads back to itself" in result.stderr
    line = int(result.stderr.split(":")[1])
    assert line_text in spec.read_text().splitlines()[line - 1]


def test_a_recursive_schema_that_descends_is_accepted_and_checks_calls(cli, api, tmp_path):
    tree = {"type": "object", "properties": {"name": {"type": "string"},
                                             "children": {"type": "array", "items": {"$ref": "#"}}}}
    spec = _ref_spec(tmp_path, tree)
    assert invoke(["tools", "validate", str(spec)]).exit_code == 0
    good = {"name": "a", "children": [{"name": "b", "children": []}]}
    bad = {"name": "a", "children": [{"name": 5}]}
    result, answers = run_calls(cli, api, tmp_path, [{"name": "t", "parameters": tree, "command": [ECHO]}],
                                [("g", "t", json.dumps(good)), ("b", "t", json.dumps(bad))], "--yes")
    assert result.exit_code == 0, result.stderr
    assert json.loads(json.loads(answers[0]["content"])["stdin"]) == good
    assert "do not fit" in error_of(answers[1])


# ------------------------------------------------------------------- daemons and orphans


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the subreaper is Linux-only (documented)")
@pytest.mark.parametrize("shape", [[], ["tree"]], ids=["daemon", "daemon-with-a-child"])
def test_a_tool_that_daemonises_does_not_outlive_the_call_in_process(cli, api, tmp_path, shape):
    # setsid + a second fork leaves the tool's process group and session: killing the group
    # missed it, and it lived on under init. As the subreaper, interncli gets it and stops it,
    # and the daemon's own children with it (found through /proc).
    tool = {"name": "d", "command": [str(TOOLS / "daemonize.py"), *shape]}
    result, (answer,) = run_calls(cli, api, tmp_path, [tool], [("c1", "d", "{}")], "--yes")
    assert result.exit_code == 0, result.stderr
    assert answer["content"] == "daemon started\n"
    pids = [int(line) for line in (tmp_path / "daemon.pid").read_text().split()]
    assert len(pids) == 1 + len(shape)
    for pid in pids:
        if not wait_gone(pid, 5):
            for other in pids:
                os.kill(other, 9)
            pytest.fail("a process the tool left (pid {}) outlived the call".format(pid))


@pytest.mark.integration
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the subreaper is Linux-only (documented)")
def test_a_tool_that_daemonises_does_not_outlive_tools_run(api, tmp_path, exe):
    spec = write_spec(tmp_path, [{"name": "d", "command": [str(TOOLS / "daemonize.py")]}])
    api.add(tool_calls_reply(("c1", "d", "{}")))
    api.add(Completion("done"))
    proc = subprocess.run([exe, "-b", api.base_url, "-k", SENTINEL, "tools", "run", str(spec), "--yes", "go"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    pid = int((tmp_path / "daemon.pid").read_text())
    if not wait_gone(pid, 5):
        os.kill(pid, 9)
        pytest.fail("the daemon (pid {}) outlived tools run".format(pid))


# ------------------------------------------------------------------------- --json, list


def test_json_transcript_survives_an_api_error_after_a_tool_ran(cli, api, tmp_path):
    spec = write_spec(tmp_path, [weather_tool()])
    api.add(tool_calls_reply(("c1", "get_current_weather", "{'location': 'Oslo'}")))
    api.add(err_openai("the request was rejected", status=400))
    result = cli("tools", "run", str(spec), "--yes", "--json", "go")
    assert result.exit_code == 5, result.stderr  # the API error's own code
    doc = json.loads(result.stdout)
    assert doc["final"] is None
    (run,) = doc["tool_runs"]
    assert run["argv"] == [ECHO, "--city", "Oslo"] and run["exit_code"] == 0
    assert [m["role"] for m in doc["messages"]] == ["user", "assistant", "tool"]
    assert "rejected" in result.stderr
    assert ran(tmp_path) == [["--city", "Oslo"]]


# ------------------------------------------------------------------------------ approval


@pytest.mark.integration
def test_ci_set_means_no_prompt_and_nothing_runs(api, tmp_path):
    # Even with a terminal: CI jobs may have one, and nobody is there to answer.
    spec = write_spec(tmp_path, [weather_tool()])
    api.add(tool_calls_reply(("c1", "get_current_weather", "{'location': 'Oslo'}")))
    code, out, seen, prompt = run_on_pty(api, ["tools", "run", str(spec), "go"], b"y\r", env={"CI": "true"})
    assert code == 7, seen
    assert prompt is None and b"[y/N]" not in seen
    assert ran(tmp_path) == []
    assert b"not approved: CI is set" in seen and b"--yes" in seen
    assert seen.count(b"interncli: error:") == 1


def test_ci_set_without_a_terminal_says_why_nothing_ran(cli, api, tmp_path):
    result, _ = run_calls(cli, api, tmp_path, [weather_tool()],
                          [("c1", "get_current_weather", "{'location': 'Oslo'}")], env={"CI": "true"})
    assert result.exit_code == 7
    assert "CI is set" in result.stderr and ran(tmp_path) == []


def test_ci_set_with_yes_runs(cli, api, tmp_path):
    result, (answer,) = run_calls(cli, api, tmp_path, [weather_tool()],
                                  [("c1", "get_current_weather", "{'location': 'Oslo'}")], "--yes",
                                  env={"CI": "1"})
    assert result.exit_code == 0, result.stderr
    assert ran(tmp_path) == [["--city", "Oslo"]]


@pytest.mark.integration
def test_pty_prompt_shows_argv_and_stdin_with_its_size_and_y_runs(api, tmp_path):
    spec = write_spec(tmp_path, [weather_tool(command=[ECHO, "--city", "{location}"])])
    arguments = {"location": "New York", "unit": "celsius"}
    api.add(tool_calls_reply(("c1", "get_current_weather", json.dumps(arguments))))
    api.add(Completion("Sunny."))
    code, out, seen, prompt = run_on_pty(api, ["tools", "run", str(spec), "weather?"], b"y\r")
    assert prompt is not None, seen
    assert code == 0, seen
    assert out == "Sunny.\n"
    shown = prompt.decode()
    stdin = json.dumps(arguments, ensure_ascii=False)
    assert 'argv: {} --city "New York"'.format(ECHO) in shown, shown
    assert "stdin ({} bytes): {}".format(len(stdin.encode()), stdin) in shown, shown
    assert ran(tmp_path) == [["--city", "New York"]]


@pytest.mark.integration
def test_pty_prompt_escapes_what_the_model_sent_and_n_runs_nothing(api, tmp_path):
    value = "Paris\u202e\x1b]52;c;aGk=\x07\x9b2J\u200bend"
    spec = write_spec(tmp_path, [weather_tool(command=[ECHO, "--city", "{location}"])])
    api.add(tool_calls_reply(("c1", "get_current_weather", json.dumps({"location": value}))))
    code, out, seen, prompt = run_on_pty(api, ["tools", "run", str(spec), "weather?"], b"n\r")
    assert prompt is not None, seen
    assert code == 7 and out == ""
    assert ran(tmp_path) == []
    text = prompt.decode("utf-8")
    for raw in ("\u202e", "\x1b", "\x07", "\x9b", "\u200b"):
        assert raw not in text, "{!r} reached the terminal unescaped".format(raw)
    assert "\\u202e" in text and "\\u200b" in text
    # both places the value goes: the argv and the stdin
    assert text.count("Paris") == 2


@pytest.mark.integration
def test_pty_a_call_too_long_to_show_cannot_be_approved_on_the_prompt(api, tmp_path):
    spec = write_spec(tmp_path, [weather_tool(command=[ECHO, "--city", "{location}"])])
    api.add(tool_calls_reply(("c1", "get_current_weather", json.dumps({"location": "x" * 5000}))))
    code, out, seen, prompt = run_on_pty(api, ["tools", "run", str(spec), "weather?"], b"y\r")
    assert code == 7, seen
    assert prompt is None  # never asked
    assert b"too long to show" in seen and b"--yes" in seen
    assert ran(tmp_path) == []


def test_a_call_too_long_to_show_still_runs_with_yes(cli, api, tmp_path):
    result, (answer,) = run_calls(cli, api, tmp_path, [weather_tool()],
                                  [("c1", "get_current_weather", json.dumps({"location": "x" * 5000}))], "--yes")
    assert result.exit_code == 0, result.stderr
    assert json.loads(answer["content"])["argv"] == ["--city", "x" * 5000]


def test_approval_text_shows_json_that_decodes_to_exactly_what_the_tool_gets():
    value = "a\u202eb\x9bc\x7fd\u200be\U000e0001f\\x9b\"g\nh"
    call = toolrun.ToolCall({"function": {"name": "t", "arguments": json.dumps({"v": value})}}, "c")
    text = toolrun.approval_text(call, ["./t", value])
    assert text is not None
    assert all(c.isprintable() or c == "\n" for c in text), text
    argv_line, stdin_line = [line for line in text.splitlines() if line.startswith(("  argv:", "  stdin"))]
    assert json.loads(argv_line.split(" ", 4)[-1]) == value
    assert json.loads(stdin_line.split(": ", 1)[1]) == {"v": value}


def test_approval_text_is_none_past_the_show_limit_and_whole_below_it():
    def call(value: str) -> toolrun.ToolCall:
        return toolrun.ToolCall({"function": {"name": "t", "arguments": json.dumps({"v": value})}}, "c")

    short = toolrun.approval_text(call("abc"), ["./t", "abc"])
    assert short is not None and "argv: ./t abc" in short and 'stdin (12 bytes): {"v": "abc"}' in short
    assert toolrun.approval_text(call("y" * toolrun.SHOW_LIMIT), ["./t"]) is None


# ----------------------------------------------------------------------------- escaping


FINAL = "answer \x1b]52;c;aGk=\x07\x1b[2J done\n"


def test_final_answer_to_a_pipe_passes_as_received(cli, api, tmp_path):
    spec = write_spec(tmp_path, [weather_tool()])
    api.add(Completion(FINAL))
    result = cli("tools", "run", str(spec), "--yes", "go")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == FINAL


@pytest.mark.integration
def test_final_answer_to_a_terminal_is_escaped(api, tmp_path):
    spec = write_spec(tmp_path, [weather_tool()])
    api.add(Completion(FINAL))
    code, _, seen, _ = run_on_pty(api, ["tools", "run", str(spec), "--yes", "go"], None, stdout_on_pty=True)
    assert code == 0, seen
    assert b"\x1b" not in seen and b"\x07" not in seen
    assert b"answer \\x1b]52;c;aGk=\\x07\\x1b[2J done" in seen


def test_tool_notices_escape_the_models_text(cli, api, tmp_path):
    tool = weather_tool()
    result, answers = run_calls(cli, api, tmp_path, [tool], [
        ("c1", "get_\x1b[31mweather\x9b", "{}"),
        ("c2", "get_current_weather", json.dumps({"location": "a\u202eb\x1b[2Jc"})),
        ("c3", "get_current_weather", json.dumps({"location": "a\x1bb", "x\x07": 1}))], "--yes")
    assert result.exit_code == 0, result.stderr
    for raw in ("\x1b", "\x9b", "\u202e", "\x07"):
        assert raw not in result.stderr
    assert "get_\\x1b[31mweather\\x9b (no such tool)" in result.stderr
    assert "\\u202e" in result.stderr


# ------------------------------------------------------------------ specs that are too big


def test_a_spec_nested_too_deeply_is_a_problem_with_its_line_not_a_crash(tmp_path):
    # jsonschema's meta-schema check recursed past Python's limit at ~100 levels.
    deep = '{"type": "object", "properties": {"a": ' * 120 + '{"type": "string"}' + "}}" * 120
    spec = tmp_path / "spec.yaml"
    spec.write_text("tools:\n  - name: t\n    parameters: " + deep + "\n    command: [echo]\n")
    result = invoke(["tools", "validate", str(spec)])
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith("{}:3: nested more than 64 levels deep".format(spec)), result.stderr
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr


def test_a_spec_too_deep_for_the_yaml_parser_is_a_problem_not_a_crash(tmp_path):
    spec = tmp_path / "spec.yaml"
    with recursion_room(300) as depth:  # a call a level at least: past the limit wherever the stack stands
        spec.write_text("tools: " + "[" * depth + "]" * depth + "\n")
        result = invoke(["tools", "validate", str(spec)])
    assert result.exit_code == 2
    assert "nested too deeply" in result.stderr and "unexpected" not in result.stderr


def test_yaml_aliases_cannot_expand_a_spec_without_bound(tmp_path):
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += ["a{0}: &a{0} [{1}]".format(n, ", ".join(["*a{}".format(n - 1)] * 10)) for n in range(1, 9)]
    spec = tmp_path / "spec.yaml"
    spec.write_text("\n".join(lines) + "\n"
                    "tools:\n  - name: t\n    description: d\n    command: [echo]\n    parameters: "
                    "{type: object, default: *a8}\n")
    started = time.monotonic()
    result = invoke(["tools", "validate", str(spec)])
    assert result.exit_code == 2
    assert "more than 100000 values" in result.stderr
    assert time.monotonic() - started < 60, "it did not stop early"
