"""Where a placeholder in a tool's argv would be read as the program or as code: pure
functions over the argv templates, no I/O.

This is a best-effort reading of how common programs parse their command line: it looks
through wrappers (``env``, ``timeout``, ``sudo``, ...) to the program that really runs, and
knows the code options of shells and interpreters, ``awk`` and ``sed`` programs, ``find -exec``,
``git -c`` and ``ssh``'s remote command. A program it does not know is taken to treat its
arguments as data, except an interpreter's code option among them (an unknown wrapper's
``bash -c {x}`` still runs as code). It cannot make a tool safe: a tool runs as the user.
"""

from __future__ import annotations

import re
import shlex
from typing import Callable, FrozenSet, List, NamedTuple, Optional, Sequence, Tuple

# (index of the argv element in the spec's command, its text): split strings such as env -S's
# keep the index of the element they came from, so every problem still has its line.
Element = Tuple[int, str]
Problem = Tuple[int, str]
HasPlaceholder = Callable[[str], bool]


class Wrapper(NamedTuple):
    """A program that runs another: which of its options take a value, how many operands
    come before the program, and which options make it run the rest through a shell."""

    takes_value: FrozenSet[str] = frozenset()
    operands: int = 0
    shell_options: FrozenSet[str] = frozenset()  # sudo -s: the command is given to a shell
    two_values: FrozenSet[str] = frozenset()  # bwrap --bind SRC DEST: options taking two elements


class Interpreter(NamedTuple):
    """A program that runs code: its options that take a value, those whose value is code (or
    a file of code), those that make the rest of the command line code, whether ``-c`` makes
    the first operand code (shells), whether it reads its program from stdin when given none,
    and those option values that are plain data."""

    takes_value: FrozenSet[str] = frozenset()
    code: FrozenSet[str] = frozenset()
    rest_is_code: FrozenSet[str] = frozenset()
    shell_c: bool = False
    stdin_program: bool = True
    data_options: FrozenSet[str] = frozenset()
    word_options: bool = False  # pwsh: -Command is one option, not -C -o -m ...
    permutes: bool = False  # GNU getopt: options still count after the first operand
    operands_code: bool = False  # powershell.exe runs its operands as a command
    kind: str = "script"
    separate_values: bool = False  # node: -pe is -p and -e, and the code is the next element
    opens_operands: str = ""  # perl -n/-p: flag letters after which each operand is opened by a
    # two-argument open, where 'cmd|' runs cmd


def _set(text: str) -> FrozenSet[str]:
    return frozenset(text.split())


# Shells: -c is a flag (also inside -ec, -lc), the first operand is then the code and the next
# ones $0, $1 ...; without -c the first operand is the script, without one stdin is.
_SHELL = Interpreter(takes_value=_set("-o +o -O +O --rcfile --init-file"), shell_c=True,
                     code=_set("--rcfile --init-file"))
_FISH = Interpreter(takes_value=_set("-c --command -C --init-command -d --debug -o --debug-output "
                                     "--profile --profile-startup"),
                    code=_set("-c --command -C --init-command"))
# python: -c CODE and -m MODULE end the options; what follows is sys.argv.
_PYTHON = Interpreter(takes_value=_set("-c -m -W -X --check-hash-based-pycs"), code=_set("-c -m"))
# node, perl, ruby, lua ...: options go on after -e CODE; the first operand after a code option
# is then data, not a script.
_NODE = Interpreter(takes_value=_set("-e --eval -p --print -r --require --import --loader "
                                     "--experimental-loader -C --conditions --input-type --title "
                                     "--env-file --inspect-port --stack-size --max-old-space-size"),
                    code=_set("-e --eval -p --print -r --require --import --loader --experimental-loader"),
                    separate_values=True)
# perl -I DIR takes the next element (checked: `perl -I lib -e 1` runs); -M/-m load a module.
_PERL = Interpreter(takes_value=_set("-e -E -I -M -m"), code=_set("-e -E -M -m"), opens_operands="np")
_RUBY = Interpreter(takes_value=_set("-e -I -r -C -E --encoding"), code=_set("-e -r"))
_PHP = Interpreter(takes_value=_set("-r -B -R -F -E -f -c -d -z -t -S"), code=_set("-r -B -R -F -E -f -z"))
_LUA = Interpreter(takes_value=_set("-e -l"), code=_set("-e -l"))
_R = Interpreter(takes_value=_set("-e -f --file"), code=_set("-e -f --file"))
_TCL = Interpreter(takes_value=_set("-c -f"), code=_set("-c -f"))
_OSASCRIPT = Interpreter(takes_value=_set("-e -l -s"), code=_set("-e"))
_PWSH = Interpreter(takes_value=_set("-file -f -configurationname -workingdirectory -wd -executionpolicy -ex "
                                     "-inputformat -outputformat -settingsfile -windowstyle"),
                    code=_set("-file -f"), word_options=True,
                    rest_is_code=_set("-command -c -encodedcommand -e -ec -commandwithargs -cwa"))
# Windows PowerShell takes a bare operand as -Command, PowerShell 7 as -File.
_POWERSHELL = _PWSH._replace(operands_code=True)
_AWK = Interpreter(takes_value=_set("-F -v -f -e -i -l -E --source --include --load --file --exec --assign "
                                    "--field-separator"),
                   code=_set("-f -e -i -l -E --source --include --load --file --exec"),
                   stdin_program=False, data_options=_set("-F -v --assign --field-separator"), kind="program")
