"""`api models.list`, `api models.retrieve` and `api completions.create` (issue 14), in-process
against the test server (tests/apiserver.py) and the LMDeploy profiles (tests/servers/lmdeploy.py):
openai 2.34.0's flags and request bodies, its stdout, and the contract's errors and exit codes.

What openai 2.34.0's CLI does, read in its `openai/cli/_api/` and run against these servers (the
side-by-side checks are in tests/test_openai_parity.py):
- `models.list` prints each model with `model_dump_json(indent=2)`: the four keys its Model type
  declares first (`id`, `created`, `object`, `owned_by`; null when the server sent none), then the
  server's other keys in the order received. `models.retrieve -i ID` does the same for GET
  /models/ID (the id quoted as one path segment, `/` included).
- `completions.create`: argparse flags `-m/--model` (required), `-p/--prompt`, `--stream`,
  `-M/--max-tokens`, `-t/--temperature`, `-P/--top_p`, `-n/--n`, `--logprobs`, `--best_of`,
  `--echo`, `--frequency_penalty`, `--presence_penalty`, `--suffix`, `--stop`, `--user`. Body:
  `model`, `prompt` (null without -p), then the fields given in its client's (alphabetical) order;
  `echo` always (the flag's false default is sent), `stream` only when true.
- Non-streamed output: one choice, its text plus a newline unless it ends with one; several,
  `===== Completion {index} =====` before each, in the order received, and a newline after each.
  Streamed: each chunk's text as it comes (a chunk with several choices: each under
  `===== Chat Completion {index} =====`, sorted, with a newline), then one newline. `--stream`
  with `-n` > 1 is refused before sending. Errors: `Error: ...` on stderr, exit 1 — interncli
  keeps its own error lines and exit codes (contract section 6) instead.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any, Callable, Dict, List

import pytest

from tests.apiserver import Json, Raw, Stream, err_code, err_object
from tests.conftest import SENTINEL
from tests.fakeio import fake_io, run_with
from tests.servers.fixtures import run_on as run
from tests.servers.lmdeploy import (
    COMPLETIONS_PATH,
    ENGINE_ERROR,
    LMDEPLOY_PROFILES,
    Engine,
    ProfileServer,
)

SHARED_SERVER = True
ERROR = "interncli: error: "
CREATE = ("api", "completions.create")


def completion(*texts: Any, indexes: Any = None, finish: str = "stop") -> Dict[str, Any]:
    """A text completion body with one choice per text (``indexes``: their index fields)."""
    indexes = indexes if indexes is not None else range(len(texts))
    return {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m",
            "choices": [{"index": i, "text": t, "logprobs": None, "finish_reason": finish}
                        for i, t in zip(indexes, texts)]}


def chunk(*parts: Any, finish: Any = None) -> Dict[str, Any]:
    """One streamed text completion chunk; ``parts``: texts (index 0) or (index, text) pairs."""
    pairs = [p if isinstance(p, tuple) else (0, p) for p in parts]
    return {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m",
            "choices": [{"index": i, "text": t, "logprobs": None, "finish_reason": finish} for i, t in pairs]}


def keys(api: Any) -> List[str]:
    """The keys of the last request's body, in the order sent."""
    return list(json.loads(api.last.body))


# ------------------------------------------------------------------------------ models.list


def test_models_list_prints_each_model_as_openai_does(cli, api):
    result = cli("api", "models.list")
    assert (result.exit_code, result.stderr) == (0, "")
    # The test server's models have only id and object: openai's Model type shows the rest as null.
    expected = "".join(json.dumps({"id": m, "created": None, "object": "model", "owned_by": None}, indent=2) + "\n"
                       for m in ("intern-latest", "intern-s1", "internvl2.5-latest"))
    assert result.stdout == expected
    assert (api.last.method, api.last.path) == ("GET", "/v1/models")


def test_models_list_puts_the_declared_keys_first_then_the_servers_in_order(cli, api):
    card = {"object": "model", "zeta": {"b": 1, "a": []}, "owned_by": "o", "id": "x", "created": 7, "alpha": "é"}
    api.add(Json({"object": "list", "data": [card]}), path="/v1/models", method="GET")
    result = cli("api", "models.list")
    assert result.exit_code == 0
    assert result.stdout == ('{\n  "id": "x",\n  "created": 7,\n  "object": "model",\n  "owned_by": "o",\n'
                             '  "zeta": {\n    "b": 1,\n    "a": []\n  },\n  "alpha": "é"\n}\n')


