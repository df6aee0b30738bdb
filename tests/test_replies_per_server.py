"""interncli against each server profile (tests/servers/lmdeploy.py) for every reply and error
shape: error bodies shown as message and code, failed replies (finish_reason error, abort,
parse_error), a full context, empty replies, fewer choices than -n, and the messages that help
(issue 10; tests/servers/README.md "Known wrong today")."""

from __future__ import annotations

import json
from typing import Any, Callable, List

import pytest

from tests.apiserver import Json, Raw, Stream
from tests.conftest import SENTINEL, Result, invoke
from tests.servers.fixtures import model_of
from tests.servers.lmdeploy import ENGINE_ERROR, INPUT_LENGTH_ERROR, LMDEPLOY_PROFILES, Engine, ProfileServer

ERROR = "interncli: error: "


def run(server: ProfileServer, *args: str, key: str = SENTINEL) -> Result:
    """interncli in-process against ``server`` (no retries: a failure is one request)."""
    result = invoke(["-b", server.base_url, "-k", key, "--max-retries", "0", *args])
    assert SENTINEL not in result.stdout and SENTINEL not in result.stderr
    return result


def create(server: ProfileServer, *args: str, key: str = SENTINEL) -> Result:
    return run(server, "chat", "create", "-m", model_of(server), *args, key=key)


def lines(text: str) -> List[str]:
    return text.splitlines()


# ------------------------------------------------------------------------ error bodies (#1)


@pytest.mark.parametrize("profile", ["lmdeploy-0.6", "lmdeploy-0.10"])
def test_wrapped_401_is_its_message_and_code(serve: Callable[[str], ProfileServer], profile: str) -> None:
    result = create(serve(profile), "-g", "user", "hi", key="sk-wrong-token")
    assert (result.exit_code, result.stdout) == (3, "")
    assert lines(result.stderr)[0] == ERROR + "[invalid_api_key] Please request with valid api key!"


@pytest.mark.parametrize("profile", ["lmdeploy-0.6", "lmdeploy-0.10"])
def test_wrapped_401_under_json_is_not_a_string_of_json(serve: Callable[[str], ProfileServer], profile: str) -> None:
    result = create(serve(profile), "--json", "-g", "user", "hi", key="sk-wrong-token")
    error = json.loads(lines(result.stderr)[0])["error"]
    assert (error["code"], error["message"], error["exit_code"]) == (
        "invalid_api_key", "Please request with valid api key!", 3)


@pytest.mark.parametrize("profile", ["lmdeploy-0.6", "lmdeploy-0.10", "lmdeploy-0.12"])
def test_validation_errors_are_one_item_each_never_the_body(serve: Callable[[str], ProfileServer],
                                                            profile: str) -> None:
    # A wrong type for a known field reaches LMDeploy's validation; 0.10+ echo the request as `body`.
    server = serve(profile)
    server.add(Raw(json.dumps({"detail": [{"type": "int_type", "loc": ["body", "n"], "msg": "Input should be a "
                                           "valid integer", "input": "x"}],
                               "body": {"messages": [{"role": "user", "content": "the secret prompt"}]}}).encode(),
                   422, "application/json"))
    result = create(server, "-g", "user", "the secret prompt")
    assert (result.exit_code, result.stdout) == (5, "")
    assert lines(result.stderr)[0] == ERROR + "[422] n: Input should be a valid integer"
    assert "secret" not in result.stderr


@pytest.mark.parametrize("status", [200, 400])
def test_gateway_envelope_is_its_code_at_any_status(serve: Callable[[str], ProfileServer], status: int) -> None:
    server = serve("gateway")
    server.envelope_status = status
    server.fail("token_expired")
    result = create(server, "-g", "user", "hi")
    assert (result.exit_code, result.stdout) == (3, "")
    assert lines(result.stderr)[0] == ERROR + "[A0211] token expired"
    assert "traceId" in lines(result.stderr)[1]


@pytest.mark.parametrize("stream", [False, True])
def test_lmdeploy_proxy_error_at_200(serve: Callable[[str], ProfileServer], stream: bool) -> None:
    server = serve("lmdeploy-0.10")
    body = {"error_code": 10402, "text": "Failed to get response after a period of time"}
    server.add(Json(body) if not stream else Raw(json.dumps(body).encode() + b"\n", 200, "text/event-stream"))
    result = create(server, *(["--stream"] if stream else []), "-g", "user", "hi")
    assert (result.exit_code, result.stdout) == (1, "")
    assert lines(result.stderr)[0] == ERROR + "[10402] Failed to get response after a period of time"