_SED = Interpreter(takes_value=_set("-e -f -l --expression --file --line-length"),
                   code=_set("-e -f --expression --file"), stdin_program=False,
                   data_options=_set("-l --line-length"), kind="script", permutes=True)

INTERPRETERS = {
    **{name: _SHELL for name in _set("sh bash dash zsh ksh mksh ash yash posh rbash lksh pdksh")},
    "fish": _FISH,
    **{name: _PYTHON for name in _set("python pypy ipython")},
    **{name: _NODE for name in _set("node nodejs")},
    "perl": _PERL, "ruby": _RUBY, "php": _PHP,
    **{name: _LUA for name in _set("lua luajit")},
    "rscript": _R, "r": _R,
    **{name: _TCL for name in _set("tclsh wish expect")},
    "osascript": _OSASCRIPT,
    "pwsh": _PWSH, "powershell": _POWERSHELL,
    **{name: _AWK for name in _set("awk gawk mawk nawk")},
    **{name: _SED for name in _set("sed gsed")},
}

WRAPPERS = {
    "env": Wrapper(takes_value=_set("-u --unset -C --chdir -S --split-string -P")),
    "timeout": Wrapper(takes_value=_set("-k --kill-after -s --signal"), operands=1),
    "nice": Wrapper(takes_value=_set("-n --adjustment")),
    "nohup": Wrapper(),
    "setsid": Wrapper(),
    "sudo": Wrapper(takes_value=_set("-u --user -g --group -h --host -p --prompt -C --close-from -D --chdir "
                                     "-r --role -t --type -T --command-timeout -U --other-user -R --chroot"),
                    shell_options=_set("-s --shell -i --login")),
    "doas": Wrapper(takes_value=_set("-u -C")),
    "pkexec": Wrapper(takes_value=_set("--user")),
    "busybox": Wrapper(),
    "stdbuf": Wrapper(takes_value=_set("-i -o -e --input --output --error")),
    "ionice": Wrapper(takes_value=_set("-c --class -n --classdata -p --pid -P --pgid -u --uid")),
    "chroot": Wrapper(takes_value=_set("--userspec --groups"), operands=1),
    "taskset": Wrapper(operands=1),
    "chrt": Wrapper(operands=1),
    "flock": Wrapper(takes_value=_set("-w --wait --timeout -E --conflict-exit-code -c --command"), operands=1),
    "time": Wrapper(takes_value=_set("-f --format -o --output")),
    "command": Wrapper(),
    "exec": Wrapper(takes_value=_set("-a")),
    "builtin": Wrapper(),
    "nsenter": Wrapper(takes_value=_set("-t --target -S --setuid -G --setgid")),
    "unshare": Wrapper(takes_value=_set("-S --setuid -G --setgid -R --root -w --wd")),
    "prlimit": Wrapper(takes_value=_set("-p --pid")),
    "strace": Wrapper(takes_value=_set("-e -o -p -s -u -E -a -b -I -O -P -S -X")),
    "ltrace": Wrapper(takes_value=_set("-e -o -p -s -u -a -n -A -D -F -l -w")),
    "catchsegv": Wrapper(),
    "npx": Wrapper(takes_value=_set("-p --package -c --call")),
    "pnpx": Wrapper(takes_value=_set("-p --package -c --call")),
    "bunx": Wrapper(takes_value=_set("-p --package")),
    "uvx": Wrapper(takes_value=_set("--from --with --python -p")),
    # More programs that run the command after their options, from their manuals.
    "gosu": Wrapper(operands=1),
    "su-exec": Wrapper(operands=1),
    "setpriv": Wrapper(takes_value=_set("--reuid --regid --ruid --rgid --euid --egid --groups --inh-caps "
                                        "--ambient-caps --bounding-set --securebits --pdeathsig --selinux-label "
                                        "--apparmor-profile --landlock-access --landlock-rule")),
    "numactl": Wrapper(takes_value=_set("-C --physcpubind -N --cpunodebind -m --membind -p --preferred "
                                        "-i --interleave")),
    "cgexec": Wrapper(takes_value=_set("-g")),
    "fakeroot": Wrapper(takes_value=_set("-l --lib --faked -s -i -b")),
    "unbuffer": Wrapper(),
    "xvfb-run": Wrapper(takes_value=_set("-n --server-num -s --server-args -f --auth-file -e --error-file "
                                         "-p --xauth-protocol -w --wait")),
    "dbus-run-session": Wrapper(takes_value=_set("--config-file --dbus-daemon")),
    "ssh-agent": Wrapper(takes_value=_set("-a -E -t -P -O")),
    "proxychains": Wrapper(takes_value=_set("-f")),  # proxychains4 too, as program_name reads it
    "torsocks": Wrapper(takes_value=_set("-u --user -p --pass -a --address -P --port")),
    "valgrind": Wrapper(),
    "firejail": Wrapper(),
    "bwrap": Wrapper(takes_value=_set("--bind --ro-bind --dev-bind --bind-try --ro-bind-try --dev-bind-try "
                                      "--symlink --setenv --file --bind-data --ro-bind-data --chmod "
                                      "--chdir --unsetenv --tmpfs --proc --dev --dir --mqueue --remount-ro "
                                      "--uid --gid --hostname --seccomp --add-seccomp-fd --lock-file "
                                      "--sync-fd --info-fd --json-status-fd --block-fd --userns-block-fd "
                                      "--cap-add --cap-drop --perms --size --exec-label --file-label "
                                      "--argv0 --userns --userns2 --pidns --overlay-src --tmp-overlay "
                                      "--ro-overlay --overlay"),
                     two_values=_set("--bind --ro-bind --dev-bind --bind-try --ro-bind-try --dev-bind-try "
                                     "--symlink --setenv --file --bind-data --ro-bind-data --chmod --overlay")),
    "systemd-run": Wrapper(takes_value=_set("-p --property -u --unit -E --setenv --description --slice -M "
                                            "--machine --working-directory -H --host --uid --gid --nice "
                                            "--on-calendar --on-active --timer-property --path-property "
                                            "--socket-property")),
}

