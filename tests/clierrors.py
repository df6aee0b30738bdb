"""Helpers for the CLI error tests (test_exit_codes, test_retries, test_stream_errors, ...): run
a chat against the test server and check the one error line, its hint and the --json error object.
Holds no tests."""

from __future__ import annotations

import json
from typing import Optional, Tuple

from tests.apiserver import err_code, err_msgcode, err_object, err_openai

NO_RETRY = ("--max-retries", "0")
RA0 = {"Retry-After": "0"}
ERROR_PREFIX = "interncli: error: "

# The four shapes that carry a code: name -> (code, msg, status) -> scripted reply / body dict.
SHAPES = {
    "code": lambda code, msg, status=200, headers=None: err_code(code, msg, status, headers),
    "msgCode": lambda code, msg, status=200, headers=None: err_msgcode(code, msg, status, headers),
    "object": lambda code, msg, status=200, headers=None: err_object(msg, code, status, headers),
    "openai": lambda code, msg, status=200, headers=None: err_openai(msg, code, status, headers),
}
SHAPE_NAMES = sorted(SHAPES)

# Known codes and the exit code each maps to.
KNOWN = [("A0211", "Token expired", 3), (-20053, "Request rate over limit", 4),
         (-20018, "Incorrect message format", 5)]


def body_of(shape: str, code, msg: str) -> dict:
    """The JSON object of a shape, for use as a stream event."""
    return SHAPES[shape](code, msg).obj


def chat(cli, *extra: str, stream: bool = False, as_json: bool = False, globals_=NO_RETRY, env=None):
    args = ["chat", "create", "-g", "user", "hi"]
    if stream:
        args.append("--stream")
    if as_json:
        args.append("--json")
    return cli(*args, *extra, globals_=globals_, env=env)


def error_and_hint(stderr: str, strict: bool = True) -> Tuple[str, Optional[str]]:
    """The one ``interncli: error:`` line and the ``hint:`` line after it (None if absent).
    ``strict``: nothing else may be on stderr."""
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    indexes = [i for i, line in enumerate(lines) if line.startswith(ERROR_PREFIX)]
    assert len(indexes) == 1, stderr
    i = indexes[0]
    hint = lines[i + 1] if i + 1 < len(lines) and lines[i + 1].startswith("hint: ") else None
    rest = lines[i + 1 + (hint is not None):]
    assert rest == [], "unexpected lines after the error: {!r}".format(rest)
    if strict:
        assert i == 0, "unexpected lines before the error: {!r}".format(lines[:i])
    return lines[i], hint


def assert_error(result, exit_code: int, code, message: str, hint: bool = True, stdout: str = "",
                 strict: bool = True) -> Tuple[str, Optional[str]]:
    assert result.exit_code == exit_code, result
    assert result.stdout == stdout, result
    line, hint_line = error_and_hint(result.stderr, strict)
    expected = ERROR_PREFIX + ("[{}] ".format(code) if code is not None else "") + message
    assert line == expected, result
    if hint:
        assert hint_line is not None and len(hint_line) > len("hint: ") + 3, result
    return line, hint_line


def assert_usage_error(result, *words: str) -> str:
    assert result.exit_code == 2, result
    assert result.stdout == "", result
    line, hint = error_and_hint(result.stderr)
    assert hint is not None, result
    for word in words:
        assert word in line, result
    return line


def json_error(result) -> dict:
    """The one JSON line of stderr under --json, as a dict."""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result
    obj = json.loads(lines[0])
    assert list(obj) == ["error"]
    err = obj["error"]
    for key in ("code", "message", "http_status", "exit_code"):
        assert key in err, err
    assert err["exit_code"] == result.exit_code
    return err
