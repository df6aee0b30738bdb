"""Attacks on the tools layer that `tools validate` used to accept (issue 8, section 7): each
case is a spec an ordinary user could write in which a model-chosen value would still run as
code or choose the program. Every behaviour relied on was checked on this machine (GNU tar
1.34, git 2.39, GNU env/sed/make, perl 5.36, vim 9) unless it says otherwise."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from typing import List

import pytest

from interncli import toolrun
from interncli.commandcheck import RUNS, program_name
from tests.apiserver import Completion
from tests.conftest import SENTINEL, invoke
from tests.processes import wait_gone
from tests.toolhelpers import (
    ECHO,
    assert_command_refuses,
    assert_validate_refuses,
    chat_bodies,
    recursion_room,
    run_calls,
    tool_calls_reply,
    tool_messages,
    write_spec,
)

X = "{x}"

CASES = [
    # GNU getopt_long and git's parse-options take any unambiguous prefix of a long option:
    # `env --sp='echo a b' c` prints "a b c"; `git rebase --exe=CMD` is --exec.
    (["env", "--sp", "sh -c", X], [3]),
    (["env", "--split-s=sh -c", X], [2]),
    (["sudo", "--shel", "./x", X], [3]),
    (["nice", "--adj", "5", X], [3]),
    (["git", "rebase", "--exe={x}"], [2]),
    (["git", "clone", "--upload={x}", "repo"], [2]),
    (["gawk", "--sourc", X], [2]),
    (["env", "--spl", "python3 w.py", X], []),
    # PowerShell takes a prefix of a parameter name too (from its manual: -Comm is -Command).
    (["pwsh", "-Comm", "Get-Date", X], [3]),
    (["pwsh", "-Enc", X], [2]),       # the split words are still just a fixed script
    # git grep -O/--open-files-in-pager runs its value as the pager; -O alone takes none.
    (["git", "grep", "--open-files-in-pager={x}", "pat"], [2]),
    (["git", "grep", "-O", X], []),
    # Launchers with global options or group words before their sub-command still run a command.
    (["docker", "--log-level", "info", "run", "alpine", X], [5]),
    (["docker", "container", "run", "--rm", "alpine", X], [5]),
    (["docker", "compose", "run", "svc", X], [4]),
    (["docker", "container", "exec", "box", "./x", X], []),
    (["kubectl", "-n", "ns", "exec", "pod", "--", X], [6]),
    (["uv", "-q", "run", X], [3]),
    (["npm", "x", X], [2]),
    (["pnpm", "dlx", X], [2]),
    (["pipx", "run", X], [2]),
    (["bun", "run", X], [2]),
    (["bun", "-e", X], [2]),
    (["bun", "x.ts", X], []),
    (["deno", "eval", X], [2]),
    (["deno", "run", "--allow-read", X], [3]),
    (["deno", "run", "-A", "main.ts", X], []),
    (["go", "run", X], [2]),
    (["go", "run", "-exec", X, "main.go"], [3]),
    (["go", "run", "main.go", X], []),
    (["docker", X, "alpine", X], [1]),               # the model would choose the sub-command (run)
    (["npm", X], [1]),
    (["docker", "ps", "--filter", X], []),
    # docker run options this check did not know took a value made the image look like the command.
    (["docker", "run", "--cidfile", "/tmp/c", "alpine", X], [5]),
    (["docker", "run", "--stop-signal", "KILL", "alpine", "./x", X], []),
    # Programs that take data, with options whose value runs: checked, e.g. `tar -xf a.tar
    # --to-command='touch F'` and `vim -es -c '!touch F'` create F.
    (["tar", "-xf", "a.tar", "--to-command={x}"], [3]),
    (["tar", "-cf", "a.tar", "-I", X, "dir"], [4]),
    (["tar", "--checkpoint-action=exec={x}", "-cf", "a.tar", "dir"], [1]),
    (["tar", "-xf", "a.tar", "--to-com", X], [4]),
    (["tar", "-xf", "a.tar", X], []),
    (["zip", "-TT", X, "a.zip", "f"], [2]),
    (["zip", "a.zip", X], []),
    (["rsync", "-e", X, "a", "b:c"], [2]),
    (["rsync", "--rsync-path={x}", "a", "b:c"], [1]),
    (["rsync", "-a", X, "dest/"], []),
    (["scp", "-o", X, "a", "b:c"], [2]),
    (["scp", "-oProxyCommand={x}", "a", "b:c"], [1]),
    (["sftp", "-S", X, "host"], [2]),
    (["scp", "a", X], []),
    (["vim", "-c", X, "f"], [2]),
    (["vim", "+{x}", "f"], [1]),
    (["nvim", "--cmd", X], [2]),
    (["vim", "-es", "-S", X], [3]),
    (["vim", "-R", "--", X], []),
    (["vim", "-R", X], [2]),                         # x = "+!cmd" would be a command
    (["vim", "-R", "./{x}"], []),
    (["less", "+{x}", "f"], [1]),
    (["less", "--", X], []),
    (["less", X], [1]),
    (["man", "-P", X, "ls"], [2]),
    (["man", "--pager={x}", "ls"], [1]),
    (["man", X], []),
    (["emacs", "--batch", "--eval", X], [3]),
    (["xterm", "-e", "./x", X], [3]),
    # make reads variable settings from its operands: `make .SHELLFLAGS=... ` / `SHELL=...`
    # decide what every recipe runs (checked: `make '.SHELLFLAGS=-c touch F;'` runs touch).
    (["make", X], [1]),
    (["make", "-f", X], [2]),
    (["make", "build"], []),
    # perl -n/-p open each operand with a two-argument open: `perl -ne print 'touch F|'` runs
    # touch F (checked). -I takes the next element as its value (`perl -I lib -e 1` runs).
    (["perl", "-ne", "print", X], [3]),
    (["perl", "-lpe", "1", "--", X], [4]),
    (["perl", "-n", "s.pl", X], [3]),
    (["perl", "-I", "lib", "-e", X], [4]),
    (["perl", "-e", "print @ARGV", X], []),
    (["perl", "s.pl", X], []),
    # sqlite3's SQL operands may be dot-commands: `sqlite3 t.db '.shell touch F'` creates F.
    (["sqlite3", "db.sqlite", X], [2]),
    (["sqlite3", "-cmd", X, "db.sqlite"], [2]),
    (["sqlite3", "-separator", ",", "db.sqlite", "select 1", X], [5]),
    (["sqlite3", "-json", X, "select * from t"], []),   # the database file is data
    (["psql", "-c", X], [2]),
    (["mysql", "--execute={x}"], [1]),
    # sudo takes VAR=VALUE before the command, as env does: python3 is the program here.
    (["sudo", "A=1", "python3", X], [3]),
    (["sudo", "LD_PRELOAD={x}", "./x"], [1]),
    (["sudo", "A=1", "python3", "w.py", X], []),
    # More wrappers, whose program the model would choose, and programs that run a shell.
    (["gosu", "user", X], [2]),
    (["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--unshare-net", X], [7]),
    (["bwrap", "--ro-bind", "/", "/", "--setenv", "A", "1", "python3", "-c", X], [9]),
    (["bwrap", "--ro-bind", X, "/mnt", "./x"], [2]),
    (["bwrap", "--ro-bind", "/", "/", "./x", X], []),
    (["systemd-run", "--user", "-p", "MemoryMax=1G", X], [4]),
    (["firejail", "--quiet", X], [2]),
    (["xvfb-run", "-a", X], [2]),
    (["xvfb-run", "-a", "./x", X], []),
    (["sg", "docker", "./x {x}"], [2]),
    (["tmux", "new-session", "-d", X], [3]),
    (["hyperfine", X], [1]),
    (["nix-shell", "-p", "jq", "--run", X], [4]),
    # gdb runs its -ex commands, `shell CMD` among them.
    (["gdb", "-batch", "-ex", X, "./prog"], [3]),
    (["gdb", "-batch", "--args", X, "arg"], [3]),       # the program to debug
    (["gdb", "-batch", "--args", "python3", "-c", X], [5]),
    (["gdb", "-batch", "--args", "./prog", X], []),      # its arguments: data
    (["gdb", "-batch", "-ex", "bt", "./prog", X], []),     # a core file or pid: data
    (["lldb", "-o", X], [2]),
    # No command at all: a shell reads its commands from stdin, which holds the model's JSON.
    (["ssh", "host"], [0]),
    (["ssh", "-p", "22", X], [0]),
    (["sudo", "-i"], [0]),
    (["sudo", "-u", "root", "-s"], [0]),
    (["sudo", "-iu", "root"], [0]),
    (["sudo", "-s", "-u", "root"], [0]),
    (["su", "root"], [0]),
    (["su", "-c", "./x", "root"], []),
    # node takes no attached values: `node -pe CODE` is -p and -e, and the next element the code.
    (["node", "-pe", X], [2]),
    (["node", "-pe", "process.argv[1]", X], []),
    # Other builds and names of known interpreters.
    (["python3-dbg", "-c", X], [2]),
    (["pythonw", "-c", X], [2]),
    (["micropython", "-c", X], [2]),
    (["bash-static", "-c", X], [2]),
    (["php8.2-cli", "-r", X], [2]),
    (["original-awk", X], [1]),
    (["python3-dbg", "w.py", X], []),
    # A wrapper's "--" ends its options, not its operands: `timeout -- 5 CMD` runs CMD.
    (["timeout", "--", "5", X], [3]),
    (["docker", "run", "--", "alpine", X], [4]),
    (["chroot", "--", "/srv", X], [3]),
    (["timeout", "--", X, "./x"], [2]),
    (["timeout", "--", "5", "./x", X], []),
]


@pytest.mark.parametrize("path, name", [
    ("python3-dbg", "python"), ("python3.11-dbg", "python"), ("pythonw", "python"), ("bash-static", "bash"),
    ("php-cgi", "php"), ("php8.2-cli", "php"), ("original-awk", "awk"), ("python3-config", "python3-config"),
])
def test_other_builds_of_an_interpreter_are_known(path: str, name: str):
    assert program_name(path) == name


@pytest.mark.parametrize("command, refused", CASES, ids=[" ".join(c) for c, _ in CASES])
def test_attacks_that_validate_accepted(command: List[str], refused: List[int]):
    assert_command_refuses(command, refused)


# Every program known to run an option's value, both ways: that option given a placeholder,
# and a placeholder as plain data.
# Sorted: RUNS is built from sets, whose order changes from run to run, and parallel workers
# (pytest -n) must all collect the same tests in the same order.
GENERATED = [case for name, spec in sorted(RUNS.items())
             for case in (([name, sorted(spec.code or spec.rest_is_command or spec.program_after)[0], X], [2]),
                          ([name, "--", X] if spec.plus else [name, X], []))]


@pytest.mark.parametrize("command, refused", GENERATED, ids=[" ".join(c) for c, _ in GENERATED])
def test_every_program_that_runs_an_option_value_both_ways(command: List[str], refused: List[int]):
    assert_command_refuses(command, refused)


# Every 12th row of both tables through `tools validate` and a spec file (as test_commandcheck).
THROUGH_THE_CLI = CASES[::12] + GENERATED[::12]


@pytest.mark.parametrize("command, refused", THROUGH_THE_CLI, ids=[" ".join(c) for c, _ in THROUGH_THE_CLI])
def test_rows_of_the_tables_through_tools_validate(tmp_path, command: List[str], refused: List[int]):
    assert_validate_refuses(tmp_path, command, refused)


# Characters a terminal draws as nothing or as blank space, or that draw over their neighbours:
# Python calls them printable, so the prompt used to show them as they are, and one argument
# "rm\u3164-rf" read as two, rm and -rf.
INVISIBLE = ["\u3164", "\u115f", "\u1160", "\uffa0", "\u2800", "\u034f", "\ufe0f", "\u0338", "\u20e0", "\u0301"]


@pytest.mark.parametrize("char", INVISIBLE, ids=["U+{:04X}".format(ord(c)) for c in INVISIBLE])
def test_the_approval_prompt_shows_invisible_and_blank_looking_characters_escaped(char: str):
    value = "rm" + char + "-rf"
    call = toolrun.ToolCall({"id": "c1", "function": {"name": "t", "arguments": json.dumps({"x": value})}}, "f")
    text = toolrun.approval_text(call, ["./tool", value])
    assert text is not None and char not in text
    assert '  argv: ./tool "rm\\u{:04x}-rf"\n'.format(ord(char)) in text
    stdin_line = text.split("): ", 1)[1].split("\n", 1)[0]
    assert json.loads(stdin_line) == {"x": value}  # still exactly what the tool gets


# ------------------------------------------------------------------ ReDoS in a spec's pattern

# The spec is the user's, the string is the model's: Python's re backtracks exponentially on
# ^(a+)+$ against "aaa...a!" (2**64 steps here), and jsonschema's `pattern` and
# patternProperties use re.search. CPython's matcher checks for signals while it backtracks,
# which is what lets a SIGALRM stop it.
REDOS = "^(a+)+$"
EVIL = "a" * 64 + "!"


@pytest.mark.integration
@pytest.mark.parametrize("where", ["pattern", "patternProperties"])
def test_a_backtracking_pattern_cannot_hang_tools_run(api, tmp_path, exe, where):
    if where == "pattern":
        parameters = {"type": "object", "properties": {"x": {"type": "string", "pattern": REDOS}}}
        arguments = {"x": EVIL}
    else:
        parameters = {"type": "object", "patternProperties": {REDOS: {"type": "string"}}}
        arguments = {EVIL: "v"}
    spec = write_spec(tmp_path, [{"name": "t", "parameters": parameters, "command": [ECHO]}])
    api.add(tool_calls_reply(("c1", "t", json.dumps(arguments))))
    api.add(Completion("done"))
    # A generous bound: without the limit this would not end in the lifetime of the machine.
    proc = subprocess.run([exe, "-b", api.base_url, "-k", SENTINEL, "tools", "run", str(spec), "--yes", "go"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "done\n"
    error = json.loads(tool_messages(chat_bodies(api)[1])[0]["content"])["error"]
    assert "took more than" in error and "did not run" in error


def test_the_schema_time_limit_is_put_back_after_each_check(monkeypatch):
    monkeypatch.setattr(toolrun, "SCHEMA_TIME_LIMIT", 0.2)
    tool = {"name": "t", "parameters": {"type": "object", "properties": {"x": {"type": "string", "pattern": REDOS}}}}
    slow = toolrun.ToolCall({"id": "c", "function": {"name": "t", "arguments": json.dumps({"x": EVIL})}}, "f")
    quick = toolrun.ToolCall({"id": "c", "function": {"name": "t", "arguments": json.dumps({"x": "aaa"})}}, "f")
    before = signal.getsignal(signal.SIGALRM)
    assert "took more than 0.2s" in (toolrun.check_arguments(slow, tool) or "")
    assert toolrun.check_arguments(quick, tool) is None
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


# ------------------------------------------------------------ signals that end tools run

# A tool runs in a session of its own (so Ctrl-C on the terminal reaches only interncli, which
# then stops it). The terminal's hangup (window closed) and quit (Ctrl-\) likewise reach only
# interncli, and their default action ended it at once: the tool ran on. SIGINT and SIGTERM
# already unwound; they are here so that all four stay covered.
@pytest.mark.integration
@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")
@pytest.mark.parametrize("name, code", [("SIGHUP", 129), ("SIGQUIT", 131), ("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_that_ends_tools_run_stops_the_running_tool(api, tmp_path, exe, name, code):
    tool = tmp_path / "slow.sh"
    tool.write_text("#!/bin/sh\necho $$ > pid.tmp && mv pid.tmp pid\nexec sleep 60\n")
    tool.chmod(0o755)
    spec = write_spec(tmp_path, [{"name": "t", "command": [str(tool)], "timeout": 120}])
    api.add(tool_calls_reply(("c1", "t", "{}")))
    api.add(Completion("done"))
    proc = subprocess.Popen([exe, "-b", api.base_url, "-k", SENTINEL, "tools", "run", str(spec), "--yes", "go"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pid = _wait_for_pid(tmp_path / "pid")
    try:
        proc.send_signal(getattr(signal, name))
        proc.communicate(timeout=60)
        assert proc.returncode == code
        assert wait_gone(pid, 10), "the tool (pid {}) outlived tools run after {}".format(pid, name)
    finally:
        _kill_quietly(pid)
        proc.kill()
        proc.wait()


def _wait_for_pid(path, limit: float = 30.0) -> int:
    deadline = time.monotonic() + limit
    while not path.exists():
        assert time.monotonic() < deadline, "the tool never started"
        time.sleep(0.05)
    return int(path.read_text())


def _kill_quietly(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# ------------------------------------------------------- tools validate on hostile schemas

def _ref_chain(length: int, last: dict) -> dict:
    """Parameters whose x is a chain of ``length`` $refs through $defs, ending in ``last``:
    every entry is two levels deep, so the nesting limit does not stop a long chain."""
    defs = {"a{}".format(k): {"$ref": "#/$defs/a{}".format(k + 1)} for k in range(length)}
    defs["a{}".format(length)] = last
    return {"type": "object", "properties": {"x": {"$ref": "#/$defs/a0"}}, "$defs": defs}


# Longer than any recursion could follow: each test runs with the recursion limit ROOM frames
# above its own stack (recursion_room), so a walk by recursion fails on this chain wherever the
# stack stands (5000 were used first, then the default limit + 500; each $def costs the
# meta-schema check a millisecond).
ROOM = 300
CHAIN = ROOM + 200


def _validate(tmp_path, parameters: dict):
    spec = write_spec(tmp_path, [{"name": "t", "parameters": parameters, "command": ["./x"]}])
    return invoke(["tools", "validate", str(spec)])


def test_a_long_reference_loop_is_a_problem_not_a_crash(tmp_path):
    # The loop check walked references by recursion: 5000 of them ended in "unexpected
    # RecursionError", exit 1.
    with recursion_room(ROOM):
        result = _validate(tmp_path, _ref_chain(CHAIN, {"$ref": "#/$defs/a0"}))
    assert result.exit_code == 2, result.stderr
    assert "leads back to itself" in result.stderr and "unexpected" not in result.stderr


def test_a_long_reference_chain_validates_and_a_call_gets_a_clear_error(tmp_path):
    with recursion_room(ROOM):
        result = _validate(tmp_path, _ref_chain(CHAIN, {"type": "string"}))
        assert result.exit_code == 0, result.stderr
        tool = {"name": "t", "parameters": _ref_chain(CHAIN, {"type": "string"})}
        call = toolrun.ToolCall({"id": "c", "function": {"name": "t", "arguments": '{"x": "s"}'}}, "f")
        error = toolrun.check_arguments(call, tool) or ""
    assert "the tool's schema cannot check these arguments" in error


def test_a_pattern_nested_too_deeply_to_compile_is_a_problem_not_a_crash(tmp_path):
    # The meta-schema's "regex" format compiles each pattern, and re's parser recurses once per
    # group: 5000 nested groups ended in "unexpected RecursionError", exit 1.
    parameters = {"type": "object", "properties": {"x": {"type": "string", "pattern": "(" * 5000 + ")" * 5000}}}
    result = _validate(tmp_path, parameters)
    assert result.exit_code == 2, result.stderr
    assert "a regular expression in it is nested too deeply" in result.stderr
    assert "unexpected" not in result.stderr


def test_a_timeout_of_nan_is_a_problem(tmp_path):
    # YAML's .nan passes exclusiveMinimum and maximum (every comparison with NaN is false), and
    # Popen.wait(nan) never times out (checked: it waited the tool's whole run).
    spec = tmp_path / "spec.yaml"
    spec.write_text("tools:\n  - name: t\n    command: [./x]\n    timeout: .nan\n", encoding="utf-8")
    result = invoke(["tools", "validate", str(spec)])
    assert result.exit_code == 2
    assert result.stderr.startswith("{}:4: ".format(spec)) and "no time limit" in result.stderr


def test_a_reference_loop_through_dependent_schemas_is_a_problem(tmp_path):
    # {"x": ...} would apply dependentSchemas.x, which is the whole schema again, for ever.
    parameters = {"type": "object", "properties": {"x": {}}, "dependentSchemas": {"x": {"$ref": "#"}}}
    result = _validate(tmp_path, parameters)
    assert result.exit_code == 2, result.stderr
    assert "leads back to itself" in result.stderr


# ------------------------------------------- "--" protects only the program that reads values

# argv_problem lets a value start with "-" after a literal "--", as the program then reads it as
# an operand. A "--" that a wrapper or an interpreter takes is not that program's: behind
# `env -- ECHO {a}` or `python3 -- ECHO {a}` the "-rf" reached ECHO as an option. In
# `bash -c CODE -- {a}` the "--" is $0, and the code sees "-rf" as "$1".
@pytest.mark.parametrize("command", [
    ["env", "--", ECHO, "{a}"],
    ["timeout", "--", "5", ECHO, "{a}"],
    ["nice", "--", ECHO, "{a}"],
    ["python3", "--", ECHO, "{a}"],
    ["sh", "-c", 'exec "$0" "$2"', ECHO, "--", "{a}"],  # $1 is "--", $2 reaches ECHO as -rf
])
def test_a_double_dash_taken_by_a_wrapper_or_interpreter_does_not_let_an_option_through(cli, api, tmp_path, command):
    tool = {"name": "t", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}},
            "command": command}
    result, (answer,) = run_calls(cli, api, tmp_path, [tool], [("c1", "t", json.dumps({"a": "-rf"}))], "--yes")
    assert result.exit_code == 0, result.stderr
    assert "starts with '-'" in json.loads(answer["content"])["error"]


@pytest.mark.parametrize("command", [
    [ECHO, "--", "{a}"],
    ["env", "--", ECHO, "--", "{a}"],
    ["timeout", "5", ECHO, "--", "{a}"],
])
def test_a_double_dash_of_the_program_itself_still_lets_a_value_start_with_a_dash(cli, api, tmp_path, command):
    tool = {"name": "t", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}},
            "command": command}
    result, (answer,) = run_calls(cli, api, tmp_path, [tool], [("c1", "t", json.dumps({"a": "-rf"}))], "--yes")
    assert result.exit_code == 0, result.stderr
    assert json.loads(answer["content"])["argv"][-2:] == ["--", "-rf"]


# ------------------------------------------------------------ arguments that are not text

# JSON can escape a lone surrogate ("\ud800"), which json.loads keeps; UTF-8 cannot encode it.
# The thread writing stdin died with a traceback on stderr, never closed the pipe, and a tool
# reading its stdin to the end waited until its time limit (checked: "did not finish within 5s").
@pytest.mark.parametrize("raw", ['{"x": "\\ud800"}', '{"x": "a\\udc80b"}', '{"\\udfff": "k"}'])
@pytest.mark.parametrize("command", [[ECHO], [ECHO, "{x}"]], ids=["stdin", "argv"])
def test_a_lone_surrogate_in_the_arguments_is_an_error_for_the_model(cli, api, tmp_path, raw, command):
    tool = {"name": "t", "parameters": {"type": "object", "properties": {"x": {"type": "string"}},
                                        "patternProperties": {".": {}}}, "command": command, "timeout": 5}
    result, (answer,) = run_calls(cli, api, tmp_path, [tool], [("c1", "t", raw)], "--yes")
    assert result.exit_code == 0, result.stderr
    assert "lone surrogate" in json.loads(answer["content"])["error"]
    assert "Traceback" not in result.stderr and "Exception" not in result.stderr


def test_the_approval_prompt_never_meets_a_lone_surrogate():
    call = toolrun.ToolCall({"id": "c", "function": {"name": "t", "arguments": '{"x": "\\ud800"}'}}, "f")
    assert call.problem and call.arguments == {}
    assert toolrun.approval_text(call, ["./x"]) is not None


# ------------------------------------------------------------------ tools list on a terminal

@pytest.mark.integration
def test_tools_list_on_a_terminal_escapes_the_descriptions(api, tmp_path):
    # It printed a spec's description as written: a title change and a screen clear acted.
    from tests.ptyrun import run_on_pty

    spec = write_spec(tmp_path, [{"name": "t", "description": "evil\x1b]0;pwned\x07 \x1b[2J", "command": ["./x"]}])
    code, _, seen, _ = run_on_pty(api, ["tools", "list", str(spec)], None, stdout_on_pty=True)
    assert code == 0, seen
    assert b"\x1b" not in seen and b"\x07" not in seen
    assert b"t\tevil\\x1b]0;pwned\\x07 \\x1b[2J" in seen



def test_a_time_limit_whose_first_alarm_is_swallowed_still_ends_the_block():
    # The garbage collector may run a finaliser just as the alarm comes: the TooSlow its handler
    # raises there is printed and dropped ("Exception ignored in ..."), and a single alarm was
    # then lost: a check bounded at 5 s ran for hours. Here the block swallows the first itself.
    import time

    from interncli import timelimit

    swallowed = 0
    given_up = time.monotonic() + 5  # without a second alarm: DID NOT RAISE, not a hang
    with pytest.raises(timelimit.TooSlow):
        with timelimit.time_limit(0.01):
            while time.monotonic() < given_up:
                try:
                    time.sleep(0.001)
                except timelimit.TooSlow:
                    swallowed += 1
                    if swallowed > 1:
                        raise
    assert swallowed == 2
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_parameters_whose_references_multiply_are_a_problem_found_in_bounded_time(tmp_path, monkeypatch):
    # Ten levels of ten references each: 10**10 subschemas, which the load-time check walked
    # for hours, silently, before `tools validate` (or `tools run`) said anything.
    from interncli import toolspec

    monkeypatch.setattr(toolspec, "CHECK_TIME_LIMIT", 0.05)
    defs = {"l0": {"type": "integer"}}
    for level in range(1, 11):
        defs["l{}".format(level)] = {"allOf": [{"$ref": "#/$defs/l{}".format(level - 1)}] * 10}
    result = _validate(tmp_path, {"type": "object", "allOf": [{"$ref": "#/$defs/l10"}], "$defs": defs})
    assert result.exit_code == 2
    assert "took more than 0.05s (references that multiply?)" in result.stderr