def test_models_list_of_nothing_prints_nothing(cli, api):
    api.add(Json({"object": "list", "data": []}), path="/v1/models", method="GET")
    result = cli("api", "models.list")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "")


def test_models_list_escapes_what_a_terminal_would_act_on(api):
    api.add(Json({"object": "list", "data": [{"id": "m\x1b]52;c;aGk=\x07\x9b"}]}), path="/v1/models", method="GET")
    streams = fake_io(stdout_tty=True)
    result = run_with(streams, ["-b", api.base_url, "-k", SENTINEL, "api", "models.list"])
    assert result.exit_code == 0
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout and "\x9b" not in result.stdout
    assert json.loads(result.stdout)["id"] == "m\x1b]52;c;aGk=\x07\x9b"  # the same JSON value


@pytest.mark.parametrize("profile", LMDEPLOY_PROFILES)
def test_models_list_on_every_lmdeploy_prints_its_card(serve: Callable[[str], ProfileServer], profile: str):
    server = serve(profile)
    result = run(server, "api", "models.list")
    assert result.exit_code == 0
    card = json.loads(result.stdout)
    assert list(card)[:4] == ["id", "created", "object", "owned_by"]
    assert (card["id"], card["owned_by"], card["root"]) == (server.model, "lmdeploy", server.model)


# -------------------------------------------------------------------------- models.retrieve


def test_models_retrieve_prints_the_model(cli, api):
    api.add(Json({"object": "model", "id": "m1", "owned_by": "me", "created": 3}), path="/v1/models/m1", method="GET")
    result = cli("api", "models.retrieve", "-i", "m1")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == '{\n  "id": "m1",\n  "created": 3,\n  "object": "model",\n  "owned_by": "me"\n}\n'


def test_models_retrieve_quotes_the_id_as_one_path_segment(cli, api):
    api.add(Json({"id": "org/m 1"}), path="/v1/models/org%2Fm%201", method="GET")
    result = cli("api", "models.retrieve", "--id", "org/m 1")
    assert result.exit_code == 0 and json.loads(result.stdout)["id"] == "org/m 1"
    assert api.last.path == "/v1/models/org%2Fm%201"


@pytest.mark.parametrize("model_id", ["", ".", ".."])
def test_models_retrieve_refuses_an_id_that_names_no_model(cli, api, model_id):
    result = cli("api", "models.retrieve", "-i", model_id)
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith(ERROR + "-i needs a model id") and "hint: " in result.stderr
    assert api.requests == []


def test_models_retrieve_needs_an_id(cli, api):
    result = cli("api", "models.retrieve")
    assert result.exit_code == 2 and "'-i' / '--id'" in result.stderr and api.requests == []


@pytest.mark.parametrize("profile", LMDEPLOY_PROFILES)
def test_models_retrieve_on_lmdeploy_says_it_has_no_such_route(serve: Callable[[str], ProfileServer], profile: str):
    server = serve(profile)
    result = run(server, "api", "models.retrieve", "-i", server.model)
    assert (result.exit_code, result.stdout) == (5, "")
    first, hint = result.stderr.splitlines()
    assert first.startswith(ERROR + "[404] the server has no route for a single model: GET ")
    assert "/v1/models/{} answers HTTP 404 Not Found".format(server.model) in first
    assert hint == "hint: `interncli api models.list` prints every model the server offers."


@pytest.mark.parametrize("profile", ["lmdeploy-0.12", "lmdeploy-0.18"])
def test_models_retrieve_on_lmdeploy_without_the_key_is_an_auth_error(serve: Callable[[str], ProfileServer],
                                                                       profile: str):
    # 0.12.2+ check the key before routing: a 401, not the 404.
    server = serve(profile)
    assert run(server, "api", "models.retrieve", "-i", server.model, key="sk-wrong").exit_code == 3


def test_models_retrieve_of_a_model_the_server_does_not_have_keeps_its_message(cli, api):
    api.add(Json({"error": {"message": "The model 'x' does not exist", "code": "model_not_found"}}, 404),
            path="/v1/models/x", method="GET")
    result = cli("api", "models.retrieve", "-i", "x")
    assert result.exit_code == 5
    assert result.stderr.splitlines()[0] == ERROR + "[model_not_found] The model 'x' does not exist"


