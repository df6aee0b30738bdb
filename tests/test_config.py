"""`interncli config`: profiles in config.yaml, validated, written atomically, and the way to
point the whole tool at a private LMDeploy server."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.conftest import SENTINEL, invoke


def test_path_is_in_the_config_dir(config_dir):
    result = invoke(["config", "path"])
    assert result.stdout == str(config_dir / "config.yaml") + "\n"


def test_set_get_unset_round_trip(config_dir):
    assert invoke(["config", "set", "timeout", "60"]).exit_code == 0
    assert invoke(["config", "set", "--profile", "local", "base_url", "http://127.0.0.1:23333/v1"]).exit_code == 0
    assert invoke(["config", "get", "timeout"]).stdout == "60.0\n"
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
