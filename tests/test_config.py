"""`interncli config`: profiles in config.yaml, validated, written atomically, and the way to
point the whole tool at a private LMDeploy server."""

from __future__ import annotations

import json
import re
import sys

import pytest
import yaml

from tests.conftest import SENTINEL, invoke


def test_path_is_in_the_config_dir(config_dir):
    result = invoke(["config", "path"])
    assert result.stdout == str(config_dir / "config.yaml") + "\n"


def test_set_get_unset_round_trip(config_dir):
    assert invoke(["config", "set", "timeout", "60"]).exit_code == 0
    assert invoke(["config", "set", "--profile", "local", "base_url", "http://127.0.0.1:23333/v1"]).exit_code == 0
    assert invoke(["config", "get", "timeout"]).stdout == "60\n"  # as given (issue 9), not 60.0
    assert invoke(["--profile", "local", "config", "get", "base_url"]).stdout == "http://127.0.0.1:23333/v1\n"
    data = yaml.safe_load((config_dir / "config.yaml").read_text())
    assert data["profiles"] == {"default": {"timeout": 60.0}, "local": {"base_url": "http://127.0.0.1:23333/v1"}}
    assert invoke(["config", "unset", "timeout"]).exit_code == 0
    missing = invoke(["config", "get", "timeout"])
    assert missing.exit_code == 1 and missing.stdout == "" and "not set" in missing.stderr


@pytest.mark.parametrize("key, value, word", [
    ("colour", "blue", "Valid keys: base_url"),
    ("timeout", "soon", "timeout"),
    ("max_retries", "2.5", "max_retries"),
    ("base_url", "localhost:23333", "not a valid URL"),
    ("proxy", "proxy.example", "not a valid URL"),
    ("default_profile", "nope", "no profile 'nope'"),
])
def test_bad_keys_and_values_are_refused_and_nothing_is_written(config_dir, key, value, word):
    result = invoke(["config", "set", key, value])
    assert result.exit_code == 2 and word in result.stderr and "hint:" in result.stderr
    assert not (config_dir / "config.yaml").exists()


def test_get_of_an_unknown_key_lists_the_valid_ones():
    result = invoke(["config", "get", "colour"])
    assert result.exit_code == 2 and "base_url" in result.stderr


def test_default_profile_switches_the_whole_tool(config_dir, api):
    assert invoke(["config", "set", "--profile", "local", "base_url", api.base_url]).exit_code == 0
    assert invoke(["config", "set", "--profile", "local", "model", "internlm2_5-7b-chat"]).exit_code == 0
    assert invoke(["config", "set", "default_profile", "local"]).exit_code == 0
    result = invoke(["chat", "create", "-g", "user", "hi"], env={"INTERN_API_KEY": SENTINEL})
    assert result.exit_code == 0 and result.stdout == "echo: hi\n"
    assert api.last.json["model"] == "internlm2_5-7b-chat"


def test_a_private_server_needs_no_token(config_dir, api):
    assert invoke(["config", "set", "--profile", "local", "base_url", api.base_url]).exit_code == 0
    result = invoke(["--profile", "local", "chat", "create", "-g", "user", "hi"])
    assert result.exit_code == 0 and "authorization" not in api.last.headers


def test_list_shows_each_setting_and_where_it_comes_from(config_dir):
    assert invoke(["config", "set", "--profile", "local", "base_url", "http://127.0.0.1:23333/v1"]).exit_code == 0
    result = invoke(["--profile", "local", "--timeout", "5", "config", "list", "--json"],
                    env={"INTERN_MAX_RETRIES": "4"})
    doc = json.loads(result.stdout)
    assert doc["profile"] == "local"
    assert doc["settings"]["base_url"] == "http://127.0.0.1:23333/v1" and doc["sources"]["base_url"] == "profile"
    assert doc["settings"]["timeout"] == 5.0 and doc["sources"]["timeout"] == "flag"
    assert doc["settings"]["max_retries"] == 4 and doc["sources"]["max_retries"] == "env"
    assert doc["sources"]["model"] == "default"
    text = invoke(["--profile", "local", "config", "list"]).stdout
    assert "base_url" in text and "(profile)" in text


