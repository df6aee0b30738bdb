"""The one table of settings and the one table of exit codes: what resolution, --help, `config`,
the man page and the README say comes from them or is checked against them here; and the
settings tell the truth (a profile's proxy yields to NO_PROXY, `config list` shows the proxy in
effect)."""

from __future__ import annotations

import json
import pathlib
import re
from typing import Dict, List, Tuple

import pytest

from interncli import config, credentials
from interncli.context import Settings
from interncli.errors import EXIT_MEANINGS, ExitCode
from tests.apiserver import APIServer
from tests.conftest import SENTINEL, invoke

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
MAN = (ROOT / "man" / "interncli.1").read_text(encoding="utf-8")
BY_NAME = {s.name: s for s in config.SETTINGS}


def readme_section(title: str) -> str:
    return README.split("\n## " + title + "\n", 1)[1].split("\n## ", 1)[0]


def readme_rows(title: str) -> List[List[str]]:
    """The cells of the first table of a README section, the header and the rule left out."""
    rows = [line for line in readme_section(title).splitlines() if line.startswith("|")]
    # A cell may hold an escaped bar (`\|`): split on the others only.
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]] for line in rows[2:]]


def plain(cell: str) -> str:
    """A README cell as text: no backticks, no escaped bars."""
    return cell.replace("`", "").replace("\\|", "|")


def spoken(text: str) -> str:
    return " ".join(text.split())


# ------------------------------------------------------------------ the table of settings

def readme_settings() -> Dict[Tuple[Tuple[str, ...], Tuple[str, ...]], Tuple[str, str]]:
    """The README's global-options table: (flags, variables) -> (config key, default cell)."""
    found = {}
    for flag_cell, env_cell, key_cell, default_cell in readme_rows("Global options"):
        flags = tuple(f for word in re.findall(r"`([^`]*)`", flag_cell)
                      for f in word.split()[0].split("/") if f.startswith("-"))
        envs = tuple(re.findall(r"`([A-Z_]+)`", env_cell))
        found[flags, envs] = (plain(key_cell).strip("— "), default_cell)
    return found


def test_every_readme_settings_row_is_in_the_table_and_every_row_with_a_flag_or_variable_in_the_readme():
    readme = readme_settings()
    # -V/--version is an action, not a setting.
    readme.pop((("-V", "--version"), ()))
    table = {(s.flags, s.envs): s for s in config.SETTINGS if s.flags or s.envs}
    assert sorted(readme) == sorted(table)
    for where, setting in table.items():
        key, default_cell = readme[where]
        assert key == (setting.key or ""), setting.name
        if setting.shown_default() is not None:
            assert plain(default_cell).startswith(setting.shown_default()), (setting.name, default_cell)


def test_the_readme_names_every_config_key_and_config_help_too():
    keys = list(config.PARSERS) + list(config.FILE_KEYS)
    listed = spoken(readme_section("Usage").split("\nKeys: ", 1)[1].split(".", 1)[0])
    assert re.findall(r"`(\w+)`", listed) == keys
    result = invoke(["config", "--help"])
    assert result.exit_code == 0
    assert "Keys: {} (per profile), and default_profile".format(", ".join(config.PARSERS)) in spoken(result.stdout)
    assert "models" in result.stdout


def test_the_profile_keys_are_the_table_rows_with_a_parser():
    assert list(config.PARSERS) == [s.key for s in config.SETTINGS if s.parse is not None]
    # Settings and `config list` name a profile setting by its key, the flag's value by its name.
    assert all(s.name == s.key for s in config.SETTINGS if s.parse is not None)
    assert config.FILE_KEYS == ("default_profile",)
    assert config.PARSERS["allow_http"] is config.parse_bool


def test_settings_has_a_typed_attribute_for_each_profile_setting():
    assert set(Settings.__annotations__) == set(config.PARSERS)
    assert set(config.PARSERS) <= set(Settings.__slots__)


def test_the_root_help_shows_each_flag_with_its_text_from_the_table():
    result = invoke(["--help"])
    assert result.exit_code == 0
    text = spoken(result.stdout)
    for setting in config.SETTINGS:
        if setting.flags:
            assert spoken(setting.option_help()) in text, setting.name
    assert "[env INTERN_TIMEOUT; default: 130]" in text
    assert "[env HTTPS_PROXY, HTTP_PROXY, NO_PROXY; default: none]" in text


