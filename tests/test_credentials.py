"""Unit tests of interncli.credentials: cleaning, checking, masking and redacting a token, the
-k values found on a command line, the lookup order (with the in-memory keyring of
tests/memkeyring.py), and that what the lookup finds wrong travels on the Credential instead of
being printed."""

from __future__ import annotations

import os
from typing import Optional

import keyring
import pytest
from keyring.backend import KeyringBackend

from interncli import credentials
from interncli.credentials import Credential, KeyringUnavailable
from interncli.errors import AuthError, UsageError

TOKEN = "tok-0123456789abcdef"
HOST = "chat.intern-ai.org.cn"


class BrokenKeyring(KeyringBackend):
    """A keyring that fails on every call, as a locked or broken one does."""

    priority = 1  # type: ignore[assignment]

    def get_password(self, service: str, username: str) -> Optional[str]:
        raise RuntimeError("the collection is locked")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise RuntimeError("the collection is locked")

    def delete_password(self, service: str, username: str) -> None:
        raise RuntimeError("the collection is locked")


@pytest.fixture
def broken_keyring():
    previous = keyring.get_keyring()
    keyring.set_keyring(BrokenKeyring())
    yield
    keyring.set_keyring(previous)


def write_token_file(config_dir, profile: str, token: str, mode: int = 0o600) -> str:
    path = os.path.join(str(config_dir), credentials.CREDENTIALS_FILE)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("profiles:\n  {}:\n    token: {}\n".format(profile, token))
    os.chmod(path, mode)
    return path


def lookup(config_dir, flag: Optional[str] = None, env: Optional[str] = None, profile: str = "default",
           host: str = HOST, home_host: str = HOST) -> Credential:
    environ = {"INTERN_API_KEY": env} if env is not None else {}
    return credentials.lookup(flag, environ, profile, str(config_dir), host, home_host)


# ------------------------------------------------------------------ one token


@pytest.mark.parametrize("raw, clean", [("  tok\n", "tok"), ("Bearer tok", "tok"), ("bearer\ttok ", "tok"),
                                        ("Bearertok", "Bearertok"), ("Bearer", "")])
def test_clean_token_strips_whitespace_and_a_pasted_bearer(raw, clean):
    assert credentials.clean_token(raw) == clean


@pytest.mark.parametrize("bad", ["two words", "wrapped\nline", "tok\x07", "tök-0123", "abc"])
def test_check_token_refuses_what_no_header_can_carry_without_echoing_it(bad):
    with pytest.raises(AuthError) as caught:
        credentials.check_token(bad, "env")
    assert bad not in caught.value.message and "INTERN_API_KEY" in caught.value.message


def test_check_token_raises_the_class_it_is_given():
    with pytest.raises(UsageError):
        credentials.check_token("a b", "the login input", error=UsageError)
    assert credentials.check_token(TOKEN, "flag") == TOKEN


def test_mask_shows_a_little_of_a_long_token_and_nothing_of_a_short_one():
    assert credentials.mask(TOKEN) == "tok-…ef"
    assert credentials.mask("short-token") == "****"


def test_redact_finds_the_token_in_the_forms_a_server_quotes_it():
    import base64

    text = "a {} b {} c {}".format(TOKEN, TOKEN.replace("-", "%2D"), base64.b64encode(TOKEN.encode()).decode())
    assert credentials.redact(text, [TOKEN]) == "a *** b *** c ***"
    assert credentials.redact("no secret here", []) == "no secret here"


@pytest.mark.parametrize("argv, found", [(["-k", TOKEN], [TOKEN]), (["-vk" + TOKEN], [TOKEN]),
                                         (["--api-key=" + TOKEN], [TOKEN]), (["--", "-k", TOKEN], []),
                                         (["-g", "user", "hi"], [])])
def test_argv_tokens(argv, found):
    assert credentials.argv_tokens(argv) == found


def test_a_credential_never_shows_its_token():
    assert TOKEN not in repr(Credential(TOKEN, "flag"))


# ------------------------------------------------------------------ the lookup order


def test_the_flag_comes_first_then_the_variable(config_dir, memory_keyring):
    memory_keyring.set_password(credentials.SERVICE, "default", "keyring-" + TOKEN)
    found = lookup(config_dir, flag="flag-" + TOKEN, env="env-" + TOKEN)
    assert (found.token, found.source) == ("flag-" + TOKEN, "flag")
    found = lookup(config_dir, env="Bearer env-" + TOKEN)
    assert (found.token, found.source) == ("env-" + TOKEN, "env")