@pytest.mark.parametrize("profile", ["lmdeploy-0.16", "lmdeploy-0.18"])
def test_in_stream_error_event_before_any_text(serve: Callable[[str], ProfileServer], profile: str) -> None:
    server = serve(profile)
    server.fail("engine")
    result = create(server, "--stream", "-g", "user", "hi")
    assert (result.exit_code, result.stdout) == (1, "")
    assert lines(result.stderr)[0] == ERROR + "[500] An internal server error occurred."


# ------------------------------------------ finish_reason error / abort / parse_error (#2, #3, #5)

OLD_ERA_FAILING = ["lmdeploy-0.10", "lmdeploy-0.12", "lmdeploy-0.13", "lmdeploy-0.14"]


@pytest.mark.parametrize("profile", OLD_ERA_FAILING)
def test_finish_reason_error_is_exit_1_with_nothing_on_stdout(serve: Callable[[str], ProfileServer],
                                                              profile: str, tmp_path: Any) -> None:
    server = serve(profile)
    server.fail("engine", text="partial ")
    store = tmp_path / "conv.json"
    result = create(server, "--conversation", str(store), "-g", "user", "hi")
    assert (result.exit_code, result.stdout) == (1, "")
    assert lines(result.stderr)[0] == (ERROR + "the server failed while generating the reply (finish_reason: "
                                       "error): partial " + ENGINE_ERROR)
    assert not store.exists()  # no conversation written


@pytest.mark.parametrize("profile", OLD_ERA_FAILING)
def test_streamed_finish_reason_error_keeps_what_was_printed(serve: Callable[[str], ProfileServer],
                                                             profile: str, tmp_path: Any) -> None:
    server = serve(profile)
    server.fail("engine", text="partial ")
    store = tmp_path / "conv.json"
    result = create(server, "--stream", "--conversation", str(store), "-g", "user", "hi")
    assert result.exit_code == 1
    assert result.stdout == "partial "  # printed before the failure; the error text is not
    assert ENGINE_ERROR in result.stderr and "finish_reason: error" in result.stderr
    assert not store.exists()


def test_07_error_without_status_text(serve: Callable[[str], ProfileServer]) -> None:
    server = serve("lmdeploy-0.6")
    server.release = "0.7.0"
    server.fail("engine")
    result = create(server, "-g", "user", "hi")
    assert (result.exit_code, result.stdout) == (1, "")
    assert lines(result.stderr)[0].endswith("(finish_reason: error): internal error happened")


@pytest.mark.parametrize("finish", ["abort", "parse_error"])
@pytest.mark.parametrize("stream", [False, True])
def test_abort_and_parse_error_are_failures(serve: Callable[[str], ProfileServer], finish: str,
                                            stream: bool) -> None:
    server = serve("lmdeploy-0.14")
    choice = {"index": 0, "message": {"role": "assistant", "content": ""}, "finish_reason": finish}
    if stream:
        server.add(Stream([{"id": "1", "object": "chat.completion.chunk", "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": finish}]}]))
    else:
        server.add(Json({"id": "1", "object": "chat.completion", "choices": [choice]}))
    result = create(server, *(["--stream"] if stream else []), "-g", "user", "hi")
    assert (result.exit_code, result.stdout) == (1, "")
    assert f"(finish_reason: {finish})" in lines(result.stderr)[0]


def test_tools_run_stops_at_a_failed_reply(serve: Callable[[str], ProfileServer], tmp_path: Any) -> None:
    server = serve("lmdeploy-0.12")
    spec = tmp_path / "spec.yaml"
    spec.write_text("tools:\n  - name: get_weather\n    parameters: {type: object}\n    command: [echo, hi]\n")
    server.fail("engine")
    result = run(server, "tools", "run", str(spec), "-m", server.model, "--yes", "weather?")
    assert (result.exit_code, result.stdout) == (1, "")
    assert "finish_reason: error" in result.stderr


# ---------------------------------------------------------------- a full context (#4, #6, #7, #8)


