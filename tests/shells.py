"""Helpers that drive real shells (bash, zsh, fish) to complete interncli command lines, shared
by tests/test_shell.py and tests/test_completion_install.py.

How each shell is driven:

- bash: a script sources the completion script (``interncli completion bash``, or the committed
  ``completions/interncli.bash``), finds the function ``complete -p interncli`` registered, sets
  COMP_WORDS, COMP_CWORD, COMP_LINE and COMP_POINT as bash does for a partial line, calls the
  function and prints COMPREPLY. ``compopt`` only works inside a completion bash itself started,
  so the script records what the function asks of it; ``-o default`` (click's answer for a file
  argument) is then answered as readline would, with ``compgen -f``. The README test then
  presses Tab in a real interactive bash on a pseudo-terminal.
- zsh: ``zsh -n`` on both scripts, and a real completion: an interactive ``zsh -f`` on a
  pseudo-terminal with ``compinit`` and the script (on ``fpath``, as ``_interncli``, the way the
  README and ``share/zsh/site-functions`` install it; or sourced), where Tab is pressed after a
  partial line. What zsh did is read back from files written by key bindings (the line after
  completion, and the matches given to ``compadd``), never scraped from the screen.
- fish: ``complete -C LINE``, which prints what fish would offer.
"""

from __future__ import annotations

import fcntl
import os
import pathlib
import pty
import re
import select
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from typing import Dict, List, NamedTuple, Optional, Sequence, Set

import pytest

# bash-completion 2.x, which loads completions/<command> files on the first Tab.
BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"

CONFIG = """\
profiles:
  local: {base_url: "http://127.0.0.1:23333/v1", model: m-local, models: [m-one, m-two]}
  work: {model: intern-s1}
"""
PROFILES = {"default", "local", "work"}
MODELS = {"m-local", "m-one", "m-two"}


def interncli_dir() -> str:
    """The folder of the interncli console script: beside this Python first, then on PATH."""
    beside = pathlib.Path(sys.executable).parent / "interncli"
    if beside.exists():
        return str(beside.parent)
    found = shutil.which("interncli")
    if found is None:
        pytest.fail("the interncli command is neither beside {} nor on PATH: pip install -e . first".format(
            sys.executable))
    return os.path.dirname(found)


def need(program: str) -> None:
    """Skip the test when ``program`` is not installed."""
    if shutil.which(program) is None:
        pytest.skip("{} is not installed (.ci/run installs it with apt)".format(program))


class Workspace(NamedTuple):
    """Where a shell under test runs: the folder, the environment, the test's temporary folder."""

    cwd: pathlib.Path
    env: Dict[str, str]
    tmp: pathlib.Path



def make_workspace(tmp_path: pathlib.Path, config_dir: pathlib.Path) -> Workspace:
    """A config with profiles (one listing models), files to complete in the current folder, and
    the isolated environment with interncli first on PATH."""
    (config_dir / "config.yaml").write_text(CONFIG, encoding="utf-8")
    cwd = tmp_path / "work"
    cwd.mkdir()
    for name in ("spec.yaml", "talk.json", "photo.png"):
        (cwd / name).write_text("x", encoding="utf-8")
    env = dict(os.environ)
    env["PATH"] = interncli_dir() + os.pathsep + env.get("PATH", "")
    env.pop("_INTERNCLI_COMPLETE", None)
    env["TERM"] = "xterm"
    return Workspace(cwd, env, tmp_path)


# $1: the shell code that loads the completion; $2: the partial command line, cursor at its end.
BASH_HARNESS = r'''
eval "$1" || { echo "loading the completion failed" >&2; exit 97; }
spec=$(complete -p interncli) || { echo "no completion registered for interncli" >&2; exit 98; }
func=${spec##*-F }; func=${func%% *}
asked=
compopt() { local IFS=' '; asked="$asked $*"; }   # the builtin works only in a completion bash started
line=$2
COMP_LINE=$line; COMP_POINT=${#line}; COMP_TYPE=9; COMP_KEY=9
read -ra COMP_WORDS <<< "$line"
[[ -z $line || $line == *" " ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
cur=${COMP_WORDS[COMP_CWORD]}
COMPREPLY=()
"$func" interncli "$cur" "${COMP_WORDS[COMP_CWORD-1]}"
for reply in "${COMPREPLY[@]}"; do printf '%s\n' "$reply"; done
if [[ ${#COMPREPLY[@]} -eq 0 ]]; then   # what readline does for -o default / -o dirnames
    [[ $asked == *"-o default"* ]] && compgen -f -- "$cur"
    [[ $asked == *"-o dirnames"* ]] && compgen -d -- "$cur"
fi
exit 0
'''


