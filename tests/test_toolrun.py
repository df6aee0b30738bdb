"""The tool runner, through `interncli tools run` against the test server: a failing, hanging,
flooding or missing tool becomes the tool's result for the model (never a crash); the tool's
environment holds no token; its working directory is the spec's folder; its arguments arrive as
JSON on stdin and inside argv elements verbatim, never through a shell."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Dict

import pytest

from interncli import toolrun
from tests.apiserver import Completion
from tests.conftest import SENTINEL, invoke
from tests.processes import wait_gone
from tests.toolhelpers import ECHO, TOOLS, chat_bodies, ran, tool_calls_reply, tool_messages, weather_tool, write_spec


def run_once(cli, api, tmp_path: Path, tool: Dict[str, Any], arguments: str, *flags: str, **kwargs: Any):
    """One call of ``tool`` then a final answer; returns (result, the tool message the model got)."""
    spec = write_spec(tmp_path, [tool])
    api.add(tool_calls_reply(("c1", tool["name"], arguments)))
    api.add(Completion("final answer"))
    result = cli("tools", "run", str(spec), "--yes", *flags, "go", **kwargs)
    assert result.exit_code == 0, result.stderr
    if "--json" in flags:
        assert json.loads(result.stdout)["final"] == "final answer"
    else:
        assert result.stdout == "final answer\n"
    bodies = chat_bodies(api)
    assert len(bodies) == 2
    (answer,) = tool_messages(bodies[1])
    assert answer["tool_call_id"] == "c1"
    return result, answer


# ------------------------------------------------------------------------- failing tools


def test_non_zero_exit_is_the_tools_result(cli, api, tmp_path):
    tool = {"name": "fails", "command": [str(TOOLS / "fail.sh")]}
    result, answer = run_once(cli, api, tmp_path, tool, "{}")
    report = json.loads(answer["content"])
    assert report["exit_code"] == 3
    assert "3" in report["error"]
    assert report["stdout"] == "partial\n"
    assert "bad thing happened" in report["stderr"]
    assert "← 8 bytes, exit 3" in result.stderr


@pytest.mark.integration
def test_timeout_kills_the_whole_process_group(cli, api, tmp_path):
    tool = {"name": "hangs", "command": [str(TOOLS / "sleeper.sh")], "timeout": 1}
    started = time.monotonic()
    result, answer = run_once(cli, api, tmp_path, tool, "{}")
    elapsed = time.monotonic() - started
    # The child holds the tool's stdout: were it left alive, reading the output would wait on it.
    assert elapsed < 5, "took {:.1f}s".format(elapsed)
    report = json.loads(answer["content"])
    assert "1s" in report["error"] and "stopped" in report["error"]
    assert report["exit_code"] == -9
    assert report["stdout"] == "started\n"
    assert "did not finish" in result.stderr
    child = int((tmp_path / "child.pid").read_text())
    if not wait_gone(child, 3):
        os.kill(child, 9)
        pytest.fail("the tool's child (pid {}) survived the timeout".format(child))


def test_flood_is_capped_at_64_kib_with_a_marker(cli, api, tmp_path):
    tool = {"name": "flood", "command": [str(TOOLS / "flood.py")]}
    result, answer = run_once(cli, api, tmp_path, tool, "{}")
    content = answer["content"]
    assert content.startswith("x" * 65536)
    tail = content[65536:]
    assert tail == toolrun.TRUNCATED and "truncated" in tail and "64 KiB" in tail
    assert "← {} bytes, exit 0".format(10 * 1024 * 1024) in result.stderr


def test_flood_in_json_transcript_says_truncated(cli, api, tmp_path):
    tool = {"name": "flood", "command": [str(TOOLS / "flood.py")]}
    result, _ = run_once(cli, api, tmp_path, tool, "{}", "--json")
    (run,) = json.loads(result.stdout)["tool_runs"]
    assert run["truncated"] is True and run["bytes"] == 10 * 1024 * 1024 and run["exit_code"] == 0


def test_missing_command_is_the_tools_result(cli, api, tmp_path):
    tool = {"name": "missing", "command": ["./missing"]}
    result, answer = run_once(cli, api, tmp_path, tool, "{}")
    report = json.loads(answer["content"])
    assert "./missing" in report["error"] and "No such file" in report["error"]
    assert "Traceback" not in result.stderr


def test_several_failures_in_one_turn_then_the_answer(cli, api, tmp_path):
    spec = write_spec(tmp_path, [{"name": "fails", "command": [str(TOOLS / "fail.sh")]},
                                 {"name": "missing", "command": ["./missing"]},
                                 weather_tool()])
    api.add(tool_calls_reply(("1", "fails", "{}"), ("2", "missing", "{}"),
                             ("3", "get_current_weather", "{'location': 'Oslo'}")))
    api.add(Completion("done anyway"))
    result = cli("tools", "run", str(spec), "--yes", "go")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "done anyway\n"
    answers = tool_messages(chat_bodies(api)[1])
    assert [m["tool_call_id"] for m in answers] == ["1", "2", "3"]
    assert json.loads(answers[0]["content"])["exit_code"] == 3
    assert "error" in json.loads(answers[1]["content"])
    assert json.loads(answers[2]["content"])["argv"] == ["--city", "Oslo"]


# ---------------------------------------------------------------------------- environment


def _tool_env(answer: Dict[str, Any]) -> Dict[str, str]:
    return json.loads(answer["content"])


def test_environment_has_no_token_from_the_environment(api, tmp_path):
    spec = write_spec(tmp_path, [{"name": "env", "command": [str(TOOLS / "env.py")]}])
    api.add(tool_calls_reply(("e", "env", "{}")))
    api.add(Completion("ok"))
    result = invoke(["-b", api.base_url, "tools", "run", str(spec), "--yes", "go"],
                    env={"INTERN_API_KEY": SENTINEL, "MY_COPY": "x-{}-y".format(SENTINEL), "MARKER": "1"})
    assert result.exit_code == 0, result.stderr
    assert api.requests[0].headers["authorization"] == "Bearer " + SENTINEL  # the token was in use
    env = _tool_env(tool_messages(chat_bodies(api)[1])[0])
    assert "INTERN_API_KEY" not in env
    assert "MY_COPY" not in env
    assert not [k for k, v in env.items() if SENTINEL in v or SENTINEL in k]
    assert env["MARKER"] == "1"
    # PATH is passed on (an interpreter shim such as pyenv's may add to its front, no more)
    assert env.get("PATH", "").endswith(os.environ.get("PATH", "-"))
    assert SENTINEL.encode() not in api.requests[1].body


def test_environment_has_no_token_from_the_flag(cli, api, tmp_path):
    tool = {"name": "env", "command": [str(TOOLS / "env.py")]}
    _, answer = run_once(cli, api, tmp_path, tool, "{}",
                         env={"MY_COPY": "x-{}-y".format(SENTINEL), "MARKER": "1"})
    env = _tool_env(answer)
    assert "MY_COPY" not in env and env["MARKER"] == "1"
    assert not [v for v in env.values() if SENTINEL in v]


def test_environment_has_no_copy_of_the_env_token_when_the_flag_overrides_it(api, tmp_path):
    # -k wins over INTERN_API_KEY, but the variable still holds a token of the user's.
    spec = write_spec(tmp_path, [{"name": "env", "command": [str(TOOLS / "env.py")]}])
    api.add(tool_calls_reply(("e", "env", "{}")))
    api.add(Completion("ok"))
    result = invoke(["-b", api.base_url, "-k", "sk-other-token-1234", "tools", "run", str(spec), "--yes", "go"],
                    env={"INTERN_API_KEY": SENTINEL, "MY_COPY": "x-{}-y".format(SENTINEL), "MARKER": "1"})
    assert result.exit_code == 0, result.stderr
    env = _tool_env(tool_messages(chat_bodies(api)[1])[0])
    assert "INTERN_API_KEY" not in env
    assert not [k for k, v in env.items() if SENTINEL in v], "a copy of INTERN_API_KEY reached the tool"
    assert not [v for v in env.values() if "sk-other-token-1234" in v]
    assert env["MARKER"] == "1"


# ----------------------------------------------------------------- working directory, stdin


def test_working_directory_is_the_specs_folder_and_stdin_has_the_arguments(cli, api, tmp_path, monkeypatch):
    folder = tmp_path / "specs"
    folder.mkdir()
    shutil.copy2(str(TOOLS / "pwd.sh"), str(folder / "pwd.sh"))  # a relative command: found from the folder
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(str(elsewhere))
    tool = {"name": "where", "parameters": {"type": "object", "properties": {"city": {"type": "string"},
                                                                              "days": {"type": "integer"}}},
            "command": ["./pwd.sh"]}
    spec = write_spec(folder, [tool])
    api.add(tool_calls_reply(("w", "where", "{'city': 'Zürich', 'days': 3}")))
    api.add(Completion("ok"))
    result = cli("tools", "run", os.path.join("..", "specs", spec.name), "--yes", "go")
    assert result.exit_code == 0, result.stderr
    (answer,) = tool_messages(chat_bodies(api)[1])
    cwd, stdin = answer["content"].split("\n", 1)
    assert cwd == os.path.realpath(str(folder))
    assert json.loads(stdin) == {"city": "Zürich", "days": 3}


# ------------------------------------------------------------------------------- argv


EVIL = '"; touch /tmp/pwned-XYZ; echo $(id) `backticks` | & > <"'


@pytest.mark.parametrize("arguments", [json.dumps({"location": EVIL}), repr({"location": EVIL})],
                         ids=["json", "single-quoted"])
def test_shell_metacharacters_arrive_verbatim_as_one_argument(cli, api, tmp_path, arguments):
    pwned = Path("/tmp/pwned-XYZ")
    if pwned.exists():
        pwned.unlink()
    tool = weather_tool(command=[ECHO, "--city", "{location}", "prefix-{location}-suffix"])
    result, answer = run_once(cli, api, tmp_path, tool, arguments)
    report = json.loads(answer["content"])
    assert report["argv"] == ["--city", EVIL, "prefix-" + EVIL + "-suffix"]
    assert json.loads(report["stdin"]) == {"location": EVIL}
    assert not pwned.exists()
    assert ran(tmp_path) == [["--city", EVIL, "prefix-" + EVIL + "-suffix"]]


NON_STRING_TOOL = {"name": "t", "parameters": {"type": "object", "properties": {
    "n": {"type": "integer"}, "flag": {"type": "boolean"}, "opt": {"type": "string"}}},
    "command": [ECHO, "{n}", "{flag}", "--opt={opt}", "{{literal}}"]}


def test_non_string_values_are_json(cli, api, tmp_path):
    _, answer = run_once(cli, api, tmp_path, NON_STRING_TOOL, "{'n': 5, 'flag': True, 'opt': 'x'}")
    assert json.loads(answer["content"])["argv"] == ["5", "true", "--opt=x", "{literal}"]


def test_a_missing_placeholder_parameter_is_an_error_to_the_model_not_an_empty_string(cli, api, tmp_path):
    # It used to become "--opt=": the tool ran with a value nobody chose.
    result, answer = run_once(cli, api, tmp_path, NON_STRING_TOOL, "{'n': 5, 'flag': True}")
    error = json.loads(answer["content"])["error"]
    assert "missing argument 'opt'" in error
    assert not (tmp_path / "ran.log").exists()
    assert "refused" in result.stderr


# ------------------------------------------------------------------ what the model may send


def test_nul_byte_in_an_argument_is_not_a_crash(cli, api, tmp_path):
    # A model-chosen value with a NUL cannot be an argv element: that is the tool's error, not a crash.
    tool = weather_tool()
    result, answer = run_once(cli, api, tmp_path, tool, json.dumps({"location": "a\x00b"}))
    assert "error" in json.loads(answer["content"])
    assert not (tmp_path / "ran.log").exists()


@pytest.mark.integration
def test_big_arguments_to_a_tool_that_does_not_read_stdin_still_time_out(cli, api, tmp_path):
    # The arguments go to stdin; a tool that never reads them must not hold the run past its timeout.
    tool = weather_tool(command=[str(TOOLS / "nostdin.sh")], timeout=1)
    started = time.monotonic()
    # Under the 64 KiB limit on arguments, and still more than a tool ignoring stdin reads.
    result, answer = run_once(cli, api, tmp_path, tool, json.dumps({"location": "x" * 60000}))
    elapsed = time.monotonic() - started
    assert (tmp_path / "ran.marker").exists()
    assert elapsed < 3, "a 1 s timeout took {:.1f}s".format(elapsed)
    assert "error" in json.loads(answer["content"])


def test_a_command_validate_accepts_also_runs(cli, api, tmp_path):
    # A lone brace: either the loader rejects it (exit 2) or the run treats it as text; never a crash.
    spec = write_spec(tmp_path, [{"name": "brace", "command": [ECHO, "a}b", "{{ok}}"]}])
    checked = invoke(["tools", "validate", str(spec)])
    if checked.exit_code == 2:
        assert "a}b" in checked.stderr or "brace" in checked.stderr
        return
    assert checked.exit_code == 0
    api.add(tool_calls_reply(("b", "brace", "{}")))
    api.add(Completion("ok"))
    result = cli("tools", "run", str(spec), "--yes", "go")
    assert result.exit_code == 0, "validate said ok, the run failed: " + result.stderr


# ------------------------------------------------------------------------- stopped at the worst moment


class _LockThatSignals:
    """Popen's internal wait lock, raising ``sig`` the first time it is taken without blocking:
    the moment where a Ctrl-C used to leave it taken. A blocking take gives up after a while
    instead of hanging the test."""

    def __init__(self, lock: Any, sig: int) -> None:
        self._lock, self._sig, self._fired = lock, sig, False

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if not blocking:
            taken = self._lock.acquire(False)
            if taken and not self._fired:
                self._fired = True
                signal.raise_signal(self._sig)
            return taken
        if not self._lock.acquire(timeout=5):
            raise AssertionError("the wait for the tool never ends: an interrupted wait left Popen's lock taken")
        return True

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> "_LockThatSignals":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


@pytest.mark.parametrize("moment", ["as Popen returns", "as the wait takes Popen's lock"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_at_the_worst_moment_still_stops_the_tool_and_the_run(monkeypatch, tmp_path, sig, moment):
    # What made test_interrupting_interncli_stops_the_running_tool flaky under load: Python raises
    # a signal's exception wherever the main thread is, and two places inside subprocess lost
    # the tool. Raised as Popen returns (the tool has started), no handle on the tool was left to
    # stop it by: it outlived interncli. Raised in Popen.wait just after it took its lock, the
    # lock stayed taken, and the wait for the killed tool never ended: interncli hung. Here the
    # signal arrives at exactly that moment, every time (signal.raise_signal runs the handler
    # before it returns).
    started = []
    real_popen = subprocess.Popen

    class SignalledAtTheWorstMoment(real_popen):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            started.append(self.pid)
            if moment == "as Popen returns":
                signal.raise_signal(sig)
            else:
                self._waitpid_lock = _LockThatSignals(self._waitpid_lock, sig)

    def terminated(signum: int, frame: Any) -> None:  # as the console script's SIGTERM handler does
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, terminated)
    monkeypatch.setattr(subprocess, "Popen", SignalledAtTheWorstMoment)
    call = toolrun.ToolCall({"id": "c1", "function": {"name": "slow", "arguments": "{}"}}, "c1")
    try:
        with pytest.raises(KeyboardInterrupt if sig == signal.SIGINT else SystemExit):
            toolrun.run_tool(call, {"name": "slow", "command": ["sleep", "60"]}, ["sleep", "60"], str(tmp_path),
                             dict(os.environ))
    finally:
        signal.signal(signal.SIGTERM, previous)
        monkeypatch.undo()
    assert len(started) == 1
    try:
        still_ours = os.waitpid(started[0], os.WNOHANG)  # (0, 0): it runs; (pid, status): never reaped
    except ChildProcessError:
        still_ours = None  # stopped and reaped by run_tool
    if still_ours is not None:
        os.kill(started[0], signal.SIGKILL)
        os.waitpid(started[0], 0)
    assert still_ours is None, "the tool outlived the interrupted run"