_DOCKER_VALUES = _set("-e --env --env-file -u --user -w --workdir --detach-keys -v --volume -p --publish "
                      "--name --network --net -m --memory --cpus --entrypoint --mount --platform -l --label "
                      "-h --hostname --add-host --device --cap-add --cap-drop --security-opt --ulimit --pull "
                      "--restart --gpus --ipc --pid --tmpfs --log-driver --log-opt --shm-size "
                      # The rest of docker run's options that take a value: one missing here would make
                      # its value pass for the image, and the image for the command.
                      "-a --attach --annotation --blkio-weight --blkio-weight-device --cgroup-parent --cgroupns "
                      "--cidfile --cpu-period --cpu-quota --cpu-rt-period --cpu-rt-runtime -c --cpu-shares "
                      "--cpuset-cpus --cpuset-mems --device-cgroup-rule --device-read-bps --device-read-iops "
                      "--device-write-bps --device-write-iops --dns --dns-option --dns-search --domainname "
                      "--expose --group-add --health-cmd --health-interval --health-retries "
                      "--health-start-period --health-start-interval --health-timeout --ip --ip6 --isolation "
                      "--kernel-memory --label-file --link --link-local-ip --mac-address --memory-reservation "
                      "--memory-swap --memory-swappiness --network-alias --net-alias --oom-score-adj "
                      "--pids-limit --runtime --stop-signal --stop-timeout --storage-opt --sysctl --userns --uts "
                      "--volume-driver --volumes-from -f --file --project-name --profile --env-from-file")
# Programs whose sub-command runs another program: ``uv run``, ``docker exec CONTAINER``, ...
LAUNCHERS = {
    **{name: {"run": Wrapper(takes_value=_set("-n --name -p --prefix --with --python --project --directory "
                                              "--env-file -e --environment"))}
       for name in _set("uv poetry pipenv conda mamba micromamba pixi hatch pdm pipx")},
    **{name: {sub: Wrapper(takes_value=_set("-c --call -p --package --workspace -w"))
              for sub in ("exec", "x", "dlx")}
       for name in _set("npm pnpm yarn")},
    **{name: {"exec": Wrapper(takes_value=_DOCKER_VALUES, operands=1),
              "run": Wrapper(takes_value=_DOCKER_VALUES, operands=1)}
       for name in _set("docker podman nerdctl")},
    # bun run/x FILE-OR-PACKAGE, deno run SCRIPT / deno eval CODE, go run FILES: what follows the
    # sub-command's options is the program (code, for deno eval), so no placeholder may be it;
    # bun -e CODE sets a global option, which takes no placeholder either.
    "bun": {sub: Wrapper(takes_value=_set("--cwd -r --preload --env-file --config -c")) for sub in ("run", "x")},
    "deno": {sub: Wrapper(takes_value=_set("--config -c --import-map --cert --location --seed --v8-flags "
                                            "--env-file --ext")) for sub in ("run", "eval")},
    "go": {"run": Wrapper(takes_value=_set("-exec -C -o -tags -ldflags -gcflags -mod -modfile -p -overlay"))},
    "kubectl": {"exec": Wrapper(takes_value=_set("-c --container -n --namespace --context -f --filename "
                                                 "--pod-running-timeout"), operands=1)},
}

# Words that may stand between a launcher and its sub-command: `docker container run`,
# `docker compose run SERVICE`, `uv tool run`.
LAUNCHER_GROUPS = {**{name: _set("container compose") for name in _set("docker podman nerdctl")},
                   "uv": _set("tool")}

# Programs that hand their whole command line to a shell (or are shell code themselves): no
# placeholder may reach them at all.
ALL_CODE = {
    "watch": "watch runs its command through a shell",
    "su": "su runs its command through a shell",
    "runuser": "runuser runs its command through a shell",
    "script": "script runs its command through a shell",
    "cmd": "cmd runs its command line as a batch command",
    "eval": "eval runs its arguments as shell code",
    "source": "source runs a file of shell code",
    "sg": "sg runs its command through a shell",
    "tmux": "tmux runs its commands through a shell",
    "hyperfine": "hyperfine runs its commands through a shell",
    "nix-shell": "nix-shell --run and --command run shell code",
    "capsh": "capsh runs the arguments after -- through bash",
    "watchexec": "watchexec runs its command through a shell",
    # Checked: `make '.SHELLFLAGS=-c touch F;'` runs touch; SHELL=... chooses the recipes' shell.
    "make": "make takes variable settings such as SHELL=... from its operands, and runs recipes",
    "gmake": "make takes variable settings such as SHELL=... from its operands, and runs recipes",
}

# ALL_CODE programs that, given no -c COMMAND, run a shell reading its commands from stdin.
SHELL_WITHOUT_COMMAND = {"su", "runuser", "script"}