def bash_complete(load: str, line: str, ws: Workspace, env: Optional[Dict[str, str]] = None) -> List[str]:
    """What bash offers for ``line`` once ``load`` has run."""
    need("bash")
    done = subprocess.run(["bash", "--norc", "--noprofile", "-c", BASH_HARNESS, "harness", load, line],
                          cwd=str(ws.cwd), env=env or ws.env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, "bash harness failed ({}):\n{}".format(done.returncode, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout.splitlines()


def fish_quote(text: str) -> str:
    """``text`` as one fish word."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fish_complete(load: str, line: str, ws: Workspace, env: Optional[Dict[str, str]] = None) -> List[str]:
    """What ``complete -C`` says fish would offer for ``line`` (descriptions dropped)."""
    need("fish")
    script = "{}\ncomplete -C {}".format(load, fish_quote(line)) if load else "complete -C " + fish_quote(line)
    done = subprocess.run(["fish", "-c", script], cwd=str(ws.cwd), env=env or ws.env, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return [item.split("\t", 1)[0] for item in done.stdout.splitlines()]



class Typed(NamedTuple):
    """What an interactive shell made of a line and a Tab."""

    buffer: str  # the command line after Tab
    matches: List[str]  # what the completion offered (zsh only: the words given to compadd)


# Bindings for an interactive shell under test: Ctrl-T writes the line being edited (and, in zsh,
# the matches compadd was given) to $OUT/<n>, then clears the line; in zsh, Tab also says when
# the completion is over ($OUT/completed), so that no key is typed ahead of it.
BASH_BINDINGS = r'''
__n=0
__dump() {
  printf 'BUFFER:%s\n' "$READLINE_LINE" > "$OUT/tmp"; mv "$OUT/tmp" "$OUT/$((++__n))"
  READLINE_LINE=; READLINE_POINT=0
}
bind -x '"\C-t": __dump'
: > "$OUT/ready"
'''
ZSH_BINDINGS = r'''
compadd() {
  if (( ${@[(I)-[OAD]*]} )); then builtin compadd "$@"; return; fi
  local -a __hits
  builtin compadd -O __hits "$@"
  (( $#__hits )) && print -rl -- $__hits >> $OUT/matches
  builtin compadd "$@"
}
integer __n=0
__dump() {
  (( __n++ ))
  { print -r -- "BUFFER:$BUFFER"; [[ -f $OUT/matches ]] && cat $OUT/matches } >| $OUT/tmp
  rm -f $OUT/matches; mv $OUT/tmp $OUT/$__n
  BUFFER=
}
zle -N __dump
bindkey '^T' __dump
__tab() { zle complete-word; : >| $OUT/completed }
zle -N __tab
bindkey '^I' __tab
: >| $OUT/ready
'''


def type_tab(argv: List[str], env: Dict[str, str], cwd: pathlib.Path, out: pathlib.Path, setup: str,
             lines: Sequence[str], wait_completed: bool, timeout: float = 20.0) -> List[Typed]:
    """Start an interactive shell on a pseudo-terminal, run ``setup`` (which must bind the keys
    above), then type each line followed by Tab, and return what the shell made of each."""
    out.mkdir()
    script = out / "setup.sh"
    script.write_text(setup, encoding="utf-8")
    env = dict(env, OUT=str(out))
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 250, 0, 0))

    def controlling_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=str(cwd), env=env,
                            preexec_fn=controlling_terminal)
    os.close(slave)
    screen = bytearray()
    stop = threading.Event()

    def drain() -> None:  # a full pty would block the shell
        while not stop.is_set():
            if select.select([master], [], [], 0.05)[0]:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    return
                if not data:
                    return
                screen.extend(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()

    def wait_for(path: pathlib.Path) -> None:
        deadline = time.monotonic() + timeout
        while not path.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.decode("utf-8", "replace"))
                raise AssertionError("{} never came ({}); the terminal showed:\n{}".format(
                    path.name, "shell exited" if proc.poll() is not None else "timed out", text[-3000:]))
            time.sleep(0.01)

    typed = []
    try:
        os.write(master, "source {}\n".format(shlex.quote(str(script))).encode())
        wait_for(out / "ready")
        for number, line in enumerate(lines, 1):
            if wait_completed:
                os.write(master, (line + "\t").encode())
                wait_for(out / "completed")
                (out / "completed").unlink()
                os.write(master, b"\x14")
            else:  # readline completes before it reads the next key
                os.write(master, (line + "\t\x14").encode())
            wait_for(out / str(number))
            first, *rest = (out / str(number)).read_text(encoding="utf-8").splitlines()
            typed.append(Typed(first[len("BUFFER:"):], rest))
        os.write(master, b"exit\n")
        proc.wait(timeout=5)
    finally:
        stop.set()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        reader.join(1)
        os.close(master)
    return typed



class TabCase(NamedTuple):
    """A partial line, the line expected after Tab, and (optionally) the matches offered."""

    line: str
    after: str  # the line after Tab
    matches: Optional[Set[str]] = None  # what compadd was given, where it says more than the line



def check_tabs(cases: Sequence[TabCase], typed: Sequence[Typed]) -> None:
    """Every Tab did what its case expects; all the wrong ones are reported at once."""
    wrong = []
    for number, (case, got) in enumerate(zip(cases, typed), 1):
        if got.buffer != case.after or (case.matches is not None and set(got.matches) != case.matches):
            wrong.append("Tab #{} after {!r}: line became {!r} (expected {!r}), matches {}{}".format(
                number, case.line, got.buffer, case.after, got.matches or "[] (nothing offered)",
                "" if case.matches is None else " (expected {})".format(sorted(case.matches))))
    assert not wrong, "\n".join(wrong)

