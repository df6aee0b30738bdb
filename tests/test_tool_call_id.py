"""A ``tool`` message carries the ``tool_call_id`` of the call it answers (contract section 5):
taken from the single unanswered call of the conversation, or named with ``--tool-call-id``;
anything else is refused (exit 2) before a request is sent."""

from __future__ import annotations

import json
from typing import Any, Dict, List

import pytest

from interncli.conversation import unanswered_calls


def call(call_id: str, name: str = "get_current_weather") -> Dict[str, Any]:
    """A tool call as an assistant message holds it."""
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": "{\"location\": \"Paris\"}"}}


# An assistant message with two calls; call_a is answered already, call_b is not.
HISTORY: List[Dict[str, Any]] = [
    {"role": "user", "content": "Weather in Paris and Rome?"},
    {"role": "assistant", "content": None, "tool_calls": [call("call_a"), call("call_b")]},
    {"role": "tool", "tool_call_id": "call_a", "content": "Paris: 20C"},
]


@pytest.fixture
def talk(tmp_path):
    path = tmp_path / "talk.json"
    path.write_text(json.dumps(HISTORY))
    return path


def sent_messages(api) -> List[Dict[str, Any]]:
    (request,) = api.calls()
    return request.json["messages"]


# --------------------------------------------------------------------- unanswered_calls


def test_unanswered_calls_are_those_no_tool_message_answers():
    assert unanswered_calls(HISTORY) == ["call_b"]
    assert unanswered_calls(HISTORY + [{"role": "tool", "tool_call_id": "call_b", "content": "x"}]) == []
    assert unanswered_calls([]) == []


def test_unanswered_calls_pass_over_what_is_not_a_call():
    odd = [{"role": "assistant", "tool_calls": ["x", {"id": 3}, {"name": "f"}, call("c1"), call("c2")]},
           {"role": "tool", "content": "no id"}, {"role": "tool", "tool_call_id": 7, "content": "odd id"}]
    assert unanswered_calls(odd) == ["c1", "c2"]
    assert unanswered_calls(odd + [{"role": "assistant", "tool_calls": {"id": "x"}}]) == []
    assert unanswered_calls(odd + [{"role": "assistant", "content": "done", "tool_calls": None}]) == []


def test_only_the_last_assistant_message_has_calls_waiting():
    # LMDeploy 0.6 ids are the tool's place in the list: "0" recurs in every turn (README item 28).
    turn = [{"role": "assistant", "content": "", "tool_calls": [call("0")]},
            {"role": "tool", "tool_call_id": "0", "content": "Paris: 20C"}]
    assert unanswered_calls(turn + turn[:1]) == ["0"]
    # The model moved on without the answer: the old call waits no more.
    assert unanswered_calls(turn[:1] + [{"role": "assistant", "content": "hm"}]) == []
    # One id twice in one message: each answer takes one of them.
    twice = [{"role": "assistant", "content": "", "tool_calls": [call("0"), call("0")]}]
    assert unanswered_calls(twice) == ["0", "0"]
    assert unanswered_calls(twice + turn[1:]) == ["0"]


# ------------------------------------------------------------------------ the request


def test_tool_message_gets_the_single_unanswered_call_and_is_saved(cli, api, talk):
    result = cli("chat", "create", "--conversation", str(talk), "-g", "tool", "Rome: 25C")
    assert result.exit_code == 0, result.stderr
    answer = {"role": "tool", "tool_call_id": "call_b", "content": "Rome: 25C"}
    assert sent_messages(api) == HISTORY + [answer]
    saved = json.loads(talk.read_text())
    assert saved[:4] == HISTORY + [answer] and saved[4]["role"] == "assistant"


def test_tool_call_id_names_the_call(cli, api, talk):
    result = cli("chat", "create", "--conversation", str(talk), "-g", "tool", "Rome: 25C",
                 "--tool-call-id", "call_b")
    assert result.exit_code == 0, result.stderr
    assert sent_messages(api)[-1] == {"role": "tool", "tool_call_id": "call_b", "content": "Rome: 25C"}


def test_two_tool_messages_take_one_id_each_in_order(cli, api, tmp_path):
    path = tmp_path / "talk.json"
    path.write_text(json.dumps(HISTORY[:2]))
    result = cli("chat", "create", "--conversation", str(path), "-g", "tool", "Rome: 25C", "-g", "tool",
                 "Paris: 20C", "--tool-call-id", "call_b", "--tool-call-id", "call_a")
    assert result.exit_code == 0, result.stderr
    assert [(m["tool_call_id"], m["content"]) for m in sent_messages(api)[2:]] == [
        ("call_b", "Rome: 25C"), ("call_a", "Paris: 20C")]


def test_a_tool_message_answers_the_call_its_predecessor_left(cli, api, tmp_path):
    # With two calls open, the first -g tool is named; the second is then the only one left.
    path = tmp_path / "talk.json"
    path.write_text(json.dumps(HISTORY[:2]))
    result = cli("chat", "create", "--conversation", str(path), "-g", "tool", "Paris: 20C",
                 "--tool-call-id", "call_a", "-g", "tool", "Rome: 25C", "--tool-call-id", "call_b")
    assert result.exit_code == 0, result.stderr
    assert [m["tool_call_id"] for m in sent_messages(api)[2:]] == ["call_a", "call_b"]