def test_writes_keep_other_profiles_and_are_atomic(config_dir):
    (config_dir / "config.yaml").write_text(
        "default_profile: default\nprofiles:\n  default: {model: intern-latest}\n  other: {timeout: 9}\n")
    assert invoke(["config", "set", "--profile", "local", "model", "m"]).exit_code == 0
    data = yaml.safe_load((config_dir / "config.yaml").read_text())
    assert data["profiles"]["other"] == {"timeout": 9} and data["profiles"]["local"] == {"model": "m"}
    # No temporary file, and no lock file: it is removed when released.
    assert sorted(p.name for p in config_dir.iterdir()) == ["config.yaml"]


def test_a_broken_config_file_is_a_clear_usage_error(config_dir):
    (config_dir / "config.yaml").write_text("profiles: [unclosed\n")
    result = invoke(["config", "list"])
    assert result.exit_code == 2 and "not valid YAML" in result.stderr and "hint:" in result.stderr


@pytest.mark.integration
def test_concurrent_sets_lose_nothing(config_dir):
    import subprocess
    import sys

    procs = [subprocess.Popen([sys.executable, "-m", "interncli", "config", "set", "--profile", "p{}".format(i),
                               "model", "m{}".format(i)]) for i in range(8)]
    assert [p.wait(60) for p in procs] == [0] * 8
    data = yaml.safe_load((config_dir / "config.yaml").read_text())
    assert {name: entry["model"] for name, entry in data["profiles"].items()} == {
        "p{}".format(i): "m{}".format(i) for i in range(8)}


