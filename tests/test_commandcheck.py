"""`tools validate` reads a command's structure, not a list of names: through wrappers to the
program that really runs, refusing a placeholder only where that program would read it as the
program or as code. One table runs every shell, interpreter and wrapper both ways."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import pytest

from interncli.commandcheck import (
    ALL_CODE,
    FROM_STDIN,
    INTERPRETERS,
    LAUNCHERS,
    SHELL_WITHOUT_COMMAND,
    WRAPPERS,
    program_name,
)
from tests.conftest import invoke
from tests.toolhelpers import assert_command_refuses, assert_validate_refuses

X = "{x}"

# (argv, the indices of the elements that must be refused; empty: the spec is accepted)
CASES = [
    # ---------------------------------------------------------------- shells
    *[([sh, "-c", X], [2]) for sh in ("sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "/bin/sh")],
    *[([sh, "script.sh", X], []) for sh in ("sh", "bash", "zsh", "dash", "ksh")],
    (["bash", "-ec", X], [2]),
    (["bash", "-lc", X], [2]),
    (["sh", "-x", "-c", X], [3]),
    (["bash", "-o", "pipefail", "-c", X], [4]),
    # bash/zsh/dash -c: the first operand is the code, the next ones are $0, $1 ... (checked:
    # `bash -c 'echo "$0 $1"' a b` prints "a b"), so a fixed script with placeholder data is fine.
    (["bash", "-c", 'echo "$1"', "_", X], []),
    (["zsh", "-c", "print -r -- $0", X], []),
    (["bash", X], [1]),                           # the script itself
    (["sh", "-e", X], [2]),
    (["bash", "--rcfile", X, "s.sh"], [2]),
    (["bash", "-O", X, "s.sh"], [2]),
    (["bash", "-{x}", "s.sh"], [1]),
    # No script: the shell runs stdin, which is the model's JSON. Checked: piping
    # {"a": "$(touch /tmp/f)"} into bash creates /tmp/f (the words are expanded before the
    # command `{a:` is found missing).
    (["bash"], [0]),
    (["sh", "-s"], [0]),
    (["bash", "-s", "fixed", X], [0]),            # -s: the operands are $1 ..., stdin the commands
    (["bash", "-"], [1]),
    (["fish", "-c", X], [2]),
    (["fish", "--command={x}"], [1]),
    (["fish", "-C", X, "s.fish"], [2]),
    (["fish", "s.fish", X], []),
    # ---------------------------------------------------------------- python
    *[([py, "-c", X], [2]) for py in ("python", "python3", "python3.11", "python3.11m", "/usr/bin/python3",
                                      "pypy3", "pypy3.10", "python.exe", "PYTHON3.EXE", "C:\\Python\\python.exe")],
    (["python3", "-m", X], [2]),
    (["python3", "-m", "json.tool", X], []),
    (["python3", X], [1]),
    (["python3", "-u", X], [2]),
    (["python3", "-W", X, "s.py"], [2]),
    (["python3", "-cprint({x})"], [1]),
    (["python3", "-c", "import sys; print(sys.argv[1])", X], []),
    (["python3", "weather.py", "--city", X], []),
    (["python3", "-W", "ignore", "-u", "weather.py", X, "--unit={x}"], []),
    (["python3", "-"], [1]),
    (["python3"], [0]),
    # ---------------------------------------------------------------- node
    *[(["node", opt, X], [2]) for opt in ("-e", "--eval", "-p", "--print", "-r", "--require", "--import")],
    (["node18", "-e", X], [2]),
    (["nodejs", "--eval={x}"], [1]),
    (["node", X], [1]),
    (["node", "x.js", X], []),
    (["node", "--max-old-space-size=100", "x.js", X], []),
    # node -e CODE a -p 1: after the first operand everything is process.argv (checked); but
    # node -e CODE -p X still reads -p as code, so options after -e stay options.
    (["node", "-e", "console.log(process.argv[1])", X], []),
    (["node", "-e", "1", "-p", X], [4]),
    (["node"], [0]),
    # ---------------------------------------------------------------- perl, ruby, php, lua, R, pwsh
    (["perl", "-e", X], [2]),
    (["perl5.36", "-E", X], [2]),
    (["perl", "-ne", X], [2]),
    # perl joins every -e into one program (checked: a second -e is line 2 of it).
    (["perl", "-e", "print @ARGV", X], []),
    (["perl", "-e", "1;", "-e", X], [4]),
    (["perl", "s.pl", X], []),
    (["perl", X], [1]),
    (["ruby", "-e", X], [2]),
    (["ruby3.2", "-r", X, "s.rb"], [2]),
    (["ruby", "s.rb", X], []),
    (["php", "-r", X], [2]),
    (["php8.2", "-B", X, "-R", "echo 1;"], [2]),
    (["php", "-f", "s.php", "--", X], []),
    (["php", "s.php", X], []),
    (["php", X], [1]),
    (["lua", "-e", X], [2]),
    (["lua5.4", "-l", X, "s.lua"], [2]),
    (["luajit", "s.lua", X], []),
    (["Rscript", "-e", X], [2]),
    (["Rscript", "s.R", X], []),
    (["pwsh", "-c", X], [2]),
    (["pwsh", "-NoProfile", "-Command", "Get-Date", X], [4]),
    (["pwsh.exe", "-EncodedCommand", X], [2]),
    (["pwsh", "-File", "s.ps1", X], []),
    (["pwsh", "s.ps1", X], []),
    (["powershell", "Get-Date", X], [2]),         # Windows PowerShell: an operand is -Command
    (["osascript", "-e", X], [2]),
    (["expect", "-c", X], [2]),
    # ---------------------------------------------------------------- awk, sed
    *[([awk, X], [1]) for awk in ("awk", "gawk", "mawk", "nawk")],
    (["awk", "-F", ":", X, "file"], [3]),
    (["awk", "-f", "prog.awk", X], []),
    (["awk", "-f", X], [2]),
    (["gawk", "-e", X], [2]),
    (["gawk", "--source={x}"], [1]),
    (["gawk", "-i", X, "-f", "p.awk"], [2]),
    (["awk", "-v", "city={x}", "{{print city}}"], []),
    (["awk", "-F", X, "{{print $1}}", "file"], []),
    # mawk does not permute: `awk 'BEGIN{print ARGV[1]}' -v x=1` prints "-v" (checked).
    (["awk", "{{print $1}}", X], []),
    (["sed", "-n", X, "FILE"], [2]),
    (["sed", X], [1]),
    (["sed", "-e", X], [2]),
    (["sed", "--expression={x}", "f"], [1]),
    (["sed", "-f", X, "f"], [2]),
    (["sed", "-i{x}", "s/a/b/", "f"], [1]),
    (["sed", "s/a/b/", X], []),
    # GNU sed permutes: `sed s/a/X/ -e s/b/Y/` runs s/b/Y/ and reads s/a/X/ as a file (checked).
    (["sed", "s/a/b/", "-e", X], [3]),
    (["sed", "s/a/b/", "file", "--expression={x}"], [3]),
    (["sed", "s/a/b/", "--", "-e", X], []),
    (["sed", "-n", "-e", "1p", X], []),
    # ---------------------------------------------------------------- find, git, ssh
    (["find", ".", "-exec", X, ";"], [3]),
    (["find", ".", "-execdir", "sh", "-c", X, ";"], [5]),
    (["find", ".", "-ok", X, "{{}}", "+"], [3]),
    (["find", ".", "-okdir", "python3", "-c", X, ";"], [5]),
    (["find", X, "-name", "*.py"], []),
    (["find", ".", "-name", X, "-exec", "grep", "-l", "foo", "{{}}", "+"], []),
    (["find", ".", "-exec", "grep", X, "{{}}", ";"], []),
    (["git", "-c", X, "status"], [2]),
    (["git", "-c", "alias.x={x}", "x"], [2]),
    (["git", "-C", X, "status"], [2]),
    (["git", X], [1]),
    (["git", "config", X, "y"], [2]),
    (["git", "submodule", "foreach", X], [3]),
    (["git", "rebase", "--exec", X], [3]),
    (["git", "clone", "-u", X, "repo"], [3]),
    (["git", "log", "--author={x}"], []),
    (["git", "grep", "-e", X], []),
    (["git", "-C", "repo", "show", X], []),
    (["ssh", "host", X], [2]),
    (["ssh", "-o", X, "host", "uptime"], [2]),
    (["ssh", "-oProxyCommand={x}", "host", "uptime"], [1]),
    (["ssh", "-p", "22", "host", "ls", X], [5]),
    (["ssh", X, "uptime"], []),
    # ---------------------------------------------------------------- wrappers
    (["env", "sh", "-c", X], [3]),
    (["env", "-i", "FOO=1", "bash", "-c", X], [5]),
    (["env", X], [1]),
    (["env", "-u", "HOME", X], [3]),
    (["env", "LD_PRELOAD={x}", "./x"], [1]),
    # env -S splits its value into words that start the command line (checked: `env -S 'echo a b' c`).
    (["env", "-S", "sh -c", X], [3]),
    (["env", "--split-string=python3 -c", X], [2]),
    (["env", "LANG=C", "./x", X], []),
    (["env", "-", "PATH=/bin", "./x", X], []),
    (["env", "python3", "weather.py", X], []),
    (["timeout", "5", "sh", "-c", X], [4]),
    (["timeout", "-s", "KILL", "5", X], [4]),
    (["timeout", X, "./x"], [1]),
    (["timeout", "5", "./x", X], []),
    (["nice", "bash", "-c", X], [3]),
    (["nice", "-n", "5", X], [3]),
    (["nice", "-n", "5", "./x", X], []),
    (["nohup", "sh", "-c", X], [3]),
    (["nohup", "./x", X], []),
    (["setsid", "sh", "-c", X], [3]),
    (["setsid", "-f", X], [2]),
    (["setsid", "./x", X], []),
    (["sudo", "sh", "-c", X], [3]),
    (["sudo", "-u", "root", X], [3]),
    (["sudo", "-s", "./x", X], [3]),              # sudo -s: the command goes to a shell
    (["sudo", "-u", X, "./x"], [2]),
    (["sudo", "./x", X], []),
    (["doas", "-u", "root", "sh", "-c", X], [5]),
    (["doas", "./x", X], []),
    # xargs and parallel run commands built from stdin, and stdin is the model's JSON: the model
    # would choose arguments (-rf too) even without a placeholder.
    (["xargs", X], [0]),
    (["xargs", "echo", X], [0]),
    (["xargs", "-n", "1", "./x"], [0]),
    (["parallel", "./x"], [0]),
    (["sudo", "-iu", "root", "./x", X], [4]),     # -i inside a cluster: the command goes to a shell
    (["sudo", "-Es", "./x", X], [3]),
    (["busybox", "sh", "-c", X], [3]),
    (["busybox", X], [1]),
    (["busybox", "wc", X], []),
    (["stdbuf", "-oL", "sh", "-c", X], [4]),
    (["stdbuf", "-o", "L", X], [3]),
    (["ionice", "-c", "3", "sh", "-c", X], [5]),
    (["chroot", "/srv", "sh", "-c", X], [4]),
    (["chroot", X, "./x"], [1]),
    (["taskset", "0x1", "sh", "-c", X], [4]),
    (["taskset", "-c", "0", X], [3]),
    (["flock", "/tmp/l", "sh", "-c", X], [4]),
    (["flock", "/tmp/l", "-c", X], [3]),
    (["flock", "/tmp/l", "./x", X], []),
    (["time", "-p", "sh", "-c", X], [4]),
    (["command", "sh", "-c", X], [3]),
    (["exec", "-a", "name", "sh", "-c", X], [5]),
    (["nsenter", "-t", "1", "-m", "sh", "-c", X], [6]),
    (["unshare", "-r", "sh", "-c", X], [4]),
    (["strace", "-f", "-o", "log", "python3", "-c", X], [6]),
    (["npx", X], [1]),
    (["npx", "cowsay", X], []),
    (["timeout", "5", "nice", "-n", "5", "env", "FOO=1", "python3.11", "-c", X], [9]),
    (["timeout", "5", "nice", "env", "LANG=C", "python3", "w.py", X], []),
    (["su", "-c", X], [2]),
    (["watch", X], [1]),
    # ---------------------------------------------------------------- launchers, unknown wrappers
    (["uv", "run", X], [2]),
    (["uv", "run", "--with", "rich", "python", "-c", X], [6]),
    (["uv", "run", "python", "w.py", X], []),
    (["poetry", "run", "python", X], [3]),
    (["npm", "exec", X], [2]),
    (["docker", "exec", "box", "sh", "-c", X], [5]),
    (["docker", "run", "--rm", "-e", "A=1", "alpine", X], [6]),
    (["docker", "run", "--rm", "alpine", "./x", X], []),
    (["kubectl", "exec", "pod", "--", "sh", "-c", X], [6]),
    (["kubectl", "exec", "-n", "ns", "pod", "--", "./x", X], []),
    (["systemd-run", "--user", "bash", "-c", X], [4]),     # not known: its arguments still are read
    (["firejail", "--quiet", "python3", "-c", X], [4]),
    (["./run-in-sandbox", "perl", "-e", X], [3]),
    (["./convert", "--to", "python", X], []),             # "python" as data: only code options count
    (["./x", "--shell", "bash"], []),
    # ---------------------------------------------------------------- programs that take data
    (["./weather.sh", "--city", X], []),
    (["echo", X], []),
    (["grep", "-e", X, "file"], []),
    ([X], [0]),
    (["./tools/{x}.sh"], [0]),
    (["/usr/bin/{x}", "a"], [0]),
]


# Every other name the check knows, both ways, so none is left untried: a wrapper running a
# shell's code and running a fixed tool; an interpreter's code option and a fixed script.
_OPERAND = {"timeout": "5", "chroot": "/srv", "taskset": "0x1", "chrt": "1", "flock": "/tmp/lock",
            "gosu": "user", "su-exec": "user"}
_FIXED = {"awk": ["-f", "p.awk", X], "gawk": ["-f", "p.awk", X], "mawk": ["-f", "p.awk", X],
          "nawk": ["-f", "p.awk", X], "sed": ["-f", "s.sed", X], "gsed": ["-f", "s.sed", X],
          "powershell": ["-File", "s.ps1", X]}
# Sorted: the tables are built from sets, whose order changes from run to run, and parallel
# workers (pytest -n) must all collect the same tests in the same order.
GENERATED = sorted([
    *[case for name in WRAPPERS for prefix in [[name] + ([_OPERAND[name]] if name in _OPERAND else [])]
      for case in ((prefix + ["sh", "-c", X], [len(prefix) + 2]), (prefix + ["./tool", X], []))],
    *[case for name, subs in LAUNCHERS.items() for sub in subs
      for prefix in [[name, sub] + (["box"] if WRAPPERS.get(name) or subs[sub].operands else [])]
      for case in ((prefix + ["sh", "-c", X], [len(prefix) + 2]), (prefix + ["./tool", X], []))],
    *[case for name in ALL_CODE if name not in SHELL_WITHOUT_COMMAND
      for case in (([name, X], [1]), ([name, "fixed"], []))],
    # su, runuser, script without -c run a shell on stdin (the model's JSON): given a fixed command.
    *[case for name in SHELL_WITHOUT_COMMAND for case in (([name, "-c", X], [2]), ([name, "-c", "fixed"], []))],
    *[case for name, spec in INTERPRETERS.items()
      for case in (([name, X], [1]) if not spec.shell_c else ([name, "-c", X], [2]),
                   ([name] + _FIXED.get(name, ["script.file", X]), []))],
])


def test_the_table_tries_every_known_name_both_ways():
    names = set(WRAPPERS) | set(INTERPRETERS) | set(ALL_CODE) | set(LAUNCHERS) | {"ssh", "git", "find"}
    cases = CASES + GENERATED
    assert names | FROM_STDIN <= {program_name(c[0]) for c, refused in cases if refused}
    assert names <= {program_name(c[0]) for c, refused in cases if not refused}


@pytest.mark.parametrize("command, refused", GENERATED, ids=[" ".join(c) for c, _ in GENERATED])
def test_every_known_name_generated_both_ways(command: List[str], refused: List[int]):
    assert_command_refuses(command, refused)


@pytest.mark.parametrize("command, refused", CASES, ids=[" ".join(c) for c, _ in CASES])
def test_every_shell_interpreter_and_wrapper_both_ways(command: List[str], refused: List[int]):
    assert_command_refuses(command, refused)


# Every 12th row of each table, through `tools validate` and a spec file: the way from a
# refused element to its line of the file, the message and the exit code is the same for
# every row (accepted rows, rows refused at one element and rows refused at the program itself
# are all among them).
THROUGH_THE_CLI = CASES[::12] + GENERATED[::12]


@pytest.mark.parametrize("command, refused", THROUGH_THE_CLI, ids=[" ".join(c) for c, _ in THROUGH_THE_CLI])
def test_rows_of_the_tables_through_tools_validate(tmp_path, command: List[str], refused: List[int]):
    assert_validate_refuses(tmp_path, command, refused)


def test_the_rows_through_the_cli_are_of_every_kind():
    counts = {len(refused) for _, refused in THROUGH_THE_CLI}
    assert {0, 1} <= counts and [0] in [refused for _, refused in THROUGH_THE_CLI]


@pytest.mark.parametrize("path, name", [
    ("python3.11", "python"), ("python3.11m", "python"), ("/usr/bin/python3", "python"), ("pypy3", "pypy"),
    ("node18", "node"), ("perl5.36", "perl"), ("PYTHON.EXE", "python"), ("C:\\Tools\\pwsh.exe", "pwsh"),
    ("lua5.4", "lua"), ("./weather.sh", "weather.sh"), ("ls", "ls"),
])
def test_program_names_are_normalised(path: str, name: Optional[str]):
    assert program_name(path) == name


def test_validate_help_says_it_is_best_effort_and_a_tool_runs_as_the_user():
    result = invoke(["tools", "validate", "--help"])
    text = " ".join(result.stdout.split())
    assert "best-effort" in text and "a tool runs as you" in text


def test_the_man_page_of_validate_says_so_too():
    page = (Path(__file__).resolve().parent.parent / "man" / "interncli-tools-validate.1").read_text()
    assert "best\\-effort" in page and "a tool runs as you" in page
