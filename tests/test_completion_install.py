"""``interncli completion install [bash|zsh|fish]``: the script goes to the user's own completion
folder, where the shell finds it by itself (issue 9: inside a venv, none of the folders
``pip install`` fills is one a shell searches).

In-process tests check where each shell's file goes (the environment variables the shells
honour), what is said on stderr and the errors. The integration tests install with the installed
command into a fresh HOME, then start a real interactive bash (with bash-completion's loader, as
Debian's default ~/.bashrc has it), a real interactive zsh (whose ~/.zshrc holds the line the
command printed) and fish, and press Tab: completion works through the written file alone. Each
real-shell test also checks that the same shell completes nothing before the install, so that
what works is the file and not something else on the machine.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
from typing import Dict, List, Optional

import pytest

from tests.conftest import invoke
from tests.shells import (
    BASH_BINDINGS,
    BASH_COMPLETION,
    MODELS,
    ZSH_BINDINGS,
    TabCase,
    Workspace,
    check_tabs,
    fish_complete,
    make_workspace,
    need,
    type_tab,
)

SHELLS = ("bash", "zsh", "fish")
ZSH_LINE = "fpath=(~/.zfunc $fpath); autoload -U compinit; compinit"
# Variables that move the folders: unset, so that the defaults are what is tested unless a test sets one.
MOVERS = ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "BASH_COMPLETION_USER_DIR", "ZDOTDIR", "SHELL")


def default_path(home: pathlib.Path, shell: str) -> pathlib.Path:
    return {"bash": home / ".local/share/bash-completion/completions/interncli",
            "zsh": home / ".zfunc/_interncli",
            "fish": home / ".config/fish/completions/interncli.fish"}[shell]


@pytest.fixture
def home(tmp_path) -> pathlib.Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def env_for(home: pathlib.Path, **extra: str) -> Dict[str, Optional[str]]:
    """For CliRunner (where None unsets): HOME moved, the folder variables unset unless given."""
    env: Dict[str, Optional[str]] = {name: None for name in MOVERS}
    env.update(HOME=str(home), **extra)
    return env


def script_of(shell: str) -> str:
    result = invoke(["completion", shell])
    assert result.exit_code == 0 and result.stdout, result.stderr
    return result.stdout


# -- where the file goes, in-process ---------------------------------------------------------------

@pytest.mark.parametrize("shell", SHELLS)
def test_install_writes_the_script_where_the_shell_looks(home, shell):
    result = invoke(["completion", "install", shell], env=env_for(home))
    assert result.exit_code == 0, result.stderr
    target = default_path(home, shell)
    assert target.read_text(encoding="utf-8") == script_of(shell)
    assert result.stdout == ""
    assert "wrote the {} completion to {}".format(shell, target) in result.stderr
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)


def test_the_shell_defaults_to_the_login_shell(home):
    result = invoke(["completion", "install"], env=env_for(home, SHELL="/usr/bin/fish"))
    assert result.exit_code == 0, result.stderr
    assert default_path(home, "fish").read_text(encoding="utf-8") == script_of("fish")
    assert not default_path(home, "bash").exists() and not default_path(home, "zsh").exists()


@pytest.mark.parametrize("login", ["/bin/tcsh", "", None])
def test_a_login_shell_it_cannot_complete_is_a_usage_error(home, login):
    env = env_for(home)
    env["SHELL"] = login
    result = invoke(["completion", "install"], env=env)
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and lines[0].startswith("interncli: error: cannot tell which shell"), result.stderr
    assert lines[1] == "hint: Name it: interncli completion install bash|zsh|fish"
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert not any(home.rglob("*")), "something was written"


@pytest.mark.parametrize("args", [["completion", "install", "tcsh"], ["completion", "powershell"]])
def test_an_unknown_shell_is_refused_with_a_hint(home, args):
    result = invoke(args, env=env_for(home))
    assert result.exit_code == 2
    assert "tcsh" in result.stderr or "powershell" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("hint: Try 'interncli completion")
    assert not any(home.rglob("*"))


def test_running_it_again_changes_nothing_and_brings_a_stale_file_up_to_date(home):
    first = invoke(["completion", "install", "bash"], env=env_for(home))
    target = default_path(home, "bash")
    assert first.exit_code == 0, first.stderr
    again = invoke(["completion", "install", "bash"], env=env_for(home))
    assert again.exit_code == 0 and "the bash completion in {} is current".format(target) in again.stderr
    assert target.read_text(encoding="utf-8") == script_of("bash")
    assert [p.name for p in target.parent.iterdir()] == ["interncli"], "a temporary file was left"
    target.write_text("# an older script\n", encoding="utf-8")
    stale = invoke(["completion", "install", "bash"], env=env_for(home))
    assert stale.exit_code == 0 and "wrote the bash completion" in stale.stderr
    assert target.read_text(encoding="utf-8") == script_of("bash")


@pytest.mark.parametrize("shell, env, where", [
    ("bash", {"XDG_DATA_HOME": "{home}/data"}, "{home}/data/bash-completion/completions/interncli"),
    ("bash", {"BASH_COMPLETION_USER_DIR": "{home}/mine:{home}/other", "XDG_DATA_HOME": "{home}/data"},
     "{home}/mine/completions/interncli"),
    ("bash", {"XDG_DATA_HOME": "relative/data"}, "{home}/.local/share/bash-completion/completions/interncli"),
    ("fish", {"XDG_CONFIG_HOME": "{home}/conf"}, "{home}/conf/fish/completions/interncli.fish"),
    ("fish", {"XDG_CONFIG_HOME": "conf"}, "{home}/.config/fish/completions/interncli.fish"),
    ("zsh", {"ZDOTDIR": "{home}/zdot", "XDG_CONFIG_HOME": "{home}/conf"}, "{home}/.zfunc/_interncli"),
])
def test_the_folder_follows_the_variables_the_shells_read(home, shell, env, where):
    """--print-path says where the file goes and writes nothing; the install then writes there
    (a relative XDG_* path is invalid by the XDG spec, and ignored)."""
    filled = {k: v.format(home=home) for k, v in env.items()}
    expected = where.format(home=home)
    shown = invoke(["completion", "install", "--print-path", shell], env=env_for(home, **filled))
    assert shown.exit_code == 0 and shown.stdout == expected + "\n" and shown.stderr == ""
    assert not any(home.rglob("*")), "--print-path wrote something"
    done = invoke(["completion", "install", shell], env=env_for(home, **filled))
    assert done.exit_code == 0, done.stderr
    assert pathlib.Path(expected).read_text(encoding="utf-8") == script_of(shell)


def test_zsh_says_the_line_zshrc_needs_until_it_is_there(home):
    result = invoke(["completion", "install", "zsh"], env=env_for(home))
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines()[-1].endswith(": " + ZSH_LINE)
    assert "~/.zshrc" in result.stderr
    assert not (home / ".zshrc").exists(), "the user's rc file was touched"
    (home / ".zshrc").write_text("export EDITOR=vi\n" + ZSH_LINE + "\n", encoding="utf-8")
    again = invoke(["completion", "install", "zsh"], env=env_for(home))
    assert again.exit_code == 0 and ZSH_LINE not in again.stderr, again.stderr
    zdot = home / "zdot"
    zdot.mkdir()
    moved = invoke(["completion", "install", "zsh"], env=env_for(home, ZDOTDIR=str(zdot)))
    assert "~/zdot/.zshrc" in moved.stderr and ZSH_LINE in moved.stderr, moved.stderr


def test_bash_says_how_to_load_it_without_bash_completion(home):
    result = invoke(["completion", "install", "bash"], env=env_for(home))
    assert result.stderr.splitlines()[-1].endswith("add this line to ~/.bashrc: . {}".format(
        default_path(home, "bash")))


def test_a_folder_that_cannot_be_made_is_a_clear_error(home):
    (home / ".config").write_text("a file where the folder should be", encoding="utf-8")
    result = invoke(["completion", "install", "fish"], env=env_for(home))
    assert result.exit_code == 2
    assert result.stderr.startswith("interncli: error: cannot create the folder {}".format(
        home / ".config" / "fish" / "completions"))
    assert "hint:" in result.stderr and "Traceback" not in result.stderr


def test_a_target_that_is_a_folder_is_refused(home):
    default_path(home, "zsh").mkdir(parents=True)
    result = invoke(["completion", "install", "zsh"], env=env_for(home))
    assert result.exit_code == 2 and "is not a regular file" in result.stderr, result.stderr


# -- real shells -----------------------------------------------------------------------------------

TABS = [
    TabCase("interncli ch", "interncli chat "),
    TabCase("interncli --profile lo", "interncli --profile local "),
    TabCase("interncli completion ins", "interncli completion install "),
    TabCase("interncli --profile local chat create -m m-l", "interncli --profile local chat create -m m-local "),
]
# Before the install, Tab leaves the line as it is: nothing else completes interncli.
UNINSTALLED = [TabCase("interncli ch", "interncli ch")]


@pytest.fixture
def ws(tmp_path, config_dir) -> Workspace:
    """A fresh HOME for the user who installs, and the shells' folder variables unset."""
    ws = make_workspace(tmp_path, config_dir)
    user = tmp_path / "user"
    user.mkdir()
    for name in MOVERS:
        ws.env.pop(name, None)
    ws.env["HOME"] = str(user)
    ws.env["XDG_DATA_DIRS"] = "/usr/local/share:/usr/share"  # no folder of a pip install
    return ws