def test_models_retrieve_of_something_that_is_not_a_model_is_a_failure(cli, api):
    api.add(Json({"id": 5}), path="/v1/models/m", method="GET")
    result = cli("api", "models.retrieve", "-i", "m")
    assert (result.exit_code, result.stdout) == (1, "")
    assert "not a model with a text id" in result.stderr


# ------------------------------------------------------------------- completions.create: body


def test_completion_sends_openai_s_minimal_body_and_prints_the_text(cli, api):
    api.add(Json(completion("Once upon a time")), path=COMPLETIONS_PATH)
    result = cli(*CREATE, "-m", "m", "-p", "hi")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "Once upon a time\n", "")
    assert (api.last.method, api.last.path) == ("POST", COMPLETIONS_PATH)
    assert api.last.json == {"model": "m", "prompt": "hi", "echo": False}
    assert keys(api) == ["model", "prompt", "echo"]
    assert api.last.headers["authorization"] == "Bearer " + SENTINEL


def test_every_flag_reaches_the_body_in_openai_s_order(cli, api):
    api.add(Json(completion("x")), path=COMPLETIONS_PATH)
    result = cli(*CREATE, "-m", "m", "-p", "hi", "--user", "u", "--stop", "END", "--suffix", "s", "-P", "0.9",
                 "-t", "0.3", "--presence_penalty", "0.1", "--frequency_penalty", "0.5", "--best_of", "3",
                 "--logprobs", "2", "--echo", "-M", "5", "-n", "1")
    assert result.exit_code == 0
    assert keys(api) == ["model", "prompt", "best_of", "echo", "frequency_penalty", "logprobs", "max_tokens", "n",
                         "presence_penalty", "stop", "suffix", "temperature", "top_p", "user"]
    assert api.last.json == {"model": "m", "prompt": "hi", "best_of": 3, "echo": True, "frequency_penalty": 0.5,
                             "logprobs": 2, "max_tokens": 5, "n": 1, "presence_penalty": 0.1, "stop": "END",
                             "suffix": "s", "temperature": 0.3, "top_p": 0.9, "user": "u"}


def test_stream_goes_between_stop_and_suffix(cli, api):
    api.add(Stream([chunk("a"), chunk("", finish="stop")]), path=COMPLETIONS_PATH)
    assert cli(*CREATE, "-m", "m", "-p", "hi", "--stop", "x", "--suffix", "s", "--stream").exit_code == 0
    assert keys(api) == ["model", "prompt", "echo", "stop", "stream", "suffix"]
    assert api.last.json["stream"] is True


@pytest.mark.parametrize("spelling, field, value", [
    ("--top-p", "top_p", "0.5"), ("--best-of", "best_of", "2"), ("--max_tokens", "max_tokens", "7"),
    ("--frequency-penalty", "frequency_penalty", "0.5"), ("--presence-penalty", "presence_penalty", "0.5"),
    ("--prompt", "prompt", "hi"), ("--model", "model", "m2")])
def test_dashed_and_long_spellings(cli, api, spelling, field, value):
    api.add(Json(completion("x")), path=COMPLETIONS_PATH)
    assert cli(*CREATE, "-m", "m", spelling, value).exit_code == 0
    assert str(api.last.json[field]) == value


def test_without_p_the_prompt_is_null_as_openai_sends_it(cli, api):
    api.add(Json(completion("x")), path=COMPLETIONS_PATH)
    assert cli(*CREATE, "-m", "m").exit_code == 0
    assert api.last.json == {"model": "m", "prompt": None, "echo": False}


def test_the_model_defaults_to_the_profile_s(cli, api):
    api.add(Json(completion("x")), path=COMPLETIONS_PATH)
    assert cli(*CREATE, "-p", "hi").exit_code == 0
    assert api.last.json["model"] == "intern-latest"


@pytest.mark.parametrize("flag, value", [("-n", "two"), ("-t", "warm"), ("-M", "1.5"), ("-t", "nan")])
def test_bad_numbers_are_usage_errors(cli, api, flag, value):
    result = cli(*CREATE, "-m", "m", "-p", "hi", flag, value)
    assert result.exit_code == 2 and "hint: " in result.stderr and api.requests == []


def test_an_infinite_number_is_refused_before_sending(cli, api):
    result = cli(*CREATE, "-m", "m", "-p", "hi", "-t", "inf")
    assert result.exit_code == 2 and "NaN or infinity" in result.stderr and api.requests == []