def test_dry_run_shows_the_tool_call_id(cli, api, talk):
    result = cli("chat", "create", "--dry-run", "--json", "--conversation", str(talk), "-g", "tool", "Rome: 25C")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["body"]["messages"][-1] == {
        "role": "tool", "tool_call_id": "call_b", "content": "Rome: 25C"}
    assert api.calls() == []


def test_the_api_alias_links_the_same_way(cli, api, talk):
    result = cli("api", "chat.completions.create", "--conversation", str(talk), "-g", "tool", "Rome: 25C")
    assert result.exit_code == 0, result.stderr
    assert sent_messages(api)[-1]["tool_call_id"] == "call_b"


# ------------------------------------------------------------------------- the errors


def refused(result, api, talk=None) -> str:
    """The run was a usage error, nothing was sent and the conversation is as it was."""
    assert result.exit_code == 2, result
    assert "Traceback" not in result.stderr and "hint:" in result.stderr
    assert api.requests == []
    if talk is not None:
        assert json.loads(talk.read_text()) == HISTORY
    return result.stderr


def test_several_unanswered_calls_need_a_tool_call_id(cli, api, tmp_path):
    path = tmp_path / "talk.json"
    path.write_text(json.dumps(HISTORY[:2]))
    err = refused(cli("chat", "create", "--conversation", str(path), "-g", "tool", "Rome: 25C"), api)
    assert "call_a, call_b" in err and "--tool-call-id ID" in err


def test_no_unanswered_call_is_refused(cli, api, talk):
    err = refused(cli("chat", "create", "-g", "user", "hi", "-g", "tool", "Rome: 25C"), api)
    assert "no unanswered tool call" in err and "--conversation FILE" in err
    # call_b answered within the same turn: a second answer has nothing left to answer.
    err = refused(cli("chat", "create", "--conversation", str(talk), "-g", "tool", "Rome: 25C",
                      "-g", "tool", "again"), api, talk)
    assert "no unanswered tool call" in err


def test_a_tool_call_id_that_is_not_unanswered_is_refused(cli, api, talk):
    for wrong in ("call_a", "call_zzz"):  # answered already; never made
        err = refused(cli("chat", "create", "--conversation", str(talk), "-g", "tool", "x",
                          "--tool-call-id", wrong), api, talk)
        assert "--tool-call-id {}: not an unanswered tool call".format(wrong) in err and "Unanswered: call_b" in err


def test_the_tool_call_ids_must_match_the_tool_messages_in_number(cli, api, talk):
    err = refused(cli("chat", "create", "--conversation", str(talk), "-g", "user", "hi",
                      "--tool-call-id", "call_b"), api, talk)
    assert "given 1 time(s) for 0 -g tool" in err
    err = refused(cli("chat", "create", "--conversation", str(talk), "-g", "tool", "a", "-g", "tool", "b",
                      "--tool-call-id", "call_b"), api, talk)
    assert "given 1 time(s) for 2 -g tool" in err


def test_dry_run_is_refused_too(cli, api, tmp_path):
    path = tmp_path / "talk.json"
    path.write_text(json.dumps(HISTORY[:2]))
    result = cli("chat", "create", "--dry-run", "--conversation", str(path), "-g", "tool", "x")
    refused(result, api)
    assert result.stdout == ""


# ------------------------------------------------------------------ real servers' ids

TOOLS_SPEC = ("tools:\n  - name: get_weather\n    parameters:\n      type: object\n"
              "      properties: {city: {type: string}}\n    command: [echo, '{city}']\n")


@pytest.mark.parametrize("profile", ["lmdeploy-0.6", "lmdeploy-0.18", "gateway"])
def test_each_turn_answers_the_call_of_the_last_reply(serve, tmp_path, profile):
    # LMDeploy 0.6 gives every call of a tool the same id ("0") in each turn; later servers and
    # the gateway a fresh one. Either way the answer names the call of the reply just before it.
    from tests.servers.fixtures import create_on as create
    from tests.servers.lmdeploy import Engine

    server = serve(profile)
    spec, talk = tmp_path / "spec.yaml", tmp_path / "talk.json"
    spec.write_text(TOOLS_SPEC)
    base = ["--tools", str(spec), "--conversation", str(talk)]
    server.script(Engine(tool_call=("get_weather", {"city": "Paris"})), times=2)
    assert create(server, *base, "-g", "user", "Paris, then Rome?").exit_code == 0
    for answer in ("Paris: 20C", "Rome: 25C"):
        made = json.loads(talk.read_text())[-1]["tool_calls"][0]["id"]
        result = create(server, *base, "-g", "tool", answer)
        assert result.exit_code == 0, result.stderr
        assert server.last.json["messages"][-1] == {"role": "tool", "tool_call_id": made, "content": answer}
    saved = json.loads(talk.read_text())
    assert [m["role"] for m in saved] == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    assert saved[2]["tool_call_id"] == saved[1]["tool_calls"][0]["id"]
    assert saved[4]["tool_call_id"] == saved[3]["tool_calls"][0]["id"]
