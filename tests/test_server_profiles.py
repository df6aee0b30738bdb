"""The per-version test servers (tests/servers/lmdeploy.py): first that each profile sends the
shapes tests/servers/README.md gives for its era (one table), then interncli against each profile
for what it already handles. What interncli still gets wrong is listed, with command lines, in
README "Known wrong today (issue 10)" — the work plan of issue 10, not tests here."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
from typing import Any, Callable, Dict, List, Optional, Tuple

import pytest

from tests.apiserver import Json, Stream
from tests.conftest import SENTINEL
from tests.servers.fixtures import create_on as create
from tests.servers.fixtures import model_of
from tests.servers.fixtures import run_on as run
from tests.servers.lmdeploy import (
    AUTH_DETAIL,
    ENGINE_ERROR,
    LMDEPLOY_PROFILES,
    PROFILES,
    UNSUPPORTED_MEDIA,
    Engine,
    ProfileServer,
)

CHAT = "/v1/chat/completions"
WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
CALL = ("get_weather", {"city": "上海"})


# ------------------------------------------------------------------------------ fixtures


def exchange(server: ProfileServer, method: str, path: str, body: Any = None, key: Optional[str] = SENTINEL,
             content_type: Optional[str] = "application/json") -> Tuple[int, str, bytes]:
    """(status, Content-Type, body) of one request; ``body`` bytes are sent as they are."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    headers = {}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if content_type is not None:
        headers["Content-Type"] = content_type
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    try:
        raw = resp.read()
    except http.client.IncompleteRead as exc:  # a cut chunked stream
        raw = exc.partial + b"<cut>"
    conn.close()
    return resp.status, resp.getheader("Content-Type") or "", raw


def chat(server: ProfileServer, **extra: Any) -> Dict[str, Any]:
    return {"model": model_of(server), "messages": [{"role": "user", "content": "hello there"}], **extra}


def events(raw: bytes) -> List[Any]:
    """The ``data:`` payloads of a stream, JSON-decoded ([DONE] kept as the string)."""
    out: List[Any] = []
    for line in raw.decode().split("\n"):
        if line.startswith("data: "):
            payload = line[len("data: "):]
            out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out


def chunks(raw: bytes) -> List[Dict[str, Any]]:
    return [e for e in events(raw) if isinstance(e, dict)]


def posted(server: ProfileServer, **extra: Any) -> Dict[str, Any]:
    status, _, raw = exchange(server, "POST", CHAT, chat(server, **extra))
    return {"status": status, "json": json.loads(raw)}


def streamed(server: ProfileServer, **extra: Any) -> Tuple[int, str, bytes]:
    return exchange(server, "POST", CHAT, chat(server, stream=True, **extra))


# ---------------------------------------------------------------------------- scenarios
# Each scenario does one exchange and returns a small observation; the table below says what
# each profile's observation must contain (dict keys given must match; other keys are free).


def s_no_key(server: ProfileServer) -> Any:
    status, _, raw = exchange(server, "POST", CHAT, chat(server), key=None)
    return {"status": status, "json": json.loads(raw)}


def s_wrong_scheme(server: ProfileServer) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/v1/models", headers={"Authorization": SENTINEL})
    resp = conn.getresponse()
    return {"status": resp.status}


def s_no_key_bad_json(server: ProfileServer) -> Any:
    return {"status": exchange(server, "POST", CHAT, b'{"model":', key=None)[0]}


def s_no_key_retrieve(server: ProfileServer) -> Any:
    return {"status": exchange(server, "GET", "/v1/models/x", key=None)[0]}


def s_retrieve(server: ProfileServer) -> Any:
    status, kind, raw = exchange(server, "GET", "/v1/models/" + model_of(server))
    return {"status": status, "json": json.loads(raw) if kind.startswith("application/json") else None}


def s_health(server: ProfileServer) -> Any:
    status, _, raw = exchange(server, "GET", "/health", key=None)
    return {"status": status, "body": raw}


def s_models(server: ProfileServer) -> Any:
    status, _, raw = exchange(server, "GET", "/v1/models")
    doc = json.loads(raw)
    card = doc["data"][0]
    return {"status": status, "object": doc["object"], "first": card["id"], "keys": sorted(card)}


def s_missing_model(server: ProfileServer) -> Any:
    status, _, raw = exchange(server, "POST", CHAT, {"messages": [{"role": "user", "content": "hi"}]})
    return {"status": status, "json": json.loads(raw)}


def s_bad_json(server: ProfileServer) -> Any:
    status, _, raw = exchange(server, "POST", CHAT, b'{"model":')
    return {"status": status, "json": json.loads(raw)}


def s_text_plain(server: ProfileServer) -> Any:
    status, _, raw = exchange(server, "POST", CHAT, chat(server), content_type="text/plain")
    doc = json.loads(raw)
    return {"status": status, "json": doc if "choices" not in doc else "a reply"}


def s_charset(server: ProfileServer) -> Any:
    return {"status": exchange(server, "POST", CHAT, chat(server), content_type="application/json; charset=utf-8")[0]}


def s_unknown_model(server: ProfileServer) -> Any:
    return posted(server, model="nope")


def s_temperature(server: ProfileServer) -> Any:
    return posted(server, temperature=3)


def s_messages_string(server: ProfileServer) -> Any:
    body = {"model": model_of(server), "messages": "hello"}
    status, _, raw = exchange(server, "POST", CHAT, body)
    return {"status": status}


def s_extra_field(server: ProfileServer) -> Any:
    observed = posted(server, repetition_penalty=1.1)
    return {"status": observed["status"], "ignored": server.seen[-1].ignored}