def test_stream_with_n_over_one_is_refused_as_openai_does(cli, api):
    result = cli(*CREATE, "-m", "m", "-p", "hi", "-n", "2", "--stream")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith(ERROR + "Can't stream completions with n>1")
    assert api.requests == []


def test_the_official_service_has_no_completions_endpoint(cli, api):
    result = cli(*CREATE, "-m", "intern-latest", "-p", "hi", env={"INTERN_API": "intern"})
    assert (result.exit_code, result.stdout) == (2, "")
    first, hint = result.stderr.splitlines()
    assert first == ERROR + "the official service has no text completions endpoint (/completions)"
    assert "interncli chat create" in hint
    assert api.requests == []


def test_dry_run_prints_the_request_without_the_token(cli, api):
    result = cli(*CREATE, "-m", "m", "-p", "hi", "-M", "3", "--dry-run")
    assert result.exit_code == 0 and api.requests == []
    head, body = result.stdout.split("\n\n", 1)
    assert head.splitlines()[0] == "POST {}/completions".format(api.base_url)
    assert "Authorization: Bearer ***" in head
    assert json.loads(body) == {"model": "m", "prompt": "hi", "echo": False, "max_tokens": 3}


# ----------------------------------------------------------------- completions.create: output


@pytest.mark.parametrize("text, shown", [("A", "A\n"), ("A\n", "A\n"), ("", "\n"), (None, "\n")])
def test_one_choice_gets_a_newline_unless_it_ends_with_one(cli, api, text, shown):
    api.add(Json(completion(text)), path=COMPLETIONS_PATH)
    result = cli(*CREATE, "-m", "m", "-p", "hi")
    assert (result.exit_code, result.stdout) == (0, shown)


def test_several_choices_each_under_a_header_in_the_order_received(cli, api):
    api.add(Json(completion("B", "A\n", indexes=[1, 0])), path=COMPLETIONS_PATH)
    result = cli(*CREATE, "-m", "m", "-p", "hi", "-n", "2")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == "===== Completion 1 =====\nB\n===== Completion 0 =====\nA\n\n"


def test_fewer_choices_than_n_is_a_warning(cli, api):
    api.add(Json(completion("A")), path=COMPLETIONS_PATH)
    result = cli(*CREATE, "-m", "m", "-p", "hi", "-n", "3")
    assert (result.exit_code, result.stdout) == (0, "A\n")
    assert result.stderr == "interncli: warning: the server returned 1 choice; 3 were asked for\n"


def test_a_reply_cut_at_max_tokens_is_a_warning(cli, api):
    api.add(Json(completion("Once upon", finish="length")), path=COMPLETIONS_PATH)
    result = cli(*CREATE, "-m", "m", "-p", "hi", "-M", "2")
    assert (result.exit_code, result.stdout) == (0, "Once upon\n")
    assert "cut at max_tokens" in result.stderr


def test_stream_prints_each_piece_then_a_newline(cli, api):
    api.add(Stream([chunk("Hel"), chunk("lo\n"), chunk("", finish="stop")]), path=COMPLETIONS_PATH)
    result = cli(*CREATE, "-m", "m", "-p", "hi", "--stream")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "Hello\n\n", "")


def test_a_chunk_with_several_choices_prints_each_under_openai_s_chat_header(cli, api):
    api.add(Stream([chunk("Hel"), chunk((1, "b"), (0, "a")), chunk("", finish="stop"),
                    {"id": "cmpl-1", "object": "text_completion", "choices": [], "usage": {"prompt_tokens": 1}}]),
            path=COMPLETIONS_PATH)
    result = cli(*CREATE, "-m", "m", "-p", "hi", "--stream")
    assert result.exit_code == 0
    assert result.stdout == "Hel===== Chat Completion 0 =====\na\n===== Chat Completion 1 =====\nb\n\n"


def test_a_stream_answered_with_one_json_completion_is_printed_once(cli, api):
    api.add(Json(completion("whole")), path=COMPLETIONS_PATH)
    result = cli(*CREATE, "-m", "m", "-p", "hi", "--stream")
    assert (result.exit_code, result.stdout) == (0, "whole\n")


