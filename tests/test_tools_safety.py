"""What a model must not be able to do through a tools spec, and tools that must not outlive
interncli: found in review, kept here so they stay fixed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.apiserver import Completion
from tests.conftest import SENTINEL, invoke


def spec(tmp_path, command, properties=None, extra=""):
    properties = properties or {"value": {"type": "string"}}
    path = tmp_path / "spec.yaml"
    path.write_text("tools:\n  - name: t\n    parameters: {}\n    command: {}\n{}".format(
        json.dumps({"type": "object", "properties": properties}), json.dumps(command), extra))
    return path


@pytest.mark.parametrize("command, word", [
    (["{value}", "-c", "x"], "the program cannot be a placeholder"),
    (["sh", "-c", "echo {value}"], "would be run as code by sh"),
    (["/usr/bin/python3", "-c", "print('{value}')"], "would be run as code by python"),
    (["echo", "{value!r}"], "conversion or format"),
    (["echo", "{value:>5}"], "conversion or format"),
    (["echo", "a}b"], "unbalanced brace"),
])
def test_validate_refuses_commands_that_would_let_the_model_choose_what_runs(tmp_path, command, word):
    result = invoke(["tools", "validate", str(spec(tmp_path, command))])
    assert result.exit_code == 2 and word in result.stderr


@pytest.mark.parametrize("parameters, word", [
    ({"type": "object", "properties": {"f": {"type": "string", "pattern": "["}}}, "regex"),
    ({"type": "object", "properties": {"f": {"$ref": "#/nope"}}}, "cannot be used"),
    ({"type": "string"}, "type: object"),
])
def test_validate_refuses_schemas_that_cannot_check_arguments(tmp_path, parameters, word):
    path = tmp_path / "spec.yaml"
    path.write_text("tools:\n  - name: t\n    parameters: {}\n    command: [echo]\n".format(json.dumps(parameters)))
    result = invoke(["tools", "validate", str(path)])
    assert result.exit_code == 2 and word in result.stderr


def test_an_option_like_value_filling_a_whole_argument_is_refused(api, tmp_path):
    marker = tmp_path / "sorted"
    path = spec(tmp_path, ["sort", "{value}"])
    api.add(Completion(content=None, tool_calls=[("c1", "t", json.dumps({"value": "-o" + str(marker)}))]))
    api.add(Completion(content="done"))
    result = invoke(["-b", api.base_url, "-k", SENTINEL, "tools", "run", str(path), "--yes", "go"])
    assert result.exit_code == 0 and not marker.exists()
    tool_message = api.requests[1].json["messages"][-1]
    assert tool_message["role"] == "tool" and "option" in json.loads(tool_message["content"])["error"]


def test_a_call_without_an_id_gets_one_that_its_answer_carries(api, tmp_path):
    path = spec(tmp_path, ["echo", "ok"])
    api.add(Completion(content=None, tool_calls=[("", "t", "{}"), ("", "t", "{}")]))
    api.add(Completion(content="done"))
    assert invoke(["-b", api.base_url, "-k", SENTINEL, "tools", "run", str(path), "--yes", "go"]).exit_code == 0
    sent = api.requests[1].json["messages"]
    ids = [c["id"] for c in sent[-3]["tool_calls"]]
    assert ids == ["call_1_0", "call_1_1"]
    assert [m["tool_call_id"] for m in sent[-2:]] == ids


@pytest.mark.integration
def test_a_daemon_holding_stdout_neither_stalls_the_call_nor_outlives_it(api, tmp_path):
    script = tmp_path / "daemon.sh"
    pidfile = tmp_path / "pid"
    script.write_text("#!/bin/sh\n(sleep 60 & echo $! > {}) \necho started\n".format(pidfile))
    script.chmod(0o755)
    path = spec(tmp_path, ["./daemon.sh"], extra="    timeout: 30\n")
    api.add(Completion(content=None, tool_calls=[("c1", "t", "{}")]))
    api.add(Completion(content="done"))
    started = time.monotonic()
    result = invoke(["-b", api.base_url, "-k", SENTINEL, "tools", "run", str(path), "--yes", "go"])
    assert result.exit_code == 0 and time.monotonic() - started < 10
    assert api.requests[1].json["messages"][-1]["content"] == "started\n"
    pid = int(pidfile.read_text())
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the tool's background process outlived the call")


@pytest.mark.integration
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupting_interncli_stops_the_running_tool(api, tmp_path, exe, sig, code):
    script = tmp_path / "slow.sh"
    pidfile = tmp_path / "pid"
    script.write_text("#!/bin/sh\necho $$ > {}\nexec sleep 60\n".format(pidfile))
    script.chmod(0o755)
    path = spec(tmp_path, ["./slow.sh"], extra="    timeout: 60\n")
    api.add(Completion(content=None, tool_calls=[("c1", "t", "{}")]))
    proc = subprocess.Popen([exe, "-b", api.base_url, "-k", SENTINEL, "tools", "run", str(path), "--yes", "go"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(100):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        time.sleep(0.05)
    tool_pid = int(pidfile.read_text())
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == code and "Traceback" not in err
    for _ in range(50):
        try:
            os.kill(tool_pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    pytest.fail("the tool outlived interncli")


def test_json_transcript_even_when_the_run_ends_with_exit_7(api, tmp_path):
    path = spec(tmp_path, ["echo", "ok"])
    api.add(Completion(content=None, tool_calls=[("c1", "t", "{}")]), times=3)
    result = invoke(["-b", api.base_url, "-k", SENTINEL, "tools", "run", str(path), "--yes", "--json",
                     "--max-turns", "2", "go"])
    assert result.exit_code == 7
    doc = json.loads(result.stdout)
    assert doc["final"] is None and len(doc["tool_runs"]) == 2 and doc["turns"] == 2


def test_unprintable_text_from_the_model_is_escaped_on_stderr(api, tmp_path):
    path = spec(tmp_path, ["echo", "{value}"])
    api.add(Completion(content=None, tool_calls=[("c1", "\x1b]0;PWNED\x07", "{}"),
                                                  ("c2", "t", json.dumps({"value": "a\u202eb\x9bc"}))]))
    api.add(Completion(content="done"))
    result = invoke(["-b", api.base_url, "-k", SENTINEL, "tools", "run", str(path), "--yes", "go"])
    assert result.exit_code == 0
    assert "\x1b" not in result.stderr and "\u202e" not in result.stderr and "\x9b" not in result.stderr
    assert "\\u202e" in result.stderr


def test_nested_arguments_too_deep_for_json_are_an_error_for_the_model(api, tmp_path):
    path = spec(tmp_path, ["echo", "ok"])
    api.add(Completion(content=None, tool_calls=[("c1", "t", "[" * 100000 + "]" * 100000)]))
    api.add(Completion(content="done"))
    result = invoke(["-b", api.base_url, "-k", SENTINEL, "tools", "run", str(path), "--yes", "go"])
    assert result.exit_code == 0 and "unexpected" not in result.stderr
    assert sys.getrecursionlimit() > 0