class Runs(NamedTuple):
    """A program that takes data, but has options whose value it runs (a command, or code in
    its own language); with ``plus``, a ``+COMMAND`` element is one too; after an option in
    ``rest_is_command`` the rest of the line is a command."""

    code: FrozenSet[str]
    plus: bool = False
    rest_is_command: FrozenSet[str] = frozenset()
    takes_value: FrozenSet[str] = frozenset()  # other options with a value, to tell operands apart
    code_operands_from: Optional[int] = None  # sqlite3 DB SQL...: operands from this one on are code
    program_after: FrozenSet[str] = frozenset()  # gdb --args PROGRAM ARGS...: a command line, checked as one


_VIM = Runs(code=_set("-c --cmd -S -u -U -i -T"), plus=True)
# Each was checked to run its value where the program is installed here (tar, zip, vim, less,
# man, scp); the others are from their manuals.
RUNS = {
    "tar": Runs(code=_set("-I --use-compress-program --to-command --checkpoint-action --rsh-command "
                          "--rmt-command -F --info-script --new-volume-script")),
    "zip": Runs(code=_set("-TT --unzip-command")),
    "rsync": Runs(code=_set("-e --rsh --rsync-path")),
    "scp": Runs(code=_set("-o -S -F -J")),
    "sftp": Runs(code=_set("-o -S -F -J -D")),
    **{name: _VIM for name in _set("vim vi nvim view gvim ex rvim vimdiff gview")},
    "emacs": Runs(code=_set("--eval -l --load -f --funcall --script -x")),
    "less": Runs(code=_set("-k --lesskey-file --lesskey-src"), plus=True),
    "man": Runs(code=_set("-P --pager -H --html -C --config-file")),
    # sqlite3 DB SQL...: each SQL operand may be a dot-command, and `.shell CMD` runs CMD
    # (checked: `sqlite3 t.db '.shell touch F'` creates F); psql and mysql run \! likewise.
    **{name: Runs(code=_set("-cmd --cmd -init --init"), code_operands_from=1,
                  takes_value=_set("-separator -newline -nullvalue -mmap -heap -lookaside -pagecache -vfs "
                                   "-maxsize -escape"))
       for name in _set("sqlite")},  # sqlite3, as program_name reads it
    "psql": Runs(code=_set("-c --command -f --file")),
    # gdb -ex CMD runs gdb commands, `shell CMD` among them (checked: `gdb -batch -nx -ex 'shell
    # touch F'` creates F); after --args comes the program to debug, with its arguments.
    "gdb": Runs(code=_set("-ex --ex -eval-command --eval-command -iex --init-eval-command -x --command "
                          "-ix --init-command"), program_after=_set("--args -args")),
    "lldb": Runs(code=_set("-o --one-line -O --one-line-before-file -s --source -S --source-before-file "
                           "-k --one-line-on-crash"), program_after=_set("--")),
    **{name: Runs(code=_set("-e --execute")) for name in _set("mysql mariadb")},
    **{name: Runs(code=frozenset(), rest_is_command=_set("-e -x --"))
       for name in _set("xterm uxterm gnome-terminal konsole xfce4-terminal alacritty kitty")},
}

# Programs that build command lines from their stdin, which holds the model's arguments: the
# model would choose the arguments (options too) of whatever they run, placeholders or not.
FROM_STDIN = {"xargs", "parallel"}

_SSH_VALUE = frozenset("-" + c for c in "BbcDEeFIiJLlmOoPpQRSWw")
_GIT_GLOBAL_VALUE = _set("-C -c --exec-path --git-dir --work-tree --namespace --config-env --super-prefix")
_GIT_CODE_VALUE = _set("-c --config -u --upload-pack --receive-pack --exec -x --extcmd --exec-path --template "
                       "--to-cmd --cc-cmd --header-cmd --sendmail-cmd --smtp-server --access-hook --httpd")
# Options whose value, only when attached, is a command: git grep -O[PAGER], --open-files-in-pager.
_GIT_CODE_ATTACHED = _set("-O --open-files-in-pager")
_GIT_ALL_CODE = _set("config submodule bisect filter-branch")
_FIND_EXEC = _set("-exec -execdir -ok -okdir")

# Other names of interpreters this module knows.
_ALIASES = {"pythonw": "python", "micropython": "python", "jython": "python", "graalpy": "python",
            "original-awk": "awk", "bwk-awk": "awk", "onetrue-awk": "awk", "goawk": "awk", "busybox-sh": "sh"}
_VERSION = re.compile(r"^(.*?[a-z])[-_]?\d+(?:\.\d+)*[a-z]?$")
# Wrappers that take VAR=VALUE before the command (sudo: "sudo A=1 python3 s.py" runs python3).
_ASSIGNS = {"env", "sudo"}
_ASSIGNMENT = re.compile(r"^[A-Za-z_{][^=]*=")


def program_name(path: str) -> str:
    """The program an argv[0] names, normalised: the base name in lower case, without ``.exe``
    (or ``.cmd``/``.bat``/``.com``) and without a version suffix (``python3.11m`` -> ``python``,
    ``node18`` -> ``node``, ``perl5.36`` -> ``perl``, ``pypy3`` -> ``pypy``)."""
    name = re.split(r"[/\\]", path)[-1].lower()
    name = re.sub(r"\.(exe|cmd|bat|com)$", "", name)
    # Builds of the same interpreter: python3-dbg, bash-static, php-cgi, php8.2-cli.
    name = re.sub(r"-(dbg|debug|static|cgi|cli)$", "", name)
    name = _ALIASES.get(name, name)
    match = _VERSION.match(name)
    return match.group(1) if match else name


