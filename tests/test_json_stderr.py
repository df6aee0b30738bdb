"""Under ``--json`` every stderr line is one JSON object -- errors, warnings, retry notices,
traces, tool progress, spec problems -- and the switch comes from the parsed options: a message
whose text is "--json" does not flip it, while a usage error found after a real --json still
comes out as JSON."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any, Dict, List

import pytest

from interncli import output
from tests.apiserver import Completion, Stream, err_code, stream_chunks
from tests.conftest import SENTINEL, invoke

SHARED_SERVER = True
RETRY_ONCE = ("--max-retries", "1")


def json_lines(stderr: str) -> List[Dict[str, Any]]:
    """Every stderr line, each of which must be one JSON object."""
    lines = stderr.splitlines()
    assert lines, "nothing on stderr"
    parsed = [json.loads(line) for line in lines]
    assert all(isinstance(obj, dict) for obj in parsed), stderr
    return parsed


# ------------------------------------------------------------------ every kind of line


def test_a_retry_notice_and_the_error_after_it_are_json(cli, api):
    api.add(err_code(500, "busy", status=500, headers={"Retry-After": "0"}), times=2)
    result = cli("chat", "create", "-g", "user", "hi", "--json", globals_=RETRY_ONCE)
    assert result.exit_code == 1 and result.stdout == ""
    notice, error = json_lines(result.stderr)
    assert notice == {"notice": "[500] busy; retrying in 0.0s (1 of 1)", "retry": 1, "max_retries": 1,
                      "delay": 0.0, "code": 500, "message": "busy"}
    assert error["error"]["code"] == 500 and error["error"]["exit_code"] == 1


def test_a_retry_that_succeeds_leaves_one_notice_and_the_reply(cli, api):
    api.add(err_code(500, "busy", status=500, headers={"Retry-After": "0"}))
    result = cli("chat", "create", "-g", "user", "hi", "--json", globals_=RETRY_ONCE)
    assert result.exit_code == 0
    assert json.loads(result.stdout)["choices"][0]["message"]["content"] == "echo: hi"
    (notice,) = json_lines(result.stderr)
    assert notice["retry"] == 1


def test_the_token_quoted_in_a_retry_notice_is_removed(cli, api):
    api.add(err_code(SENTINEL, "bad " + SENTINEL, status=503, headers={"Retry-After": "0"}), times=2)
    result = cli("chat", "create", "-g", "user", "hi", "--json", globals_=RETRY_ONCE)
    notice, _ = json_lines(result.stderr)
    assert notice["code"] == "***" and notice["message"] == "bad ***"


@pytest.mark.parametrize("stream", [False, True])
def test_length_and_moderation_warnings_are_json(cli, api, stream):
    flagged = {"sensitive": True, "category": "politics"}
    if stream:
        chunks = stream_chunks(["cut"], finish_reason="length")
        chunks[0]["moderation"] = flagged
        api.add(Stream(chunks))
    else:
        api.add(Completion("cut", finish_reason="length", moderation=flagged))
    result = cli("chat", "create", "-g", "user", "hi", "--json", *(["--stream"] if stream else []))
    assert result.exit_code == 0
    assert sorted(json_lines(result.stderr), key=str) == [
        {"warning": "the reply was cut at max_tokens (finish_reason: length)"},
        {"warning": "the service flagged this reply as sensitive (category: politics)"},
    ]


def test_verbose_traces_are_json(cli, api):
    result = cli("models", "list", "--json", globals_=("-v",))
    assert result.exit_code == 0
    traces = [line["trace"] for line in json_lines(result.stderr)]
    assert traces[0].startswith("> GET ") and "< HTTP 200 OK" in traces
    assert any(t == "> Authorization: Bearer ***" for t in traces)


def test_a_token_file_others_can_read_is_a_json_warning(config_dir):
    path = config_dir / "credentials.yaml"
    path.write_text("profiles:\n  default:\n    token: file-token-0001\n", encoding="utf-8")
    path.chmod(0o644)
    result = invoke(["auth", "status", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["token_source"] == "file"
    (warning,) = json_lines(result.stderr)
    assert warning == {"warning": "{} can be read by other users; run: chmod 600 {}".format(path, path)}


def test_tool_progress_is_json(cli, api, tmp_path):
    tool = os.path.join(os.path.dirname(__file__), "tools", "echo_argv.py")
    spec = tmp_path / "spec.yaml"
    spec.write_text(json.dumps({"tools": [{"name": "echo", "description": "echo",
                                           "parameters": {"type": "object", "properties": {}},
                                           "command": [tool]}]}), encoding="utf-8")
    api.add(Completion(content=None, tool_calls=[("c1", "echo", "{}")]))
    api.add(Completion("done"))
    result = cli("tools", "run", str(spec), "--yes", "--json", "go")
    assert result.exit_code == 0 and json.loads(result.stdout)["final"] == "done"
    called, returned = json_lines(result.stderr)
    assert called == {"info": "→ echo {}"} and returned["info"].startswith("← ")


def test_spec_problems_are_json(tmp_path):
    spec = tmp_path / "spec.yaml"
    spec.write_text("tools:\n  - name: 1\n", encoding="utf-8")
    result = invoke(["tools", "list", str(spec), "--json"])
    assert result.exit_code == 2
    problems = json_lines(result.stderr)
    assert problems and all(p["path"] == str(spec) and isinstance(p["line"], int) and p["problem"]
                            for p in problems)
    text = invoke(["tools", "list", str(spec)])
    assert text.stderr.startswith("{}:".format(spec))  # without --json: SPEC:LINE: message


def test_a_debug_traceback_is_one_json_line(api, monkeypatch):
    def broken(obj, out, pretty=True):
        raise RuntimeError("bug while printing")

    monkeypatch.setattr(output, "write_json", broken)
    result = invoke(["-b", api.base_url, "-k", SENTINEL, "--debug", "models", "list", "--json"])
    assert result.exit_code == 1
    traceback, error = json_lines(result.stderr)
    assert "Traceback (most recent call last)" in traceback["traceback"]
    assert "RuntimeError: bug while printing" in traceback["traceback"]
    assert error["error"]["message"] == "unexpected RuntimeError: bug while printing"


def test_an_interrupt_is_a_json_error(api, monkeypatch):
    from interncli.client import ChatClient

    def interrupted(self, body):
        raise KeyboardInterrupt()

    monkeypatch.setattr(ChatClient, "create", interrupted)
    result = invoke(["-b", api.base_url, "-k", SENTINEL, "chat", "create", "-g", "user", "hi", "--json"])
    assert result.exit_code == 130
    (error,) = json_lines(result.stderr)
    assert error["error"]["message"] == "interrupted" and error["error"]["exit_code"] == 130
    plain = invoke(["-b", api.base_url, "-k", SENTINEL, "chat", "create", "-g", "user", "hi"])
    assert plain.exit_code == 130 and plain.stderr == "\ninterncli: interrupted\n"


# ------------------------------------------------------------------ the switch: parsed, not scanned


def test_a_message_whose_text_is_json_does_not_flip_the_switch(cli, api):
    result = cli("chat", "create", "-g", "user", "--json")
    assert result.exit_code == 0 and result.stdout == "echo: --json\n"  # text, not a JSON document
    api.add(err_code(-20013, "no such model", status=400))
    result = cli("chat", "create", "-g", "user", "--json")
    assert result.exit_code == 5
    assert result.stderr.startswith("interncli: error: [-20013] no such model\nhint: ")


def test_a_usage_error_after_json_is_json():
    for args in (["chat", "create", "--json", "--no-such-flag"],  # the parser stops at the unknown option
                 ["chat", "create", "--no-such-flag", "--json"],  # --json after it still counts
                 ["chat", "create", "--json", "-g", "user"],  # a missing value
                 ["chat", "create", "--json", "-t", "9", "-g", "user", "hi"],  # a value out of range
                 ["--no-such-global", "chat", "create", "--json"],
                 ["api", "chat.completions.create", "--json", "-n", "0"]):
        result = invoke(args)
        assert result.exit_code == 2, args
        (error,) = json_lines(result.stderr)
        assert error["error"]["exit_code"] == 2 and error["error"]["hint"].startswith("Try '"), args


def test_json_that_is_no_option_of_the_command_leaves_errors_as_text(tmp_path):
    for args in (["chat", "create", "-g", "user", "hi", "--", "--json"],  # after --: an argument
                 ["tools", "validate", "--json", str(tmp_path / "spec.yaml")],  # validate has no --json
                 ["--json", "models", "list"]):  # not a global option
        result = invoke(args)
        assert result.exit_code == 2, args
        assert result.stderr.startswith("interncli: error: "), (args, result.stderr)


def test_json_before_the_messages_is_the_option(cli, api):
    api.add(err_code(-20013, "no such model", status=400))
    result = cli("chat", "create", "--json", "-g", "user", "--json")
    assert result.exit_code == 5
    (error,) = json_lines(result.stderr)
    assert error["error"]["code"] == -20013
    assert api.calls()[-1].json["messages"] == [{"role": "user", "content": "--json"}]


# ------------------------------------------------------------------ the README's pipe, after a retry


@pytest.mark.integration
def test_stderr_through_jq_after_a_retry(exe, api):
    api.add(err_code(500, "busy", status=500, headers={"Retry-After": "0"}))
    api.add(err_code(-20013, "no such model", status=400))
    script = ('"$INTERNCLI" -b "$BASE" --max-retries 1 chat create --json -g user hi 2>&1 >/dev/null '
              '| jq -c "[.notice != null, .error.exit_code]"')
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, INTERNCLI=exe, BASE=api.base_url, INTERN_API_KEY=SENTINEL))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["[true,null]", "[false,5]"]
