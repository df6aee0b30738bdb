"""Inputs a user or a server may give that must end in a clear error and the documented exit
code, never a traceback, a lost file or a leaked token."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import pytest

from tests.apiserver import Completion, Json, Raw, Stream, stream_chunks
from tests.conftest import SENTINEL, invoke


def no_crash(result):
    assert "Traceback" not in result.stderr and "unexpected" not in result.stderr, result.stderr


def test_conversation_refuses_a_path_that_is_not_a_regular_file(cli, api, tmp_path):
    result = cli("chat", "create", "--conversation", os.devnull, "-g", "user", "x")
    assert result.exit_code == 2 and "not a regular file" in result.stderr
    assert api.requests == []  # checked before anything is sent
    no_crash(result)


def test_conversation_in_a_missing_folder_is_refused_before_sending(cli, api, tmp_path):
    result = cli("chat", "create", "--conversation", str(tmp_path / "nodir" / "c.json"), "-g", "user", "x")
    assert result.exit_code == 2 and "does not exist" in result.stderr and api.requests == []


def test_conversation_through_a_symlink_updates_the_target(cli, api, tmp_path):
    target = tmp_path / "real.json"
    target.write_text("[]")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    assert cli("chat", "create", "--conversation", str(link), "-g", "user", "x").exit_code == 0
    assert link.is_symlink()
    assert json.loads(target.read_text())[-1] == {"role": "assistant", "content": "echo: x"}


def test_saved_replies_drop_reply_only_fields(cli, api, tmp_path):
    path = tmp_path / "c.json"
    api.add(Completion(content="42", reasoning="long thought"))
    assert cli("chat", "create", "--conversation", str(path), "-g", "user", "x").exit_code == 0
    assert json.loads(path.read_text())[-1] == {"role": "assistant", "content": "42"}


def test_stdin_that_is_not_utf8_is_a_usage_error(cli, api):
    runner_input = b"\xff\xfe\x00binary"
    result = invoke(["-b", api.base_url, "-k", SENTINEL, "chat", "create"], input=runner_input)
    assert result.exit_code == 2 and "not UTF-8" in result.stderr and api.requests == []


def test_argument_that_is_not_utf8_is_a_usage_error(api):
    # Python hands undecodable argv bytes over as lone surrogates.
    result = invoke(["-b", api.base_url, "-k", SENTINEL, "chat", "create", "-g", "user", "\udcff"])
    assert result.exit_code == 2 and "UTF-8" in result.stderr and api.requests == []


@pytest.mark.parametrize("flag", ["-t", "-P"])
def test_nan_is_refused(cli, api, flag):
    result = cli("chat", "create", "-g", "user", "x", flag, "nan", "--dry-run")
    assert result.exit_code == 2 and "nan" in result.stderr


@pytest.mark.parametrize("reply", [Json({"choices": []}), Stream([], done=True)])
def test_a_reply_without_choices_is_an_error_not_an_empty_success(cli, api, tmp_path, reply):
    path = tmp_path / "c.json"
    api.add(reply)
    stream = ("--stream",) if isinstance(reply, Stream) else ()
    result = cli("chat", "create", "--conversation", str(path), "-g", "user", "x", *stream,
                 globals_=("--max-retries", "0"))
    assert result.exit_code in (1, 6) and result.exit_code != 0
    assert not path.exists()
    no_crash(result)


@pytest.mark.parametrize("call", [
    {"index": 0, "id": "1", "function": {"name": "f", "arguments": {"a": 1}}},
    {"index": 0, "id": "1", "function": {"name": 5, "arguments": "{}"}},
    {"index": "x", "id": "1", "function": {"name": "f", "arguments": "{}"}},
])
def test_tool_call_deltas_of_the_wrong_type_are_a_malformed_stream(cli, api, call):
    api.add(Stream([{"choices": [{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": "tool_calls"}]}]))
    result = cli("chat", "create", "-g", "user", "x", "--stream", globals_=("--max-retries", "0"))
    assert result.exit_code == 6 and "malformed" in result.stderr
    no_crash(result)


@pytest.mark.parametrize("arguments", ["{1, 2}", "b'abc'", "1j"])
def test_literal_arguments_with_no_json_form_print_as_text(cli, api, arguments):
    api.add(Completion(content=None, tool_calls=[("1", "f", arguments)]))
    result = cli("chat", "create", "-g", "user", "x")
    assert result.exit_code == 0 and result.stdout == "tool_call 1 f {}\n".format(json.dumps(arguments))


def test_a_redirect_is_reported_not_followed(cli, api):
    api.add(Raw("", status=301, headers={"Location": "https://elsewhere.invalid/v1/chat/completions"}))
    result = cli("chat", "create", "-g", "user", "x")
    assert result.exit_code == 5 and "redirects" in result.stderr and "elsewhere.invalid" in result.stderr
    assert len(api.requests) == 1


def test_a_gzip_stream_delimited_by_closing_is_decoded(cli, api):
    body = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in stream_chunks(["zip", "ped"]))
    api.add(Stream([gzip.compress(body + b"data: [DONE]\n\n")], framing="close", done=False,
                   headers={"Content-Encoding": "gzip"}))
    result = cli("chat", "create", "-g", "user", "x", "--stream")
    assert (result.exit_code, result.stdout) == (0, "zipped\n")


@pytest.mark.parametrize("args, env, word", [
    (["--profile", "lcoal"], {}, "no profile 'lcoal'"),
    ([], {"INTERN_PROFILE": "lcoal"}, "no profile 'lcoal'"),
    (["-b", "ftp://host/v1"], {}, "not a valid URL"),
    (["-b", "http://exa mple.com/v1"], {}, "not a valid URL"),
    (["-b", "http://host:abc/v1"], {}, "not a valid URL"),
    (["--proxy", "::::"], {}, "not a valid URL"),
    (["--timeout", "1e308"], {}, "--timeout"),
    (["--timeout", "0"], {}, "--timeout"),
    (["--max-retries", "-1"], {}, "--max-retries"),
    (["--max-retries", "1.5"], {}, "--max-retries"),
])
def test_bad_settings_are_usage_errors(config_dir, args, env, word):
    (config_dir / "config.yaml").write_text("profiles:\n  local: {base_url: 'http://127.0.0.1:9/v1'}\n")
    result = invoke(args + ["chat", "create", "-g", "user", "x", "--dry-run"], env=env)
    assert result.exit_code == 2 and word in result.stderr and "hint:" in result.stderr
    no_crash(result)


def test_socks_proxy_without_pysocks_says_so(api):
    pytest.importorskip("requests")
    try:
        import socks  # noqa: F401
        pytest.skip("PySocks is installed")
    except ImportError:
        pass
    result = invoke(["-b", api.base_url, "-k", SENTINEL, "--proxy", "socks5://127.0.0.1:1080",
                     "chat", "create", "-g", "user", "x"])
    assert result.exit_code == 2 and "PySocks" in result.stderr


@pytest.mark.parametrize("token", ["abc\ndef-wrapped", "abc def", "tok😀en"])
def test_a_malformed_token_is_refused_without_being_echoed(api, token):
    result = invoke(["-b", api.base_url, "chat", "create", "-g", "user", "x"], env={"INTERN_API_KEY": token})
    assert result.exit_code == 3 and "INTERN_API_KEY" in result.stderr
    for part in token.split():
        assert part not in result.stderr
    assert api.requests == []


@pytest.mark.parametrize("body, status, exit_code", [
    ({"object": "error", "message": "bad input", "code": 400}, 200, 5),
    ({"code": 500, "msg": "internal"}, 200, 1),
])
def test_a_code_that_is_an_http_status_maps_like_one(cli, api, body, status, exit_code):
    api.add(Json(body, status=status))
    result = cli("chat", "create", "-g", "user", "x", globals_=("--max-retries", "0"))
    assert result.exit_code == exit_code


def test_control_characters_from_the_server_do_not_reach_the_terminal(cli, api):
    api.add(Json({"code": "X1", "msg": "bad\x1b]0;pwned\x07 thing\nmore"}, status=400))
    result = cli("chat", "create", "-g", "user", "x")
    assert "\x1b" not in result.stderr and "\x07" not in result.stderr
    assert "bad ]0;pwned thing more" in result.stderr


def test_bare_interncli_prints_the_help_not_an_error():
    result = invoke([])
    assert result.exit_code == 2 and result.stderr.startswith("Usage: interncli")
    assert "error" not in result.stderr.splitlines()[0]


def test_json_errors_even_when_parsing_fails():
    result = invoke(["chat", "create", "--json", "-g", "user"])
    assert result.exit_code == 2
    assert json.loads(result.stderr)["error"]["exit_code"] == 2


def test_length_warning_under_json_too(cli, api):
    api.add(Completion(content="cut", finish_reason="length"))
    result = cli("chat", "create", "-g", "user", "x", "--json")
    assert json.loads(result.stdout)["choices"][0]["finish_reason"] == "length"
    assert "max_tokens" in result.stderr


@pytest.mark.integration
@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_on_stdout_is_one_clear_line(api):
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "interncli", "-b", api.base_url, "-k", SENTINEL,
                               "chat", "create", "-g", "user", "x"], stdout=full, stderr=subprocess.PIPE,
                              text=True, env=dict(os.environ))
    assert proc.returncode == 1 and "cannot write the output" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.integration
def test_closed_stdin_with_dash_is_a_usage_error(api):
    proc = subprocess.run([sys.executable, "-m", "interncli", "-b", api.base_url, "-k", SENTINEL,
                           "chat", "create", "-g", "user", "-"], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, close_fds=True,
                          preexec_fn=lambda: os.close(0))
    assert proc.returncode == 2 and "stdin" in proc.stderr and "Traceback" not in proc.stderr
