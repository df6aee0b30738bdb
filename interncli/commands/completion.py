"""``interncli completion bash|zsh|fish``: the shell completion script, from click; and
``interncli completion install``, which writes it where the shell looks for it."""

from __future__ import annotations

import os
from typing import List, Mapping, NamedTuple, Optional, Tuple

import click

from interncli.commands.common import Group, pass_app
from interncli.commands.completers import COMPLETE_VAR
from interncli.context import AppContext
from interncli.errors import UsageError

SHELLS = ("bash", "zsh", "fish")
# The line ~/.zshrc needs for the installed file: zsh finds completion functions only on fpath,
# and only once compinit has run after fpath was set.
ZSH_RC_LINE = "fpath=(~/.zfunc $fpath); autoload -U compinit; compinit"


def completion_script(root: click.Command, shell: str) -> str:
    """click's completion script for ``shell`` and the command tree under ``root`` (the script
    calls interncli back to complete)."""
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None, shell
    source = cls(root, {}, "interncli", COMPLETE_VAR).source()
    if shell == "zsh":
        # Autoloaded from fpath, click's script completes the first Tab but leaves the function
        # `_interncli` (this file) in charge, which on the next Tab only registers and completes
        # nothing: register the real function on the first call too.
        source = source.replace(
            "    # autoload from fpath, call function directly\n    _interncli_completion \"$@\"",
            "    # autoload from fpath: register the real function, then complete\n"
            "    compdef _interncli_completion interncli\n    _interncli_completion \"$@\"")
    return source


class Target(NamedTuple):
    """Where a shell's completion file goes, and what the user must still do for the shell to
    read it (empty when nothing)."""

    path: str
    todo: str


def _base_dir(environ: Mapping[str, str], variable: str, default: str) -> str:
    # The XDG spec: a relative path in the variable is invalid and ignored.
    value = environ.get(variable, "")
    return value if os.path.isabs(value) else default


def install_target(shell: str, environ: Mapping[str, str]) -> Target:
    """The user's completion folder for ``shell``, where it loads files by itself."""
    home = environ.get("HOME") or os.path.expanduser("~")
    if shell == "bash":
        # bash-completion 2.x loads completions/<command> from here on the first Tab (2.12
        # reads BASH_COMPLETION_USER_DIR as a list split at colons: the first folder is used).
        user_dirs = [d for d in environ.get("BASH_COMPLETION_USER_DIR", "").split(":") if d]
        data = _base_dir(environ, "XDG_DATA_HOME", os.path.join(home, ".local", "share"))
        folder = user_dirs[0] if user_dirs else os.path.join(data, "bash-completion")
        path = os.path.join(folder, "completions", "interncli")
        return Target(path, "new bash sessions load it through bash-completion 2; without bash-completion, "
                            "add this line to ~/.bashrc: . {}".format(_quote(path)))
    if shell == "zsh":
        path = os.path.join(home, ".zfunc", "_interncli")
        rc = os.path.join(_base_dir(environ, "ZDOTDIR", home), ".zshrc")
        if _has_line(rc, ZSH_RC_LINE):
            return Target(path, "")
        return Target(path, "add this line to {} (before any compinit it runs already), then start a new "
                            "zsh: {}".format(_tilde(rc, home), ZSH_RC_LINE))
    config = _base_dir(environ, "XDG_CONFIG_HOME", os.path.join(home, ".config"))
    return Target(os.path.join(config, "fish", "completions", "interncli.fish"), "")


def _has_line(path: str, line: str) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return any(text.strip() == line for text in fh)
    except OSError:
        return False


def _tilde(path: str, home: str) -> str:
    return "~" + path[len(home):] if path.startswith(home.rstrip("/") + "/") else path


def _quote(path: str) -> str:
    import shlex

    return shlex.quote(path)


def shell_of(environ: Mapping[str, str]) -> str:
    """The user's shell, from ``$SHELL``'s basename; a usage error if it is none of ours."""
    login = environ.get("SHELL", "")
    name = os.path.basename(login.rstrip("/"))
    if name not in SHELLS:
        raise UsageError("cannot tell which shell to install the completion for: $SHELL is {}".format(
                             repr(login) if login else "not set"),
                         hint="Name it: interncli completion install bash|zsh|fish")
    return name


