"""Passwords in URLs (interface.md section 2, issue 8): a base URL with ``user:password@`` is
refused without being echoed, and a proxy's password is masked wherever a proxy URL is shown
and redacted from every message, even one a proxy's error page quotes back in base64."""

from __future__ import annotations

import base64
import json

import pytest

from tests.apiserver import Raw
from tests.conftest import SENTINEL, invoke

PASSWORD = "s3cret-pw"
HI = ["chat", "create", "-g", "user", "hi"]


@pytest.mark.parametrize("userinfo", ["u:" + PASSWORD, "u:" + PASSWORD + "@x", PASSWORD, ":" + PASSWORD])
@pytest.mark.parametrize("where", ["flag", "env", "profile", "config set"])
def test_a_base_url_with_a_user_or_password_is_refused_without_echoing_it(api, config_dir, where, userinfo):
    url = "http://{}@127.0.0.1:{}/v1".format(userinfo, api.port)
    if where == "flag":
        result = invoke(["-b", url] + HI)
    elif where == "env":
        result = invoke(HI, env={"INTERN_BASE_URL": url})
    elif where == "profile":
        (config_dir / "config.yaml").write_text("profiles:\n  default: {{base_url: '{}'}}\n".format(url))
        result = invoke(HI)
    else:
        result = invoke(["config", "set", "base_url", url])
        assert not (config_dir / "config.yaml").exists()
    assert result.exit_code == 2, result.stderr
    assert "user name or password" in result.stderr and "hint:" in result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    assert api.requests == []


def test_auth_commands_refuse_it_too(memory_keyring):
    url = "https://u:{}@chat.intern-ai.org.cn/api/v1".format(PASSWORD)
    for args in (["auth", "token"], ["auth", "status"], ["auth", "login", "--with-token"]):
        result = invoke(["-b", url] + args, input=SENTINEL)
        assert result.exit_code == 2 and PASSWORD not in result.stderr, (args, result.stderr)
    assert memory_keyring.passwords == {}


def proxy_url(port: int) -> str:
    return "http://u:{}@127.0.0.1:{}".format(PASSWORD, port)


def test_config_list_and_get_mask_the_proxy_password(config_dir):
    assert invoke(["config", "set", "proxy", "http://u:{}@proxy.example:3128".format(PASSWORD)]).exit_code == 0
    text = invoke(["config", "list"])
    assert "http://u:***@proxy.example:3128" in text.stdout and PASSWORD not in text.stdout
    listed = json.loads(invoke(["config", "list", "--json"]).stdout)
    assert listed["settings"]["proxy"] == "http://u:***@proxy.example:3128"
    got = invoke(["config", "get", "proxy"])
    assert got.stdout == "http://u:***@proxy.example:3128\n"
    # From the flag as well.
    flag = invoke(["--proxy", "http://v:{}@other:8080".format(PASSWORD), "config", "list", "--json"])
    assert json.loads(flag.stdout)["settings"]["proxy"] == "http://v:***@other:8080"


def test_a_proxy_url_refused_as_invalid_is_not_echoed_with_its_password():
    result = invoke(["--proxy", "http://u:{}@proxy:notaport".format(PASSWORD), "config", "list"])
    assert result.exit_code == 2 and "u:***@proxy" in result.stderr and PASSWORD not in result.stderr


def _echo_page() -> Raw:
    # A proxy's error page that shows the request it got, Proxy-Authorization included (squid
    # and some corporate gateways do), with the password also quoted as typed.
    basic = base64.b64encode("u:{}".format(PASSWORD).encode()).decode()
    return Raw("<h1>502</h1><pre>Proxy-Authorization: Basic {}\nupstream said: bad password {}</pre>".format(
        basic, PASSWORD), status=502, content_type="text/plain")


@pytest.mark.parametrize("how", ["flag", "env", "profile"])
def test_a_proxy_quoting_its_password_back_is_redacted_everywhere(api, config_dir, how):
    basic = base64.b64encode("u:{}".format(PASSWORD).encode()).decode()
    argv, env = ["-b", "http://gpu-box.example/v1"], None
    if how == "flag":
        argv += ["--proxy", proxy_url(api.port)]
    elif how == "env":
        env = {"HTTP_PROXY": proxy_url(api.port)}
    else:
        assert invoke(["config", "set", "proxy", proxy_url(api.port)]).exit_code == 0
    for extra in ([], ["-v"], ["--debug"]):
        for as_json in ([], ["--json"]):
            api.reset()
            api.add(_echo_page())
            result = invoke(argv + extra + ["--max-retries", "0"] + HI + as_json, env=env)
            assert result.exit_code == 1, result.stderr
            assert api.last.headers.get("proxy-authorization") == "Basic " + basic  # it did go through the proxy
            assert PASSWORD not in result.stderr and basic not in result.stderr, result.stderr
            assert "***" in result.stderr


def test_dry_run_and_verbose_show_no_proxy_password(api):
    proxy = ["--proxy", proxy_url(api.port), "-b", "http://gpu-box.example/v1"]
    dry = invoke(proxy + HI + ["--dry-run"])
    assert dry.exit_code == 0 and PASSWORD not in dry.stdout + dry.stderr
    verbose = invoke(["-v"] + proxy + HI)
    assert verbose.exit_code == 0 and "> POST" in verbose.stderr and PASSWORD not in verbose.stderr