@pytest.mark.parametrize("profile", OLD_ERA_FAILING)
@pytest.mark.parametrize("stream", [False, True])
def test_input_length_error_is_exit_5_with_the_context_hint(serve: Callable[[str], ProfileServer], profile: str,
                                                            stream: bool) -> None:
    server = serve(profile)
    server.fail("context")
    result = create(server, *(["--stream"] if stream else []), "-M", "100", "-g", "user", "hi")
    assert (result.exit_code, result.stdout) == (5, "")
    assert lines(result.stderr)[0].startswith(ERROR + "the prompt is longer than the server accepts")
    assert INPUT_LENGTH_ERROR in lines(result.stderr)[0]
    assert lines(result.stderr)[1] == "hint: The conversation fills the model's context; shorten it or start a new one."


@pytest.mark.parametrize("profile", LMDEPLOY_PROFILES[:5])
@pytest.mark.parametrize("stream", [False, True])
def test_empty_reply_cut_at_length_is_a_full_context(serve: Callable[[str], ProfileServer], profile: str,
                                                     stream: bool, tmp_path: Any) -> None:
    # "" up to 0.12, null from 0.13: never "None", never an empty answer.
    server = serve(profile)
    server.fail("context")
    store = tmp_path / "conv.json"
    result = create(server, *(["--stream"] if stream else []), "--conversation", str(store), "-g", "user", "hi")
    assert (result.exit_code, result.stdout) == (5, "")
    assert "context" in lines(result.stderr)[0]
    assert lines(result.stderr)[1] == "hint: The conversation fills the model's context; shorten it or start a new one."
    assert not store.exists()


@pytest.mark.parametrize("profile", ["lmdeploy-0.16", "lmdeploy-0.17", "lmdeploy-0.18"])
def test_016_context_400_has_the_context_hint(serve: Callable[[str], ProfileServer], profile: str) -> None:
    server = serve(profile)
    server.fail("context")
    result = create(server, "-g", "user", "hi")
    assert (result.exit_code, result.stdout) == (5, "")
    assert lines(result.stderr)[1] == "hint: The conversation fills the model's context; shorten it or start a new one."


@pytest.mark.parametrize("stream", [False, True])
def test_cut_while_thinking_is_not_a_full_context(serve: Callable[[str], ProfileServer], stream: bool) -> None:
    server = serve("lmdeploy-0.18")
    if stream:
        server.add(Stream([{"id": "1", "object": "chat.completion.chunk", "choices": [
            {"index": 0, "delta": {"role": "assistant", "reasoning_content": "hmm more"}}]},
            {"id": "1", "object": "chat.completion.chunk", "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": "length"}]}]))
    else:
        server.add(Json({"id": "1", "object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": None, "reasoning_content": "hmm more"},
             "finish_reason": "length"}], "usage": {"completion_tokens": 2}}))
    result = create(server, *(["--stream"] if stream else []), "-M", "2", "-g", "user", "hi")
    assert (result.exit_code, result.stdout) == (0, "")
    assert "cut at max_tokens" in result.stderr and "still reasoning" in result.stderr


# ------------------------------------------------------------------- an empty reply (#9)


@pytest.mark.parametrize("stream", [False, True])
def test_empty_stop_reply_warns_and_exits_0(serve: Callable[[str], ProfileServer], stream: bool) -> None:
    server = serve("lmdeploy-0.6")
    server.release = "0.6.0"
    server.fail("engine")
    result = create(server, *(["--stream"] if stream else []), "-g", "user", "hi")
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr == ("interncli: warning: the server returned an empty reply (it may have failed; "
                             "see its log)\n")


# ---------------------------------------------------------------- fewer choices than -n (#10)


@pytest.mark.parametrize("profile", LMDEPLOY_PROFILES[:6])
@pytest.mark.parametrize("stream", [False, True])
def test_fewer_choices_than_n_warns(serve: Callable[[str], ProfileServer], profile: str, stream: bool) -> None:
    result = create(serve(profile), *(["--stream"] if stream else []), "-n", "3", "-g", "user", "hi")
    assert result.exit_code == 0
    assert "echo: hi" in result.stdout
    assert result.stderr == "interncli: warning: the server returned 1 choice; 3 were asked for\n"


@pytest.mark.parametrize("profile", ["lmdeploy-0.17", "gateway"])
def test_all_choices_no_warning(serve: Callable[[str], ProfileServer], profile: str) -> None:
    result = create(serve(profile), "-n", "3", "-g", "user", "hi")
    assert (result.exit_code, result.stderr) == (0, "")


