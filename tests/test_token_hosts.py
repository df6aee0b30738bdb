"""A stored token stays with its host, and never goes over plain http:// to another machine
without the user's say (interface.md sections 2 and 3, issue 8).

Hosts are told apart by name, all on loopback: 127.0.0.1, localhost (which resolves to
127.0.0.1 here, yet is another name, as a typo would be) and 127.0.0.2 (Linux routes all of
127.0.0.0/8 to the loopback interface, so a second server can listen there without setup).
For "another machine" over http://, the test server is used as an HTTP proxy: requests sends
the absolute URL of the far host to the proxy and resolves nothing itself, so no packet leaves
this machine."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.apiserver import CHAT_PATH, MODELS_PATH, APIServer, Json
from tests.conftest import SENTINEL, find_interncli, invoke
from tests.hostserver import HostAPIServer

REPO_ROOT = Path(__file__).resolve().parent.parent
HI = ["chat", "create", "-g", "user", "hi"]
UNAUTHORIZED = Json({"msgCode": "A0202", "msg": "User authentication failed"}, status=401)


@pytest.fixture
def other():
    """A second test server, on 127.0.0.2: another host."""
    with HostAPIServer("127.0.0.2") as server:
        yield server


def use_profile_url(config_dir: Path, url: str) -> None:
    (config_dir / "config.yaml").write_text("profiles:\n  default: {{base_url: '{}'}}\n".format(url))


def auth_headers(server: APIServer) -> list:
    return [r.headers.get("authorization") for r in server.requests]


# ------------------------------------------------------------------ the token and its host


@pytest.mark.parametrize("store", ["keyring", "file"])
def test_a_stored_token_goes_only_to_the_host_it_was_stored_for(memory_keyring, config_dir, api, other, store):
    use_profile_url(config_dir, api.base_url)
    login = ["auth", "login", "--with-token"] + (["--insecure-storage"] if store == "file" else [])
    assert invoke(login, input=SENTINEL).exit_code == 0
    assert invoke(HI).exit_code == 0
    assert auth_headers(api) == ["Bearer " + SENTINEL]
    # -b to another host, by flag or by variable: no token.
    assert invoke(["-b", other.base_url] + HI).exit_code == 0
    assert invoke(HI, env={"INTERN_BASE_URL": other.base_url}).exit_code == 0
    assert auth_headers(other) == [None, None]
    # The same server under another name is another host too (a typo would be).
    assert invoke(["-b", "http://localhost:{}/v1".format(api.port)] + HI).exit_code == 0
    # The same host, another spelling of the path: the token goes.
    assert invoke(["-b", api.base_url + "/"] + HI).exit_code == 0
    assert auth_headers(api) == ["Bearer " + SENTINEL, None, "Bearer " + SENTINEL]


def test_only_flag_or_variable_tokens_reach_another_host(memory_keyring, config_dir, api, other):
    use_profile_url(config_dir, api.base_url)
    memory_keyring.set_password("interncli", "default", SENTINEL)
    assert invoke(["-b", other.base_url, "-k", "flag-token-0004"] + HI).exit_code == 0
    assert invoke(["-b", other.base_url] + HI, env={"INTERN_API_KEY": "env-token-00003"}).exit_code == 0
    assert auth_headers(other) == ["Bearer flag-token-0004", "Bearer env-token-00003"]


def test_the_official_token_never_goes_to_a_private_server(memory_keyring, api):
    # No config at all: a token stored then is the official service's.
    assert invoke(["auth", "login", "--with-token"], input=SENTINEL).exit_code == 0
    assert invoke(["-b", api.base_url] + HI).exit_code == 0
    assert invoke(["-b", api.base_url, "models", "list"]).exit_code == 0
    assert auth_headers(api) == [None, None]


def test_a_token_stored_before_hosts_were_recorded_belongs_to_the_profiles_base_url(memory_keyring, config_dir,
                                                                                     api, other):
    # Put in the keyring directly (as by an older interncli): no record, so the profile's own
    # base URL decides.
    use_profile_url(config_dir, other.base_url)
    memory_keyring.set_password("interncli", "default", SENTINEL)
    assert invoke(HI).exit_code == 0
    assert invoke(["-b", api.base_url] + HI).exit_code == 0
    assert auth_headers(other) == ["Bearer " + SENTINEL] and auth_headers(api) == [None]


def test_a_profile_pointed_elsewhere_after_login_no_longer_gets_the_token(memory_keyring, config_dir, api):
    use_profile_url(config_dir, api.base_url)
    assert invoke(["auth", "login", "--with-token"], input=SENTINEL).exit_code == 0
    assert invoke(["config", "set", "base_url", "http://localhost:{}/v1".format(api.port)]).exit_code == 0
    api.add(UNAUTHORIZED)
    result = invoke(HI)
    assert result.exit_code == 3 and auth_headers(api) == [None]
    assert "belongs to 127.0.0.1 and is not sent to localhost" in result.stderr
    # Logging in again for the new host makes it the token's host.
    assert invoke(["auth", "login", "--with-token"], input=SENTINEL).exit_code == 0
    assert invoke(HI).exit_code == 0 and auth_headers(api)[-1] == "Bearer " + SENTINEL


def test_a_withheld_token_is_named_once_when_the_server_then_says_401(memory_keyring, config_dir, api, other):
    use_profile_url(config_dir, api.base_url)
    assert invoke(["auth", "login", "--with-token"], input=SENTINEL).exit_code == 0
    other.add(UNAUTHORIZED)
    result = invoke(["-b", other.base_url, "--max-retries", "0"] + HI)
    assert result.exit_code == 3, result.stderr
    assert result.stderr.count("No token was sent: the token stored for profile 'default' belongs to 127.0.0.1 "
                               "and is not sent to 127.0.0.2") == 1, result.stderr
    assert "INTERN_API_KEY" in result.stderr and SENTINEL not in result.stderr
    # Without a 401, a private server that needs no token is not nagged about it.
    assert "token" not in invoke(["-b", other.base_url] + HI).stderr


def test_auth_status_and_token_say_the_stored_token_is_withheld(memory_keyring, config_dir, api, other):
    use_profile_url(config_dir, api.base_url)
    assert invoke(["auth", "login", "--with-token"], input=SENTINEL).exit_code == 0
    text = invoke(["-b", other.base_url, "auth", "status"])
    assert text.exit_code == 3 and "none (the stored token is for 127.0.0.1)" in text.stdout
    assert "not sent to 127.0.0.2" in text.stderr
    status = json.loads(invoke(["-b", other.base_url, "auth", "status", "--json"]).stdout)
    assert (status["token"], status["withheld_for"]) == (None, "127.0.0.1")
    token = invoke(["-b", other.base_url, "auth", "token"])
    assert token.exit_code == 3 and token.stdout == "" and "not sent to 127.0.0.2" in token.stderr
    assert json.loads(invoke(["auth", "status", "--json"]).stdout)["withheld_for"] is None


def test_the_official_service_without_its_token_is_refused_before_sending(memory_keyring, config_dir, api):
    use_profile_url(config_dir, api.base_url)
    memory_keyring.set_password("interncli", "default", SENTINEL)
    # The proxy would see any request: none may go, and no token either.
    result = invoke(["-b", "https://chat.intern-ai.org.cn/api/v1", "--proxy", api.url] + HI)
    assert result.exit_code == 3 and "belongs to 127.0.0.1" in result.stderr
    assert api.requests == []


def test_logout_forgets_the_host_too(memory_keyring, config_dir, api):
    use_profile_url(config_dir, api.base_url)
    assert invoke(["auth", "login", "--with-token"], input=SENTINEL).exit_code == 0
    assert "127.0.0.1" in (config_dir / "token-hosts.yaml").read_text()
    assert SENTINEL not in (config_dir / "token-hosts.yaml").read_text()
    assert invoke(["auth", "logout"]).exit_code == 0
    assert "default" not in (config_dir / "token-hosts.yaml").read_text()


@pytest.mark.integration
def test_the_installed_command_keeps_the_stored_token_from_another_host(api, other, tmp_path, isolated_env):
    exe = find_interncli()
    assert exe is not None, "the `interncli` command is not installed (pip install -e .)"
    env = dict(os.environ, PYTHON_KEYRING_BACKEND="tests.filekeyring.FileKeyring", PYTHONPATH=str(REPO_ROOT),
               INTERNCLI_TEST_KEYRING_FILE=str(tmp_path / "keyring.json"))

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        return subprocess.run([exe, *args], input=stdin, capture_output=True, text=True, env=env, timeout=30)

    assert run("-b", api.base_url, "auth", "login", "--with-token", stdin=SENTINEL + "\n").returncode == 0
    assert run("-b", api.base_url, *HI).returncode == 0
    assert run("-b", other.base_url, *HI).returncode == 0
    assert run("-b", "http://localhost:{}/v1".format(api.port), "models", "list").returncode == 0
    assert auth_headers(api) == ["Bearer " + SENTINEL, None] and auth_headers(other) == [None]
    assert [r.route for r in api.requests] == [CHAT_PATH, MODELS_PATH]


# ------------------------------------------------------------ plain http:// to another machine


def test_a_token_over_plain_http_to_another_machine_is_refused(api):
    result = invoke(["-b", "http://gpu-box.example:23333/v1", "--proxy", api.url, "-k", SENTINEL] + HI)
    assert result.exit_code == 2 and "plain http://" in result.stderr and "gpu-box.example" in result.stderr
    assert "allow_http" in result.stderr and "INTERN_ALLOW_HTTP" in result.stderr
    assert api.requests == [] and SENTINEL not in result.stderr


def test_without_a_token_plain_http_has_nothing_to_protect(api):
    result = invoke(["-b", "http://gpu-box.example:23333/v1", "--proxy", api.url] + HI)
    assert result.exit_code == 0 and result.stdout == "echo: hi\n" and "warning" not in result.stderr
    assert api.last.path == "http://gpu-box.example:23333/v1/chat/completions"


@pytest.mark.parametrize("opt_in", ["env", "profile"])
def test_opting_in_sends_it_with_one_warning(api, config_dir, opt_in):
    env = {"INTERN_ALLOW_HTTP": "1"} if opt_in == "env" else None
    if opt_in == "profile":
        assert invoke(["config", "set", "allow_http", "true"]).exit_code == 0
    api.add(Json({"code": 500, "msg": "busy"}, status=500, headers={"Retry-After": "0"}))
    result = invoke(["-b", "http://gpu-box.example:23333/v1", "--proxy", api.url, "-k", SENTINEL,
                     "--max-retries", "1"] + HI, env=env)
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("warning: the API token goes over plain http:// to gpu-box.example") == 1
    assert auth_headers(api) == ["Bearer " + SENTINEL] * 2


def test_this_machine_needs_no_opt_in(api):
    # 127.0.0.1 (the server itself) and localhost are this machine.
    for url in (api.base_url, "http://localhost:{}/v1".format(api.port)):
        result = invoke(["-b", url, "-k", SENTINEL] + HI)
        assert result.exit_code == 0 and "warning" not in result.stderr


def test_allow_http_must_be_a_boolean(config_dir):
    result = invoke(["config", "set", "allow_http", "maybe"])
    assert result.exit_code == 2 and "true or false" in result.stderr
    bad_env = invoke(["-k", SENTINEL, "-b", "http://gpu-box.example/v1"] + HI, env={"INTERN_ALLOW_HTTP": "sure"})
    assert bad_env.exit_code == 2 and "INTERN_ALLOW_HTTP" in bad_env.stderr
    assert invoke(["config", "set", "allow_http", "yes"]).exit_code == 0
    assert invoke(["config", "get", "allow_http"]).stdout == "true\n"


# A credential header (-H, the profile's headers) is a secret as much as the token: the same rule.
# Found after issue 10 added -H: a key in X-Api-Key went over plain http:// to another machine
# with no word, where the token would have been refused.


def test_a_credential_header_over_plain_http_to_another_machine_is_refused(api):
    result = invoke(["-b", "http://gpu-box.example:23333/v1", "--proxy", api.url,
                     "-H", "X-Api-Key: " + SENTINEL] + HI)
    assert result.exit_code == 2 and api.requests == []
    assert "refusing to send the header X-Api-Key over plain http:// to gpu-box.example" in result.stderr
    assert SENTINEL not in result.stderr


def test_a_credential_header_opted_in_goes_with_one_warning(api):
    result = invoke(["-b", "http://gpu-box.example:23333/v1", "--proxy", api.url,
                     "-H", "X-Api-Key: " + SENTINEL, "-H", "X-Team: search"] + HI, env={"INTERN_ALLOW_HTTP": "1"})
    assert result.exit_code == 0, result.stderr
    assert result.stderr.count("warning: the header X-Api-Key goes over plain http:// to gpu-box.example") == 1
    assert api.last.headers.get("x-api-key") == SENTINEL  # the server records names lower-cased


def test_a_plain_header_over_plain_http_needs_no_opt_in(api):
    result = invoke(["-b", "http://gpu-box.example:23333/v1", "--proxy", api.url, "-H", "X-Team: search"] + HI)
    assert result.exit_code == 0 and "warning" not in result.stderr


def test_the_token_and_a_credential_header_are_named_together(api):
    result = invoke(["-b", "http://gpu-box.example:23333/v1", "--proxy", api.url, "-k", SENTINEL,
                     "-H", "Cookie: session=" + SENTINEL] + HI)
    assert result.exit_code == 2
    assert "refusing to send the API token and the header Cookie over plain http://" in result.stderr
