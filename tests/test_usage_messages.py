"""Usage errors that point at the fix (issue 10's "messages that help"): a global option given
after the command, a command's option given before it, a missing value, a word where a number
goes. Each is one line, a hint naming the right help, exit 2."""

from __future__ import annotations

import json

import pytest

from tests.conftest import SENTINEL, invoke

ERROR = "interncli: error: "


def lines(result):
    return result.stderr.splitlines()


@pytest.mark.parametrize("option, value", [("-b", "http://127.0.0.1:9/v1"), ("--timeout", "5"),
                                           ("-k", SENTINEL), ("-p", "http://127.0.0.1:9")])
def test_a_global_option_after_the_command_says_to_put_it_first(config_dir, option, value):
    result = invoke(["chat", "create", option, value, "-g", "user", "hi"])
    assert result.exit_code == 2 and result.stdout == ""
    assert lines(result) == [ERROR + "{} is a global option: it goes before the command".format(option),
                             "hint: Put it first: interncli {} ... chat create ...".format(option)]
    assert SENTINEL not in result.stderr


@pytest.mark.parametrize("option", ["--json", "--stream"])
def test_a_command_option_before_the_command_is_not_told_of_version(config_dir, option):
    result = invoke([option, "chat", "create", "-g", "user", "hi"])
    assert result.exit_code == 2
    assert lines(result)[0] == ERROR + "No such option for interncli itself: " + option
    assert "--version" not in result.stderr
    assert "interncli chat create {} ...".format(option) in lines(result)[1]


def test_a_typo_of_a_global_option_keeps_clicks_suggestion(config_dir):
    result = invoke(["--verbos", "chat", "create", "-g", "user", "hi"])
    assert result.exit_code == 2 and "--verbose" in lines(result)[0]


def test_a_missing_message_text_points_at_the_commands_help(config_dir):
    result = invoke(["chat", "create", "-g", "user"])
    assert result.exit_code == 2
    assert lines(result) == [ERROR + "Option '-g' requires 2 arguments.",
                             "hint: Try 'interncli chat create --help' for help."]


def test_a_missing_message_text_under_json_is_json_naming_the_commands_help(config_dir):
    result = invoke(["chat", "create", "--json", "-g", "user"])
    assert result.exit_code == 2
    error = json.loads(result.stderr)["error"]
    assert error["hint"] == "Try 'interncli chat create --help' for help." and error["exit_code"] == 2


@pytest.mark.parametrize("args, says", [
    (["-n", "abc"], "'abc' is not an integer"),
    (["-n", "1.5"], "'1.5' is not an integer"),
    (["-M", "lots"], "'lots' is not an integer"),
    (["-t", "hot"], "'hot' is not a number"),
    (["-P", "x"], "'x' is not a number"),
])
def test_a_word_where_a_number_goes_says_what_was_wanted(config_dir, args, says):
    result = invoke(["chat", "create", *args, "-g", "user", "hi"])
    assert result.exit_code == 2
    assert lines(result)[0].endswith(says), result.stderr
    assert "range" not in lines(result)[0]


def test_a_number_out_of_range_still_names_the_range(config_dir):
    result = invoke(["chat", "create", "-n", "0", "-g", "user", "hi"])
    assert result.exit_code == 2 and "0 is not in the range x>=1" in lines(result)[0]


def test_tools_run_max_turns_says_not_an_integer(config_dir, tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text("tools: []\n")
    result = invoke(["tools", "run", str(spec), "--max-turns", "many", "go"])
    assert result.exit_code == 2 and lines(result)[0].endswith("'many' is not an integer")