# ------------------------------------------------------------- thinking inside content (#17)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("profile, parser", [("lmdeploy-0.6", True), ("lmdeploy-0.16", False)])
def test_thinking_in_content_is_mentioned_once(serve: Callable[[str], ProfileServer], stream: bool, profile: str,
                                               parser: bool) -> None:
    server = serve(profile)
    server.reasoning_parser = parser
    server.script(Engine(text="answer", reasoning="hmm"))
    result = create(server, *(["--stream"] if stream else []), "--show-reasoning", "-g", "user", "hi")
    assert (result.exit_code, result.stdout) == (0, "<think>hmm</think>answer\n")
    assert result.stderr.count("--reasoning-parser") == 1
    assert result.stderr.startswith("interncli: the server sends the model's thinking inside the answer")


def test_thinking_in_content_without_show_reasoning_is_not_mentioned(serve: Callable[[str], ProfileServer]) -> None:
    server = serve("lmdeploy-0.6")
    server.script(Engine(text="answer", reasoning="hmm"))
    assert create(server, "-g", "user", "hi").stderr == ""


# -------------------------------------------------------------------- messages that help (#14)


@pytest.mark.parametrize("profile", ["lmdeploy-0.6", "lmdeploy-0.12", "lmdeploy-0.18"])
def test_unknown_model_404_hints_models_list(serve: Callable[[str], ProfileServer], profile: str) -> None:
    result = run(serve(profile), "chat", "create", "-g", "user", "hi")  # no -m: intern-latest
    assert result.exit_code == 5
    assert "does not exist" in lines(result.stderr)[0]
    assert "interncli models list" in lines(result.stderr)[1]


@pytest.mark.parametrize("profile", ["lmdeploy-0.10", "lmdeploy-0.16", "gateway"])
def test_a_404_names_the_url_tried_and_the_prefixes(serve: Callable[[str], ProfileServer], profile: str) -> None:
    server = serve(profile)
    result = invoke(["-b", server.url + "/api/v1", "-k", SENTINEL, "--max-retries", "0", "chat", "create",
                     "-m", model_of(server), "-g", "user", "hi"])
    assert result.exit_code == 5
    hint = lines(result.stderr)[1]
    assert server.url + "/api/v1/chat/completions" in hint and "/v1" in hint and "/api/v1" in hint


def test_a_non_json_200_names_its_status(serve: Callable[[str], ProfileServer]) -> None:
    server = serve("lmdeploy-0.12")
    server.add(Raw(b"<html><body>Welcome</body></html>", 200, "text/html"))
    result = create(server, "-g", "user", "hi")
    assert (result.exit_code, result.stdout) == (1, "")
    assert lines(result.stderr)[0].startswith(ERROR + "the reply (HTTP 200) is not JSON: <html>")


def test_a_stream_that_is_html_from_its_first_byte(serve: Callable[[str], ProfileServer]) -> None:
    server = serve("lmdeploy-0.12")
    server.add(Raw(b"<html><body>Welcome</body></html>\n", 200, "text/html"))
    result = create(server, "--stream", "-g", "user", "hi")
    assert (result.exit_code, result.stdout) == (6, "")
    assert lines(result.stderr)[0].startswith(ERROR + "the reply is not an event stream: <html>")
    assert "printed" not in result.stderr


def test_a_retry_after_too_long_to_wait_says_the_server_asked(serve: Callable[[str], ProfileServer]) -> None:
    server = serve("gateway")
    server.add(Json({"msgCode": "-20053", "msg": "Exceeded frequency limit", "success": False}, 429,
                    {"Retry-After": "3600"}))
    result = invoke(["-b", server.base_url, "-k", SENTINEL, "--max-retries", "2", "chat", "create",
                     "-m", "intern-latest", "-g", "user", "hi"])
    assert result.exit_code == 4
    assert len(server.requests) == 1  # not waited for, not retried
    assert "asked to wait 3600s" in lines(result.stderr)[1] and "Retry-After" in lines(result.stderr)[1]


def test_gateway_invalid_parameter_hint_names_the_parameters(serve: Callable[[str], ProfileServer]) -> None:
    result = create(serve("gateway"), "--stop", "x", "-g", "user", "hi")  # the gateway refuses `stop`
    assert result.exit_code == 5
    assert lines(result.stderr)[0] == ERROR + "[-10002] Invalid parameter"
    assert "parameters" in lines(result.stderr)[1] and "empty" not in lines(result.stderr)[1]


