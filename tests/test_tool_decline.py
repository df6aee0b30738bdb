"""Declining a tool call at the approval prompt (issue 10): the error says the call was declined,
not "run it on a terminal" (that hint is for when nobody could be asked); exit 7 as before. Run
in process on injected terminal streams (tests/fakeio.py), so no pty is needed."""

from __future__ import annotations

import json

import pytest

from tests.apiserver import Completion
from tests.conftest import SENTINEL
from tests.fakeio import fake_io, run_with, terminal_io
from tests.toolhelpers import ECHO, write_spec

SHARED_SERVER = True


@pytest.fixture
def spec(tmp_path, monkeypatch):
    monkeypatch.delenv("CI", raising=False)  # the machine running the tests may set it
    return write_spec(tmp_path, [{"name": "echo", "description": "echo",
                                  "parameters": {"type": "object", "properties": {}}, "command": [ECHO, "--flag"]}])


def run_tool(api, spec, streams, *extra):
    api.add(Completion(content=None, tool_calls=[("c1", "echo", "{}")]))
    api.add(Completion("done"))
    return run_with(streams, ["-b", api.base_url, "-k", SENTINEL, "tools", "run", *extra, str(spec), "go"])


@pytest.mark.parametrize("answer", ["n\n", "no\n", "\n"], ids=["n", "no", "empty"])
def test_declining_at_the_prompt_says_declined_not_run_it_on_a_terminal(api, spec, answer):
    result = run_tool(api, spec, terminal_io(answer, environ={"NO_COLOR": "1"}))
    assert result.exit_code == 7
    after_prompt = result.stderr.split("[y/N]: ", 1)[1]
    lines = after_prompt.splitlines()
    assert lines[0] == "interncli: error: the call of echo was not approved: you declined it at the prompt, " \
                       "so nothing ran"
    assert lines[1].startswith("hint: ") and "--yes" in lines[1]
    assert "terminal" not in after_prompt.lower()
    assert not (spec.parent / "ran.log").exists()
    assert len(api.requests) == 1  # the declined call's answer was never sent


def test_declining_under_json_keeps_the_transcript_and_says_declined(api, spec):
    result = run_tool(api, spec, terminal_io("n\n"), "--json")
    assert result.exit_code == 7
    transcript = json.loads(result.stdout)
    assert transcript["tool_runs"] == [] and transcript["final"] is None
    error = json.loads(result.stderr.split("[y/N]: ", 1)[1])
    assert "declined" in json.dumps(error) and "terminal" not in json.dumps(error).lower()


def test_with_nobody_to_ask_the_hint_still_says_run_it_on_a_terminal(api, spec):
    result = run_tool(api, spec, fake_io("y\n"))
    assert result.exit_code == 7 and "[y/N]" not in result.stderr
    assert "declined" not in result.stderr and "on a terminal" in result.stderr
    assert not (spec.parent / "ran.log").exists()