def test_text_goes_to_a_pipe_as_received_and_to_a_terminal_escaped(api):
    hostile = "ok\x1b]52;c;aGk=\x07\x1b[2J"
    for tty in (False, True):
        api.add(Json(completion(hostile)), path=COMPLETIONS_PATH)
        api.add(Stream([chunk(hostile), chunk("", finish="stop")]), path=COMPLETIONS_PATH)
        for stream in ([], ["--stream"]):
            result = run_with(fake_io(stdout_tty=tty), ["-b", api.base_url, "-k", SENTINEL, *CREATE, "-m", "m",
                                                        "-p", "hi", *stream])
            assert result.exit_code == 0
            assert ("\x1b" in result.stdout) is not tty and result.stdout.startswith("ok")


def test_the_test_server_completes_and_shows_its_models_by_default(cli, api):
    # What the README's examples meet: tests/apiserver.py answers these routes without a script.
    assert cli(*CREATE, "-m", "m", "-p", "hi").stdout == "echo: hi\n"
    assert cli(*CREATE, "-m", "m", "-p", "hi", "--stream").stdout == "echo: hi\n"
    several = cli(*CREATE, "-m", "m", "-p", "hi", "-n", "2")
    assert several.stdout == "===== Completion 0 =====\necho 0: hi\n===== Completion 1 =====\necho 1: hi\n"
    shown = cli("api", "models.retrieve", "-i", "intern-s1")
    assert (shown.exit_code, json.loads(shown.stdout)["id"]) == (0, "intern-s1")
    assert cli("api", "models.retrieve", "-i", "no-such-model").exit_code == 5


# ----------------------------------------------------------------- completions.create: errors


@pytest.mark.parametrize("reply, code", [
    (err_code(-20053, "too many requests", status=429), 4),
    (Json({"detail": "Not Found"}, 404), 5),
    (err_object("The model 'm' does not exist.", 404, status=404), 5),
    (Json({"detail": [{"type": "missing", "loc": ["body", "model"], "msg": "Field required"}]}, 422), 5),
    (Json({"error": {"message": "bad key", "code": "invalid_api_key"}}, 401), 3),
    (Raw("Internal Server Error", 500, "text/plain"), 1),
    (Json({"error_code": 10402, "text": "Failed to get response after a period of time"}), 1),
])
def test_error_replies_end_in_the_contract_s_exit_codes(cli, api, reply, code):
    api.add(reply, path=COMPLETIONS_PATH, times=3)
    result = cli(*CREATE, "-m", "m", "-p", "hi")
    assert (result.exit_code, result.stdout) == (code, "")
    assert result.stderr.count(ERROR) == 1 and "hint: " in result.stderr


def test_a_server_error_is_retried(cli, api, sleeps):
    api.add(Raw("Internal Server Error", 500, "text/plain"), path=COMPLETIONS_PATH)
    api.add(Json(completion("fine")), path=COMPLETIONS_PATH)
    result = cli(*CREATE, "-m", "m", "-p", "hi")
    assert (result.exit_code, result.stdout) == (0, "fine\n")
    assert len(api.calls(COMPLETIONS_PATH)) == 2 and len(sleeps.delays) == 1
    assert "retrying in" in result.stderr


def test_a_stream_cut_before_any_text_is_retried_and_after_it_is_not(cli, api):
    api.add(Stream([], cut=True), path=COMPLETIONS_PATH)
    api.add(Stream([chunk("ok"), chunk("", finish="stop")]), path=COMPLETIONS_PATH)
    result = cli(*CREATE, "-m", "m", "-p", "hi", "--stream")
    assert (result.exit_code, result.stdout) == (0, "ok\n")
    api.reset()
    api.add(Stream([chunk("part")], cut=True), path=COMPLETIONS_PATH)
    result = cli(*CREATE, "-m", "m", "-p", "hi", "--stream")
    assert (result.exit_code, result.stdout) == (6, "part")
    assert len(api.calls(COMPLETIONS_PATH)) == 1


def test_a_chunk_whose_text_is_not_text_is_a_malformed_stream(cli, api):
    api.add(Stream([chunk(5)]), path=COMPLETIONS_PATH, times=3)
    result = cli(*CREATE, "-m", "m", "-p", "hi", "--stream")
    assert (result.exit_code, result.stdout) == (6, "")
    assert "malformed" in result.stderr


def test_a_reply_whose_text_is_not_text_is_a_failure(cli, api):
    api.add(Json(completion(["a"])), path=COMPLETIONS_PATH)
    result = cli(*CREATE, "-m", "m", "-p", "hi")
    assert (result.exit_code, result.stdout) == (1, "")


