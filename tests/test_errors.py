"""Unit tests of interncli/errors.py: error bodies -> error class, exit code, code, message,
hint and retryability (interface.md section 6; the seed's "Common Errors" table)."""

from __future__ import annotations

import io
import json

import pytest

from interncli.errors import (
    API_CODES,
    AuthError,
    ExitCode,
    InternCliError,
    NetworkError,
    RateLimitError,
    RequestRejected,
    ServerError,
    StreamError,
    UsageError,
    body_snippet,
    class_for_status,
    error_from_object,
    error_from_response,
)
from interncli.output import report_error


def dumps(obj) -> bytes:
    return json.dumps(obj).encode("utf-8")


# ------------------------------------------------------------------ the exit codes


def test_exit_code_values_match_the_contract():
    assert [int(c) for c in (ExitCode.OK, ExitCode.FAILURE, ExitCode.USAGE, ExitCode.AUTH,
                             ExitCode.RATE_LIMITED, ExitCode.REJECTED, ExitCode.NETWORK,
                             ExitCode.TOOL, ExitCode.INTERRUPTED)] == [0, 1, 2, 3, 4, 5, 6, 7, 130]


@pytest.mark.parametrize("cls, exit_code", [
    (InternCliError, 1), (ServerError, 1), (UsageError, 2), (AuthError, 3), (RateLimitError, 4),
    (RequestRejected, 5), (NetworkError, 6), (StreamError, 6),
])
def test_each_error_class_has_its_exit_code(cls, exit_code):
    assert int(cls("x").exit_code) == exit_code
    assert issubclass(cls, InternCliError)


def test_to_dict_carries_code_message_status_and_exit_code():
    err = error_from_object({"code": "A0211", "msg": "Token expired"}, 401)
    d = err.to_dict()
    assert d["code"] == "A0211"
    assert d["message"] == "Token expired"
    assert d["http_status"] == 401
    assert d["exit_code"] == 3
    assert d["hint"]
    json.dumps(d)  # serialisable as is


def test_explicit_hint_wins_over_default_and_default_applies_otherwise():
    assert RateLimitError("x").hint  # default hint
    assert RateLimitError("x", hint="custom").hint == "custom"
    assert NetworkError("x").hint and "--proxy" in NetworkError("x").hint


# ------------------------------------------------------------------ the error shapes


