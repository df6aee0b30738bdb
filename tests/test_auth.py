"""`interncli auth`: the token's lookup order, login, status, token and logout, per profile,
with an in-memory keyring set through keyring's own API."""

from __future__ import annotations

import json
import os
import stat

import keyring
import pytest

from tests.conftest import SENTINEL, invoke
from tests.memkeyring import HangingKeyring


def stored(memory_keyring, profile="default"):
    return memory_keyring.passwords.get(("interncli", profile))


def test_login_with_token_strips_whitespace_and_bearer_and_stores_in_the_keyring(memory_keyring, config_dir):
    result = invoke(["auth", "login", "--with-token"], input="  Bearer {}  \n".format(SENTINEL))
    assert result.exit_code == 0 and SENTINEL not in result.stdout + result.stderr
    assert "OS keyring" in result.stderr
    assert stored(memory_keyring) == SENTINEL
    assert not (config_dir / "credentials.yaml").exists()


def test_login_per_profile(memory_keyring, config_dir):
    (config_dir / "config.yaml").write_text("profiles:\n  local: {base_url: 'http://127.0.0.1:9/v1'}\n")
    assert invoke(["auth", "login", "--profile", "local", "--with-token"], input="tok-local-123456").exit_code == 0
    assert invoke(["--profile", "local", "auth", "status"]).exit_code == 0
    assert stored(memory_keyring, "local") == "tok-local-123456" and stored(memory_keyring) is None


def test_login_for_a_profile_that_does_not_exist_is_refused(memory_keyring):
    result = invoke(["auth", "login", "--profile", "nope", "--with-token"], input="tok-123456789")
    assert result.exit_code == 2 and "no profile 'nope'" in result.stderr
    assert memory_keyring.passwords == {}


def test_login_without_a_terminal_or_with_token_refuses_to_prompt(memory_keyring):
    result = invoke(["auth", "login"], input="")
    assert result.exit_code == 2 and "--with-token" in result.stderr and memory_keyring.passwords == {}


@pytest.mark.parametrize("raw", ["", "   \n", "Bearer ", "two words", "tok\x00en", "abc", "t\u00f6ken-123456",
                                 "line-one\nline-two"])
def test_login_refuses_an_empty_or_malformed_token_as_bad_input(memory_keyring, raw):
    # Bad local input is a usage error (exit 2), empty or malformed alike; exit 3 is kept for
    # a keyring that does not work.
    result = invoke(["auth", "login", "--with-token"], input=raw)
    assert result.exit_code == 2 and memory_keyring.passwords == {}
    assert "hint:" in result.stderr and "Traceback" not in result.stderr
    assert raw.strip() == "" or raw.strip() not in result.stderr


def test_login_warns_when_the_environment_token_wins(memory_keyring):
    result = invoke(["auth", "login", "--with-token"], input="tok-123456789",
                    env={"INTERN_API_KEY": "env-token-0000"})
    assert result.exit_code == 0 and "INTERN_API_KEY is set and takes precedence" in result.stderr


def test_insecure_storage_writes_a_0600_file_and_keyring_login_removes_it(memory_keyring, config_dir):
    assert invoke(["auth", "login", "--with-token", "--insecure-storage"], input=SENTINEL).exit_code == 0
    path = config_dir / "credentials.yaml"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert SENTINEL in path.read_text() and memory_keyring.passwords == {}
    status = json.loads(invoke(["auth", "status", "--json"]).stdout)
    assert status["token_source"] == "file"
    assert invoke(["auth", "login", "--with-token"], input=SENTINEL).exit_code == 0
    assert not path.exists() and stored(memory_keyring) == SENTINEL