def test_a_stream_line_without_end_is_too_large(cli, api):
    api.add(Stream([b"data: " + b"x" * (2 << 20)], done=False), path=COMPLETIONS_PATH)
    result = cli(*CREATE, "-m", "m", "-p", "hi", "--stream")
    assert (result.exit_code, result.stdout) == (6, "")
    assert "longer than 1 MiB" in result.stderr


def test_a_reply_too_large_to_hold_is_refused(cli, api):
    api.add(Json(completion("x" * (5 << 20))), path=COMPLETIONS_PATH)
    result = cli(*CREATE, "-m", "m", "-p", "hi")
    assert (result.exit_code, result.stdout) == (6, "")
    assert "MiB" in result.stderr.splitlines()[0]


def test_a_failed_reply_is_an_error_not_the_answer(cli, api):
    api.add(Json(completion("partial " + ENGINE_ERROR, finish="error")), path=COMPLETIONS_PATH)
    result = cli(*CREATE, "-m", "m", "-p", "hi")
    assert (result.exit_code, result.stdout) == (1, "")
    assert "finish_reason: error" in result.stderr


def test_verbose_traces_the_exchange_without_the_token(cli, api):
    api.add(Json(completion("x")), path=COMPLETIONS_PATH)
    result = cli("-v", *CREATE, "-m", "m", "-p", "hi")
    assert result.exit_code == 0 and "POST {}/completions".format(api.base_url) in result.stderr
    assert "Bearer ***" in result.stderr  # the cli fixture checks the token itself appears nowhere


# ------------------------------------------------------------- completions.create on LMDeploy


@pytest.mark.parametrize("profile", LMDEPLOY_PROFILES)
@pytest.mark.parametrize("stream", [[], ["--stream"]])
def test_every_lmdeploy_completes(serve: Callable[[str], ProfileServer], profile: str, stream: List[str]):
    server = serve(profile)
    result = run(server, *CREATE, "-m", server.model, "-p", "hello there", *stream)
    assert (result.exit_code, result.stderr) == (0, "")
    # Streamed: the pieces, then the stream's final newline.
    assert result.stdout == "echo: hello there\n"


@pytest.mark.parametrize("profile", ["lmdeploy-0.6", "lmdeploy-0.14"])
def test_lmdeploy_s_default_of_16_tokens_is_said(serve: Callable[[str], ProfileServer], profile: str):
    server = serve(profile)
    server.script(Engine(text=" ".join(["w"] * 20)), path=COMPLETIONS_PATH)
    result = run(server, *CREATE, "-m", server.model, "-p", "hi")
    assert (result.exit_code, result.stdout) == (0, " ".join(["w"] * 16) + "\n")
    assert "cut at max_tokens" in result.stderr


@pytest.mark.parametrize("profile", ["lmdeploy-0.10", "lmdeploy-0.18"])
def test_lmdeploy_refuses_a_null_prompt(serve: Callable[[str], ProfileServer], profile: str):
    server = serve(profile)
    result = run(server, *CREATE, "-m", server.model)
    assert (result.exit_code, result.stdout) == (5, "")
    assert "prompt.str: Input should be a valid string" in result.stderr.splitlines()[0]


@pytest.mark.parametrize("profile", LMDEPLOY_PROFILES)
def test_an_unknown_model_on_lmdeploy_is_exit_5_with_the_models_hint(serve: Callable[[str], ProfileServer],
                                                                      profile: str):
    result = run(serve(profile), *CREATE, "-m", "intern-latest", "-p", "hi")
    assert (result.exit_code, result.stdout) == (5, "")
    assert "does not exist" in result.stderr and "models list" in result.stderr


@pytest.mark.parametrize("profile", ["lmdeploy-0.6", "lmdeploy-0.12", "lmdeploy-0.16"])
def test_a_wrong_key_on_lmdeploy_is_exit_3(serve: Callable[[str], ProfileServer], profile: str):
    server = serve(profile)
    assert run(server, *CREATE, "-m", server.model, "-p", "hi", key="sk-wrong").exit_code == 3


@pytest.mark.parametrize("profile", ["lmdeploy-0.6", "lmdeploy-0.10", "lmdeploy-0.14", "lmdeploy-0.16",
                                     "lmdeploy-0.18"])
