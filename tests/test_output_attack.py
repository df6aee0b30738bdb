"""Attacks on structured output, extraction, the repl and the api commands (session 4): what a
lying model or a hostile server sends, and what must still come out right.

Each test here failed before the fix it names in its commit."""

from __future__ import annotations

import pytest

from interncli import structured
from interncli.errors import UsageError
from tests.apiserver import Completion

SHARED_SERVER = True
NUMBER = '{"type": "number"}'


# ------------------------------------------------------------------------------ --schema


@pytest.mark.parametrize("reply", ["1e400", "-1e400", '{"n": 1e400}'])
def test_a_number_beyond_json_s_range_is_no_json_value(reply):
    # json.loads reads 1e400 as inf, which json.dumps writes as Infinity: stdout was no JSON.
    value, problem = structured.find_json(reply)
    assert value is None
    assert problem is not None and "too large" in problem


def test_a_reply_of_1e400_is_asked_again_and_never_printed_as_infinity(cli, api):
    api.add(Completion("1e400"))
    api.add(Completion("1.5"))
    result = cli("chat", "create", "-m", "m", "-g", "user", "hi", "--schema", NUMBER)
    assert (result.exit_code, result.stdout) == (0, "1.5\n")
    assert "too large" in result.stderr
    assert "Infinity" not in result.stdout


@pytest.mark.parametrize("schema", ['{"type": "number", "maximum": 1e400}', '{"type": "number", "minimum": -1e999}'])
def test_a_schema_with_an_infinite_number_is_a_usage_error(schema):
    # It used to pass, then be told to the model as "maximum": Infinity (not JSON), or fail to
    # be sent with a message about -t and -P.
    with pytest.raises(UsageError) as caught:
        structured.load_schema(schema)
    assert "too large" in caught.value.message


def test_a_schema_with_an_infinite_number_exits_2_before_sending(cli, api):
    result = cli("chat", "create", "-m", "m", "-g", "user", "hi", "--schema", '{"maximum": 1e400}',
                 env={"INTERN_API": "intern"})
    assert result.exit_code == 2
    assert "too large" in result.stderr and "hint:" in result.stderr
    assert api.requests == []