def install_script(path: str, script: str) -> bool:
    """Write ``script`` to ``path`` atomically, creating its folders; False when the file held
    it already (re-running changes nothing)."""
    from interncli.files import check_writable, write_atomic

    try:
        with open(path, encoding="utf-8") as fh:
            if fh.read() == script:
                return False
    except (OSError, UnicodeDecodeError):
        pass
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise UsageError("cannot create the folder {}: {}".format(folder, exc.strerror or exc),
                         hint="Check its permissions, or print the script and save it yourself: "
                              "interncli completion SHELL > FILE") from exc
    check_writable(path, "the completion file")
    # Not a secret: readable by all like any completion file (write_atomic makes new files 0600).
    write_atomic(path, script, mode=0o644)
    return True


class ShellGroup(Group):
    """``completion SHELL`` names a shell (or ``install``): an unknown one is refused the way a
    bad choice is, naming the shells."""

    def resolve_command(self, ctx: click.Context,
                        args: List[str]) -> Tuple[Optional[str], Optional[click.Command], List[str]]:
        if args and args[0] not in self.commands and not args[0].startswith("-") and not ctx.resilient_parsing:
            raise click.UsageError("no shell or command {!r}: choose {} or install".format(
                args[0], ", ".join(SHELLS)), ctx)
        return super().resolve_command(ctx, args)


@click.group("completion", cls=ShellGroup)
def completion() -> None:
    """Print the completion script for a shell, or install it.

    \b
    Install it where your shell looks for it (says where, and what is left to do):
      interncli completion install               # for $SHELL; or: install bash|zsh|fish
    Or enable it by hand, for this session or for good:
      eval "$(interncli completion bash)"         # or: >> ~/.bashrc
      interncli completion zsh > "${fpath[1]}/_interncli"
      interncli completion fish > ~/.config/fish/completions/interncli.fish
    """


def _script_command(shell: str) -> click.Command:
    @click.pass_context
    def print_script(ctx: click.Context) -> None:
        app = ctx.find_object(AppContext)
        click.echo(completion_script(ctx.find_root().command, shell), nl=False,
                   file=app.io.stdout if app is not None else None)

    return click.command(shell, help="Print the {} completion script.".format(shell))(print_script)


for _shell in SHELLS:
    completion.add_command(_script_command(_shell))


@completion.command("install")
@click.argument("shell", required=False, type=click.Choice(SHELLS))
@click.option("--print-path", is_flag=True, help="Print the path the script goes to, and write nothing.")
@click.pass_context
@pass_app
def completion_install(app: AppContext, ctx: click.Context, shell: Optional[str], print_path: bool) -> None:
    """Write the completion script to your shell's completion folder.

    The shell is the one named, else $SHELL's. Where the script goes:

    \b
      bash  $XDG_DATA_HOME/bash-completion/completions/interncli (XDG_DATA_HOME
            defaults to ~/.local/share; $BASH_COMPLETION_USER_DIR/completions
            when that is set): bash-completion 2 loads it in new shells
      zsh   ~/.zfunc/_interncli, and ~/.zshrc needs this line (you add it;
            the command prints it if ~/.zshrc lacks it):
            fpath=(~/.zfunc $fpath); autoload -U compinit; compinit
      fish  $XDG_CONFIG_HOME/fish/completions/interncli.fish (XDG_CONFIG_HOME
            defaults to ~/.config): new fish sessions load it

    Nothing goes to stdout (but with --print-path): stderr says where the file is and what,
    if anything, is left to do. Running it again is safe: it brings the file up to date. The
    script calls interncli back, so it completes where interncli is on PATH.
    """
    shell = shell or shell_of(app.environ)
    target = install_target(shell, app.environ)
    if print_path:
        click.echo(target.path, file=app.io.stdout)
        return
    from interncli import output

    changed = install_script(target.path, completion_script(ctx.find_root().command, shell))
    output.inform(("wrote the {} completion to {}" if changed else
                   "the {} completion in {} is current").format(shell, target.path), app.io)
    if target.todo:
        output.inform(target.todo, app.io)