@pytest.mark.parametrize("sensitive, flagged", [("true", True), ("false", False), (True, True), (False, False)])
def test_moderation_sensitive_as_text_is_a_boolean(serve: Callable[[str], ProfileServer], sensitive: Any,
                                                   flagged: bool) -> None:
    server = serve("gateway")
    server.add(Json({"id": "c", "object": "chat.completion", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "moderation": {"sensitive": sensitive, "category": "politics"}}))
    result = create(server, "-g", "user", "hi")
    assert (result.exit_code, result.stdout) == (0, "ok\n")
    assert ("flagged" in result.stderr) is flagged


# ------------------------------------------------------------ the failure text is safe to show


def test_a_failure_text_is_redacted_and_one_line(serve: Callable[[str], ProfileServer]) -> None:
    # A hostile server may echo the token, or send escapes, in the text of a failed reply.
    server = serve("lmdeploy-0.12")
    server.add(Json({"id": "1", "object": "chat.completion", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": f"bad {SENTINEL}\n\x1b]0;title\x07 end"},
         "finish_reason": "error"}]}))
    result = create(server, "-g", "user", "hi")  # run() checks that the token is nowhere
    assert (result.exit_code, result.stdout) == (1, "")
    first = lines(result.stderr)[0]
    assert first.startswith(ERROR) and first.endswith(" end") and "\x1b" not in result.stderr


def test_a_bare_json_error_line_midway_is_that_error(serve: Callable[[str], ProfileServer]) -> None:
    # LMDeploy's proxy ends a stream that fails after starting with bare JSON, no `data:`.
    server = serve("lmdeploy-0.18")
    chunk = {"id": "1", "object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": {"role": "assistant", "content": "partial "}}]}
    server.add(Raw(b"data: " + json.dumps(chunk).encode() + b"\n\n"
                   + b'{"error": true, "status": 500, "message": "Internal streaming error"}\n',
                   200, "text/event-stream"))
    result = create(server, "--stream", "-g", "user", "hi")
    assert (result.exit_code, result.stdout) == (1, "partial ")
    assert lines(result.stderr)[0] == ERROR + "[500] Internal streaming error"


# --------------------------------------------------------- streamed tool calls of 0.10-0.12 (#12)

SPEC = ("tools:\n  - name: get_weather\n    parameters:\n      type: object\n"
        "      properties: {city: {type: string}}\n    command: [echo, '{city}']\n")


@pytest.mark.parametrize("profile", ["lmdeploy-0.10", "lmdeploy-0.12"])
def test_streamed_tool_call_markup_is_not_the_answer(serve: Callable[[str], ProfileServer], profile: str,
                                                     tmp_path: Any) -> None:
    server = serve(profile)
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    store = tmp_path / "conv.json"
    server.script(Engine(text="Let me check.", tool_call=("get_weather", {"city": "上海"})))
    result = create(server, "--stream", "--tools", str(spec), "--conversation", str(store), "-g", "user", "w?")
    assert result.exit_code == 0
    text, call = result.stdout.splitlines()
    assert text == "Let me check."  # no <|action_start|> markup
    words = call.split(" ", 3)
    assert (words[0], words[1].startswith("chatcmpl-tool-"), words[2], words[3]) == (
        "tool_call", True, "get_weather", json.dumps('{"city": "上海', ensure_ascii=False))  # 0.10 loses the "}
    assert result.stderr == ("interncli: warning: the arguments of tool call get_weather are not valid JSON; "
                             "shown as the text received\n")
    kept = json.loads(store.read_text())[-1]
    assert kept["content"] == "Let me check."
    first_id = kept["tool_calls"][0]["id"]
    assert first_id == words[1]  # the first delta's id, not a later piece's


@pytest.mark.parametrize("text", ["a <b> c", "x <|act", "ends with <"])
def test_text_that_only_looks_like_markup_is_printed(serve: Callable[[str], ProfileServer], text: str) -> None:
    server = serve("lmdeploy-0.12")
    server.script(Engine(text=text))
    result = create(server, "--stream", "-g", "user", "hi")
    assert (result.exit_code, result.stdout) == (0, text + "\n")