@pytest.mark.parametrize("stream", [[], ["--stream"]])
def test_an_engine_failure_on_lmdeploy_is_a_failure(serve: Callable[[str], ProfileServer], profile: str,
                                                     stream: List[str]):
    # 0.6: a 500 text/plain, or a stream cut (exit 6); 0.10-0.15: finish_reason "error" with the error
    # as the text; 0.16+: a 500 error body, or an {"error": ...} event in the stream.
    server = serve(profile)
    server.script(Engine(text="partial", fail="engine"), path=COMPLETIONS_PATH)
    result = run(server, *CREATE, "-m", server.model, "-p", "hi", *stream)
    assert result.exit_code == (6 if stream and profile == "lmdeploy-0.6" else 1)
    # What was streamed before the failure stays; the error text is never printed as the answer.
    assert result.stdout == ("partial" if stream else "")
    assert result.stderr.count(ERROR) == 1


# -------------------------------------------------------------- the installed command, on a terminal

# OSC 52 (write the clipboard), a screen clear and CSI as the C1 character U+009B, cut into pieces
# inside the sequences, as a stream may send them: each piece is escaped on its own.
HOSTILE_PIECES = ["A\x1b", "]52;c;SGVsbG8=\x07B\x1b", "[2JC\x9b", "31mD"]
ESCAPED = "A\\x1b]52;c;SGVsbG8=\\x07B\\x1b[2JC\\x9b31mD"
RAW = [b"\x1b]52", b"\x1b[2J", "\x9b".encode("utf-8"), b"\x07"]


def on_terminal(exe: str, api: Any, *args: str) -> Any:
    from tests.terminal import run_on_terminal

    return run_on_terminal(exe, ["-b", api.base_url, "--max-retries", "0", *args])


@pytest.mark.integration
@pytest.mark.parametrize("stream", [False, True])
def test_a_completion_on_a_terminal_is_escaped(exe, api, stream):
    if stream:
        api.add(Stream([chunk(p) for p in HOSTILE_PIECES] + [chunk("", finish="stop")]), path=COMPLETIONS_PATH)
    else:
        api.add(Json(completion("".join(HOSTILE_PIECES))), path=COMPLETIONS_PATH)
    run = on_terminal(exe, api, *CREATE, "-m", "m", "-p", "hi", *(["--stream"] if stream else []))
    assert run.exit_code == 0, run.stderr
    assert run.stdout == (ESCAPED + "\n").encode()
    assert not any(raw in run.stdout + run.stderr for raw in RAW)


@pytest.mark.integration
def test_a_model_on_a_terminal_is_escaped_and_the_same_json(exe, api):
    api.add(Json({"object": "list", "data": [{"id": "m", "owned_by": "".join(HOSTILE_PIECES)}]}), path="/v1/models",
            method="GET")
    run = on_terminal(exe, api, "api", "models.list")
    assert run.exit_code == 0, run.stderr
    assert not any(raw in run.stdout for raw in RAW)
    assert json.loads(run.stdout)["owned_by"] == "".join(HOSTILE_PIECES)


@pytest.mark.integration
def test_a_stream_cut_mid_line_ends_the_line_on_a_terminal_before_the_error(exe, api):
    api.add(Stream([chunk("Hel")], cut=True), path=COMPLETIONS_PATH)
    run = on_terminal(exe, api, *CREATE, "-m", "m", "-p", "hi", "--stream")
    assert run.exit_code == 6
    assert run.stdout == b"Hel\n"  # the error on the terminal starts a line of its own
    assert b"the reply stream was cut" in run.stderr


@pytest.mark.integration
def test_a_reader_that_leaves_ends_the_run_quietly(exe, api):
    api.add(Stream([chunk("x" * 100) for _ in range(200)] + [chunk("", finish="stop")]), path=COMPLETIONS_PATH)
    # A real pipe into a real `head`, no shell in between.
    producer = subprocess.Popen([exe, "-b", api.base_url, "-k", SENTINEL, "api", "completions.create", "-m", "m",
                                 "-p", "hi", "--stream"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert producer.stdout is not None
    head = subprocess.run(["head", "-c", "10"], stdin=producer.stdout, capture_output=True, text=True, timeout=60)
    producer.stdout.close()  # head's end alone holds the pipe: its exit is the reader leaving
    _, stderr = producer.communicate(timeout=60)
    assert (producer.returncode, head.stdout) == (0, "x" * 10)
    assert "Traceback" not in stderr and "error" not in stderr