def s_reply(server: ProfileServer) -> Any:
    doc = posted(server)["json"]
    choice = doc["choices"][0]
    return {"id_is_number": doc["id"].isdigit(), "message": choice["message"], "finish": choice["finish_reason"],
            "usage_keys": sorted(doc["usage"]), "moderation": doc.get("moderation")}


def s_engine(server: ProfileServer) -> Any:
    server.fail("engine", text="partial ")
    status, kind, raw = exchange(server, "POST", CHAT, chat(server))
    if not kind.startswith("application/json"):
        return {"status": status, "type": kind, "body": raw}
    doc = json.loads(raw)
    if "choices" in doc:
        choice = doc["choices"][0]
        return {"status": status, "content": choice["message"]["content"], "finish": choice["finish_reason"],
                "completion_tokens": doc["usage"]["completion_tokens"]}
    return {"status": status, "json": doc}


def s_engine_stream(server: ProfileServer) -> Any:
    server.fail("engine", text="partial ")
    status, _, raw = streamed(server)
    seen = events(raw)
    last = seen[-2] if seen and seen[-1] == "[DONE]" else (seen[-1] if seen else None)
    if isinstance(last, dict) and "choices" in last:
        last = {"content": last["choices"][0]["delta"].get("content"),
                "finish": last["choices"][0].get("finish_reason")}
    return {"status": status, "done": "[DONE]" in seen, "cut": raw.endswith(b"<cut>"), "last": last}


def s_unavailable(server: ProfileServer) -> Any:
    server.fail("unavailable")
    return posted(server)


def s_context(server: ProfileServer) -> Any:
    server.fail("context")
    observed = posted(server)
    doc = observed["json"]
    if "choices" not in doc:
        return observed
    choice = doc["choices"][0]
    return {"status": observed["status"], "content": choice["message"]["content"], "finish": choice["finish_reason"],
            "completion_tokens": doc["usage"]["completion_tokens"]}


def s_context_stream(server: ProfileServer) -> Any:
    server.fail("context")
    status, kind, raw = streamed(server)
    if kind.startswith("application/json"):
        return {"status": status, "json": json.loads(raw)}
    last = chunks(raw)[-1]["choices"][0]
    return {"status": status, "delta": last["delta"], "finish": last["finish_reason"]}


def s_context_max_tokens(server: ProfileServer) -> Any:
    server.fail("context")
    observed = posted(server, max_tokens=100)
    doc = observed["json"]
    if "choices" not in doc:
        return {"status": observed["status"]}
    return {"status": observed["status"], "content": doc["choices"][0]["message"]["content"],
            "finish": doc["choices"][0]["finish_reason"]}


def _texts_hidden(delta: Dict[str, Any]) -> Dict[str, Any]:
    # Where the text is cut into pieces is not a shape: non-empty texts become "TEXT".
    return {k: "TEXT" if isinstance(v, str) and v and k != "role" else v for k, v in delta.items()}


def s_first_delta(server: ProfileServer) -> Any:
    first = chunks(streamed(server)[2])[0]
    return {"choice_keys": sorted(first["choices"][0]), "delta": _texts_hidden(first["choices"][0]["delta"]),
            "top_keys": sorted(first)}


def s_role_everywhere(server: ProfileServer) -> Any:
    found = chunks(streamed(server)[2])
    return {"roles": {c["choices"][0]["delta"].get("role") for c in found}, "count": len(found) > 2}


def s_bytes(server: ProfileServer) -> Any:
    first = streamed(server)[2].split(b"\n")[0]
    return {"compact": b'":"' in first}


def _usage_places(found: List[Dict[str, Any]]) -> List[str]:
    places = []
    for chunk in found:
        if chunk.get("usage"):
            places.append("empty-choices" if chunk["choices"] == [] else
                          "finish" if chunk["choices"][0].get("finish_reason") else "content")
    return places


def s_stream_usage(server: ProfileServer) -> Any:
    found = chunks(streamed(server, stream_options={"include_usage": True})[2])
    return {"places": sorted(set(_usage_places(found))), "last_is_usage": found[-1]["choices"] == []}


def s_stream_no_usage(server: ProfileServer) -> Any:
    return {"places": _usage_places(chunks(streamed(server)[2]))}


def s_gateway_stream_options(server: ProfileServer) -> Any:
    return {"status": streamed(server, stream_options={"include_usage": True})[0]}


def s_stream_tools(server: ProfileServer) -> Any:
    status, kind, raw = streamed(server, tools=[WEATHER])
    return {"status": status, "type": kind.split(";")[0],
            "object": json.loads(raw).get("object") if kind.startswith("application/json") else "sse"}


def s_tool_call(server: ProfileServer) -> Any:
    server.script(Engine(text="Let me check.", tool_call=CALL))
    doc = posted(server, tools=[WEATHER])["json"]
    call = doc["choices"][0]["message"]["tool_calls"][0]
    return {"id": call["id"][:14], "arguments": call["function"]["arguments"],
            "finish": doc["choices"][0]["finish_reason"]}


def s_tool_060_escapes(server: ProfileServer) -> Any:
    server.release = "0.6.0"
    return s_tool_call(server)


def s_tool_not_offered(server: ProfileServer) -> Any:
    server.script(Engine(text="Let me check.", tool_call=("other_tool", {})))
    choice = posted(server, tools=[WEATHER])["json"]["choices"][0]
    return {"called": bool(choice["message"]["tool_calls"]), "finish": choice["finish_reason"]}