def command_problems(command: Sequence[str], has_placeholder: HasPlaceholder) -> List[Problem]:
    """Every (argv index, message) where a placeholder would be read as the program or as
    code, or where an interpreter would read its program from stdin (the model's arguments)."""
    elements = list(enumerate(command))
    return _command(elements, has_placeholder, None)


def _command(elements: List[Element], has: HasPlaceholder, behind: Optional[str]) -> List[Problem]:
    """Problems of the command line whose program is ``elements[0]``."""
    if not elements:
        return []
    index, program = elements[0]
    if has(program):
        return [(index, "the program cannot be a placeholder{}: the model would choose what runs".format(
            " (behind {})".format(behind) if behind else ""))]
    name = program_name(program)
    rest = elements[1:]
    if name in FROM_STDIN:
        return [(index, "{} builds commands from its stdin, which holds the model's arguments: the model "
                        "would choose what they are given".format(name))]
    if name in ALL_CODE:
        if name in SHELL_WITHOUT_COMMAND and not any(
                t in ("-c", "--command") or t.startswith("--command=")
                or (t.startswith("-") and not t.startswith("--") and "c" in t) for _, t in rest):
            return [(index, "{} with no -c COMMAND would run a shell reading stdin, which holds the model's "
                            "arguments".format(name))]
        return _all_refused(rest, has, ALL_CODE[name])
    if name in WRAPPERS:
        return _wrapper(name, WRAPPERS[name], rest, has, index)
    if name == "ssh":
        return _ssh(index, rest, has)
    if name == "git":
        return _git(rest, has)
    if name == "find":
        return _find(rest, has)
    if name in INTERPRETERS:
        return _interpreter(name, INTERPRETERS[name], index, rest, has)
    if name in LAUNCHERS:
        return _launcher(name, rest, has)
    if name in RUNS:
        return _runs(name, RUNS[name], rest, has)
    return _unknown(rest, has)


def _runs(name: str, spec: Runs, rest: List[Element], has: HasPlaceholder) -> List[Problem]:
    """A program that takes data: no placeholder in the options whose value it runs (attached,
    abbreviated, or in the next element), nor in a ``+COMMAND``; the rest as an unknown
    program's (an interpreter's code option among them still counts)."""
    problems: List[Problem] = []
    why = "a placeholder here would be run as a command or code by {}".format(name)
    options_end = False
    operand = 0  # operands seen
    skip = False  # whether this element is an option's value
    for k, (i, text) in enumerate(rest):
        if skip:
            skip = False
            continue
        if text in spec.rest_is_command and not options_end:
            return problems + [(j, why) for j, later in rest[k + 1:] if has(later)]
        if text in spec.program_after and not options_end:
            return sorted(set(problems + _command(rest[k + 1:], has, "{} {}".format(name, text))))
        if text == "--":
            options_end = True
            continue
        if spec.code_operands_from is not None and (options_end or not text.startswith("-") or text == "-"):
            if operand >= spec.code_operands_from and has(text):
                problems.append((i, why))
            operand += 1
            continue
        # vim/less read +COMMAND; an element that starts with the model's value could start with
        # "+" (checked: `vim -es +'!touch F' f` runs touch), unless it comes after "--".
        if spec.plus and not options_end and has(text) and (
                text.startswith("+") or (text.startswith("{") and not text.startswith("{{"))):
            problems.append((i, why if text.startswith("+") else "a value starting with + would be run as a "
                             "command by {}: put \"--\" before this element".format(name)))
            continue
        if not (text.startswith("-") and len(text) > 1):
            continue
        # Options such as zip's -TT are two letters behind one dash: matched as a whole first.
        whole = [o for o in spec.code if not o.startswith("--") and len(o) > 2 and text.startswith(o)]
        if whole:
            option = whole[0]
            attached = len(text) > len(whole[0])
        else:
            option, attached = _option_name(text, spec.code)
        if option not in spec.code:
            skip = option in spec.takes_value and not attached
            continue
        skip = not attached
        if has(text):
            problems.append((i, why))
        elif not attached and k + 1 < len(rest) and has(rest[k + 1][1]):
            problems.append((rest[k + 1][0], why))
    # One problem an element: an option's value that also starts with a placeholder is the option's.
    first = {i: message for i, message in sorted(problems, key=lambda p: p[1] == why)}  # why wins
    return sorted(set(list(first.items()) + _unknown(rest, has)))


def _launcher(name: str, rest: List[Element], has: HasPlaceholder) -> List[Problem]:
    """A launcher's global options and group words (``docker --log-level info container run``),
    then, at its sub-command, the command it runs, checked as a wrapper's. No placeholder may
    choose the sub-command (``npm {x}`` could be ``exec``) nor set a global option."""
    problems: List[Problem] = []
    why = "placeholders cannot be given to {}'s sub-command or global options: they choose what runs".format(name)
    after_option = False  # the element after an option may be its value (docker -H URL run ...)
    for j, (i, text) in enumerate(rest):
        if text.startswith("-") and len(text) > 1:
            if has(text):
                problems.append((i, why))
            after_option = "=" not in text
            continue
        if text in LAUNCHERS[name]:
            return problems + _wrapper("{} {}".format(name, text), LAUNCHERS[name][text], rest[j + 1:], has)
        if has(text):
            return problems + [(i, why)]
        if not (after_option or text in LAUNCHER_GROUPS.get(name, ())):
            return problems + _unknown(rest[j + 1:], has)
        after_option = False
    return problems