SHAPES = {
    "code/msg": lambda code, msg: {"code": code, "msg": msg},
    "msgCode/msg": lambda code, msg: {"msgCode": code, "msg": msg},
    "object=error": lambda code, msg: {"object": "error", "message": msg, "code": code},
    "openai error": lambda code, msg: {"error": {"message": msg, "code": code}},
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("status", [200, 400, 401, 429, 500, None])
def test_every_shape_with_a_known_code_maps_by_the_code(shape, status):
    body = SHAPES[shape]("A0211", "Token expired")
    err = error_from_object(body, status)
    assert isinstance(err, AuthError)
    assert int(err.exit_code) == 3
    assert err.code == "A0211"
    assert err.message == "Token expired"
    assert err.http_status == status
    assert err.hint and "expired" in err.hint.lower()


@pytest.mark.parametrize("shape", sorted(SHAPES))
@pytest.mark.parametrize("status, cls, exit_code", [
    (400, RequestRejected, 5), (401, AuthError, 3), (403, AuthError, 3), (404, RequestRejected, 5),
    (422, RequestRejected, 5), (429, RateLimitError, 4), (500, ServerError, 1), (502, ServerError, 1),
    (503, ServerError, 1), (200, ServerError, 1),
])
def test_every_shape_with_an_unknown_code_maps_by_the_status(shape, status, cls, exit_code):
    err = error_from_object(SHAPES[shape]("E999", "something went wrong"), status)
    assert type(err) is cls
    assert int(err.exit_code) == exit_code
    assert err.code == "E999"
    assert err.message == "something went wrong"


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_shape_via_error_from_response(shape):
    err = error_from_response(429, dumps(SHAPES[shape](-20053, "too many requests")), "Too Many Requests")
    assert isinstance(err, RateLimitError)
    assert err.code == -20053
    assert err.message == "too many requests"
    assert err.http_status == 429
    assert err.retryable


def test_code_msg_with_integer_code():
    err = error_from_object({"code": -20018, "msg": "bad messages"}, 200)
    assert isinstance(err, RequestRejected)
    assert err.code == -20018
    assert int(err.exit_code) == 5


def test_detail_string():
    err = error_from_object({"detail": "Not Found"}, 404)
    assert isinstance(err, RequestRejected)
    assert int(err.exit_code) == 5
    assert err.message == "Not Found"
    assert err.code == 404  # no code in the body: the HTTP status stands in
    assert err.http_status == 404


def test_detail_list_is_shown_as_loc_and_msg():
    # Issue 10: one short item per problem (it was the list as raw JSON).
    detail = [{"loc": ["body", "messages"], "msg": "field required", "type": "value_error.missing"}]
    err = error_from_object({"detail": detail}, 422)
    assert isinstance(err, RequestRejected)
    assert int(err.exit_code) == 5
    assert err.message == "messages: field required"


@pytest.mark.parametrize("status, exit_code", [(401, 3), (403, 3), (429, 4), (400, 5), (500, 1)])
def test_detail_follows_the_status(status, exit_code):
    err = error_from_response(status, dumps({"detail": "nope"}))
    assert int(err.exit_code) == exit_code
    assert err.message == "nope"


def test_openai_error_without_code_uses_type():
    err = error_from_object({"error": {"message": "bad", "type": "invalid_request_error"}}, 400)
    assert err.code == "invalid_request_error"
    assert err.message == "bad"
    assert int(err.exit_code) == 5


def test_error_as_string_with_code():
    err = error_from_object({"error": "model not found", "code": -20013}, 200)
    assert isinstance(err, RequestRejected)
    assert err.message == "model not found"
    assert err.code == -20013


def test_object_error_without_code_at_400():
    # LMDeploy: {"object": "error", "message": ..., "code": 400}
    err = error_from_object({"object": "error", "message": "The model `x` does not exist.", "code": 400}, 400)
    assert isinstance(err, RequestRejected)
    assert "does not exist" in err.message


def test_error_without_message_still_has_one():
    err = error_from_object({"code": "A0211", "msg": ""}, 401)
    assert err.message  # never an empty line on stderr


# ------------------------------------------------------------------ the seed table


SEED_TABLE = [
    # code, exit code, words the hint must contain (from the seed's "Suggested Solution")
    ("-10002", 5, ["parameters"]),  # issue 10: not "the query is empty"
    ("-20004", 3, ["apply", "website"]),
    ("-20013", 5, ["model"]),
    ("-20018", 5, ["message", "format"]),
    ("-20035", 3, ["phone"]),
    ("-20053", 4, ["limit"]),
    ("A0202", 3, ["token"]),
    ("A0211", 3, ["token", "expired"]),
    ("C1114", 3, ["token", "service"]),
]


def test_seed_table_is_complete():
    assert sorted(API_CODES) == sorted(code for code, _, _ in SEED_TABLE)


@pytest.mark.parametrize("code, exit_code, words", SEED_TABLE)
@pytest.mark.parametrize("as_int", [False, True])
def test_seed_code_maps_to_exit_code_and_hint(code, exit_code, words, as_int):
    value = int(code) if as_int and code.lstrip("-").isdigit() else code
    err = error_from_object({"code": value, "msg": "m"}, 200)
    assert int(err.exit_code) == exit_code
    assert err.code == value
    assert err.hint, "no hint for {}".format(code)
    for word in words:
        assert word in err.hint.lower(), (code, err.hint)


@pytest.mark.parametrize("code, exit_code, words", SEED_TABLE)
def test_seed_code_wins_over_the_http_status(code, exit_code, words):
    for status in (200, 400, 401, 429, 500):
        err = error_from_response(status, dumps({"code": code, "msg": "m"}))
        assert int(err.exit_code) == exit_code, (code, status)


# ------------------------------------------------------------------ statuses without a known code


@pytest.mark.parametrize("status, cls, exit_code", [
    (401, AuthError, 3), (403, AuthError, 3), (429, RateLimitError, 4), (400, RequestRejected, 5),
    (404, RequestRejected, 5), (422, RequestRejected, 5), (500, ServerError, 1), (502, ServerError, 1),
    (503, ServerError, 1),
])
def test_class_for_status(status, cls, exit_code):
    assert class_for_status(status) is cls
    assert int(cls.exit_code) == exit_code


@pytest.mark.parametrize("status, exit_code", [
    (401, 3), (403, 3), (429, 4), (400, 5), (404, 5), (422, 5), (500, 1), (502, 1), (503, 1),
])
@pytest.mark.parametrize("body", [b"", b"oops", b'{"unrelated": true}', b"<html>x</html>"])
def test_status_without_known_code(status, exit_code, body):
    err = error_from_response(status, body, "Reason")
    assert int(err.exit_code) == exit_code
    assert err.http_status == status
    assert err.code == status
    assert str(status) in err.message
    assert err.hint


@pytest.mark.parametrize("status", [401, 403, 404])
def test_status_hints(status):
    err = error_from_response(status, b"")
    assert err.hint
    assert ("token" in err.hint.lower()) if status in (401, 403) else ("-b" in err.hint)


# ------------------------------------------------------------------ success is not an error


COMPLETION = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "intern-latest",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


@pytest.mark.parametrize("body", [
    COMPLETION,
    dict(COMPLETION, code=0, msg="success"),
    dict(COMPLETION, code=200, msg="ok"),
    {"code": 0, "msg": "success", "data": {}},
    {"code": "0", "message": "ok"},
    {"code": 200, "msg": "success"},
    {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "x"}}]},
    {"object": "list", "data": [{"id": "intern-latest"}]},
    [1, 2, 3],
    "a string",
    None,
])
@pytest.mark.parametrize("status", [200, None])
def test_success_looking_bodies_are_not_errors(body, status):
    assert error_from_object(body, status) is None