def test_option_help_and_the_man_text_are_built_from_a_row():
    row = config.Setting("rpm", "Requests a minute at most", flags=("--rpm",), metavar="N", envs=("INTERN_RPM",),
                         key="rpm", parse=config.parse_max_retries, default=30)
    assert row.option_help() == "Requests a minute at most [env INTERN_RPM; default: 30]."
    assert row.env_text() == "Requests a minute at most (config key rpm; default: 30)."
    assert row.flag_name == "--rpm"
    assert config.Setting("x", "A switch", flags=("-x",)).option_help() == "A switch."


def test_the_man_page_environment_section_is_the_table():
    environment = MAN.split(".SH ENVIRONMENT\n", 1)[1].split("\n.SH ", 1)[0].replace("\\-", "-")
    names = re.findall(r"^\.B (.+)$", environment, flags=re.M)
    assert names == [", ".join(s.envs) for s in config.SETTINGS if s.envs]
    assert "NO_PROXY also exempts a host from the profile's proxy" in spoken(environment)


def test_numbers_and_switches_show_as_given():
    assert config.shown_value(60.0) == "60"
    assert config.shown_value(60.5) == "60.5"
    assert config.shown_value(False) == "false"
    assert config.shown_value(["a", "b"]) == "a,b"


def test_the_keyring_timeout_row_states_the_default_in_use():
    assert BY_NAME["keyring_timeout"].default == credentials.DEFAULT_KEYRING_TIMEOUT


def test_config_list_shows_every_profile_setting_from_the_table(config_dir):
    doc = json.loads(invoke(["config", "list", "--json"]).stdout)
    assert list(doc["settings"]) == list(config.PARSERS) == list(doc["sources"])
    assert doc["settings"]["timeout"] == 130 and doc["settings"]["models"] == []
    text = invoke(["config", "list"]).stdout
    assert [line.split()[0] for line in text.splitlines()] == ["profile"] + list(config.PARSERS)
    assert re.search(r"^timeout +130 +\(default\)$", text, flags=re.M)


# ------------------------------------------------------------------ the table of exit codes

def test_every_exit_code_has_a_meaning():
    assert [code for code, _, _ in EXIT_MEANINGS] == sorted(ExitCode)
    assert ExitCode.TERMINATED == 143


def test_the_readme_exit_table_is_the_table():
    readme = {int(code): plain(meaning) for code, meaning in readme_rows("Exit codes")}
    assert readme == {int(code): meaning for code, _, meaning in EXIT_MEANINGS}


def test_the_root_help_and_the_man_page_name_every_exit_code():
    text = spoken(invoke(["--help"]).stdout)
    assert "exit codes: " + ", ".join("{} {}".format(int(c), w) for c, w, _ in EXIT_MEANINGS) + "." in text
    assert "143 terminated" in text
    status = MAN.split(".SH EXIT STATUS\n", 1)[1].split("\n.SH ", 1)[0].replace("\\-", "-")
    assert re.findall(r"^\.B (\d+)$", status, flags=re.M) == [str(int(c)) for c, _, _ in EXIT_MEANINGS]
    assert "terminated (SIGTERM" in status


# ------------------------------------------------------------------ a profile's proxy and NO_PROXY

@pytest.fixture
def proxy_server():
    """A server that stands for a proxy: requests sends it the whole URL, and it answers."""
    with APIServer() as server:
        yield server


def _profile_with_proxy(api, proxy_url):
    assert invoke(["config", "set", "base_url", api.base_url]).exit_code == 0
    assert invoke(["config", "set", "proxy", proxy_url]).exit_code == 0


def test_a_profile_proxy_is_used_without_no_proxy(config_dir, api, proxy_server):
    _profile_with_proxy(api, proxy_server.base_url.rsplit("/v1", 1)[0])
    result = invoke(["chat", "create", "-g", "user", "hi"])
    assert result.exit_code == 0 and result.stdout == "echo: hi\n", result.stderr
    assert len(proxy_server.requests) == 1 and proxy_server.requests[0].path.startswith("http://")
    assert api.requests == []


@pytest.mark.parametrize("name, value", [("NO_PROXY", "127.0.0.1"), ("no_proxy", "localhost,127.0.0.1"),
                                         ("NO_PROXY", "*"), ("no_proxy", "127.0.0.0/8")])