def _unknown(rest: List[Element], has: HasPlaceholder) -> List[Problem]:
    """A program not known here is taken to treat its arguments as data, unless they hold an
    interpreter's code option with a placeholder (``docker run --memory 1g img sh -c {x}``,
    ``firejail bash -c {x}``): a wrapper this module does not know still runs that as code."""
    problems: List[Problem] = []
    for k, (index, text) in enumerate(rest):
        name = program_name(text)
        if name in INTERPRETERS and not has(text):
            problems += _interpreter(name, INTERPRETERS[name], index, rest[k + 1:], has, only_code=True)
    return sorted(set(problems))


def _all_refused(elements: List[Element], has: HasPlaceholder, why: str) -> List[Problem]:
    return [(i, "placeholders cannot be given here: {}".format(why)) for i, text in elements if has(text)]


def _option_name(text: str, value_options: FrozenSet[str], word: bool = False) -> Tuple[str, bool]:
    """The option an element starts (``--name`` of ``--name=v``, ``-x`` of ``-xVALUE``) and
    whether its value is attached to it."""
    if text.startswith("--") or word:
        name, eq, _ = text.partition("=")
        name = name.lower() if word else name
        return _expanded(name, value_options), bool(eq)
    for k, letter in enumerate(text[1:], start=1):
        option = text[0] + letter
        if option in value_options:
            return option, k + 1 < len(text)
    return text[:2], False


def _expanded(name: str, known: FrozenSet[str]) -> str:
    """A long option as the program reads it: GNU getopt_long, git and PowerShell take any
    unambiguous prefix (``env --sp`` is ``--split-string``, ``git rebase --exe`` is ``--exec``),
    so a prefix of a known option counts as that option (of several, the first)."""
    if name in known or len(name) < 3 or name == "--":
        return name
    longer = sorted(option for option in known if option.startswith(name))
    return longer[0] if longer else name


def _cluster(text: str, value_options: FrozenSet[str]) -> str:
    """The flag letters of a short-option cluster (``-iu`` -> ``iu``), up to the first one that
    takes a value (the rest is that value)."""
    letters = text[1:]
    for k, letter in enumerate(letters):
        if "-" + letter in value_options:
            return letters[:k + 1]
    return letters


def _wrapper(name: str, spec: Wrapper, rest: List[Element], has: HasPlaceholder,
             program_index: int = 0) -> List[Problem]:
    """A wrapper's options and operands (no placeholder may set them: they decide how, as whom
    or where the program runs), then the program it runs, checked in turn."""
    problems: List[Problem] = []
    why = "placeholders cannot be given to {}'s options or operands: they decide how the program runs".format(name)
    j = 0
    operands = spec.operands
    shell: Optional[str] = None  # sudo -s/-i: the command goes to a shell
    while j < len(rest):
        i, text = rest[j]
        if text == "--":
            # The options end, not the operands: `timeout -- 5 CMD`, `docker run -- IMAGE CMD`.
            for i, text in rest[j + 1:j + 1 + operands]:
                if has(text):
                    problems.append((i, why))
            j += 1 + operands
            break
        if name == "env" and text == "-":  # env -: an empty environment, like -i
            j += 1
            continue
        if name in _ASSIGNS and _ASSIGNMENT.match(text) and not text.startswith("-"):
            if has(text):  # LD_PRELOAD, BASH_ENV, PATH, PYTHONSTARTUP ... choose code
                problems.append((i, "placeholders cannot set environment variables through {}: a variable "
                                    "such as LD_PRELOAD or PATH chooses what runs".format(name)))
            j += 1
            continue
        if text.startswith("-") and len(text) > 1:
            if has(text):
                problems.append((i, why))
            # Long options are matched against the shell ones too, so that --shel is --shell.
            option, attached = _option_name(text, spec.takes_value | (
                spec.shell_options if text.startswith("--") else frozenset()))
            flags = {option} if text.startswith("--") else {"-" + c for c in _cluster(text, spec.takes_value)}
            if flags & spec.shell_options:
                shell = shell or sorted(flags & spec.shell_options)[0]
            value: Optional[Element] = None
            if option in spec.takes_value and not attached and j + 1 < len(rest):
                value = rest[j + 1]
                if has(value[1]):
                    problems.append((value[0], why))
                j += 1
            if option in spec.two_values and j + 1 < len(rest):
                if has(rest[j + 1][1]):
                    problems.append((rest[j + 1][0], why))
                j += 1
            if name == "env" and option in ("-S", "--split-string"):
                # -S's value: the next element, or what follows =, or the rest of a cluster (-iS'sh -c').
                split = value[1] if value else text.partition("=")[2] if text.startswith("--") else \
                    text[text.index("S", 1) + 1:]
                where = value[0] if value else i
                try:
                    words = shlex.split(split)
                except ValueError:
                    words = split.split()
                return problems + _command([(where, w) for w in words] + rest[j + 1:], has, "env -S")
            if name == "flock" and option in ("-c", "--command"):
                return problems  # flock -c runs a fixed shell command: the value was checked above
            j += 1
            continue
        if operands:
            if has(text):
                problems.append((i, why))
            operands -= 1
            j += 1
            continue
        break
    if shell and j >= len(rest):  # no command: the shell reads its commands from stdin, the model's JSON
        return problems + [(program_index, "{} {} with no command would run a shell reading stdin, which holds "
                                           "the model's arguments".format(name, shell))]
    if shell:
        return problems + _all_refused(rest[j:], has, "{} {} runs the command through a shell".format(name, shell))
    return problems + _command(rest[j:], has, name)