def install(exe: str, ws: Workspace, shell: str) -> List[str]:
    """The installed command's install; its stderr lines (stdout must be empty)."""
    done = subprocess.run([exe, "completion", "install", shell], env=ws.env, cwd=str(ws.cwd), capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr
    return done.stderr.splitlines()


@pytest.mark.integration
@pytest.mark.parametrize("installed", [True, False], ids=["installed", "not-installed"])
def test_bash_completes_through_the_installed_file(exe, ws, installed):
    """A real ``bash -i`` whose ~/.bashrc loads bash-completion (as Debian's default one does):
    its loader finds the file on the first Tab."""
    need("bash")
    if not os.path.exists(BASH_COMPLETION):
        pytest.skip("bash-completion is not installed (apt package bash-completion)")
    home = pathlib.Path(ws.env["HOME"])
    (home / ".bashrc").write_text(". {}\n".format(BASH_COMPLETION), encoding="utf-8")
    if installed:
        install(exe, ws, "bash")
        assert (home / ".local/share/bash-completion/completions/interncli").is_file()
    cases = TABS if installed else UNINSTALLED
    typed = type_tab(["bash", "-i"], ws.env, ws.cwd, ws.tmp / "out", BASH_BINDINGS, [c.line for c in cases],
                     wait_completed=False)
    check_tabs(cases, typed)


@pytest.mark.integration
@pytest.mark.parametrize("installed", [True, False], ids=["installed", "not-installed"])
def test_zsh_completes_through_the_installed_file_and_the_printed_line(exe, ws, installed):
    """A real ``zsh -i`` with a fresh ZDOTDIR whose .zshrc holds exactly the line the install
    printed (the install never writes it itself)."""
    need("zsh")
    zdot = ws.tmp / "zdot"
    zdot.mkdir()
    ws.env["ZDOTDIR"] = str(zdot)
    line = ZSH_LINE
    if installed:
        said = install(exe, ws, "zsh")
        assert said[-1].startswith("interncli: add this line to "), said
        line = said[-1].rsplit(": ", 1)[1]
        assert line == ZSH_LINE
        assert not (zdot / ".zshrc").exists()
    (zdot / ".zshrc").write_text(line + "\n", encoding="utf-8")
    if installed:
        assert not any("add this line" in text for text in install(exe, ws, "zsh")), "the line is there now"
    cases = TABS if installed else UNINSTALLED
    typed = type_tab(["zsh", "-i"], ws.env, ws.cwd, ws.tmp / "out", ZSH_BINDINGS, [c.line for c in cases],
                     wait_completed=True)
    check_tabs(cases, typed)


@pytest.mark.integration
def test_fish_completes_through_the_installed_file(exe, ws):
    """fish, with a fresh XDG_CONFIG_HOME: completes nothing before the install, then through
    ``$XDG_CONFIG_HOME/fish/completions/interncli.fish``."""
    need("fish")
    ws.env["XDG_CONFIG_HOME"] = str(ws.tmp / "xdg-config")
    assert "chat" not in fish_complete("", "interncli ch", ws), "fish knew interncli before the install"
    said = install(exe, ws, "fish")
    target = ws.tmp / "xdg-config" / "fish" / "completions" / "interncli.fish"
    assert said == ["interncli: wrote the fish completion to {}".format(target)]
    assert fish_complete("", "interncli ch", ws) == ["chat"]
    assert "install" in fish_complete("", "interncli completion ", ws)
    assert set(fish_complete("", "interncli --profile local chat create -m m-", ws)) == MODELS