def test_profile_names_that_look_like_numbers(config_dir):
    (config_dir / "config.yaml").write_text("profiles:\n  1: {model: one}\n")
    result = invoke(["--profile", "1", "config", "list", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["settings"]["model"] == "one"


def test_models_round_trip_as_text(config_dir):
    assert invoke(["config", "set", "models", "a,b"]).exit_code == 0
    assert invoke(["config", "get", "models"]).stdout == "a,b\n"


def test_unset_on_a_missing_profile_creates_nothing(config_dir):
    assert invoke(["config", "set", "model", "m"]).exit_code == 0
    assert invoke(["config", "unset", "--profile", "typo", "model"]).exit_code == 2  # a typo is not "done"
    assert "typo" not in yaml.safe_load((config_dir / "config.yaml").read_text())["profiles"]


@pytest.mark.parametrize("url", ["http://h/v1?x=1", "http://h/v1#frag"])
def test_a_base_url_with_a_query_or_fragment_is_refused(url):
    assert invoke(["config", "set", "base_url", url]).exit_code == 2


def test_a_config_dir_that_cannot_be_created_is_a_usage_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = invoke(["config", "set", "model", "m"], env={"INTERNCLI_CONFIG_DIR": str(blocker / "sub")})
    assert result.exit_code == 2 and "cannot create the folder" in result.stderr


# ----------------------------------------------- profiles that are missing or not mappings

BROKEN_PROFILES = {"a string": "local: just-a-string\n", "a list": "local: [a, b]\n", "a number": "local: 3\n"}
CONFIG_COMMANDS = [["get", "model"], ["set", "model", "m"], ["unset", "model"], ["list"], ["list", "--json"],
                   ["path"]]


@pytest.mark.parametrize("args", CONFIG_COMMANDS, ids=" ".join)
@pytest.mark.parametrize("kind", sorted(BROKEN_PROFILES))
def test_a_profile_that_is_not_a_mapping_is_a_usage_error_for_every_config_command(config_dir, args, kind):
    text = "profiles:\n  default: {model: d}\n  " + BROKEN_PROFILES[kind]
    (config_dir / "config.yaml").write_text(text)
    for where in (["config", args[0], "--profile", "local"] + args[1:], ["--profile", "local", "config"] + args):
        result = invoke(where)
        assert result.exit_code == 2, (where, result.stderr)
        assert "profile 'local'" in result.stderr and "must be a mapping" in result.stderr, result.stderr
        assert "known profiles: default, local" in result.stderr and "Traceback" not in result.stderr
    assert (config_dir / "config.yaml").read_text() == text  # nothing written


@pytest.mark.parametrize("args", [a for a in CONFIG_COMMANDS if a[0] != "set"], ids=" ".join)
def test_a_missing_profile_is_a_usage_error_naming_the_known_ones(config_dir, args):
    (config_dir / "config.yaml").write_text("profiles:\n  default: {model: d}\n  local: {model: l}\n")
    for argv, env in ((["config", args[0], "--profile", "nosuch"] + args[1:], None),
                      (["--profile", "nosuch", "config"] + args, None),
                      (["config"] + args, {"INTERN_PROFILE": "nosuch"})):
        result = invoke(argv, env=env)
        assert result.exit_code == 2, (argv, result.stderr)
        assert "no profile 'nosuch'" in result.stderr and "Known profiles: default, local" in result.stderr


def test_set_creates_a_missing_profile(config_dir):
    # The documented way to make a profile: `config set --profile NEW base_url URL`.
    assert invoke(["config", "set", "--profile", "new", "model", "m"]).exit_code == 0
    assert yaml.safe_load((config_dir / "config.yaml").read_text())["profiles"]["new"] == {"model": "m"}


def test_path_still_prints_when_the_file_is_broken(config_dir):
    (config_dir / "config.yaml").write_text("profiles: [unclosed\n")
    result = invoke(["--profile", "local", "config", "path"])
    assert result.exit_code == 0 and result.stdout.strip().endswith("config.yaml")


def test_the_file_wide_default_profile_can_be_fixed_when_it_names_a_missing_profile(config_dir):
    (config_dir / "config.yaml").write_text("default_profile: gone\nprofiles:\n  local: {model: l}\n")
    assert invoke(["config", "get", "default_profile"]).stdout == "gone\n"
    assert invoke(["config", "set", "default_profile", "local"]).exit_code == 0
    assert invoke(["config", "get", "model"]).stdout == "l\n"


@pytest.mark.parametrize("name", ["", "  "])
def test_an_empty_profile_name_is_refused_not_taken_as_default(config_dir, name):
    for argv in (["config", "set", "--profile", name, "model", "m"], ["--profile", name, "config", "set", "model", "m"],
                 ["--profile", name, "config", "list"], ["--profile", name, "auth", "status"],
                 ["--profile", name, "chat", "create", "-g", "user", "hi", "--dry-run"]):
        result = invoke(argv)
        assert result.exit_code == 2 and "--profile needs a profile name" in result.stderr, (argv, result.stderr)
    assert not (config_dir / "config.yaml").exists()


def test_an_empty_intern_profile_means_unset(config_dir):
    assert invoke(["config", "set", "model", "m"], env={"INTERN_PROFILE": ""}).exit_code == 0
    assert yaml.safe_load((config_dir / "config.yaml").read_text())["profiles"] == {"default": {"model": "m"}}


# ----------------------------------------------- unknown keys at the top of the file (issue 9)

@pytest.mark.parametrize("argv", [["config", "list"], ["models", "list"],
                                  ["chat", "create", "--dry-run", "-g", "user", "hi"], ["auth", "status"]],
                         ids=" ".join)
def test_an_unknown_top_level_key_is_refused_like_an_unknown_profile_key(config_dir, argv):
    text = "colour: blue\nprofiles:\n  default: {model: d}\n"
    (config_dir / "config.yaml").write_text(text)
    result = invoke(argv)
    assert result.exit_code == 2 and "Traceback" not in result.stderr
    assert "unknown key 'colour' in {}".format(config_dir / "config.yaml") in result.stderr
    assert "hint: Valid keys at the top: default_profile, profiles" in result.stderr
    assert "interncli config unset colour" in result.stderr
    assert (config_dir / "config.yaml").read_text() == text


@pytest.mark.parametrize("top", ["colour: blue\n", ""], ids=["a top-level key", "a profile key"])
def test_the_commands_that_fix_the_file_work_with_an_unknown_key_in_it(config_dir, top):
    # As with an unknown profile key: get, set, unset and `auth token` read only what they need.
    (config_dir / "config.yaml").write_text(top + "profiles:\n  default: {model: d, shade: x}\n")
    assert invoke(["config", "get", "model"]).stdout == "d\n"
    assert invoke(["config", "set", "timeout", "9"]).exit_code == 0
    assert invoke(["auth", "token"], env={"INTERN_API_KEY": SENTINEL}).stdout == SENTINEL + "\n"
    assert invoke(["config", "list"]).exit_code == 2


def test_config_unset_removes_an_unknown_top_level_key(config_dir):
    (config_dir / "config.yaml").write_text("colour: blue\n7: seven\nprofiles:\n  default: {model: d}\n")
    assert invoke(["config", "unset", "colour"]).exit_code == 0
    assert invoke(["config", "list"]).exit_code == 2  # the other one is still there
    assert invoke(["config", "unset", "7"]).exit_code == 0
    assert yaml.safe_load((config_dir / "config.yaml").read_text()) == {"profiles": {"default": {"model": "d"}}}
    assert invoke(["config", "get", "model"]).stdout == "d\n"


def test_config_unset_removes_an_unknown_profile_key(config_dir):
    (config_dir / "config.yaml").write_text("profiles:\n  local: {model: l, shade: x}\n")
    refused = invoke(["--profile", "local", "config", "list"])
    assert refused.exit_code == 2 and "interncli config unset --profile local shade" in refused.stderr
    assert invoke(["config", "unset", "--profile", "local", "shade"]).exit_code == 0
    assert yaml.safe_load((config_dir / "config.yaml").read_text())["profiles"] == {"local": {"model": "l"}}
    assert invoke(["--profile", "local", "config", "list"]).exit_code == 0


def test_config_unset_of_a_key_that_is_nowhere_is_refused_as_unknown(config_dir):
    (config_dir / "config.yaml").write_text("profiles:\n  default: {model: d}\n")
    result = invoke(["config", "unset", "colour"])
    assert result.exit_code == 2 and "unknown key 'colour'" in result.stderr and "Valid keys: base_url" in result.stderr
    assert yaml.safe_load((config_dir / "config.yaml").read_text()) == {"profiles": {"default": {"model": "d"}}}


def test_a_top_level_key_holding_a_yaml_anchor_is_allowed_and_written_out_in_full(config_dir):
    (config_dir / "config.yaml").write_text(
        "base: &base {timeout: 30}\nnames: &names [a, b]\nprofiles:\n  default: {<<: *base, models: *names}\n")
    assert invoke(["config", "get", "timeout"]).stdout == "30\n"
    assert invoke(["config", "set", "model", "m"]).exit_code == 0
    assert yaml.safe_load((config_dir / "config.yaml").read_text()) == {
        "profiles": {"default": {"timeout": 30, "models": ["a", "b"], "model": "m"}}}


def test_an_alias_at_the_top_is_no_anchor(config_dir):
    (config_dir / "config.yaml").write_text("base: &base {timeout: 30}\ncopy: *base\nprofiles: {}\n")
    result = invoke(["config", "list"])
    assert result.exit_code == 2 and "unknown key 'copy'" in result.stderr


# ----------------------------------------------- numbers as given, config path --profile (issue 9)

@pytest.mark.parametrize("key, given, shown", [("timeout", "60", "60"), ("timeout", "60.5", "60.5"),
                                               ("timeout", "1e2", "100"), ("max_retries", "3", "3")])
def test_numbers_print_as_given(config_dir, key, given, shown):
    assert invoke(["config", "set", key, given]).exit_code == 0
    assert invoke(["config", "get", key]).stdout == shown + "\n"
    assert re.search(r"^{} +{} +\(profile\)$".format(key, re.escape(shown)), invoke(["config", "list"]).stdout,
                     flags=re.M)
    assert str(json.loads(invoke(["config", "list", "--json"]).stdout)["settings"][key]) == shown


def test_a_whole_number_is_stored_as_one(config_dir):
    assert invoke(["config", "set", "timeout", "60"]).exit_code == 0
    assert "timeout: 60\n" in (config_dir / "config.yaml").read_text()


def test_config_path_takes_profile(config_dir):
    (config_dir / "config.yaml").write_text("profiles:\n  local: {model: l}\n")
    for argv in (["config", "path", "--profile", "local"], ["--profile", "local", "config", "path"]):
        result = invoke(argv)
        assert result.exit_code == 0 and result.stdout == str(config_dir / "config.yaml") + "\n"
    missing = invoke(["config", "path", "--profile", "nosuch"])
    assert missing.exit_code == 2 and "no profile 'nosuch'" in missing.stderr and missing.stdout == ""


def test_an_anchor_on_a_known_key_keeps_the_key(config_dir):
    (config_dir / "config.yaml").write_text("profiles: &all\n  default: {model: d}\ndefault_profile: &dp default\n")
    assert invoke(["config", "get", "model"]).stdout == "d\n"
    assert invoke(["config", "get", "default_profile"]).stdout == "default\n"


def test_the_state_folder_follows_xdg_state_home_and_ignores_a_relative_one(tmp_path):
    from interncli.config import state_dir

    assert state_dir({"XDG_STATE_HOME": str(tmp_path), "HOME": "/h"}) == str(tmp_path / "interncli")
    if sys.platform.startswith("linux"):
        assert state_dir({"XDG_STATE_HOME": "rel/dir", "HOME": "/h"}) == "/h/.local/state/interncli"
        assert state_dir({"HOME": "/h"}) == "/h/.local/state/interncli"