def test_markup_without_a_tool_call_is_printed_at_the_end(serve: Callable[[str], ProfileServer],
                                                          tmp_path: Any) -> None:
    # 0.10-0.12 started without --tool-call-parser: the markup is all there is; it is the reply.
    server = serve("lmdeploy-0.12")
    server.tool_parser = False
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    server.script(Engine(text="Let me check.", tool_call=("get_weather", {"city": "x"})))
    result = create(server, "--stream", "--tools", str(spec), "-g", "user", "w?")
    assert result.exit_code == 0
    assert result.stdout.startswith("Let me check.<|action_start|><|plugin|>") and result.stdout.endswith("\n")


@pytest.mark.parametrize("stream", [False, True])
def test_a_failed_reply_under_json_is_a_json_error(serve: Callable[[str], ProfileServer], stream: bool) -> None:
    server = serve("lmdeploy-0.14")
    server.fail("engine")
    result = create(server, "--json", *(["--stream"] if stream else []), "-g", "user", "hi")
    assert result.exit_code == 1
    assert all(json.loads(line)["choices"][0].get("finish_reason") != "error" for line in lines(result.stdout))
    error = json.loads(lines(result.stderr)[-1])["error"]
    assert (error["exit_code"], error["code"]) == (1, None)
    assert ENGINE_ERROR in error["message"]


@pytest.mark.parametrize("stream", [False, True])
def test_a_full_context_under_json(serve: Callable[[str], ProfileServer], stream: bool) -> None:
    server = serve("lmdeploy-0.13")
    server.fail("context")
    result = create(server, "--json", *(["--stream"] if stream else []), "-g", "user", "hi")
    assert (result.exit_code, result.stdout) == (5, "")
    assert "context" in json.loads(lines(result.stderr)[-1])["error"]["hint"]


def test_a_streamed_tool_call_without_a_name_is_left_out_with_a_warning(serve: Callable[[str], ProfileServer],
                                                                       tmp_path: Any) -> None:
    # LMDeploy 0.10's shared parser, on a second request: the markup as content, one nameless call.
    server = serve("lmdeploy-0.10")
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    server.add(Stream([{"id": "2", "object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": {"role": "assistant", "content": "hello", "tool_calls": []}, "finish_reason": None}]},
        {"id": "2", "object": "chat.completion.chunk", "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": "", "tool_calls": [
                {"id": "chatcmpl-tool-Z", "type": "function", "index": 0,
                 "function": {"name": None, "arguments": ""}}]}, "finish_reason": "stop"}]}]))
    result = create(server, "--stream", "--tools", str(spec), "-g", "user", "w?")
    assert (result.exit_code, result.stdout) == (0, "hello\n")
    assert result.stderr == "interncli: warning: the reply has 1 tool call without a name; left out\n"


@pytest.mark.parametrize("status, stream", [(422, False), (401, False), (200, True)])
def test_an_error_body_nested_hundreds_deep_is_an_error_not_a_crash(serve, status, stream):
    # Found in review: `detail` inside `detail` was unwrapped by recursion with no bound, so a
    # hostile body 900 levels deep (valid JSON, a few KiB) ended in a RecursionError.
    server = serve("lmdeploy-0.12")
    deep = ('{"detail":' * 900 + '"x"' + "}" * 900).encode()
    server.add(Raw(deep + (b"\n" if stream else b""), status, "text/event-stream" if stream else "application/json"))
    result = invoke(["-b", server.base_url, "-k", SENTINEL, "--max-retries", "0", "chat", "create",
                     "-m", model_of(server), *(["--stream"] if stream else []), "-g", "user", "hi"])
    assert result.exit_code in (1, 3, 5), result.stderr
    assert "nested too deeply" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("profile", ["lmdeploy-0.10", "lmdeploy-0.12"])
def test_streamed_tool_call_markup_is_not_the_answer_with_n_above_1(serve: Callable[[str], ProfileServer],
                                                                   profile: str, tmp_path: Any) -> None:
    # These versions ignore n and stream one choice; with -n 2 it is printed whole, under its
    # header, when it ends: without the markup, as with n = 1 and as the conversation keeps it.
    server = serve(profile)
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    server.script(Engine(text="Let me check.", tool_call=("get_weather", {"city": "x"})))
    result = create(server, "--stream", "-n", "2", "--tools", str(spec), "-g", "user", "w?")
    assert result.exit_code == 0, result.stderr
    assert "<|" not in result.stdout, result.stdout
    header, text, call = result.stdout.splitlines()
    assert (header, text, call.split(" ")[0]) == ("===== Chat Completion 0 =====", "Let me check.", "tool_call")