def s_tool_no_parser(server: ProfileServer) -> Any:
    server.tool_parser = False
    server.script(Engine(text="Let me check.", tool_call=CALL))
    observed = posted(server, tools=[WEATHER])
    doc = observed["json"]
    if "choices" in doc:
        return {"status": observed["status"], "content_has_markup": "<|action_start|>" in (
            doc["choices"][0]["message"]["content"] or ""), "finish": doc["choices"][0]["finish_reason"]}
    return observed


def s_tool_deltas(server: ProfileServer) -> Any:
    server.script(Engine(text="Let me check.", tool_call=CALL))
    status, kind, raw = streamed(server, tools=[WEATHER])
    if not kind.startswith("text/event-stream"):
        return {"status": status, "streamed": False}
    found = chunks(raw)
    calls = [tc for c in found for tc in (c["choices"][0]["delta"].get("tool_calls") or [])]
    content = "".join(c["choices"][0]["delta"].get("content") or "" for c in found)
    arguments = "".join(tc["function"].get("arguments") or "" for tc in calls)
    return {"first": calls[0], "second": calls[1], "ids": len({tc.get("id") for tc in calls if tc.get("id")}),
            "leak": "<|action_start|>" in content, "arguments_parse": _parses(arguments),
            "finish": found[-1]["choices"][0]["finish_reason"], "count": len(calls)}


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def s_reasoning(server: ProfileServer) -> Any:
    server.script(Engine(text="answer", reasoning="hmm"))
    message = posted(server, thinking_mode=True)["json"]["choices"][0]["message"]
    return {"content": message["content"], "reasoning": message.get("reasoning_content")}


def s_reasoning_off(server: ProfileServer) -> Any:
    server.script(Engine(text="answer", reasoning="hmm"))
    message = posted(server, chat_template_kwargs={"enable_thinking": False},
                     enable_thinking=False)["json"]["choices"][0]["message"]
    return {"content": message["content"], "reasoning": message.get("reasoning_content")}


def s_reasoning_stream(server: ProfileServer) -> Any:
    server.script(Engine(text="answer", reasoning="hmm"))
    first = chunks(streamed(server)[2])[0]["choices"][0]["delta"]
    return {"first": _texts_hidden(first)}


def _thinking(field: str, value: Any) -> Callable[[ProfileServer], Any]:
    def scenario(server: ProfileServer) -> Any:
        posted(server, **{field: value})
        seen = server.seen[-1]
        return {"thinking": seen.thinking, "from": seen.thinking_from}
    return scenario


def s_n3(server: ProfileServer) -> Any:
    doc = posted(server, n=3)["json"]
    return {"choices": [c["index"] for c in doc["choices"]]}


def s_n3_stream(server: ProfileServer) -> Any:
    found = chunks(streamed(server, n=3)[2])
    return {"indexes": sorted({choice["index"] for c in found for choice in c["choices"]}),
            "most_per_chunk": max(len(c["choices"]) for c in found)}


def s_completions(server: ProfileServer) -> Any:
    status, kind, raw = exchange(server, "POST", "/v1/completions", {"model": model_of(server), "prompt": "hi"})
    doc = json.loads(raw) if kind.startswith("application/json") else None
    return {"status": status, "object": doc and doc.get("object"), "text": doc and doc["choices"][0]["text"]}


def s_completions_stream_index(server: ProfileServer) -> Any:
    _, _, raw = exchange(server, "POST", "/v1/completions",
                         {"model": model_of(server), "prompt": ["a", "b"], "stream": True})
    return {"indexes": sorted({c["choices"][0]["index"] for c in chunks(raw)}),
            "texts": "".join(c["choices"][0]["text"] for c in chunks(raw))}


def s_max_tokens_0(server: ProfileServer) -> Any:
    return posted(server, max_tokens=0)["status"]


def s_rate_limit(server: ProfileServer) -> Any:
    server.fail("rate_limit")
    return posted(server)


def s_token_expired(server: ProfileServer) -> Any:
    server.fail("token_expired")
    return posted(server)


def s_envelope_at_200(server: ProfileServer) -> Any:
    server.envelope_status = 200
    return posted(server, model="nope")


def s_gateway_stream(server: ProfileServer) -> Any:
    found = chunks(streamed(server)[2])
    return {"pending": {c["choices"][0]["finish_reason"] for c in found[:-1]},
            "last": found[-1]["choices"][0]["finish_reason"], "moderation": all("moderation" in c for c in found)}


def s_gateway_tool(server: ProfileServer) -> Any:
    server.script(Engine(tool_call=("get_weather", {"city": "shanghai"})))
    call = posted(server, tools=[WEATHER])["json"]["choices"][0]["message"]["tool_calls"][0]
    return {"id": call["id"], "arguments": call["function"]["arguments"]}


# -------------------------------------------------------------------------------- table


def era(**by_profile: Any) -> Dict[str, Any]:
    """Expected values for the LMDeploy profiles, as the README's table writes them: a profile
    not named behaves as the one before it ("—"). Keys use _ for - and . (lmdeploy_0_12)."""
    given = {k.replace("lmdeploy_", "lmdeploy-").replace("_", "."): v for k, v in by_profile.items()}
    out, current = {}, None
    for profile in LMDEPLOY_PROFILES:
        current = given.get(profile, current)
        out[profile] = current
    if "gateway" in given:
        out["gateway"] = given["gateway"]
    return out


def flat(status: int, message: str, kind: str = "invalid_request_error") -> Dict[str, Any]:
    return {"status": status, "json": {"message": message, "type": kind, "code": status, "param": None,
                                       "object": "error"}}


def envelope(status: int, code: str) -> Dict[str, Any]:
    return {"status": status, "json": {"msgCode": code, "success": False, "data": None, "total": 0}}