@pytest.mark.parametrize("source", ["flag", "env", "keyring", "file"])
def test_status_says_where_the_token_comes_from_and_masks_it(memory_keyring, source):
    token = "eyJ0eXBlIjoiSl-abcdefSl"
    args, env = [], {}
    if source == "flag":
        args = ["-k", token]
    elif source == "env":
        env = {"INTERN_API_KEY": token}
    elif source == "keyring":
        memory_keyring.set_password("interncli", "default", token)
    else:
        assert invoke(["auth", "login", "--with-token", "--insecure-storage"], input=token).exit_code == 0
    result = invoke(args + ["auth", "status", "--json"], env=env)
    assert result.exit_code == 0
    status = json.loads(result.stdout)
    assert status["token_source"] == source and status["token"] == "eyJ0…Sl"
    assert token not in result.stdout + result.stderr
    shown = json.loads(invoke(args + ["auth", "status", "--json", "--show-token"], env=env).stdout)
    assert shown["token"] == token


def test_lookup_order_flag_env_keyring_file(memory_keyring, api):
    base = ["-b", api.base_url]  # stored tokens are for the host they were stored for: this one
    assert invoke(base + ["auth", "login", "--with-token", "--insecure-storage"],
                  input="file-token-0001").exit_code == 0
    memory_keyring.set_password("interncli", "default", "keyring-token-02")
    env = {"INTERN_API_KEY": "env-token-00003"}
    invoke(base + ["-k", "flag-token-0004", "chat", "create", "-g", "user", "x"], env=env)
    invoke(base + ["chat", "create", "-g", "user", "x"], env=env)
    invoke(base + ["chat", "create", "-g", "user", "x"])
    memory_keyring.delete_password("interncli", "default")
    invoke(base + ["chat", "create", "-g", "user", "x"])
    sent = [r.headers["authorization"] for r in api.requests]
    assert sent == ["Bearer flag-token-0004", "Bearer env-token-00003", "Bearer keyring-token-02",
                    "Bearer file-token-0001"]


def test_status_without_a_token_exits_3(memory_keyring):
    result = invoke(["auth", "status"])
    assert result.exit_code == 3 and "token     none" in result.stdout and "auth login" in result.stderr


def test_token_prints_the_token_alone_for_scripts(memory_keyring):
    memory_keyring.set_password("interncli", "default", SENTINEL)
    result = invoke(["auth", "token"])
    assert (result.exit_code, result.stdout) == (0, SENTINEL + "\n")
    memory_keyring.delete_password("interncli", "default")
    assert invoke(["auth", "token"]).exit_code == 3


def test_logout_removes_the_token_from_keyring_and_file(memory_keyring, config_dir):
    assert invoke(["auth", "login", "--with-token", "--insecure-storage"], input="file-token-0001").exit_code == 0
    memory_keyring.set_password("interncli", "default", "keyring-token-02")
    result = invoke(["auth", "logout"])
    assert result.exit_code == 0 and "OS keyring" in result.stderr and "credentials.yaml" in result.stderr
    assert memory_keyring.passwords == {} and not (config_dir / "credentials.yaml").exists()
    again = invoke(["auth", "logout"])
    assert again.exit_code == 0 and "no stored token" in again.stderr


def test_no_keyring_backend_is_reported_as_such_with_the_way_out():
    keyring.set_keyring(keyring.backends.fail.Keyring())
    login = invoke(["auth", "login", "--with-token"], input="tok-123456789")
    assert login.exit_code == 3
    assert "keyring is not available" in login.stderr
    assert "INTERN_API_KEY" in login.stderr and "--insecure-storage" in login.stderr
    chat = invoke(["chat", "create", "-g", "user", "x"])
    assert chat.exit_code == 3 and "keyring is not available" in chat.stderr
    assert "token is not valid" not in chat.stderr
    # the way out works
    assert invoke(["auth", "login", "--with-token", "--insecure-storage"], input="tok-123456789").exit_code == 0
    assert json.loads(invoke(["auth", "status", "--json"]).stdout)["token_source"] == "file"


def test_a_401_without_a_token_blames_the_keyring_when_it_is_to_blame(api):
    from tests.apiserver import Json

    keyring.set_keyring(keyring.backends.fail.Keyring())
    api.add(Json({"msgCode": "A0202", "msg": "User authentication failed"}, status=401))
    result = invoke(["-b", api.base_url, "chat", "create", "-g", "user", "x"])
    assert result.exit_code == 3 and "No token was sent" in result.stderr and "keyring" in result.stderr
    assert "authorization" not in api.last.headers