def test_code_zero_with_success_false_is_an_error():
    err = error_from_object({"code": 0, "msg": "failed", "success": False}, 200)
    assert err is not None
    assert err.message == "failed"


# ------------------------------------------------------------------ non-JSON bodies


HTML = b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1>" \
       b"</center><hr><center>nginx</center></body></html>"


def test_html_502_reports_status_and_start_of_body():
    err = error_from_response(502, HTML, "Bad Gateway")
    assert isinstance(err, ServerError)
    assert int(err.exit_code) == 1
    assert "502" in err.message
    assert "<html><head><title>502 Bad Gateway" in err.message
    assert err.code == 502
    assert err.http_status == 502
    assert err.hint and "-b" in err.hint
    assert err.retryable


@pytest.mark.parametrize("status, exit_code", [(401, 3), (403, 3), (429, 4), (404, 5), (500, 1), (503, 1)])
def test_html_at_other_statuses(status, exit_code):
    err = error_from_response(status, b"<html><body>denied by proxy</body></html>")
    assert int(err.exit_code) == exit_code
    assert str(status) in err.message
    assert "denied by proxy" in err.message


def test_long_body_is_one_line_and_cut_only_when_shown():
    body = b"<html>\n" + b"A" * 5000 + b"\n</html>"
    err = error_from_response(502, body)
    assert "\n" not in err.message
    assert "<html> AAAA" in err.message
    assert err.message.endswith("…")
    # kept long enough for redaction to see a whole token; shortened when printed
    assert 4000 <= len(err.message) < 4200
    shown = io.StringIO()
    report_error(err, shown)
    assert len(shown.getvalue().splitlines()[0]) < 500


def test_empty_body_says_so():
    err = error_from_response(503, b"", "Service Unavailable")
    assert "503" in err.message
    assert "empty" in err.message


def test_invalid_utf8_body_does_not_crash():
    err = error_from_response(500, b"\xff\xfe\x00garbage")
    assert "500" in err.message
    assert "garbage" in err.message


def test_body_snippet():
    assert body_snippet(b"  a\n\n b\tc ") == "a b c"
    assert body_snippet(b"x" * 10, limit=4) == "xxxx…"
    assert body_snippet(b"") == ""


# ------------------------------------------------------------------ retryable


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_rate_limits_and_5xx_are_retryable(status):
    assert error_from_response(status, b"").retryable
    assert error_from_response(status, dumps({"detail": "x"})).retryable
    assert error_from_response(status, b"<html>x</html>").retryable


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_not_retryable(status):
    assert not error_from_response(status, b"").retryable
    assert not error_from_response(status, dumps({"detail": "x"})).retryable
    assert not error_from_response(status, dumps({"code": "E1", "msg": "x"})).retryable


@pytest.mark.parametrize("status", [200, 400, 429, 500, None])
def test_rate_limit_code_is_retryable_at_any_status(status):
    err = error_from_object({"code": -20053, "msg": "slow down"}, status)
    assert isinstance(err, RateLimitError)
    assert err.retryable


@pytest.mark.parametrize("code", ["A0202", "A0211", "C1114", "-20004", "-20035", "-10002", "-20013", "-20018"])
@pytest.mark.parametrize("status", [200, 500, 503])
def test_auth_and_rejected_codes_are_never_retried_even_at_5xx(code, status):
    assert not error_from_object({"code": code, "msg": "m"}, status).retryable


def test_unknown_code_at_200_is_not_retryable():
    err = error_from_object({"code": "X", "msg": "m"}, 200)
    assert not err.retryable
    assert int(err.exit_code) == 1


# ------------------------------------------------ every LMDeploy version's and the gateway's bodies