def test_then_the_keyring_then_the_file(config_dir, memory_keyring):
    write_token_file(config_dir, "default", "file-" + TOKEN)
    memory_keyring.set_password(credentials.SERVICE, "default", "keyring-" + TOKEN)
    found = lookup(config_dir)
    assert (found.token, found.source) == ("keyring-" + TOKEN, "keyring")
    memory_keyring.delete_password(credentials.SERVICE, "default")
    found = lookup(config_dir)
    assert (found.token, found.source) == ("file-" + TOKEN, "file")


def test_none_anywhere_is_a_credential_without_a_token(config_dir):
    found = lookup(config_dir)
    assert (found.token, found.source, found.keyring_problem, found.withheld, found.warnings) == \
        (None, "none", None, None, [])


def test_a_broken_keyring_is_a_problem_on_the_credential_and_the_file_still_counts(config_dir, broken_keyring):
    found = lookup(config_dir)
    assert found.token is None and isinstance(found.keyring_problem, KeyringUnavailable)
    assert "the collection is locked" in found.keyring_problem.message
    write_token_file(config_dir, "default", "file-" + TOKEN)
    found = lookup(config_dir)
    assert found.token == "file-" + TOKEN and found.keyring_problem is not None


def test_a_stored_token_is_withheld_from_another_host(config_dir, memory_keyring):
    memory_keyring.set_password(credentials.SERVICE, "default", "keyring-" + TOKEN)
    found = lookup(config_dir, host="elsewhere.example")
    assert found.token is None and found.withheld == HOST
    credentials.record_host(str(config_dir), "default", "elsewhere.example")
    assert lookup(config_dir, host="elsewhere.example").token == "keyring-" + TOKEN


# ------------------------------------------------------------------ warnings travel, not printed


def test_a_token_file_others_can_read_is_a_warning_on_the_credential_not_printed(config_dir, capfd):
    path = write_token_file(config_dir, "default", "file-" + TOKEN, mode=0o644)
    found = lookup(config_dir)
    assert found.token == "file-" + TOKEN
    assert found.warnings == ["{} can be read by other users; run: chmod 600 {}".format(path, path)]
    assert capfd.readouterr() == ("", "")


def test_the_warning_comes_even_when_the_file_holds_no_token_for_the_profile(config_dir, capfd):
    write_token_file(config_dir, "other", "file-" + TOKEN, mode=0o640)
    found = lookup(config_dir)
    assert found.token is None and len(found.warnings) == 1
    assert capfd.readouterr() == ("", "")


def test_a_private_file_gives_no_warning(config_dir):
    write_token_file(config_dir, "default", "file-" + TOKEN)
    assert lookup(config_dir).warnings == []
    assert credentials.file_warnings(str(config_dir)) == []


def test_file_warnings_without_a_file_are_none(config_dir):
    assert credentials.file_warnings(str(config_dir)) == []


# ------------------------------------------------------------------ the one "no token" error


def test_missing_token_when_none_was_stored():
    err = credentials.missing_token(Credential(None, "none"), "local", HOST, "Log in.")
    assert (err.message, err.hint) == ("no token for profile 'local'", "Log in.")
    assert Credential(None, "none").absence("local", HOST) is None


def test_missing_token_names_the_host_a_withheld_token_belongs_to():
    credential = Credential(None, "none", withheld="home.example")
    err = credentials.missing_token(credential, "default", "other.example", "Log in.", lead="not logged in: ",
                                    noun="API token")
    assert err.message == ("not logged in: no API token for other.example: the token stored for profile "
                           "'default' belongs to home.example and is not sent to other.example")
    assert err.hint == credentials.WITHHELD_HINT
    assert credential.absence("default", "other.example") == (err.message.split(": ", 2)[2], credentials.WITHHELD_HINT)


def test_missing_token_blames_the_keyring_when_it_failed():
    problem = KeyringUnavailable("the OS keyring did not answer within 1s")
    err = credentials.missing_token(Credential(None, "none", problem), "default", HOST, "Log in.")
    assert err.message == "no token for profile 'default': the OS keyring did not answer within 1s"
    assert err.hint == credentials.WAY_OUT
    assert isinstance(err, AuthError)


def test_a_credential_with_a_token_has_no_absence():
    assert Credential(TOKEN, "env", withheld="x").absence("default", HOST) is None
