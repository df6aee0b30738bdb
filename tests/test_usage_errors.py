"""Usage errors: exit 2, one error line and a hint, and no request sent (interface.md section 6)."""

from __future__ import annotations

import pytest

from tests.clierrors import (
    NO_RETRY,
    assert_usage_error,
    chat,
    error_and_hint,
)
from tests.conftest import invoke

# One server for the whole module (see conftest.api); each test still starts with no queued
# reply and no recorded request.
SHARED_SERVER = True


# ====================================================================== bad settings


def test_timeout_not_a_number(api, cli):
    r = chat(cli, globals_=("--timeout", "abc"))
    assert_usage_error(r, "--timeout", "abc")
    assert api.requests == []


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf"])
def test_intern_timeout_env_invalid(api, cli, value):
    r = chat(cli, env={"INTERN_TIMEOUT": value})
    assert_usage_error(r, "INTERN_TIMEOUT")
    assert api.requests == []


@pytest.mark.parametrize("value", ["-1", "x", "1.5"])
def test_max_retries_invalid(api, cli, value):
    r = chat(cli, globals_=("--max-retries", value))
    assert_usage_error(r, "--max-retries")
    r = chat(cli, globals_=(), env={"INTERN_MAX_RETRIES": value})
    assert_usage_error(r, "INTERN_MAX_RETRIES")
    assert api.requests == []


@pytest.mark.parametrize("url", ["notaurl", "ftp://example.com/v1", "http://"])
def test_invalid_base_url_is_a_usage_error(api, cli, url):
    r = chat(cli, globals_=("-b", url) + NO_RETRY)
    assert_usage_error(r)
    assert "retrying" not in r.stderr



# ====================================================================== usage errors


def test_unknown_flag(api, cli):
    r = cli("chat", "create", "--bogus", "-g", "user", "hi")
    assert_usage_error(r, "--bogus")
    assert "chat create --help" in r.stderr
    assert api.requests == []


def test_unknown_global_flag(api, cli):
    r = cli("--bogus", "chat", "create", "-g", "user", "hi")
    assert_usage_error(r, "--bogus")


def test_unknown_command(api, cli):
    r = cli("chat", "destroy")
    assert_usage_error(r, "destroy")


def test_bad_role(api, cli):
    r = cli("chat", "create", "-g", "robot", "hi")
    assert_usage_error(r, "robot")
    assert api.requests == []


@pytest.mark.parametrize("args, word", [(("chat", "create", "-g", "user"), "-g"),
                                        (("chat", "create", "-g", "user", "hi", "-m"), "-m")])
def test_option_missing_its_value(api, cli, args, word):
    r = cli(*args)
    assert_usage_error(r, word)


@pytest.mark.parametrize("flag, value", [("-n", "0"), ("-n", "x"), ("-t", "3"), ("-P", "1.5"), ("-M", "-1")])
def test_bad_numbers(api, cli, flag, value):
    r = cli("chat", "create", flag, value, "-g", "user", "hi")
    assert_usage_error(r, value)
    assert api.requests == []


def test_thinking_with_system_message(api, cli):
    r = cli("chat", "create", "--thinking", "-g", "system", "be brief", "-g", "user", "hi",
            env={"INTERN_API": "intern"})
    assert_usage_error(r, "--thinking", "system")
    assert api.requests == []


def test_image_missing_file(api, cli, tmp_path):
    missing = str(tmp_path / "missing.png")
    r = cli("chat", "create", "-g", "user", "what is this", "--image", missing)
    assert_usage_error(r, missing)
    assert api.requests == []


def test_image_not_an_image(api, cli, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    r = cli("chat", "create", "-g", "user", "what is this", "--image", str(path))
    assert_usage_error(r, "notes.txt")


def test_conversation_invalid_json(api, cli, tmp_path):
    path = tmp_path / "conv.json"
    path.write_text("{not json")
    r = cli("chat", "create", "--conversation", str(path), "-g", "user", "hi")
    assert_usage_error(r, str(path))
    assert path.read_text() == "{not json"  # left alone
    assert api.requests == []


def test_conversation_not_a_list(api, cli, tmp_path):
    path = tmp_path / "conv.json"
    path.write_text('{"role": "user"}')
    r = cli("chat", "create", "--conversation", str(path), "-g", "user", "hi")
    assert_usage_error(r, str(path))


def test_conversation_is_a_directory(api, cli, tmp_path):
    r = cli("chat", "create", "--conversation", str(tmp_path), "-g", "user", "hi")
    assert_usage_error(r)


def test_no_message_and_empty_stdin(api, cli):
    r = cli("chat", "create", input="")
    assert_usage_error(r, "no message")
    assert api.requests == []


def test_tool_choice_without_tools(api, cli):
    r = cli("chat", "create", "-g", "user", "hi", "--tool-choice", "get_weather")
    assert_usage_error(r, "get_weather")


def test_missing_tools_spec(api, cli, tmp_path):
    r = cli("chat", "create", "-g", "user", "hi", "--tools", str(tmp_path / "nope.yaml"))
    assert r.exit_code == 2
    assert "Traceback" not in r.stderr
    assert r.stdout == ""


def test_no_token_for_the_official_service():
    r = invoke(["chat", "create", "-g", "user", "hi"])
    assert r.exit_code == 3, r
    assert r.stdout == ""
    line, hint = error_and_hint(r.stderr)
    assert "token" in line
    assert hint is not None and "INTERN_API_KEY" in hint