def test_lmdeploy_06_wrapped_401_is_unwrapped():
    body = {"detail": {"error": {"message": "Please request with valid api key!", "type": "invalid_request_error",
                                 "param": None, "code": "invalid_api_key"}}}
    err = error_from_response(401, dumps(body))
    assert (type(err), err.code, err.message) == (AuthError, "invalid_api_key", "Please request with valid api key!")


def test_lmdeploy_012_unauthorized_string():
    err = error_from_response(401, dumps({"error": "Unauthorized"}))
    assert (type(err), err.code, err.message) == (AuthError, 401, "Unauthorized")


def test_lmdeploy_016_flat_error_shows_its_code_once():
    body = {"message": "Unauthorized.", "type": "authentication_error", "code": 401, "param": None, "object": "error"}
    shown = io.StringIO()
    report_error(error_from_response(401, dumps(body)), shown)
    assert shown.getvalue().splitlines()[0] == "interncli: error: [401] Unauthorized."


def test_validation_list_never_shows_the_echoed_body():
    prompt = "my secret prompt"
    body = {"detail": [{"type": "missing", "loc": ["body", "model"], "msg": "Field required",
                        "input": {"messages": [{"role": "user", "content": prompt}]}}],
            "body": {"messages": [{"role": "user", "content": prompt}]}}
    err = error_from_response(422, dumps(body))
    assert (type(err), err.code, err.message) == (RequestRejected, 422, "model: Field required")


def test_validation_list_of_plain_strings():
    body = {"detail": ["Unsupported Media Type: Only 'application/json' is allowed"], "body": None}
    err = error_from_response(422, dumps(body))
    assert err.message == "Unsupported Media Type: Only 'application/json' is allowed"


def test_a_long_validation_list_says_how_many_more():
    detail = [{"loc": ["body", "f{}".format(i)], "msg": "bad"} for i in range(8)]
    err = error_from_object({"detail": detail}, 422)
    assert err.message == "f0: bad; f1: bad; f2: bad; f3: bad; f4: bad; and 3 more"


@pytest.mark.parametrize("status", [200, 400, 401])
def test_gateway_envelope_at_any_status_with_its_trace_id(status):
    body = {"traceId": "151fc5e3064a", "msgCode": "A0202", "msg": "user authenticate failed", "data": None,
            "success": False, "total": 0}
    err = error_from_response(status, dumps(body))
    assert (type(err), err.code, err.message) == (AuthError, "A0202", "user authenticate failed")
    assert "151fc5e3064a" in err.hint


def test_gateway_envelope_that_succeeded_is_not_an_error():
    assert error_from_object({"msgCode": "10000", "msg": "ok", "success": True, "data": {}}, 200) is None


def test_lmdeploy_proxy_bare_error():
    err = error_from_object({"error_code": 10402, "text": "Failed to get response after a period of time"}, 200)
    assert (type(err), err.code) == (ServerError, 10402)
    assert err.message == "Failed to get response after a period of time"
    assert "proxy" in err.hint


def test_lmdeploy_proxy_stream_failure():
    err = error_from_object({"error": True, "status": 500, "message": "Internal streaming error"})
    assert (type(err), err.code, err.message) == (ServerError, 500, "Internal streaming error")


def test_a_body_with_choices_is_a_reply_whatever_else_it_holds():
    assert error_from_object({"choices": [], "code": 7, "msg": "x"}, 200) is None


def test_in_stream_error_event_exit_by_its_code():
    event = {"error": {"message": "Failed to parse output: x", "type": "invalid_request_error", "code": 400,
                       "param": None, "object": "error"}}
    assert int(error_from_object(event).exit_code) == 5


def test_context_length_400_has_the_context_hint():
    body = {"message": "Input length (5000) must be smaller than the model context length (4096).",
            "type": "invalid_request_error", "code": 400, "param": None, "object": "error"}
    err = error_from_response(400, dumps(body))
    assert int(err.exit_code) == 5 and "context" in err.hint and "shorten" in err.hint


def test_unknown_model_404_hints_models_list():
    body = {"message": "The model 'intern-latest' does not exist.", "type": "invalid_request_error", "code": 404,
            "param": None, "object": "error"}
    assert "interncli models list" in error_from_response(404, dumps(body)).hint


@pytest.mark.parametrize("body", [dumps({"detail": "Not Found"}), b"<html>404</html>"])
def test_a_404_names_the_url_and_the_prefixes(body):
    err = error_from_response(404, body, "Not Found", url="http://h/v2/chat/completions")
    assert "http://h/v2/chat/completions" in err.hint and "/api/v1" in err.hint and "/v1" in err.hint