def _interpreter(name: str, spec: Interpreter, index: int, rest: List[Element], has: HasPlaceholder,
                 only_code: bool = False) -> List[Problem]:
    """An interpreter's options, then its code or script: no placeholder up to and including
    the element that chooses the code; what follows is data (the script's arguments). With
    ``only_code`` (an interpreter's name met among a program's arguments) only placeholders
    that would be code count."""
    problems: List[Problem] = []
    code_given = False
    shell_code = False
    stdin_commands = False  # sh -s: the operands are $1 ..., the commands come from stdin
    opened = False  # perl -n/-p: every operand is opened by a shell-capable open

    def refuse(i: int, role: str) -> None:
        if only_code and role not in ("code", "opened"):
            return
        problems.append((i, {
            "option": "placeholders cannot be given to {}'s options, which can make it run code".format(name),
            "code": "a placeholder here would be run as code by {}; let a script read the arguments from "
                    "stdin (JSON) instead".format(name),
            "script": "a placeholder here would choose the {} {} runs".format(spec.kind, name),
            "opened": "{} -n/-p opens each operand with a two-argument open, which runs a value such as "
                      "'cmd|' as a command; let a script read the arguments from stdin (JSON) "
                      "instead".format(name),
        }[role]))

    j = 0
    while j < len(rest):
        i, text = rest[j]
        if text == "--":
            j += 1
            break
        option_like = (text.startswith("-") or (spec.shell_c and text.startswith("+"))) and len(text) > 1
        if not option_like:
            break
        if spec.separate_values and not text.startswith("--") and len(text) > 2:
            # A cluster of flags (`node -pe CODE`): the last that takes a value takes the next element.
            valued = ["-" + c for c in text[1:] if "-" + c in spec.takes_value]
            option = valued[-1] if valued else text[:2]
            attached = False
        else:
            option, attached = _option_name(text, spec.takes_value | spec.rest_is_code, spec.word_options)
        if option in spec.rest_is_code:
            if has(text):
                refuse(i, "code")
            for k, later in rest[j + 1:]:
                if has(later):
                    refuse(k, "code")
            return problems
        if has(text) and not (attached and option in spec.data_options):
            refuse(i, "code" if option in spec.code else "option")
        if spec.opens_operands and not text.startswith("--") and set(
                _cluster(text, spec.takes_value)) & set(spec.opens_operands):
            opened = True
        if spec.shell_c and not text.startswith("--") and "c" in text[1:]:
            shell_code = True
        if spec.shell_c and not text.startswith("--") and text.startswith("-") and "s" in text[1:]:
            stdin_commands = True
        if option in spec.takes_value and not attached and j + 1 < len(rest):
            j += 1
            k, value = rest[j]
            if has(value) and option not in spec.data_options:
                refuse(k, "code" if option in spec.code else "option")
        if option in spec.code:
            code_given = True
            if spec is _PYTHON:
                return problems  # python -c CODE / -m MODULE: what follows is sys.argv, data
        j += 1
    operands = rest[j:]
    if stdin_commands and not shell_code:
        if not only_code:
            problems.append((index, "{} -s would read its commands from stdin, which holds the model's "
                                    "arguments; give it a script".format(name)))
        return problems
    if not operands:
        if spec.stdin_program and not only_code and not code_given and not shell_code:
            problems.append((index, "{} would read its program from stdin, which holds the model's arguments; "
                                    "give it a script".format(name)))
        return problems
    i, first = operands[0]
    if opened:
        for k, text in operands[0 if code_given else 1:]:
            if has(text):
                refuse(k, "opened")
    if spec.operands_code and not code_given:
        for k, text in operands:
            if has(text):
                refuse(k, "code")
    elif shell_code:
        if has(first):
            refuse(i, "code")
    elif not code_given:
        if has(first):
            refuse(i, "script")
        elif first == "-" and spec.stdin_program and not only_code:
            problems.append((i, "{} would read its program from stdin, which holds the model's arguments; "
                                "give it a script".format(name)))
    if spec.permutes:  # GNU sed reads `sed s/a/b/ -e {x}` as two scripts: the later -e counts too
        for k, (i, text) in enumerate(operands):
            if text == "--":
                break
            if k == 0 or not (text.startswith("-") and len(text) > 1):
                continue
            option, attached = _option_name(text, spec.takes_value)
            if has(text) and not (attached and option in spec.data_options):
                refuse(i, "code" if option in spec.code else "option")
            if option in spec.code and not attached and k + 1 < len(operands) and has(operands[k + 1][1]):
                refuse(operands[k + 1][0], "code")
    return problems


