"""Unit tests of interncli.toolspec: loading a spec, the problems it reports (with their lines),
placeholders, the references a parameters schema may hold, the limits, and the API's tool list.
No command is run: the CLI side is in test_tools.py."""

from __future__ import annotations

import sys
import textwrap

import pytest

from interncli import toolspec
from interncli.errors import ExitCode, UsageError
from interncli.toolspec import (
    MAX_DEPTH,
    MAX_VALUES,
    Problem,
    SpecError,
    api_tools,
    check_spec,
    load_spec,
    parameters_validator,
    placeholders,
    reference_problems,
)
from tests.toolhelpers import recursion_room

GOOD = """\
model: intern-s1
system: Be brief.
max_turns: 3
tools:
  - name: get_weather
    description: The weather in a city.
    parameters:
      type: object
      properties:
        city: {type: string}
      required: [city]
    command: [echo, "{city}"]
    timeout: 5
"""


def write(tmp_path, text: str, name: str = "spec.yaml") -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return str(path)


def problems_of(tmp_path, text: str) -> list:
    """The (line, message) pairs load_spec raises for ``text``; fails if it loads."""
    with pytest.raises(SpecError) as caught:
        load_spec(write(tmp_path, text))
    return [(p.line, p.message) for p in caught.value.problems]


# ---------------------------------------------------------------------------------- loading


def test_a_good_spec_loads_as_its_data(tmp_path):
    spec = load_spec(write(tmp_path, GOOD))
    assert spec["model"] == "intern-s1" and spec["max_turns"] == 3
    assert spec["tools"][0]["command"] == ["echo", "{city}"]
    assert spec["tools"][0]["timeout"] == 5


def test_a_missing_file_is_a_usage_error_naming_it(tmp_path):
    missing = str(tmp_path / "nope.yaml")
    with pytest.raises(UsageError) as caught:
        load_spec(missing)
    assert not isinstance(caught.value, SpecError)
    assert missing in caught.value.message and caught.value.hint
    assert caught.value.exit_code == ExitCode.USAGE


def test_a_file_that_is_not_utf8_is_a_usage_error(tmp_path):
    path = tmp_path / "spec.yaml"
    path.write_bytes(b"tools: [\xff]\n")
    with pytest.raises(UsageError) as caught:
        load_spec(str(path))
    assert "cannot read tools spec" in caught.value.message


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_an_empty_spec_says_it_needs_tools(tmp_path, text):
    assert problems_of(tmp_path, text) == [(None, "the spec is empty: it needs a 'tools' list")]


def test_invalid_yaml_names_the_line_of_the_syntax_error(tmp_path):
    found = problems_of(tmp_path, "tools:\n  - name: a\n    command: [echo\n  - name: b\n")
    assert len(found) == 1
    line, message = found[0]
    assert message.startswith("not valid YAML: ") and line == 4


def test_flow_nesting_too_deep_for_the_parser_is_a_problem_not_a_crash(tmp_path):
    # PyYAML composes a node with at least one call per level: this many levels exceed the
    # recursion limit wherever the stack stands.
    with recursion_room(300) as depth:
        problems = problems_of(tmp_path, "tools: " + "[" * depth + "]" * depth + "\n")
    assert problems == [(None, "nested too deeply to read")]


def test_spec_error_lists_every_problem_in_its_message_with_a_hint(tmp_path):
    path = write(tmp_path, "tools:\n  - name: 'bad name'\n    command: []\n")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    err = caught.value
    assert len(err.problems) == 2
    assert err.message.startswith("{}: 2 problems: line 2: ".format(path))
    assert "; line 3: " in err.message
    assert "README" in err.hint and err.exit_code == ExitCode.USAGE


def test_a_problem_without_a_line_reads_as_its_message():
    assert str(Problem(None, "x is wrong")) == "x is wrong"
    assert str(Problem(7, "x is wrong")) == "line 7: x is wrong"


# ---------------------------------------------------------------------------------- problems


def test_every_schema_problem_is_reported_at_its_line_in_file_order(tmp_path):
    found = problems_of(tmp_path, """\
        max_turns: 0
        tools:
          - name: ok
            command: [echo]
          - name: "has space"
            command: [echo]
            timeout: 0
          - command: [echo]
    """)
    lines = [line for line, _ in found]
    assert lines == sorted(lines)
    messages = dict(found)
    assert "minimum of 1" in messages[1]
    assert "does not match" in messages[5]
    assert "less than or equal to the minimum of 0" in messages[7]
    assert "'name' is a required property" in messages[8]