def test_no_proxy_exempts_the_host_from_a_profile_proxy(config_dir, api, proxy_server, name, value):
    _profile_with_proxy(api, proxy_server.base_url.rsplit("/v1", 1)[0])
    result = invoke(["chat", "create", "-g", "user", "hi"], env={name: value})
    assert result.exit_code == 0 and result.stdout == "echo: hi\n", result.stderr
    assert proxy_server.requests == [] and len(api.requests) == 1
    doc = json.loads(invoke(["config", "list", "--json"], env={name: value}).stdout)
    assert doc["settings"]["proxy"] is None and doc["sources"]["proxy"] == "env"


def test_no_proxy_for_another_host_leaves_the_profile_proxy(config_dir, api, proxy_server):
    _profile_with_proxy(api, proxy_server.base_url.rsplit("/v1", 1)[0])
    result = invoke(["chat", "create", "-g", "user", "hi"], env={"NO_PROXY": "example.com"})
    assert result.exit_code == 0 and len(proxy_server.requests) == 1 and api.requests == []


def test_the_proxy_flag_beats_no_proxy(config_dir, api, proxy_server):
    result = invoke(["-b", api.base_url, "--proxy", proxy_server.base_url.rsplit("/v1", 1)[0],
                     "chat", "create", "-g", "user", "hi"], env={"NO_PROXY": "127.0.0.1"})
    assert result.exit_code == 0 and len(proxy_server.requests) == 1 and api.requests == []


def test_no_proxy_lets_a_token_past_a_profile_proxy_on_another_machine(config_dir, api):
    # The token over plain http:// through a proxy on another machine is refused; NO_PROXY for
    # this host means no proxy is used, so nothing is refused and the request goes straight.
    _profile_with_proxy(api, "http://proxy.example:3128")
    refused = invoke(["chat", "create", "-g", "user", "hi"], env={"INTERN_API_KEY": SENTINEL})
    assert refused.exit_code == 2 and "through the proxy proxy.example" in refused.stderr
    assert "NO_PROXY" in refused.stderr  # the hint names the way out, which now works
    result = invoke(["chat", "create", "-g", "user", "hi"], env={"INTERN_API_KEY": SENTINEL, "NO_PROXY": "127.0.0.1"})
    assert result.exit_code == 0 and result.stdout == "echo: hi\n", result.stderr
    assert api.last.headers["authorization"] == "Bearer " + SENTINEL


# ------------------------------------------------------------------ config list tells the truth

@pytest.mark.parametrize("name", ["HTTPS_PROXY", "https_proxy", "ALL_PROXY"])
def test_config_list_shows_a_proxy_from_the_environment_masked(config_dir, name):
    env = {name: "http://user:hunter2-secret@proxy.example:3128"}
    text = invoke(["config", "list"], env=env)
    assert text.exit_code == 0 and "hunter2" not in text.stdout + text.stderr
    assert re.search(r"^proxy +http://user:\*\*\*@proxy\.example:3128 +\(env\)$", text.stdout, flags=re.M)
    doc = json.loads(invoke(["config", "list", "--json"], env=env).stdout)
    assert doc["settings"]["proxy"] == "http://user:***@proxy.example:3128" and doc["sources"]["proxy"] == "env"


def test_config_list_shows_no_proxy_where_no_proxy_exempts_the_base_url(config_dir):
    env = {"HTTPS_PROXY": "http://proxy.example:3128", "NO_PROXY": "chat.intern-ai.org.cn"}
    doc = json.loads(invoke(["config", "list", "--json"], env=env).stdout)
    assert doc["settings"]["proxy"] is None and doc["sources"]["proxy"] == "env"


def test_config_list_masks_a_profile_proxy(config_dir):
    assert invoke(["config", "set", "proxy", "http://u:pw-secret-1@proxy.example:3128"]).exit_code == 0
    text = invoke(["config", "list"]).stdout
    assert "pw-secret-1" not in text and "http://u:***@proxy.example:3128" in text and "(profile)" in text


# ------------------------------------------------------------------ docs that match

def test_chat_create_help_shows_jq_rj_for_a_stream():
    text = invoke(["chat", "create", "--help"]).stdout
    assert "| jq -rj '.choices[0].delta.content // empty'" in text
    assert "jq -r '.choices[0].delta" not in text


def test_the_conversation_help_and_readme_say_only_choice_0_is_kept():
    assert "only the first reply, choice 0" in spoken(invoke(["chat", "create", "--help"]).stdout)
    assert "only the first reply (choice 0) goes into the file" in spoken(README)
