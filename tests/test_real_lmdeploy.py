"""interncli (the installed command) against LMDeploy's REAL api_server, with a fake engine.

`tests/servers/real_lmdeploy/run_server.py` runs the `lmdeploy` package from PyPI — its own `serve()`,
FastAPI app, API-key middleware, validation handler, parsers and serialisation — for two releases,
the newest (0.18.0) and 0.12.3, each in a venv of its own (`.venv-lmdeploy`, `.venv-lmdeploy-0.12`,
made by `tests/servers/real_lmdeploy/install.sh`, which `.ci/run` calls), so their pins (fastapi,
pydantic, openai) never meet interncli's. Only torch & co. (`stubs.py`) and the inference engine
(`fake_engine.py` for 0.16+, `fake_engine_012.py` for 0.12; what the model says is scripted by the
last user message, `script.py`) are not LMDeploy's. The last part checks the profile server
(`tests/servers/lmdeploy.py`) against the real servers.

Without those venvs every test here is skipped, saying why; `.ci/run` sets
INTERNCLI_REQUIRE_LMDEPLOY=1, which turns the skip into a failure, so CI cannot skip them silently.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import pytest
import requests

from tests.conftest import SENTINEL
from tests.servers.lmdeploy import Engine, ProfileServer
from tests.servers.real import (
    LAUNCHER,
    MODEL,
    NEWEST,
    OLD,
    ROOT,
    RealServer,
    interncli,
    lmdeploy_python,
    started,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def python() -> str:
    return lmdeploy_python(NEWEST)


@pytest.fixture(scope="module")
def server(python: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    """`lmdeploy serve api_server MODEL --api-keys KEY`: no reasoning or tool parser."""
    yield from started(python, tmp_path_factory)


@pytest.fixture(scope="module")
def reasoning_server(python: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    """The same with `--reasoning-parser default` (what a thinking model is served with)."""
    yield from started(python, tmp_path_factory, "--reasoning-parser", "default")


@pytest.fixture(scope="module")
def tool_server(python: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    """The same with `--tool-call-parser internlm` (InternLM's tool-call markup)."""
    yield from started(python, tmp_path_factory, "--tool-call-parser", "internlm")


@pytest.fixture(scope="module")
def old_python() -> str:
    return lmdeploy_python(OLD)


@pytest.fixture(scope="module")
def old_server(old_python: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    """LMDeploy 0.12.3, no parsers."""
    yield from started(old_python, tmp_path_factory)


@pytest.fixture(scope="module")
def old_reasoning_server(old_python: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    """LMDeploy 0.12.3 with `--reasoning-parser qwen-qwq` (0.12 has no "default" parser)."""
    yield from started(old_python, tmp_path_factory, "--reasoning-parser", "qwen-qwq")


@pytest.fixture(scope="module")
def old_tool_server(old_python: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealServer]:
    """LMDeploy 0.12.3 with `--tool-call-parser internlm`."""
    yield from started(old_python, tmp_path_factory, "--tool-call-parser", "internlm")


_SERVERS = {NEWEST: ("server", "reasoning_server", "tool_server"),
            OLD: ("old_server", "old_reasoning_server", "old_tool_server")}


@pytest.fixture(params=[NEWEST, OLD])
def any_server(request: pytest.FixtureRequest) -> RealServer:
    """The plain server of each release."""
    return request.getfixturevalue(_SERVERS[request.param][0])


@pytest.fixture(params=[NEWEST, OLD])
def any_reasoning_server(request: pytest.FixtureRequest) -> RealServer:
    """The reasoning-parser server of each release."""
    return request.getfixturevalue(_SERVERS[request.param][1])


def chat(exe: str, server: RealServer, *args: str, say: object = None, key: str = SENTINEL
         ) -> subprocess.CompletedProcess:
    """`chat create -m MODEL ARGS -g user X`, X the fake model's script (a dict, sent as JSON) or text."""
    message = say if isinstance(say, str) else json.dumps(say)
    return interncli(exe, server, "chat", "create", "-m", MODEL, *args, "-g", "user", message, key=key)


@pytest.mark.parametrize("stream", [False, True])
def test_plain_chat(exe: str, any_server: RealServer, stream: bool) -> None:
    # Text without a script is echoed, cut into 3-character "tokens"; 0.18 streams each piece as a
    # chunk with nulls dropped, then an empty piece carrying finish_reason "stop", then [DONE];
    # 0.12 sends every field (nulls, `"tool_calls": []`, `gen_tokens`) and ids "1", "2", ...
    done = chat(exe, any_server, *(["--stream"] if stream else []), say="hello there, real server")
    assert (done.returncode, done.stdout, done.stderr) == (0, "hello there, real server\n", "")


def test_streamed_json_is_every_chunk(exe: str, any_server: RealServer) -> None:
    # --json --stream prints each chunk as the server sent it, one per line: 0.18's without null
    # fields (a reasoning-free delta has no `reasoning_content` key), 0.12's with all of them.
    done = chat(exe, any_server, "--stream", "--json", say="hello there")
    assert done.returncode == 0, done.stderr
    chunks = [json.loads(line) for line in done.stdout.splitlines()]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "hello there"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_models_list(exe: str, any_server: RealServer) -> None:
    # LMDeploy lists the served name (here --model-name), then one card per LoRA adapter.
    done = interncli(exe, any_server, "models", "list")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [MODEL]


@pytest.mark.parametrize("args", [("models", "list"), ("chat", "create", "-m", MODEL, "-g", "user", "hi")])
@pytest.mark.parametrize("release, message", [(NEWEST, "[401] Unauthorized."), (OLD, "[401] Unauthorized")])
def test_wrong_key_is_exit_3(exe: str, request: pytest.FixtureRequest, args: tuple, release: str,
                             message: str) -> None:
    # 0.12.2+: the AuthenticationMiddleware answers every path but /health, /docs, /redoc, /nodes
    # with 401 before routing, so the request body is never read: 0.12 says {"error": "Unauthorized"},
    # 0.16+ the flat error {"message": "Unauthorized.", "type": "authentication_error", ...}.
    server = request.getfixturevalue(_SERVERS[release][0])
    done = interncli(exe, server, *args, key="sk-wrong-key")
    assert done.returncode == 3 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert lines[0] == f"interncli: error: {message}"
    assert lines[1].startswith("hint: ")
    assert "sk-wrong-key" not in done.stderr


def test_unknown_model_is_exit_5(exe: str, any_server: RealServer) -> None:
    # The model name is checked first, before any other field: 404 with LMDeploy's own text.
    done = interncli(exe, any_server, "chat", "create", "-m", "no-such-model", "-g", "user", "hi")
    assert done.returncode == 5 and done.stdout == ""
    assert "The model 'no-such-model' does not exist." in done.stderr.splitlines()[0]


def test_engine_failure_is_exit_1(exe: str, server: RealServer) -> None:
    # 0.16+: a failing engine is a RequestError; without streaming the handler turns it into the
    # HTTP status of the error with the flat body ("An internal server error occurred.", 500),
    # whatever text was generated before it is dropped.
    done = chat(exe, server, say={"text": "partial ", "fail": "engine"})
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("interncli: error: [500] An internal server error occurred.")


def test_engine_failure_writes_no_conversation(exe: str, server: RealServer, tmp_path: Path) -> None:
    # A failed turn must not be saved as the assistant's reply (contract §5): a good turn is.
    conversation = tmp_path / "conv.json"
    assert chat(exe, server, "--conversation", str(conversation), say="first").returncode == 0
    saved = json.loads(conversation.read_text(encoding="utf-8"))
    assert saved[-1] == {"role": "assistant", "content": "first"}
    done = chat(exe, server, "--conversation", str(conversation), say={"text": "partial ", "fail": "engine"})
    assert done.returncode == 1
    assert json.loads(conversation.read_text(encoding="utf-8")) == saved


def test_engine_failure_in_a_stream_is_exit_1(exe: str, server: RealServer) -> None:
    # Streamed, the status is already 200: what was generated has been sent, then one event
    # `data: {"error": {...}}` without `choices`, then `data: [DONE]`.
    done = chat(exe, server, "--stream", say={"text": "partial ", "fail": "engine"})
    assert done.returncode == 1
    assert done.stdout.startswith("partial ")
    assert "[500] An internal server error occurred." in done.stderr


@pytest.mark.parametrize("stream", [False, True])
def test_context_overflow_is_exit_5(exe: str, server: RealServer, stream: bool) -> None:
    # The context check is in preprocess, before generation, so it is a plain HTTP 400 even for
    # `stream: true` — no more empty `length` replies (those were 0.6 – 0.15).
    done = chat(exe, server, *(["--stream"] if stream else []), say={"fail": "context"})
    assert done.returncode == 5 and done.stdout == ""
    assert "must be smaller than the model context length (4096)." in done.stderr


@pytest.mark.parametrize("stream", [False, True])
def test_reasoning_is_split_off_by_the_server(exe: str, any_reasoning_server: RealServer, stream: bool) -> None:
    # With --reasoning-parser, LMDeploy's parser moves the text up to `</think>` into
    # `reasoning_content` (streamed, 0.18: deltas with `reasoning_content` and no `content` key;
    # 0.12: `"content": null` beside it, and a first delta with `"content": ""` for `<think>`).
    done = chat(exe, any_reasoning_server, *(["--stream"] if stream else []), "--show-reasoning",
                say={"reasoning": "hmm, let me think", "text": "answer"})
    assert done.returncode == 0, done.stderr
    assert done.stdout == "answer\n"
    assert "hmm, let me think" in done.stderr


def test_reasoning_hidden_unless_asked(exe: str, any_reasoning_server: RealServer) -> None:
    done = chat(exe, any_reasoning_server, say={"reasoning": "hmm, let me think", "text": "answer"})
    assert (done.returncode, done.stdout) == (0, "answer\n")
    assert "hmm" not in done.stderr


@pytest.mark.parametrize("release, venv_python", [(NEWEST, "python"), (OLD, "old_python")])
def test_the_launcher_is_lmdeploys_own_server(request: pytest.FixtureRequest, release: str, venv_python: str) -> None:
    # What makes this suite worth its minute: the app is the installed LMDeploy's, not ours.
    python = request.getfixturevalue(venv_python)
    probe = subprocess.run(
        [python, "-c", "import sys; sys.path.insert(0, sys.argv[1]); import stubs; stubs.install(); "
         "import lmdeploy; from lmdeploy.serve.openai import api_server as a; "
         "print(lmdeploy.__version__, a.__file__)",
         str(LAUNCHER.parent)], capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr
    version, path = probe.stdout.split()
    assert version == release
    assert "site-packages" in path and str(ROOT / "tests") not in path


TOOLS = ("tools:\n  - name: get_weather\n    parameters:\n      type: object\n"
         "      properties: {city: {type: string}}\n    command: [echo, '{city}']\n")


# 0.12's streamed tool calls are README "Known wrong today" item 12 (markup leaks, a fresh id per
# piece), so only its non-streamed call is here.
@pytest.mark.parametrize("release, stream", [(NEWEST, False), (NEWEST, True), (OLD, False)])
def test_tool_call_is_parsed_by_the_server(exe: str, request: pytest.FixtureRequest, tmp_path: Path, release: str,
                                           stream: bool) -> None:
    # The tool parser only runs when the request has `tools` (and tool_choice is not "none"); it
    # takes the markup out of the text. 0.18 streams the call as deltas: the first with the id,
    # type and name, the arguments after it in pieces; finish_reason "tool_calls".
    spec = tmp_path / "spec.yaml"
    spec.write_text(TOOLS)
    server = request.getfixturevalue(_SERVERS[release][2])
    done = chat(exe, server, *(["--stream"] if stream else []), "--tools", str(spec),
                say={"text": "Let me check.", "tool_call": {"name": "get_weather", "arguments": {"city": "上海"}}})
    assert done.returncode == 0, done.stderr
    assert "<|action_start|>" not in done.stdout and "<|plugin|>" not in done.stdout
    last = done.stdout.splitlines()[-1].split(" ", 3)
    assert (last[0], last[2], json.loads(last[3])) == ("tool_call", "get_weather", {"city": "上海"})
    assert done.stdout.startswith("Let me check.")


# ----------------------------------------------------------------- the profile against the real thing
# tests/servers/lmdeploy.py's profiles were written from reading the source; here the same requests
# go to the "lmdeploy-0.18" and "lmdeploy-0.12" profiles and to the real 0.18.0 and 0.12.3 servers,
# and what comes back must agree: the status, the error bodies exactly (numbers in messages aside),
# what a scripted reply amounts to (its text and finish reason), and the shape (keys and value
# types) of replies and stream chunks, where ids, timestamps and the echo texts differ.


def shape(value: object) -> object:
    """Keys and value types, recursively: what a client parses, without what differs per run."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


def exchange(base_url: str, path: str, body: Optional[dict] = None, key: str = SENTINEL,
             content_type: str = "application/json") -> Tuple[int, List[object]]:
    """One request; the status and the JSON body, or every `data:` event of a stream."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": content_type}
    if body is None:
        reply = requests.get(base_url + path, headers=headers, timeout=30)
    else:
        reply = requests.post(base_url + path, data=json.dumps(body), headers=headers, timeout=30)
    if reply.headers.get("content-type", "").startswith("text/event-stream"):
        events = [line[len("data: "):] for line in reply.text.splitlines() if line.startswith("data: ")]
        return reply.status_code, [event if event == "[DONE]" else json.loads(event) for event in events]
    return reply.status_code, [reply.json()]


@pytest.fixture(scope="module")
def profiles() -> Iterator[Dict[str, ProfileServer]]:
    """The profile of each release, started with the real servers' flags (no parsers)."""
    with ProfileServer("lmdeploy-0.18", api_keys=[SENTINEL], reasoning_parser=False, tool_parser=False) as new, \
            ProfileServer("lmdeploy-0.12", api_keys=[SENTINEL], reasoning_parser=False, tool_parser=False) as old:
        yield {NEWEST: new, OLD: old}


@pytest.fixture(params=[NEWEST, OLD])
def pair(request: pytest.FixtureRequest, profiles: Dict[str, ProfileServer]) -> Tuple[RealServer, ProfileServer]:
    """A real server and the profile that stands for it, emptied."""
    profile = profiles[request.param]
    profile.reset()
    return request.getfixturevalue(_SERVERS[request.param][0]), profile


def outcome(events: List[object]) -> Tuple[str, Optional[str]]:
    """What a reply amounts to: the text of its choices (message or deltas) and the last finish reason."""
    text, finish = "", None
    for event in events:
        for choice in event.get("choices", []) if isinstance(event, dict) else []:
            part = choice.get("message") or choice.get("delta") or {}
            text += part.get("content") or ""
            finish = choice.get("finish_reason") or finish
    return text, finish


def _chat_body(script: Optional[dict] = None, **extra: object) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": json.dumps(script or {"text": "hi"})}], **extra}


def _numbers_out(body: object) -> object:
    text = json.dumps(body)
    return json.loads(re.sub(r"\(\d+\)", "(N)", text))


# (what, path, body or None for GET, the profile's engine script or None, extra request options)
AGREEMENT = [
    ("wrong key, GET", "/models", None, None, {"key": "sk-wrong"}),
    ("wrong key, POST", "/chat/completions", _chat_body(), None, {"key": "sk-wrong"}),
    ("wrong key, unknown path", "/models/x", None, None, {"key": "sk-wrong"}),
    ("unknown model", "/chat/completions", {**_chat_body(), "model": "nope"}, None, {}),
    ("missing field", "/chat/completions", {"messages": []}, None, {}),
    ("bad JSON", "/chat/completions", None, None, {"raw": '{"model":'}),
    ("wrong Content-Type", "/chat/completions", _chat_body(), None, {"content_type": "text/plain"}),
    ("engine failure", "/chat/completions", _chat_body({"fail": "engine"}), Engine(fail="engine"), {}),
    ("engine failure, streamed", "/chat/completions", _chat_body({"text": "partial ", "fail": "engine"}, stream=True),
     Engine(text="partial ", fail="engine"), {}),
    ("context overflow", "/chat/completions", _chat_body({"fail": "context"}), Engine(fail="context"), {}),
    ("context overflow, streamed", "/chat/completions", _chat_body({"fail": "context"}, stream=True),
     Engine(fail="context"), {}),
]


def _send(base_url: str, path: str, body: Optional[dict], options: dict) -> Tuple[int, List[object]]:
    if "raw" in options:
        reply = requests.post(base_url + path, data=options["raw"], timeout=30,
                              headers={"Authorization": f"Bearer {SENTINEL}", "Content-Type": "application/json"})
        return reply.status_code, [reply.json()]
    return exchange(base_url, path, body, key=options.get("key", SENTINEL),
                    content_type=options.get("content_type", "application/json"))


@pytest.mark.parametrize("what, path, body, script, options", AGREEMENT, ids=[case[0] for case in AGREEMENT])
def test_the_profile_errors_agree_with_the_real_server(pair: Tuple[RealServer, ProfileServer], what: str, path: str,
                                                       body: Optional[dict], script: Optional[Engine],
                                                       options: dict) -> None:
    server, profile = pair
    if script is not None:
        profile.script(script)
    real = _send(server.base_url, path, body, options)
    fake = _send(profile.base_url, path, body, options)
    assert real[0] == fake[0], (real, fake)
    # Error bodies and error events exactly; content chunks before an error by shape.
    real_errors = [_numbers_out(event) for event in real[1] if isinstance(event, dict) and "choices" not in event]
    fake_errors = [_numbers_out(event) for event in fake[1] if isinstance(event, dict) and "choices" not in event]
    assert real_errors == fake_errors
    # Null fields the profiles leave out are not compared (see the next test).
    assert [shape(without_nulls(e)) for e in real[1] if isinstance(e, dict) and "choices" in e][:1] == \
           [shape(without_nulls(e)) for e in fake[1] if isinstance(e, dict) and "choices" in e][:1]
    assert (real[1][-1] == "[DONE]") == (fake[1][-1] == "[DONE]")
    # 0.12's failures are replies (HTTP 200): the same text and finish reason ("error", "length").
    assert outcome(real[1]) == outcome(fake[1])


@pytest.mark.parametrize("stream", [False, True])
def test_the_profile_replies_have_the_real_shape(pair: Tuple[RealServer, ProfileServer], stream: bool) -> None:
    server, profile = pair
    body = _chat_body({"text": "hello there"}, stream=stream)
    real = exchange(server.base_url, "/chat/completions", body)
    fake = exchange(profile.base_url, "/chat/completions", body)
    assert real[0] == fake[0] == 200
    # First chunk, last content chunk (finish_reason), the end marker: the same keys and types.
    # Found by this test: 0.18.0's non-streamed body also has `service_tier`, `output_ids`,
    # `output_token_logprobs`, `routed_experts` and `usage.completion_tokens_details`, and 0.12.3's
    # message `gen_tokens`, all null, which the profiles leave out; a client must ignore them, so
    # only nulls may be missing. Streamed chunks agree key for key.
    pick = (lambda events: [shape(events[0]), shape(events[-2]), events[-1]]) if stream else \
        (lambda events: [shape(without_nulls(events[0]))])
    assert pick(real[1]) == pick(fake[1])


def without_nulls(value: object) -> object:
    """The value with every null-valued key dropped, recursively."""
    if isinstance(value, dict):
        return {key: without_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [without_nulls(item) for item in value]
    return value


SCHEMA = '{"type": "object", "properties": {"name": {"type": "string"}, "born": {"type": "integer"}}, ' \
         '"required": ["name", "born"]}'


@pytest.mark.parametrize("stream", [False, True])
def test_schema_is_sent_as_response_format_and_the_reply_validated(exe: str, any_server: RealServer,
                                                                   stream: bool) -> None:
    # Issue 12 against the real api_server: LMDeploy's protocol takes response_format
    # {"type": "json_schema", "json_schema": {"name", "schema"}} (a bad one is a 422 there), and
    # passes it to the engine; the fake engine answers the script, which the reply check reads.
    record = json.dumps({"name": "Ada Lovelace", "born": 1815})
    done = chat(exe, any_server, "--schema", SCHEMA, *(["--stream"] if stream else []), say={"text": record})
    assert (done.returncode, done.stdout) == (0, record + "\n"), done.stderr
    assert json.loads(done.stdout)["born"] == 1815


def test_a_reply_that_never_fits_the_schema_is_exit_5_with_nothing_on_stdout(exe: str, any_server: RealServer) -> None:
    done = chat(exe, any_server, "--schema", SCHEMA, "--schema-retries", "1", say={"text": "no JSON here"})
    assert (done.returncode, done.stdout) == (5, "")
    assert "does not fit the schema" in done.stderr