@pytest.mark.parametrize("text, line, key", [
    ("tools:\n  - name: a\n    command: [echo]\ncolour: red\n", 4, "colour"),
    ("tools:\n  - name: a\n    command: [echo]\n    retries: 2\n", 4, "retries"),
])
def test_an_unknown_key_is_placed_on_its_own_line_with_the_valid_keys(tmp_path, text, line, key):
    found = problems_of(tmp_path, text)
    assert len(found) == 1
    assert found[0][0] == line
    assert "unknown key {!r}; valid keys: ".format(key) in found[0][1]


def test_a_tool_name_used_twice_names_the_first_one(tmp_path):
    found = problems_of(tmp_path, "tools:\n  - name: a\n    command: [echo]\n  - name: a\n    command: [echo]\n")
    assert found == [(4, "tool name 'a' is used twice (first at tool 1)")]


def test_a_nan_timeout_would_mean_no_time_limit(tmp_path):
    found = problems_of(tmp_path, "tools:\n  - name: a\n    command: [echo]\n    timeout: .nan\n")
    assert found == [(4, "tools.0.timeout: .nan is not a number of seconds: the tool would have no time limit")]


@pytest.mark.parametrize("parameters, words", [
    ("{type: string}", "parameters must describe an object (type: object)"),
    ("{type: object, properties: {a: {type: 12}}}", "parameters is not a valid JSON Schema"),
    ("{type: object, properties: {a: {$ref: '#/nope'}}}", "'#/nope' points to nothing"),
])
def test_parameters_that_cannot_check_the_arguments_are_problems(tmp_path, parameters, words):
    found = problems_of(tmp_path, "tools:\n  - name: a\n    parameters: {}\n    command: [echo]\n".format(parameters))
    assert len(found) == 1 and found[0][0] == 3, found
    assert words in found[0][1]


def test_a_placeholder_for_an_undeclared_parameter_is_reported_at_its_element(tmp_path):
    found = problems_of(tmp_path, """\
        tools:
          - name: a
            parameters: {type: object, properties: {city: {type: string}}}
            command:
              - echo
              - "{town}"
    """)
    assert found == [(6, "placeholder {town} names no declared parameter")]


def test_a_malformed_placeholder_is_reported_once(tmp_path):
    found = problems_of(tmp_path, "tools:\n  - name: a\n    command: [echo, 'a}b']\n")
    assert found == [(3, "'a}b': unbalanced brace: write {{ and }} for literal braces")]


def test_a_placeholder_that_would_be_run_as_code_is_a_problem(tmp_path):
    found = problems_of(tmp_path, """\
        tools:
          - name: a
            parameters: {type: object, properties: {v: {type: string}}}
            command: [sh, -c, "echo {v}"]
    """)
    assert len(found) == 1 and "would be run as code by sh" in found[0][1]


def test_check_spec_works_on_data_without_a_node_tree():
    # Lines come from the YAML nodes; without them the problems are still found, line-less.
    found = check_spec({"tools": [{"name": "a", "command": ["echo"], "extra": 1}]}, None)
    assert [(p.line, p.message) for p in found] == [
        (None, "tools.0: unknown key 'extra'; valid keys: command, description, name, parameters, timeout")]


# ---------------------------------------------------------------------------------- limits


def test_nesting_deeper_than_the_limit_is_reported_at_the_first_too_deep_value(tmp_path):
    deep = "tools:\n  - name: a\n    command: [echo]\n    parameters:\n"
    indent = "      "
    for level in range(MAX_DEPTH):
        deep += indent + "k{}:\n".format(level)
        indent += "  "
    deep += indent + "leaf: 1\n"
    found = problems_of(tmp_path, deep)
    assert len(found) == 1 and found[0][1] == "nested more than {} levels deep".format(MAX_DEPTH)
    assert found[0][0] is not None and found[0][0] > 4


def test_nesting_up_to_the_limit_is_fine_and_one_more_level_is_not():
    data: dict = {}
    node = data
    for _ in range(MAX_DEPTH - 1):
        node["k"] = {}
        node = node["k"]
    node["k"] = "leaf"  # a value MAX_DEPTH keys down
    assert toolspec._too_deep(data, None) is None
    node["k"] = {"k": "leaf"}
    problem = toolspec._too_deep(data, None)
    assert problem is not None and problem.message == "nested more than {} levels deep".format(MAX_DEPTH)


def test_aliases_expanding_past_the_value_limit_are_refused(tmp_path):
    # A "billion laughs": each level repeats the one before ten times.
    text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for level in "bcdef":
        text += "{0}: &{0} [{1}]\n".format(level, ", ".join(["*" + chr(ord(level) - 1)] * 10))
    text += "tools: [*f]\n"
    assert problems_of(tmp_path, text) == [(None, "more than {} values (with YAML aliases expanded)".format(
        MAX_VALUES))]