MISSING_ITEM = {"type": "missing", "loc": ["body", "model"], "msg": "Field required",
                "input": {"messages": [{"role": "user", "content": "hi"}]}}
BAD_JSON_ITEM = {"type": "json_invalid", "loc": ["body", 9], "msg": "JSON decode error", "input": {},
                 "ctx": {"error": "Expecting value"}}
LIST_KEYS = ["created", "id", "object", "owned_by", "parent", "permission", "root"]
OLD_DELTA = {"role": "assistant", "content": "TEXT"}
MID_DELTA: Dict[str, Any] = {"role": "assistant", "content": "TEXT", "reasoning_content": None,
                             "gen_tokens": None, "tool_calls": []}
NEW_DELTA = {"role": "assistant", "content": "TEXT"}
WHOLE_ARGS = json.dumps(CALL[1], ensure_ascii=False)

SCENARIOS: Dict[str, Tuple[Callable[[ProfileServer], Any], Dict[str, Any]]] = {
    "no key": (s_no_key, era(
        lmdeploy_0_6={"status": 401, "json": {"detail": {"error": AUTH_DETAIL}}},
        lmdeploy_0_12={"status": 401, "json": {"error": "Unauthorized"}},
        lmdeploy_0_16=flat(401, "Unauthorized.", "authentication_error"),
        gateway=envelope(401, "A0202"))),
    "another auth scheme is no key": (s_wrong_scheme, era(lmdeploy_0_6={"status": 401}, gateway={"status": 401})),
    "bad JSON without a key": (s_no_key_bad_json, era(lmdeploy_0_6={"status": 422}, lmdeploy_0_12={"status": 401},
                                                      lmdeploy_0_16={"status": 401})),
    "unknown path without a key": (s_no_key_retrieve, era(lmdeploy_0_6={"status": 404}, lmdeploy_0_12={"status": 401})),
    "no /v1/models/{id}": (s_retrieve, era(lmdeploy_0_6={"status": 404, "json": {"detail": "Not Found"}},
                                           gateway={"status": 404, "json": None})),
    "/health is open": (s_health, era(lmdeploy_0_6={"status": 200, "body": b""})),
    "/v1/models": (s_models, era(
        lmdeploy_0_6={"status": 200, "object": "list", "first": "internlm2_5-7b-chat", "keys": LIST_KEYS},
        gateway={"status": 200, "object": "list", "first": "intern-latest"})),
    "missing model": (s_missing_model, era(
        lmdeploy_0_6={"status": 422, "json": {"detail": [MISSING_ITEM]}},
        lmdeploy_0_10={"status": 422, "json": {"detail": [MISSING_ITEM], "body": MISSING_ITEM["input"]}},
        lmdeploy_0_16=flat(400, "model: Field required"),
        gateway=envelope(400, "-20013"))),
    "bad JSON": (s_bad_json, era(
        lmdeploy_0_6={"status": 422, "json": {"detail": [BAD_JSON_ITEM]}},
        lmdeploy_0_10={"status": 422, "json": {"detail": [BAD_JSON_ITEM], "body": '{"model":'}},
        lmdeploy_0_16=flat(400, "9: JSON decode error"),
        gateway=envelope(400, "-20018"))),
    "Content-Type text/plain": (s_text_plain, era(
        lmdeploy_0_6={"status": 200, "json": "a reply"},
        lmdeploy_0_12={"status": 422, "json": {"detail": [UNSUPPORTED_MEDIA], "body": None}},
        lmdeploy_0_16=flat(400, UNSUPPORTED_MEDIA))),
    "Content-Type with charset": (s_charset, era(lmdeploy_0_6={"status": 200})),
    "unknown model": (s_unknown_model, era(
        lmdeploy_0_6=flat(404, "The model `nope` does not exist."),
        lmdeploy_0_10=flat(404, "The model 'nope' does not exist."),
        lmdeploy_0_16=flat(404, "The model 'nope' does not exist.", "not_found_error"),
        gateway=envelope(400, "-20013"))),
    "temperature 3": (s_temperature, era(
        lmdeploy_0_6=flat(400, "The temperature `3.0` must be in [0, 2]"),
        lmdeploy_0_10=flat(400, "The temperature 3.0 must be in [0, 2]"))),
    "messages as a string": (s_messages_string, era(lmdeploy_0_6={"status": 200}, lmdeploy_0_18={"status": 400})),
    "max_tokens 0": (s_max_tokens_0, era(lmdeploy_0_6=200, lmdeploy_0_18=400)),
    "extra field": (s_extra_field, era(lmdeploy_0_6={"status": 200, "ignored": ()},
                                       gateway={"status": 400, "ignored": ("repetition_penalty",)})),
    "plain reply": (s_reply, era(
        lmdeploy_0_6={"id_is_number": True, "finish": "stop", "moderation": None,
                      "message": {"role": "assistant", "content": "echo: hello there", "tool_calls": None},
                      "usage_keys": ["completion_tokens", "prompt_tokens", "total_tokens"]},
        lmdeploy_0_10={"id_is_number": True, "message": {"role": "assistant", "content": "echo: hello there",
                                                         "tool_calls": None, "reasoning_content": None}},
        lmdeploy_0_14={"id_is_number": True,
                       "usage_keys": ["completion_tokens", "prompt_tokens", "prompt_tokens_details", "total_tokens"]},
        lmdeploy_0_16={"id_is_number": False},
        gateway={"id_is_number": False, "moderation": {"sensitive": False, "category": ""},
                 "message": {"role": "assistant", "content": "echo: hello there"}})),
    "engine failure": (s_engine, era(
        lmdeploy_0_6={"status": 500, "type": "text/plain; charset=utf-8", "body": b"Internal Server Error"},
        lmdeploy_0_10={"status": 200, "content": "partial " + ENGINE_ERROR, "finish": "error", "completion_tokens": 0},
        lmdeploy_0_16=flat(500, "An internal server error occurred.", "server_error"),
        gateway={"status": 500, "json": {"object": "error", "message": ENGINE_ERROR, "code": 500}})),
    "engine failure, stream": (s_engine_stream, era(
        lmdeploy_0_6={"status": 200, "done": False, "cut": True, "last": {"finish": None}},
        lmdeploy_0_10={"status": 200, "done": True, "cut": False, "last": {"content": ENGINE_ERROR, "finish": "error"}},
        lmdeploy_0_16={"status": 200, "done": True, "cut": False,
                       "last": {"error": {"message": "An internal server error occurred.", "type": "server_error",
                                          "code": 500, "param": None, "object": "error"}}},
        gateway={"status": 200, "done": True, "last": {"object": "error", "message": ENGINE_ERROR, "code": 500}})),
    "engine unavailable": (s_unavailable, era(
        lmdeploy_0_10={"status": 200},
        lmdeploy_0_16=flat(503, "The inference engine is unavailable.", "server_error"))),
    "context full": (s_context, era(
        lmdeploy_0_6={"status": 200, "content": "", "finish": "length", "completion_tokens": 0},
        lmdeploy_0_13={"status": 200, "content": None, "finish": "length", "completion_tokens": 0},
        lmdeploy_0_16=flat(400, "Input length (4096) must be smaller than the model context length (4096).")))
    ,
    "context full, stream": (s_context_stream, era(
        lmdeploy_0_6={"status": 200, "delta": {"role": "assistant", "content": ""}, "finish": "length"},
        lmdeploy_0_13={"status": 200, "finish": "length",
                       "delta": {"role": "assistant", "content": None, "reasoning_content": None,
                                 "gen_tokens": None, "tool_calls": None}},
        lmdeploy_0_14={"status": 200, "delta": {"role": "assistant"}, "finish": "length"},
        lmdeploy_0_16={"status": 400})),
    "prompt too long, max_tokens set": (s_context_max_tokens, era(
        lmdeploy_0_6={"status": 200, "content": "", "finish": "length"},
        lmdeploy_0_10={"status": 200, "content": "internal error happened, status code ResponseType.INPUT_LENGTH_ERROR",
                       "finish": "error"},
        lmdeploy_0_16={"status": 400})),
    "first delta": (s_first_delta, era(
        lmdeploy_0_6={"delta": OLD_DELTA, "choice_keys": ["delta", "finish_reason", "index", "logprobs"],
                      "top_keys": ["choices", "created", "id", "model", "object", "usage"]},
        lmdeploy_0_10={"delta": MID_DELTA},
        lmdeploy_0_13={"delta": {**MID_DELTA, "tool_calls": None}},
        lmdeploy_0_14={"delta": NEW_DELTA, "choice_keys": ["delta", "index"],
                       "top_keys": ["choices", "created", "id", "model", "object"]},
        gateway={"delta": {"role": "assistant", "content": "TEXT"}, "choice_keys": ["delta", "finish_reason", "index"],
                 "top_keys": ["choices", "created", "id", "model", "moderation", "object"]})),
    "role on every delta": (s_role_everywhere, era(lmdeploy_0_6={"roles": {"assistant"}, "count": True},
                                                   gateway={"roles": {"assistant"}, "count": True})),
    "compact chunk bytes": (s_bytes, era(lmdeploy_0_6={"compact": True}, lmdeploy_0_14={"compact": False})),
    "stream usage asked": (s_stream_usage, era(
        lmdeploy_0_6={"places": ["content", "finish"], "last_is_usage": False},
        lmdeploy_0_10={"places": ["finish"], "last_is_usage": False},
        lmdeploy_0_14={"places": ["empty-choices"], "last_is_usage": True})),
    "stream usage not asked": (s_stream_no_usage, era(lmdeploy_0_6={"places": []}, gateway={"places": []})),
    "stream_options to the gateway": (s_gateway_stream_options, {"gateway": {"status": 400}}),
    "stream + tools": (s_stream_tools, era(
        lmdeploy_0_6={"status": 200, "type": "application/json", "object": "chat.completion"},
        lmdeploy_0_10={"status": 200, "type": "text/event-stream", "object": "sse"},
        gateway={"status": 400, "type": "application/json", "object": None})),
    "tool call": (s_tool_call, era(
        lmdeploy_0_6={"id": "0", "arguments": WHOLE_ARGS, "finish": "tool_calls"},
        lmdeploy_0_10={"id": "chatcmpl-tool-", "arguments": WHOLE_ARGS, "finish": "tool_calls"},
        gateway={"id": "97102", "arguments": "{'city': '上海'}", "finish": "tool_calls"})),
    "tool call, 0.6.0 escapes": (s_tool_060_escapes, {"lmdeploy-0.6": {
        "id": "0", "arguments": json.dumps(CALL[1]), "finish": "tool_calls"}}),
    "call to a tool not offered": (s_tool_not_offered, era(
        lmdeploy_0_6={"called": True, "finish": "tool_calls"}, lmdeploy_0_18={"called": False, "finish": "stop"})),
    "tools without a tool parser": (s_tool_no_parser, era(
        lmdeploy_0_10={"status": 200, "content_has_markup": True, "finish": "stop"},
        lmdeploy_0_13=flat(400, "Please launch the api_server with --tool-call-parser if you want to use tool."),
        lmdeploy_0_16=flat(400, "Please launch the api_server with --tool-call-parser if you want to use tools."))),
    "streamed tool call": (s_tool_deltas, era(
        lmdeploy_0_6={"status": 200, "streamed": False},
        lmdeploy_0_10={"first": {"type": "function", "index": 0,
                                 "function": {"name": "get_weather", "arguments": None}},
                       "second": {"type": "function", "index": 0, "function": {"name": None}},
                       "ids": 5, "leak": True, "arguments_parse": False, "finish": "tool_calls"},
        lmdeploy_0_13={"second": {"type": None, "index": 0, "function": {"name": None, "arguments": WHOLE_ARGS}},
                       "ids": 1, "leak": False, "arguments_parse": True, "count": 2},
        lmdeploy_0_14={"first": {"type": "function", "index": 0, "function": {"name": "get_weather"}},
                       "second": {"index": 0, "function": {"arguments": WHOLE_ARGS}}},
        lmdeploy_0_18={"second": {"index": 0, "function": {"arguments": WHOLE_ARGS[:7]}}, "count": 3})),
    "reasoning": (s_reasoning, era(
        lmdeploy_0_6={"content": "<think>hmm</think>answer", "reasoning": None},
        lmdeploy_0_10={"content": "answer", "reasoning": "hmm"},
        gateway={"content": "answer", "reasoning": "hmm"})),
    "reasoning switched off": (s_reasoning_off, era(
        lmdeploy_0_6={"content": "<think>hmm</think>answer", "reasoning": None},
        lmdeploy_0_13={"content": "hmmanswer", "reasoning": None})),
    "reasoning delta": (s_reasoning_stream, era(
        lmdeploy_0_6={"first": {"role": "assistant", "content": "TEXT"}},
        lmdeploy_0_10={"first": {"role": "assistant", "content": None, "reasoning_content": "TEXT"}},
        lmdeploy_0_14={"first": {"role": "assistant", "reasoning_content": "TEXT"}})),
    "reads thinking_mode": (_thinking("thinking_mode", True), era(
        lmdeploy_0_6={"thinking": None, "from": None}, gateway={"thinking": True, "from": "thinking_mode"})),
    "reads enable_thinking": (_thinking("enable_thinking", True), era(
        lmdeploy_0_6={"thinking": None, "from": None}, lmdeploy_0_10={"thinking": True, "from": "enable_thinking"},
        gateway={"thinking": None})),
    "reads chat_template_kwargs": (_thinking("chat_template_kwargs", {"enable_thinking": False}), era(
        lmdeploy_0_6={"thinking": None},
        lmdeploy_0_12={"thinking": False, "from": "chat_template_kwargs.enable_thinking"},
        gateway={"thinking": None})),
    "reads chat_template_kwargs.thinking": (_thinking("chat_template_kwargs", {"thinking": True}), era(
        lmdeploy_0_6={"thinking": None}, lmdeploy_0_16={"thinking": True, "from": "chat_template_kwargs.thinking"})),
    "n 3": (s_n3, era(lmdeploy_0_6={"choices": [0]}, lmdeploy_0_17={"choices": [0, 1, 2]},
                      gateway={"choices": [0, 1, 2]})),
    "n 3, stream": (s_n3_stream, era(lmdeploy_0_6={"indexes": [0], "most_per_chunk": 1},
                                       lmdeploy_0_17={"indexes": [0, 1, 2], "most_per_chunk": 3})),
    "/v1/completions": (s_completions, era(
        lmdeploy_0_6={"status": 200, "object": "text_completion", "text": "echo: hi"},
        gateway={"status": 404, "object": None})),
    "/v1/completions stream index": (s_completions_stream_index, era(
        lmdeploy_0_6={"indexes": [0], "texts": "echo: aecho: b"})),
    "rate limit": (s_rate_limit, {"gateway": envelope(429, "-20053")}),
    "token expired": (s_token_expired, {"gateway": envelope(401, "A0211")}),
    "envelope at HTTP 200": (s_envelope_at_200, {"gateway": envelope(200, "-20013")}),
    "gateway stream": (s_gateway_stream, {"gateway": {"pending": {""}, "last": "stop", "moderation": True}}),
    "gateway tool call": (s_gateway_tool, {"gateway": {"id": "97102", "arguments": "{'city': 'shanghai'}"}}),
}