def _ssh(index: int, rest: List[Element], has: HasPlaceholder) -> List[Problem]:
    """ssh: options (-o ProxyCommand=... runs code) and the remote command (run by the remote
    shell) take no placeholder; the host may. Without a remote command the remote shell reads
    its commands from stdin, the model's JSON."""
    problems: List[Problem] = []
    why = "placeholders cannot be given to ssh's options or its remote command, which a shell runs"
    j = 0
    while j < len(rest):
        i, text = rest[j]
        if text == "--":
            j += 1
            break
        if not (text.startswith("-") and len(text) > 1):
            break
        if has(text):
            problems.append((i, why))
        option, attached = _option_name(text, _SSH_VALUE)
        if option in _SSH_VALUE and not attached and j + 1 < len(rest):
            j += 1
            if has(rest[j][1]):
                problems.append((rest[j][0], why))
        j += 1
    if j + 1 >= len(rest):
        return problems + [(index, "ssh with no remote command would run a shell reading stdin, which "
                                   "holds the model's arguments")]
    return problems + [(i, why) for i, text in rest[j + 1:] if has(text)]


def _git(rest: List[Element], has: HasPlaceholder) -> List[Problem]:
    """git: no placeholder in its global options (``-c alias.x=!sh``, ``-c core.pager=...``),
    as the sub-command (an alias can be a shell command), in options that name a program, or
    anywhere in sub-commands that set config or run commands."""
    problems: List[Problem] = []
    why = "placeholders cannot be given to git's {}: git -c and aliases can run any command"
    j = 0
    while j < len(rest) and rest[j][1].startswith("-"):
        i, text = rest[j]
        if has(text):
            problems.append((i, why.format("global options")))
        option, attached = _option_name(text, _GIT_GLOBAL_VALUE)
        if option in _GIT_GLOBAL_VALUE and not attached and j + 1 < len(rest):
            j += 1
            if has(rest[j][1]):
                problems.append((rest[j][0], why.format("global options")))
        j += 1
    if j >= len(rest):
        return problems
    i, sub = rest[j]
    if has(sub):
        return problems + [(i, why.format("sub-command"))]
    if sub in _GIT_ALL_CODE:
        return problems + _all_refused(rest[j + 1:], has, "git {} can set or run commands".format(sub))
    later = rest[j + 1:]
    for k, (i, text) in enumerate(later):
        code = _GIT_CODE_VALUE | _GIT_CODE_ATTACHED
        option, attached = _option_name(text, code) if text.startswith("-") else ("", False)
        if option in _GIT_CODE_ATTACHED and not attached:
            continue
        if option in code:
            if attached and has(text):
                problems.append((i, why.format("options that name a program")))
            elif k + 1 < len(later) and has(later[k + 1][1]):
                problems.append((later[k + 1][0], why.format("options that name a program")))
    return problems


def _find(rest: List[Element], has: HasPlaceholder) -> List[Problem]:
    """find: each -exec/-execdir/-ok/-okdir clause is a command line of its own, checked as one."""
    problems: List[Problem] = []
    j = 0
    while j < len(rest):
        if rest[j][1] in _FIND_EXEC:
            end = j + 1
            while end < len(rest) and rest[end][1] not in (";", "+"):
                end += 1
            problems += _command(rest[j + 1:end], has, "find " + rest[j][1])
            j = end
        j += 1
    return problems


def options_end(command: Sequence[str]) -> Optional[int]:
    """The index of the ``--`` that ends the options of the program the values finally reach, or
    None. A ``--`` that a wrapper takes (``timeout -- 5 ./x``, ``sudo -- sort``) or an
    interpreter takes (``python3 -- s.py``, ``bash -c CODE -- X``, where it is $0) ends no
    option list of the program that reads the values, so it does not count; behind an
    interpreter none does, as what its script does with its arguments is not known."""
    j = 0
    while j < len(command):
        name = program_name(command[j])
        spec: Optional[Wrapper] = WRAPPERS.get(name)
        if spec is None and name in LAUNCHERS:
            k = j + 1
            while k < len(command) and (command[k].startswith("-") or command[k] in LAUNCHER_GROUPS.get(name, ())):
                k += 1
            if k < len(command) and command[k] in LAUNCHERS[name]:
                spec = LAUNCHERS[name][command[k]]
                j = k
        if spec is None:
            break
        after = _past_wrapper(command, j + 1, spec, name)
        if after is None:
            return None  # env -S, or a shell behind sudo -s: not followed further
        j = after
    if j >= len(command):
        return None
    if program_name(command[j]) in INTERPRETERS or program_name(command[j]) in ALL_CODE:
        return None
    return next((k for k in range(j + 1, len(command)) if command[k] == "--"), None)


def _past_wrapper(command: Sequence[str], j: int, spec: Wrapper, name: str) -> Optional[int]:
    """The index of the program a wrapper runs, its options and operands skipped as
    :func:`_wrapper` reads them; None where it does not simply run the next element."""
    operands = spec.operands
    while j < len(command):
        text = command[j]
        if text == "--":
            return j + 1 + operands
        if (name == "env" and text == "-") or (name in _ASSIGNS and _ASSIGNMENT.match(text)
                                                and not text.startswith("-")):
            j += 1
            continue
        if text.startswith("-") and len(text) > 1:
            option, attached = _option_name(text, spec.takes_value | (
                spec.shell_options if text.startswith("--") else frozenset()))
            flags = {option} if text.startswith("--") else {"-" + c for c in _cluster(text, spec.takes_value)}
            if flags & spec.shell_options or option in ("-S", "--split-string"):
                return None
            j += 2 if option in spec.takes_value and not attached else 1
            j += 1 if option in spec.two_values else 0
            continue
        if operands:
            operands -= 1
            j += 1
            continue
        return j
    return j