# ---------------------------------------------------------------------------------- placeholders


@pytest.mark.parametrize("argument, fields", [
    ("plain", []),
    ("{city}", ["city"]),
    ("--city={city},{country}", ["city", "country"]),
    ("{{literal}}", []),
    ("{{{a}}}", ["a"]),
])
def test_placeholders_lists_the_fields_of_an_element(argument, fields):
    assert placeholders(argument) == fields


@pytest.mark.parametrize("argument, words", [
    ("a}b", "unbalanced brace"),
    ("{a", "unbalanced brace"),
    ("{a!r}", "{a} has a conversion or format"),
    ("{a:>5}", "{a} has a conversion or format"),
])
def test_placeholders_refuses_what_str_format_would_do_more_with(argument, words):
    with pytest.raises(ValueError) as caught:
        placeholders(argument)
    assert words in str(caught.value)


# ---------------------------------------------------------------------------------- references


def test_references_inside_the_schema_are_fine():
    schema = {"type": "object", "$defs": {"city": {"type": "string"}, "named": {"$anchor": "n", "type": "string"}},
              "properties": {"a": {"$ref": "#/$defs/city"}, "b": {"$ref": "#n"}}}
    assert reference_problems(schema) == []


@pytest.mark.parametrize("schema, key, words", [
    ({"type": "object", "properties": {"a": {"$ref": "https://example.com/s.json"}}}, "$ref",
     "is not inside the schema"),
    ({"type": "object", "properties": {"a": {"$ref": "other.json#/x"}}}, "$ref", "is not inside the schema"),
    ({"type": "object", "properties": {"a": {"$dynamicRef": "#missing"}}}, "$dynamicRef", "points to nothing"),
    ({"type": "object", "properties": {"a": {"$id": "https://x/", "type": "string"}}}, "$id",
     "$id below the top of the schema is not supported"),
    ({"type": "object", "$schema": "https://example.com/my-dialect"}, "$schema",
     "is not a known JSON Schema version"),
])
def test_a_reference_that_would_be_fetched_or_leads_nowhere_is_named(schema, key, words):
    found = reference_problems(schema)
    assert len(found) == 1, found
    path, found_key, why = found[0]
    assert found_key == key and words in why


def test_a_reference_loop_through_in_place_keywords_is_named():
    schema = {"type": "object", "$defs": {"a": {"allOf": [{"$ref": "#/$defs/b"}]}, "b": {"$ref": "#/$defs/a"}},
              "properties": {"x": {"$ref": "#/$defs/a"}}}
    found = reference_problems(schema)
    assert found and all("leads back to itself" in why for _, _, why in found)


def test_a_recursive_schema_that_reaches_into_the_arguments_is_fine():
    # A tree: each level is a property of the one above, so checking a value always ends.
    schema = {"type": "object", "properties": {"child": {"$ref": "#"}}}
    assert reference_problems(schema) == []


def test_a_long_chain_of_references_is_walked_without_recursion():
    count = sys.getrecursionlimit() + 500  # more than recursion could follow
    defs = {"d{}".format(i): {"$ref": "#/$defs/d{}".format(i + 1)} for i in range(count)}
    defs["d{}".format(count)] = {"type": "string"}
    schema = {"type": "object", "$defs": defs, "properties": {"a": {"$ref": "#/$defs/d0"}}}
    assert toolspec._reference_cycles(schema) == []


def test_the_parameters_validator_never_fetches_a_reference():
    validator = parameters_validator({"type": "object", "properties": {"a": {"$ref": "http://127.0.0.1:9/x"}}})
    with pytest.raises(Exception) as caught:
        list(validator.iter_errors({"a": 1}))
    assert "127.0.0.1:9" in str(caught.value)


def test_the_parameters_validator_checks_arguments():
    validator = parameters_validator({"type": "object", "properties": {"n": {"type": "integer"}}})
    assert list(validator.iter_errors({"n": 1})) == []
    assert [e.message for e in validator.iter_errors({"n": "one"})] == ["'one' is not of type 'integer'"]


# ---------------------------------------------------------------------------------- the API's list


def test_api_tools_is_the_functions_list_the_api_takes(tmp_path):
    spec = load_spec(write(tmp_path, GOOD))
    assert api_tools(spec) == [{"type": "function", "function": {
        "name": "get_weather", "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


def test_api_tools_gives_a_tool_without_parameters_an_empty_object_schema():
    spec = {"tools": [{"name": "now", "command": ["date"]}]}
    assert api_tools(spec) == [{"type": "function", "function": {
        "name": "now", "parameters": {"type": "object", "properties": {}}}}]