TABLE = [pytest.param(profile, name, expected, id=f"{profile}:{name}")
         for name, (_, by_profile) in SCENARIOS.items()
         for profile, expected in by_profile.items() if expected is not None]


def assert_shape(actual: Any, expected: Any, where: str = "") -> None:
    """``actual`` has ``expected``'s shape: dict keys given must match recursively; the rest exactly."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key, value in expected.items():
            assert key in actual, f"{where}.{key} missing in {actual!r}"
            assert_shape(actual[key], value, f"{where}.{key}")
        return
    assert actual == expected, f"{where}: {actual!r} != {expected!r}"


@pytest.mark.parametrize("profile, scenario, expected", TABLE)
def test_profile_shapes(serve: Callable[[str], ProfileServer], profile: str, scenario: str, expected: Any) -> None:
    server = serve(profile)
    observed = SCENARIOS[scenario][0](server)
    assert_shape(observed, expected, scenario)


def test_every_profile_is_in_the_table() -> None:
    covered = {param.values[0] for param in TABLE}
    assert covered == set(PROFILES)


def test_requests_are_recorded_with_headers_and_body(serve: Callable[[str], ProfileServer]) -> None:
    server = serve("lmdeploy-0.12")
    exchange(server, "POST", CHAT, chat(server, enable_thinking=True))
    last = server.last
    assert (last.method, last.route) == ("POST", CHAT)
    assert last.headers["authorization"] == f"Bearer {SENTINEL}"
    assert last.json["enable_thinking"] is True
    assert server.seen[-1].thinking is True


def test_a_queued_reply_still_wins_over_the_profile(serve: Callable[[str], ProfileServer]) -> None:
    server = serve("lmdeploy-0.18")
    server.add(Json({"custom": True}, 418))
    assert exchange(server, "POST", CHAT, chat(server))[0] == 418
    assert exchange(server, "POST", CHAT, chat(server))[0] == 200


def test_reset_restores_settings(serve: Callable[[str], ProfileServer]) -> None:
    server = serve("lmdeploy-0.13")
    server.tool_parser = False
    server.api_keys = None
    server.fail("engine")
    server.reset()
    assert server.tool_parser and server.api_keys == [SENTINEL] and server.pending() == 0


@pytest.mark.parametrize("profile, kind", [("gateway", "context"), ("lmdeploy-0.16", "rate_limit")])
def test_a_failure_the_profile_does_not_know_is_refused_when_scripted(
        serve: Callable[[str], ProfileServer], profile: str, kind: str) -> None:
    with pytest.raises(ValueError, match=kind):
        serve(profile).fail(kind)


@pytest.mark.parametrize("release, expected", [
    ("0.6.0", {"status": 200, "content": "partial ", "finish": "stop"}),
    ("0.7.0", {"status": 200, "content": "partial internal error happened", "finish": "error"}),
])
def test_06_era_engine_failure_variants(serve: Callable[[str], ProfileServer], release: str,
                                       expected: Dict[str, Any]) -> None:
    server = serve("lmdeploy-0.6")
    server.release = release
    assert_shape(s_engine(server), expected)


# ------------------------------------------------------------- interncli against the profiles


@pytest.mark.parametrize("profile", PROFILES)
def test_interncli_plain_chat(serve: Callable[[str], ProfileServer], profile: str) -> None:
    server = serve(profile)
    result = create(server, "-g", "user", "hello there")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "echo: hello there\n", "")
    assert server.last.headers["content-type"] == "application/json"
    assert server.last.json == {"model": model_of(server), "messages": [{"role": "user", "content": "hello there"}]}


@pytest.mark.parametrize("profile", PROFILES)
def test_interncli_streamed_chat(serve: Callable[[str], ProfileServer], profile: str) -> None:
    server = serve(profile)
    result = create(server, "--stream", "-g", "user", "hello there")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "echo: hello there\n", "")
    assert server.last.json["stream"] is True


@pytest.mark.parametrize("profile", PROFILES)
def test_interncli_streamed_json_is_every_chunk(serve: Callable[[str], ProfileServer], profile: str) -> None:
    server = serve(profile)
    result = create(server, "--stream", "--json", "-g", "user", "hello there")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 0
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in lines) == "echo: hello there"


@pytest.mark.parametrize("profile", PROFILES)
def test_interncli_models_list(serve: Callable[[str], ProfileServer], profile: str) -> None:
    server = serve(profile)
    result = run(server, "models", "list")
    assert result.exit_code == 0
    assert result.stdout.splitlines()[0] == model_of(server)


@pytest.mark.parametrize("profile, message", [
    ("lmdeploy-0.12", "[401] Unauthorized"), ("lmdeploy-0.13", "[401] Unauthorized"),
    ("lmdeploy-0.14", "[401] Unauthorized"), ("lmdeploy-0.16", "[401] Unauthorized."),
    ("lmdeploy-0.17", "[401] Unauthorized."), ("lmdeploy-0.18", "[401] Unauthorized."),
    ("gateway", "[A0202] user authenticate failed"),
])
def test_interncli_auth_error_is_exit_3(serve: Callable[[str], ProfileServer], profile: str, message: str) -> None:
    server = serve(profile)
    result = create(server, "-g", "user", "hi", key="sk-wrong-token")
    assert result.exit_code == 3 and result.stdout == ""
    assert result.stderr.splitlines()[0] == f"interncli: error: {message}"
    assert result.stderr.splitlines()[1].startswith("hint: ")


@pytest.mark.parametrize("profile", ["lmdeploy-0.6", "lmdeploy-0.10"])
def test_interncli_wrapped_401_is_exit_3(serve: Callable[[str], ProfileServer], profile: str) -> None:
    # The message is checked in tests/test_replies_per_server.py (issue 10, #1).
    result = create(serve(profile), "-g", "user", "hi", key="sk-wrong-token")
    assert result.exit_code == 3 and result.stdout == ""


@pytest.mark.parametrize("profile, message", [
    ("lmdeploy-0.6", "The model `nope` does not exist."),
    *[(p, "The model 'nope' does not exist.") for p in LMDEPLOY_PROFILES[1:]],
    ("gateway", "Requested model does not exist"),
])
def test_interncli_unknown_model_is_exit_5(serve: Callable[[str], ProfileServer], profile: str, message: str) -> None:
    server = serve(profile)
    result = run(server, "chat", "create", "-m", "nope", "-g", "user", "hi")
    assert result.exit_code == 5 and result.stdout == ""
    assert message in result.stderr.splitlines()[0]


@pytest.mark.parametrize("profile", ["lmdeploy-0.16", "lmdeploy-0.17", "lmdeploy-0.18", "gateway"])
def test_interncli_engine_failure_as_http_error_is_exit_1(serve: Callable[[str], ProfileServer], profile: str) -> None:
    server = serve(profile)
    server.fail("engine")
    result = create(server, "-g", "user", "hi")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("interncli: error: [500] ")


@pytest.mark.parametrize("profile", ["lmdeploy-0.16", "lmdeploy-0.17", "lmdeploy-0.18", "gateway"])
def test_interncli_in_stream_error_event_is_exit_1(serve: Callable[[str], ProfileServer], profile: str) -> None:
    server = serve(profile)
    server.fail("engine", text="partial ")
    result = create(server, "--stream", "-g", "user", "hi")
    assert result.exit_code == 1
    assert result.stdout.startswith("partial ")  # already printed, kept
    assert "[500]" in result.stderr


def test_interncli_06_500_text_plain_is_exit_1(serve: Callable[[str], ProfileServer]) -> None:
    server = serve("lmdeploy-0.6")
    server.fail("engine")
    result = create(server, "-g", "user", "hi")
    assert result.exit_code == 1 and result.stdout == ""
    assert "500" in result.stderr.splitlines()[0] and "Internal Server Error" in result.stderr


def test_interncli_06_cut_stream_is_exit_6(serve: Callable[[str], ProfileServer]) -> None:
    server = serve("lmdeploy-0.6")
    server.fail("engine", text="partial ")
    result = create(server, "--stream", "-g", "user", "hi")
    assert result.exit_code == 6
    assert "cut" in result.stderr


@pytest.mark.parametrize("profile", ["lmdeploy-0.16", "lmdeploy-0.17", "lmdeploy-0.18"])
def test_interncli_016_context_error_is_exit_5(serve: Callable[[str], ProfileServer], profile: str) -> None:
    server = serve(profile)
    server.fail("context")
    result = create(server, "-g", "user", "hi")
    assert result.exit_code == 5 and result.stdout == ""
    assert "must be smaller than the model context length" in result.stderr


# Streamed tool calls of 0.10/0.12 and the gateway's refusal of stream + tools are wrong today
# (README "Known wrong today"), so they are not in this list.
TOOL_RUNS = [(p, False) for p in PROFILES] + [(p, True) for p in PROFILES
                                              if p not in ("lmdeploy-0.10", "lmdeploy-0.12", "gateway")]


@pytest.mark.parametrize("profile, stream", TOOL_RUNS)
def test_interncli_tool_call_is_printed(serve: Callable[[str], ProfileServer], tmp_path: Any, profile: str,
                                       stream: bool) -> None:
    server = serve(profile)
    spec = tmp_path / "spec.yaml"
    spec.write_text("tools:\n  - name: get_weather\n    parameters:\n      type: object\n"
                    "      properties: {city: {type: string}}\n    command: [echo, '{city}']\n")
    server.script(Engine(text="Let me check.", tool_call=CALL))
    result = create(server, *(["--stream"] if stream else []), "--tools", str(spec), "-g", "user", "weather?")
    assert result.exit_code == 0
    last = result.stdout.splitlines()[-1].split(" ", 3)
    assert (last[0], last[2], json.loads(last[3])) == ("tool_call", "get_weather", {"city": "上海"})
    assert server.last.json["tools"][0]["function"]["name"] == "get_weather"


@pytest.mark.parametrize("profile", ["lmdeploy-0.17", "lmdeploy-0.18", "gateway"])
@pytest.mark.parametrize("stream", [False, True])
def test_interncli_n3_prints_three_choices(serve: Callable[[str], ProfileServer], profile: str, stream: bool) -> None:
    # Streamed from 0.17, one chunk carries a piece of every choice.
    result = create(serve(profile), *(["--stream"] if stream else []), "-n", "3", "-g", "user", "hi")
    assert result.exit_code == 0
    assert [line for line in result.stdout.splitlines() if line.startswith("=====")] == [
        f"===== Chat Completion {i} =====" for i in range(3)]


@pytest.mark.parametrize("profile", [p for p in PROFILES if p != "lmdeploy-0.6"])
@pytest.mark.parametrize("stream", [False, True])
def test_interncli_show_reasoning(serve: Callable[[str], ProfileServer], profile: str, stream: bool) -> None:
    server = serve(profile)
    server.script(Engine(text="answer", reasoning="hmm"))
    thinking = ["--thinking"] if profile == "gateway" else []  # the gateway only reasons when asked
    result = create(server, *thinking, *(["--stream"] if stream else []), "--show-reasoning", "-g", "user", "hi")
    assert result.exit_code == 0
    assert result.stdout == "answer\n"
    assert "hmm" in result.stderr


@pytest.mark.parametrize("profile", LMDEPLOY_PROFILES)
def test_interncli_stream_usage_placements_are_not_errors(serve: Callable[[str], ProfileServer], profile: str) -> None:
    # No -u today; a stream whose chunks carry usage (every chunk, finish chunk, choices: []) must
    # still print the reply: queue the profile's own usage stream by asking for it in the body.
    server = serve(profile)
    _, _, raw = streamed(server, stream_options={"include_usage": True})
    server.add(Stream([raw.decode()], done=False))
    result = create(server, "--stream", "-g", "user", "hello there")
    assert (result.exit_code, result.stdout) == (0, "echo: hello there\n")


@pytest.mark.integration
@pytest.mark.parametrize("profile", PROFILES)
def test_installed_command_streams_from_each_profile(serve: Callable[[str], ProfileServer], exe: str,
                                                    profile: str) -> None:
    # The installed console script, in a subprocess, end to end: the token from the environment.
    server = serve(profile)
    env = {**os.environ, "INTERN_API_KEY": SENTINEL}
    done = subprocess.run([exe, "-b", server.base_url, "--max-retries", "0", "chat", "create", "-m",
                           model_of(server), "--stream", "-g", "user", "hello there"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, "echo: hello there\n", "")
    assert server.last.headers["authorization"] == f"Bearer {SENTINEL}"