def test_a_keyring_that_never_answers_does_not_hang_the_run():
    keyring.set_keyring(HangingKeyring())
    result = invoke(["auth", "status"], env={"INTERNCLI_KEYRING_TIMEOUT": "0.05"})
    assert result.exit_code == 3 and "did not answer within 0.05s" in result.stderr


def test_a_token_from_flag_or_env_never_asks_the_keyring():
    keyring.set_keyring(HangingKeyring())
    result = invoke(["-k", "flag-token-0004", "chat", "create", "-g", "user", "x", "--dry-run"],
                    env={"INTERNCLI_KEYRING_TIMEOUT": "30"})
    assert result.exit_code == 0 and "Bearer ***" in result.stdout


def test_a_keyring_that_never_answers_does_not_hang_login_either():
    keyring.set_keyring(HangingKeyring())
    result = invoke(["auth", "login", "--with-token"], input="tok-123456789",
                    env={"INTERNCLI_KEYRING_TIMEOUT": "0.05"})
    assert result.exit_code == 3 and "did not answer within 0.05s" in result.stderr


def test_insecure_login_removes_an_older_keyring_token_that_would_shadow_it(memory_keyring):
    memory_keyring.set_password("interncli", "default", "old-keyring-token")
    result = invoke(["auth", "login", "--with-token", "--insecure-storage"], input="new-file-token-01")
    assert result.exit_code == 0 and "removed the older token" in result.stderr
    assert memory_keyring.passwords == {}
    assert invoke(["auth", "token"]).stdout == "new-file-token-01\n"


def test_a_null_or_world_readable_file_token(memory_keyring, config_dir):
    path = config_dir / "credentials.yaml"
    path.write_text("profiles:\n  default:\n    token:\n")
    path.chmod(0o600)
    assert invoke(["auth", "token"]).exit_code == 3  # not the token "None"
    path.write_text("profiles:\n  default: {token: file-token-0001}\n")
    path.chmod(0o644)
    result = invoke(["auth", "token"])
    assert result.stdout == "file-token-0001\n" and "chmod 600" in result.stderr


def test_auth_token_works_while_another_setting_of_the_profile_is_broken(memory_keyring, config_dir):
    (config_dir / "config.yaml").write_text("profiles:\n  default: {timeout: abc}\n")
    memory_keyring.set_password("interncli", "default", "keyring-token-02")
    assert invoke(["auth", "token"]).stdout == "keyring-token-02\n"


def test_a_token_pasted_as_an_argument_is_not_echoed(memory_keyring):
    result = invoke(["auth", "login", "eyJSECRETTOKEN12345"], env={"INTERN_API_KEY": "eyJSECRETTOKEN12345"})
    assert result.exit_code == 2 and "eyJSECRETTOKEN12345" not in result.stderr


def test_logout_with_no_keyring_and_nothing_stored_is_success():
    # keyring's "fail" backend: no keyring at all, so nothing can be stored in one.
    keyring.set_keyring(keyring.backends.fail.Keyring())
    result = invoke(["auth", "logout"])
    assert result.exit_code == 0, result.stderr
    assert "no stored token for profile 'default'" in result.stderr and "warning" not in result.stderr


def test_logout_with_no_keyring_still_removes_the_file_token(config_dir):
    keyring.set_keyring(keyring.backends.fail.Keyring())
    assert invoke(["auth", "login", "--with-token", "--insecure-storage"], input="file-token-0001").exit_code == 0
    result = invoke(["auth", "logout"])
    assert result.exit_code == 0 and "credentials.yaml" in result.stderr and "warning" not in result.stderr
    assert not (config_dir / "credentials.yaml").exists()


def test_logout_with_a_keyring_that_fails_warns_that_a_token_may_remain():
    keyring.set_keyring(HangingKeyring())
    result = invoke(["auth", "logout"], env={"INTERNCLI_KEYRING_TIMEOUT": "0.05"})
    assert result.exit_code == 0, result.stderr
    assert "warning: the OS keyring did not answer within 0.05s" in result.stderr
    assert "if any, is still there" in result.stderr and "no stored token" not in result.stderr
